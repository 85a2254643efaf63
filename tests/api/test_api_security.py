"""The API's refusals: no credentials, a revoked or expired key, a forged or expired token, a
missing scope, the rate limit and malformed parameters each get their status, nothing else
happens (no data in the answer, no read of the store, no change of state), and each leaves an
audit row with that status. Real chDB store, real HTTP through FastAPI's TestClient."""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from api_test_store import api_config, build
from fastapi.testclient import TestClient

from quant_assets.api import tokens
from quant_assets.api.app import create_app
from quant_assets.api.audit import AuditLog, AuditRow
from quant_assets.api.store import Store
from quant_assets.api.tables import API_AUDIT

UNAUTHORIZED = {"detail": "missing or invalid credentials"}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build(tmp_path_factory.mktemp("api_security"))


@pytest.fixture(scope="module")
def api(built):
    """The app, a read key, an admin key, and its services."""
    app = create_app(api_config(built))
    with TestClient(app) as client:
        keys = app.state.services.keys
        read, read_key = keys.create("pm-desk", "read", 90)
        admin, admin_key = keys.create("ops", "admin", 90)
        yield {
            "client": client,
            "services": app.state.services,
            "read": (read, read_key),
            "admin": (admin, admin_key),
        }


def audit_rows(services, request_id: str) -> list[dict]:
    """The audit rows of one request, read from ClickHouse after a flush."""
    assert services.audit.flush()
    store = services.store
    with store.client() as client:
        store.ensure(client, API_AUDIT)
        frame = store.resource.query_df(
            client,
            "SELECT key_id, method, route, params, status, latency_ms, client "
            "FROM {db}.api_audit WHERE request_id = %(r)s",
            {"r": request_id},
        )
    return frame.to_dict("records")


def refused(api, response, status: int, route: str, key_id: str = "") -> dict:
    """Assert a refusal: its status, no data in the body, one audit row with the status."""
    assert response.status_code == status, response.text
    body = response.json()
    assert "items" not in body and "figures" not in body and "access_token" not in body
    rows = audit_rows(api["services"], response.headers["X-Request-ID"])
    assert len(rows) == 1, rows
    row = rows[0]
    assert (row["status"], row["route"], row["key_id"]) == (status, route, key_id)
    assert row["latency_ms"] >= 0 and row["client"] == "testclient"
    return body


def test_no_credentials_is_401_with_nothing_read_and_an_audit_row(api):
    services = api["services"]
    reads = services.store.reads
    for url in ("/v1/recommendations", "/v1/positions", "/v1/factors", "/v1/health"):
        response = api["client"].get(url)
        assert refused(api, response, 401, url) == UNAUTHORIZED
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert services.store.reads == reads  # the store was not touched


def test_bad_keys_all_get_the_same_401(api):
    read, read_key = api["read"]
    wrong_secret = read_key[:-4] + ("AAAA" if not read_key.endswith("AAAA") else "BBBB")
    for header in (
        {"X-API-Key": "not-a-key"},
        {"X-API-Key": wrong_secret},
        {"X-API-Key": "qk_k0000000000000000." + "a" * 43},  # unknown id
        {"Authorization": "Bearer not.a.token"},
        {"Authorization": f"Basic {read_key}"},
    ):
        response = api["client"].get("/v1/recommendations", headers=header)
        assert refused(api, response, 401, "/v1/recommendations") == UNAUTHORIZED
        assert read_key not in response.text


def test_a_revoked_key_and_its_token_get_401(api):
    services, client = api["services"], api["client"]
    record, key = services.keys.create("leaver", "read", 90)
    token = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": record.key_id, "client_secret": key},
    ).json()["access_token"]
    assert client.get("/v1/factors", headers={"X-API-Key": key}).status_code == 200
    assert (
        client.get("/v1/factors", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    )
    assert services.keys.revoke(record.key_id)
    response = client.get("/v1/factors", headers={"X-API-Key": key})
    assert refused(api, response, 401, "/v1/factors") == UNAUTHORIZED
    response = client.get("/v1/factors", headers={"Authorization": f"Bearer {token}"})
    assert refused(api, response, 401, "/v1/factors") == UNAUTHORIZED
    response = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": record.key_id, "client_secret": key},
    )
    assert refused(api, response, 401, "/oauth/token")["error"] == "invalid_client"
    listed = {k.key_id: k for k in services.keys.list()}
    assert listed[record.key_id].revoked and listed[record.key_id].revoked_at is not None


