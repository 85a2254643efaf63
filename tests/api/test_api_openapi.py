"""The OpenAPI document describes the bodies the API really sends: every JSON route's success
answer, fetched for real (chDB, MLflow and Dagster stores of `api_test_store`, real HTTP
through FastAPI's TestClient), validates against the schema `/openapi.json` gives for it,
with `$ref`s resolved and no undocumented field allowed, so the document cannot drift from
the code that builds the bodies."""

from __future__ import annotations

import copy

import pytest
from api_test_store import DAYS, api_config, build
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from httpx import Response
from openapi_schema_validator import OAS31Validator

from quant_assets.api import routes_admin, routes_data, routes_oauth, routes_ops
from quant_assets.api.app import create_app

JSON = "application/json"


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    built = build(tmp_path_factory.mktemp("api_openapi"))
    app = create_app(api_config(built))
    with TestClient(app) as client:
        services = app.state.services
        _, read_key = services.keys.create("pm-desk", "read", 90)
        _, admin_key = services.keys.create("ops", "admin", 90)
        yield {"app": app, "client": client, "read": read_key, "admin": admin_key}


@pytest.fixture(scope="module")
def document(api) -> dict:
    return api["client"].get("/openapi.json").json()


def resolve(node: object, components: dict) -> object:
    """`node` with every `#/components/schemas/...` reference replaced by its schema."""
    if isinstance(node, list):
        return [resolve(n, components) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = node["$ref"].removeprefix("#/components/schemas/")
        return resolve(components[name], components)
    return {k: resolve(v, components) for k, v in node.items()}


def closed(schema: object) -> object:
    """`schema` with `additionalProperties: false` on every object that lists its properties
    and does not say otherwise: a field the body has must be documented."""
    if isinstance(schema, list):
        return [closed(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: closed(v) for k, v in schema.items()}
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def success(document: dict, path: str, method: str) -> tuple[int, dict | None]:
    """The documented success status of an operation and its JSON body's schema (resolved and
    closed), or None when its success answer is not JSON."""
    responses = document["paths"][path][method]["responses"]
    status = next(int(s) for s in responses if s.startswith("2"))
    content = responses[str(status)].get("content", {})
    if JSON not in content:
        return status, None
    components = document.get("components", {}).get("schemas", {})
    return status, closed(resolve(content[JSON]["schema"], components))


def errors(schema: dict, body: object) -> list[str]:
    """Where `body` breaks `schema`, readable."""
    found = OAS31Validator(schema).iter_errors(body)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in found]


def json_operations(document: dict) -> set[tuple[str, str]]:
    """(method, path) of every operation whose success answer is documented as JSON."""
    return {
        (method, path)
        for path, operations in document["paths"].items()
        for method in operations
        if success(document, path, method)[1] is not None
    }


def calls(api: dict) -> list[tuple[str, str, Response]]:
    """Real requests covering every JSON route and the shapes its body takes (filters, empty
    pages, a day without a report page, the first P&L day without a day before, a revoked
    key, an unauthenticated request in the audit)."""
    client = api["client"]
    read, admin = {"X-API-Key": api["read"]}, {"X-API-Key": api["admin"]}
    out: list[tuple[str, str, Response]] = []

    def get(path: str, url: str, headers: dict[str, str] = read) -> None:
        out.append(("get", path, client.get(url, headers=headers)))

    for url in (
        "/v1/recommendations",
        f"/v1/recommendations?date={DAYS[0]}",
        "/v1/recommendations?industry=Banks&page_size=2",
        "/v1/recommendations?symbol=830799.BJ",
        "/v1/recommendations?page=9",
    ):
        get("/v1/recommendations", url)
    for url in ("/v1/positions", f"/v1/positions?date={DAYS[0]}&page_size=1"):
        get("/v1/positions", url)
    for url in (
        "/v1/pnl",
        f"/v1/pnl?start={DAYS[1]}",
        f"/v1/pnl?end={DAYS[0]}",
        "/v1/pnl?start=2030-01-01",
    ):
        get("/v1/pnl", url)
    for url in (
        "/v1/factors",
        f"/v1/factors?date={DAYS[0]}",
        "/v1/factors?origin=ai",
        "/v1/factors?origin=traditional&page_size=1",
    ):
        get("/v1/factors", url)
    for url in ("/v1/performance", f"/v1/performance?date={DAYS[0]}"):
        get("/v1/performance", url)
    get("/v1/models", "/v1/models")
    get("/v1/models", "/v1/models?page=2&page_size=1")
    get("/v1/health", "/v1/health")
    created = client.post("/v1/admin/keys", headers=admin, json={"name": "tool", "scope": "read"})
    out.append(("post", "/v1/admin/keys", created))
    key = created.json()
    token = client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": key["key_id"],
            "client_secret": key["key"],
        },
    )
    out.append(("post", "/oauth/token", token))
    out.append(("delete", "/v1/admin/keys/{key_id}",
                client.delete(f"/v1/admin/keys/{key['key_id']}", headers=admin)))  # fmt: skip
    get("/v1/admin/keys", "/v1/admin/keys", admin)
    assert client.get("/v1/positions", headers={"X-API-Key": ""}).status_code == 401
    get("/v1/admin/audit", "/v1/admin/audit?page_size=500", admin)
    get("/v1/admin/audit", "/v1/admin/audit?status=401", admin)
    return out