def test_an_expired_key_and_an_expired_or_forged_token_get_401(api):
    services, client = api["services"], api["client"]
    past = datetime.now(UTC) - timedelta(days=3)
    record, key = services.keys.create("old", "read", 1, now=past)
    response = client.get("/v1/recommendations", headers={"X-API-Key": key})
    assert refused(api, response, 401, "/v1/recommendations") == UNAUTHORIZED
    read, _ = api["read"]
    secret = services.config.token_secret
    expired, _ = tokens.issue(read.key_id, ("read",), secret, ttl_s=-60)
    forged, _ = tokens.issue(read.key_id, ("read", "admin"), "another-secret-" + "y" * 20, 900)
    for token in (expired, forged):
        response = client.get("/v1/recommendations", headers={"Authorization": f"Bearer {token}"})
        assert refused(api, response, 401, "/v1/recommendations") == UNAUTHORIZED


def test_a_read_token_on_an_admin_route_is_403_and_changes_nothing(api):
    services, client = api["services"], api["client"]
    read, read_key = api["read"]
    admin, _ = api["admin"]
    token = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": read.key_id,
              "client_secret": read_key},
    ).json()  # fmt: skip
    assert token["scope"] == "read" and token["token_type"] == "bearer"
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    response = client.get("/v1/admin/audit", headers=bearer)
    refused(api, response, 403, "/v1/admin/audit", read.key_id)
    response = client.delete(f"/v1/admin/keys/{admin.key_id}", headers=bearer)
    refused(api, response, 403, "/v1/admin/keys/{key_id}", read.key_id)
    assert not {k.key_id: k for k in services.keys.list()}[admin.key_id].revoked
    before = len(services.keys.list())
    response = client.post("/v1/admin/keys", headers=bearer, json={"name": "sneaky"})
    refused(api, response, 403, "/v1/admin/keys", read.key_id)
    assert len(services.keys.list()) == before


def test_a_read_key_cannot_ask_for_an_admin_token(api):
    read, read_key = api["read"]
    response = api["client"].post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": read.key_id,
              "client_secret": read_key, "scope": "admin"},
    )  # fmt: skip
    assert refused(api, response, 400, "/oauth/token", read.key_id)["error"] == "invalid_scope"


@pytest.mark.parametrize(
    "query, field",
    [
        ("date=2024-02-30", "date"),
        ("date=20240603", "date"),
        ("date=1890-01-01", "date"),
        ("symbol=600000", "symbol"),
        ("symbol=600000.XX", "symbol"),
        ("symbol=600000.SH%27%20OR%201%3D1", "symbol"),
        ("industry=" + "x" * 65, "industry"),
        ("page=0", "page"),
        ("page_size=10000", "page_size"),
        ("page_size=0", "page_size"),
        ("page=abc", "page"),
        ("symbl=600000.SH", "symbl"),  # unknown parameters are refused, not ignored
        ("date=2024-06-03&date=2024-06-04", "date"),  # and so is a parameter given twice
    ],
)
def test_malformed_parameters_are_422_without_a_read(api, query, field):
    services = api["services"]
    _, key = api["read"]
    reads = services.store.reads
    response = api["client"].get(f"/v1/recommendations?{query}", headers={"X-API-Key": key})
    body = refused(api, response, 422, "/v1/recommendations", api["read"][0].key_id)
    assert [e["loc"] for e in body["detail"]] == [["query", field]]
    assert "input" not in body["detail"][0]  # the value sent is not echoed
    assert services.store.reads == reads


def test_other_routes_validate_their_parameters(api):
    _, key = api["read"]
    _, admin_key = api["admin"]
    client = api["client"]
    for url, route, header in (
        ("/v1/pnl?start=2024-06-04&end=2024-06-03", "/v1/pnl", key),
        ("/v1/factors?origin=magic", "/v1/factors", key),
        ("/v1/positions?date=yesterday", "/v1/positions", key),
        ("/v1/admin/audit?since=noon", "/v1/admin/audit", admin_key),
        ("/v1/admin/audit?status=9999", "/v1/admin/audit", admin_key),
    ):
        response = client.get(url, headers={"X-API-Key": header})
        owner = api["read"][0] if header == key else api["admin"][0]
        refused(api, response, 422, route, owner.key_id)
    response = client.delete("/v1/admin/keys/not-an-id", headers={"X-API-Key": admin_key})
    refused(api, response, 422, "/v1/admin/keys/{key_id}", api["admin"][0].key_id)