@pytest.fixture(scope="module")
def answered(api) -> list[tuple[str, str, Response]]:
    return calls(api)


def test_every_json_answer_matches_its_documented_schema(document, answered):
    covered = set()
    for method, path, response in answered:
        status, schema = success(document, path, method)
        assert response.status_code == status, (method, path, response.text[:200])
        assert response.headers["content-type"].startswith(JSON)
        assert schema is not None, (method, path)
        body = response.json()
        assert not errors(schema, body), (method, path, errors(schema, body), body)
        covered.add((method, path))
    # every documented JSON operation was asked for: a new route cannot skip this check
    assert covered == json_operations(document)


def test_the_bodies_cover_the_nullable_and_optional_fields(answered):
    """The requests above do reach the shapes the schemas allow for: nulls, the AI fields, a
    revoked key (so the schemas' nullable fields are checked with real nulls and values)."""
    by_url = {
        (path, str(response.request.url)): response.json()
        for _, path, response in answered
        if response.status_code < 300
    }
    pnl = next(b for (p, _), b in by_url.items() if p == "/v1/pnl" and len(b["items"]) == 2)
    assert pnl["items"][0]["pnl"] is None and pnl["items"][0]["return"] is None
    assert pnl["items"][1]["return"] is not None
    factors = next(b for (p, _), b in by_url.items() if p == "/v1/factors")
    by_name = {f["factor"]: f for f in factors["items"]}
    assert by_name["KMID"]["formula"] is None and by_name["ai_3f9c2a1b"]["formula"]
    keys = next(b for (p, _), b in by_url.items() if p == "/v1/admin/keys")
    assert any(k["revoked_at"] for k in keys["items"]) and any(
        k["revoked_at"] is None for k in keys["items"]
    )
    reports = [b["report"] for (p, _), b in by_url.items() if p == "/v1/performance"]
    assert None in reports and any(reports)


def test_an_undocumented_or_missing_field_is_refused(api, document):
    """The check is strict both ways: an extra field and a missing required one both fail."""
    _, schema = success(document, "/v1/recommendations", "get")
    body = api["client"].get("/v1/recommendations", headers={"X-API-Key": api["read"]}).json()
    assert not errors(schema, body)
    extra = copy.deepcopy(body)
    extra["items"][0]["surprise"] = 1
    assert errors(schema, extra)
    missing = copy.deepcopy(body)
    del missing["items"][0]["score"]
    assert errors(schema, missing)
    del missing["total"]
    assert errors(schema, missing)


def test_every_route_documents_its_success_body(document):
    """Each route of the API's routers under /v1 (admin included) and the token route names a
    schema for its success answer: a JSON object for the data, a string for the report page;
    and the document lists every one of them."""
    routes = [
        route
        for router in (routes_data.router, routes_ops.router, routes_admin.router,
                       routes_oauth.router)
        for route in router.routes
        if isinstance(route, APIRoute) and route.include_in_schema
    ]  # fmt: skip
    operations = {(m.lower(), r.path) for r in routes for m in r.methods}
    listed = {
        (method, path)
        for path, ops in document["paths"].items()
        if path.startswith("/v1/") or path == "/oauth/token"
        for method in ops
    }
    assert operations == listed and len(operations) >= 13
    for route in routes:
        for method in route.methods:
            responses = document["paths"][route.path][method.lower()]["responses"]
            content = responses[str(route.status_code or 200)].get("content", {})
            assert content, (method, route.path)
            for media, spec in content.items():
                schema = spec.get("schema") or {}
                assert schema.get("$ref") or schema.get("type"), (method, route.path, media)