def test_over_the_rate_limit_is_429_with_retry_after(built):
    app = create_app(api_config(built, rate_limit_per_minute=3))
    with TestClient(app) as client:
        services = app.state.services
        record, key = services.keys.create("busy", "read", 90)
        headers = {"X-API-Key": key}
        statuses = [client.get("/v1/performance", headers=headers).status_code for _ in range(3)]
        assert statuses == [200, 200, 200]
        reads = services.store.reads
        before = time.time()
        response = client.get("/v1/performance", headers=headers)
        after = time.time()
        api = {"services": services}
        refused(api, response, 429, "/v1/performance", record.key_id)
        # the seconds left in the one-minute window the refused request fell in
        window_end = (int(before // 60) + 1) * 60
        waited = int(response.headers["Retry-After"])
        assert (
            max(1, math.ceil(window_end - after))
            <= waited
            <= max(1, math.ceil(window_end - before))
        )
        assert services.store.reads == reads
        # the limit is per route: another route still answers
        assert client.get("/v1/positions", headers=headers).status_code == 200
        # callers without credentials are limited by their address
        for _ in range(3):
            assert client.get("/v1/factors").status_code == 401
        refused(api, client.get("/v1/factors"), 429, "/v1/factors")


def test_unknown_paths_and_methods_are_refused_and_audited(api):
    response = api["client"].get("/v1/secrets")
    refused(api, response, 404, "unmatched")
    _, key = api["read"]
    response = api["client"].post("/v1/recommendations", headers={"X-API-Key": key})
    assert response.status_code == 405


def test_security_headers_and_closed_cors(api):
    _, key = api["read"]
    response = api["client"].get(
        "/v1/recommendations",
        headers={"X-API-Key": key, "Origin": "https://evil.example"},
    )
    assert response.status_code == 200
    h = response.headers
    assert h["X-Content-Type-Options"] == "nosniff" and h["X-Frame-Options"] == "DENY"
    assert "default-src 'self'" in h["Content-Security-Policy"]
    assert h["Cache-Control"] == "no-store" and h["Referrer-Policy"] == "no-referrer"
    assert "access-control-allow-origin" not in h
    preflight = api["client"].options(
        "/v1/recommendations",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in preflight.headers


def test_cors_opens_only_to_configured_origins(built):
    app = create_app(api_config(built, cors_origins=("https://desk.example",)))
    with TestClient(app) as client:
        good = client.options(
            "/v1/recommendations",
            headers={"Origin": "https://desk.example", "Access-Control-Request-Method": "GET"},
        )
        assert good.headers["access-control-allow-origin"] == "https://desk.example"
        bad = client.options(
            "/v1/recommendations",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
        )
        assert "access-control-allow-origin" not in bad.headers


def test_the_audit_never_holds_a_secret(api):
    services, client = api["services"], api["client"]
    read, read_key = api["read"]
    client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": read.key_id,
              "client_secret": read_key},
    )  # fmt: skip
    client.get("/v1/recommendations", headers={"X-API-Key": read_key})
    client.get("/v1/recommendations", headers={"X-API-Key": read_key + "x"})
    assert services.audit.flush()
    with services.store.client() as c:
        dump = services.store.resource.query_df(c, "SELECT * FROM {db}.api_audit")
    text = dump.to_csv()
    secret = read_key.split(".", 1)[1]
    assert secret not in text and services.config.token_secret not in text
    tokens_rows = dump[dump["route"] == "/oauth/token"]
    assert json.loads(tokens_rows["params"].iloc[-1])["client_id"] == read.key_id


def test_audit_rows_survive_a_store_that_refuses_them(built, tmp_path: Path):
    """A store that does not answer: rows are kept, then spilled to a file, then written from
    it once a store answers; none is lost."""
    down = Store("http://127.0.0.1:9/", "quant_api_test", wait_s=1)
    spill = tmp_path / "spill"
    log = AuditLog(down, flush_s=60, spill_dir=spill, max_pending=5)
    rows = [
        AuditRow(1.7e9 + i, f"spill{i:04d}", "", "GET", "/v1/x", "{}", 200, 1.0, "t")
        for i in range(8)
    ]
    for row in rows[:3]:
        log.record(row)
    assert not log.flush() and log.pending == 3  # kept for the next try
    for row in rows[3:]:
        log.record(row)
    assert not log.flush() and log.pending == 0  # over max_pending: spilled
    assert len(list(spill.glob("audit-*.jsonl"))) == 1
    up = AuditLog(Store(built.dsn, "quant_api_test", wait_s=20), flush_s=60, spill_dir=spill)
    assert up.flush() and up.written == 8 and not list(spill.glob("*.jsonl"))
    with up.store.client() as client:
        found = up.store.resource.query_df(
            client, "SELECT count() AS n FROM {db}.api_audit WHERE request_id LIKE 'spill%'"
        )
    assert int(found["n"].iloc[0]) == 8
