"""The API's answers: each endpoint returns what the store holds, a repeated call is served
from the cache without reading ClickHouse, and a republished partition (with the generation
bump the IO manager makes after publishing) is served fresh at once. Real chDB, MLflow and
Dagster stores; real HTTP through FastAPI's TestClient."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from api_test_store import (
    DATABASE,
    DAYS,
    NEXT,
    api_config,
    build,
    factors,
    paper_book,
    performance,
    recommendations,
)
from fastapi.testclient import TestClient

from quant_assets.api.app import create_app
from quant_assets.reports.tables import RECOMMENDATIONS
from resources.cache import CacheResource
from resources.clickhouse import ClickHouseResource
from resources.clickhouse_io import ClickHouseIOManager


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build(tmp_path_factory.mktemp("api_data"))


@pytest.fixture(scope="module")
def api(built):
    app = create_app(api_config(built))
    with TestClient(app) as client:
        services = app.state.services
        _, key = services.keys.create("pm-desk", "read", 90)
        admin, admin_key = services.keys.create("ops", "admin", 90)
        client.headers["X-API-Key"] = key
        yield {"client": client, "services": services, "admin_key": admin_key}


def close(a: float | None, b: float) -> bool:
    return a is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def test_recommendations_of_the_newest_and_a_given_day(api):
    client = api["client"]
    latest = client.get("/v1/recommendations").json()
    assert (latest["date"], latest["for_date"]) == (DAYS[1], NEXT[DAYS[1]])
    stored = recommendations(DAYS[1])
    assert latest["total"] == len(stored)
    by_symbol = {r["symbol"]: r for r in latest["items"]}
    for row in stored.to_dict("records"):
        got = by_symbol[row["symbol"]]
        assert got["name"] == row["name"] and got["industry"] == row["industry"]
        assert got["rank"] == row["rank"] and got["shares"] == row["shares"]
        assert got["action"] == row["action"] and got["reason"] == row["reason"]
        assert got["risk_note"] == row["risk_note"]
        for field in ("score", "probability", "confidence", "weight", "close"):
            assert close(got[field], row[field]), field
    older = client.get(f"/v1/recommendations?date={DAYS[0]}").json()
    assert older["date"] == DAYS[0] and older["for_date"] == NEXT[DAYS[0]]
    assert [r["symbol"] for r in older["items"]] == list(recommendations(DAYS[0])["symbol"])
    missing = client.get("/v1/recommendations?date=2024-06-01")
    assert missing.status_code == 404 and "items" not in missing.json()


def test_recommendation_filters_and_pages(api):
    client = api["client"]
    banks = client.get(f"/v1/recommendations?date={DAYS[0]}&industry=Banks").json()
    assert banks["total"] == 3 and {r["industry"] for r in banks["items"]} == {"Banks"}
    one = client.get("/v1/recommendations?symbol=830799.BJ").json()
    assert [r["symbol"] for r in one["items"]] == ["830799.BJ"]
    pages = [client.get(f"/v1/recommendations?page={p}&page_size=3").json() for p in (1, 2, 3, 4)]
    assert [len(p["items"]) for p in pages] == [3, 3, 2, 0]
    assert all(p["total"] == 8 for p in pages)
    symbols = [r["symbol"] for p in pages for r in p["items"]]
    assert symbols == list(recommendations(DAYS[1])["symbol"])


def test_positions_and_pnl_from_the_paper_book(api):
    client = api["client"]
    book = client.get("/v1/positions").json()
    stored = paper_book(DAYS[1], 990_000.0, 1_000_000.0)
    held = stored[stored["kind"] == "position"]
    assert book["date"] == DAYS[1] and book["equity"] == 990_000.0
    assert close(book["cash"], 990_000.0 - held["value"].sum())
    assert [r["symbol"] for r in book["items"]] == list(held["symbol"])  # largest first
    assert close(book["items"][0]["weight"], 300_000.0 / 990_000.0)
    series = client.get("/v1/pnl").json()
    assert [d["date"] for d in series["items"]] == list(DAYS)
    first, second = series["items"]
    assert first["pnl"] is None and first["drawdown"] == 0.0  # no day before the history
    assert second["pnl"] == -10_000.0 and close(second["return"], -0.01)
    assert close(second["drawdown"], -0.01) and close(second["fees"], 5.1)
    assert second["positions"] == 3
    bounded = client.get(f"/v1/pnl?start={DAYS[1]}&end={DAYS[1]}").json()
    assert [d["date"] for d in bounded["items"]] == [DAYS[1]]
    assert bounded["items"][0]["pnl"] == -10_000.0  # from the day before the range


def test_factors_with_ic_and_origin(api):
    client = api["client"]
    doc = client.get("/v1/factors").json()
    active, screening, ai = factors(DAYS[1])
    assert doc["date"] == DAYS[1] and doc["total"] == len(active)
    by_name = {f["factor"]: f for f in doc["items"]}
    assert set(by_name) == set(active["factor"])  # the inactive VSUMD60 is not listed
    assert by_name["KMID"]["origin"] == "traditional" and close(
        by_name["KMID"]["rank_ic_mean"], 0.05
    )
    assert close(by_name["KMID"]["icir"], 0.5) and by_name["KMID"]["n_days"] == 60
    ai_factor = by_name["ai_3f9c2a1b"]
    assert ai_factor["origin"] == "ai" and ai_factor["formula"] == ai["formula"].iloc[0]
    assert ai_factor["admitted_on"] == DAYS[0]  # admitted the day before, still in force
    strengths = [abs(f["rank_ic_mean"]) for f in doc["items"]]
    assert strengths == sorted(strengths, reverse=True)
    only_ai = client.get("/v1/factors?origin=ai").json()
    assert [f["factor"] for f in only_ai["items"]] == ["ai_3f9c2a1b"]


def test_performance_figures_and_report_page(api):
    client = api["client"]
    doc = client.get("/v1/performance").json()
    stored = performance(DAYS[1])
    assert doc["date"] == DAYS[1]
    assert doc["figures"].keys() == set(stored["figure"])
    assert all(
        close(doc["figures"][f], v) for f, v in zip(stored["figure"], stored["value"], strict=True)
    )
    assert doc["report"] == f"/v1/performance/report?date={DAYS[1]}"
    page = client.get(doc["report"])
    assert page.status_code == 200 and "<h1>Performance</h1>" in page.text
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    older = client.get(f"/v1/performance?date={DAYS[0]}").json()
    assert older["report"] is None  # no page was written for that day
    assert client.get(f"/v1/performance/report?date={DAYS[0]}").status_code == 404
    assert client.get("/v1/performance/report", headers={"X-API-Key": ""}).status_code == 401


def test_the_report_folder_is_where_the_report_asset_writes(built, monkeypatch):
    from quant_assets.api.config import config_from_settings
    from quant_assets.reports.assets import report_path

    monkeypatch.setenv("QUANT_DATA_DIR", str(built.reports.parent))
    day = pd.Timestamp(DAYS[1])
    assert config_from_settings().reports_dir / f"{DAYS[1]}.html" == report_path(day)


def test_models_from_the_registry(api):
    doc = api["client"].get("/v1/models").json()
    assert doc["champions"] == {"lgbm": 1} and doc["challengers"] == {"lgbm": 2}
    versions = {v["version"]: v for v in doc["items"]}
    assert versions[1]["champion"] and not versions[1]["challenger"]
    assert versions[2]["challenger"] and versions[2]["aliases"] == ["challenger"]
    assert close(versions[1]["metrics"]["valid_rank_ic"], 0.051)
    assert versions[1]["day"] == DAYS[0]


def test_health_from_the_dagster_instance(api):
    doc = api["client"].get("/v1/health").json()
    jobs = {j["job"]: j for j in doc["jobs"]}
    assert jobs["daily_pipeline"]["status"] == "SUCCESS" and jobs["daily_pipeline"]["end"]
    assert jobs["backup_job"]["status"] == "FAILURE" and jobs["backup_job"]["last_success"] is None
    checks = {c["check"]: c for c in doc["checks"]}
    assert checks["prices_positive"]["passed"] is True
    assert checks["prices_fresh"]["passed"] is False
    assert checks["prices_fresh"]["severity"] == "WARN" and doc["failing_checks"] == 1
    # the default market delivers every kind: nothing skipped
    assert doc["market_inputs"] == {
        "delivered": ["bars", "trades", "order_book", "news", "corporate_actions"],
        "skipped": {},
    }


def test_health_says_what_a_bars_only_market_skips(built):
    app = create_app(api_config(built, market_kinds=("bars",)))
    with TestClient(app) as client:
        key = app.state.services.keys.create("bars-only", "read", 1)[1]
        doc = client.get("/v1/health", headers={"X-API-Key": key}).json()
    inputs = doc["market_inputs"]
    assert inputs["delivered"] == ["bars"]
    assert set(inputs["skipped"]) == {"trades", "order_book", "news", "corporate_actions"}
    assert inputs["skipped"]["news"] == "news analysis, news factors"


def test_a_second_call_is_served_from_the_cache(api):
    services, client = api["services"], api["client"]
    for url in (
        f"/v1/recommendations?date={DAYS[0]}&symbol=600519.SH",
        "/v1/positions",
        "/v1/pnl?start=2024-06-03",
        "/v1/factors?page_size=2",
        "/v1/performance",
    ):
        first = client.get(url).json()
        reads = services.store.reads
        again = client.get(url).json()
        assert again == first and services.store.reads == reads, url
    # another filter or page of the same day is the same cached read
    reads = services.store.reads
    client.get(f"/v1/recommendations?date={DAYS[0]}&industry=Banks&page_size=2")
    assert services.store.reads == reads


def test_a_republished_partition_is_served_fresh(api, built):
    services, client = api["services"], api["client"]
    before = client.get("/v1/recommendations").json()
    reads = services.store.reads
    assert client.get("/v1/recommendations").json() == before and services.store.reads == reads
    # republish the newest day as the IO manager does: swap the partition, then bump
    clickhouse = ClickHouseResource(dsn=built.dsn, database=DATABASE)
    fresh = recommendations(DAYS[1], shift=1)
    with clickhouse.client() as c:
        clickhouse.replace_partition(c, RECOMMENDATIONS, fresh, DAYS[1])
    io_manager = ClickHouseIOManager(clickhouse=clickhouse, cache=CacheResource())
    io_manager._cache().bump(io_manager.cache_name("recommendations"))
    after = client.get("/v1/recommendations").json()
    assert services.store.reads > reads
    assert [r["symbol"] for r in after["items"]] == list(fresh["symbol"])
    assert after["items"] != before["items"]


def test_token_round_trip(api):
    client = api["client"]
    services = api["services"]
    record, key = services.keys.create("tool", "read", 30)
    answer = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": record.key_id,
              "client_secret": key},
        headers={"X-API-Key": ""},
    )  # fmt: skip
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    token = answer.json()
    assert token["token_type"] == "bearer" and token["scope"] == "read"
    assert token["expires_in"] == services.config.token_ttl_s == 900
    bearer = {"Authorization": f"Bearer {token['access_token']}", "X-API-Key": ""}
    doc = client.get("/v1/recommendations", headers=bearer)
    assert doc.status_code == 200 and doc.json()["date"] == DAYS[1]
    # HTTP Basic client authentication (RFC 6749, 2.3.1) gives a token too
    basic = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(record.key_id, key),
        headers={"X-API-Key": ""},
    )
    assert basic.status_code == 200
    wrong_grant = client.post(
        "/oauth/token", data={"grant_type": "password", "client_id": record.key_id}
    )
    assert (
        wrong_grant.status_code == 400 and wrong_grant.json()["error"] == "unsupported_grant_type"
    )


def test_admin_reads_the_audit_and_manages_keys_over_http(api):
    client, services = api["client"], api["services"]
    admin = {"X-API-Key": api["admin_key"]}
    marker = client.get("/v1/recommendations?symbol=600036.SH")
    audit = client.get("/v1/admin/audit?page_size=500", headers=admin).json()
    row = next(r for r in audit["items"] if r["request_id"] == marker.headers["X-Request-ID"])
    assert row["route"] == "/v1/recommendations" and row["status"] == 200
    assert row["params"] == '{"symbol": "600036.SH"}'
    created = client.post("/v1/admin/keys", headers=admin, json={"name": "desk 2", "scope": "read"})
    assert created.status_code == 201
    new = created.json()
    assert new["key"].startswith(f"qk_{new['key_id']}.")
    listed = client.get("/v1/admin/keys", headers=admin).json()["items"]
    assert new["key_id"] in {k["key_id"] for k in listed}
    assert all("key" not in k and "key_hash" not in k for k in listed)
    assert client.get("/v1/factors", headers={"X-API-Key": new["key"]}).status_code == 200
    revoked = client.delete(f"/v1/admin/keys/{new['key_id']}", headers=admin)
    assert revoked.status_code == 200
    assert client.get("/v1/factors", headers={"X-API-Key": new["key"]}).status_code == 401
    assert client.delete("/v1/admin/keys/k0000000000000000", headers=admin).status_code == 404
    # the audit of the creation names the key's name and scope, never the key
    audit = client.get(
        "/v1/admin/audit", headers=admin, params={"status": 201, "page_size": 5}
    ).json()
    assert new["key"] not in str(audit) and audit["items"][0]["route"] == "/v1/admin/keys"
    assert services.audit.pending == 0 or services.audit.flush()


def test_metrics_count_requests_by_route_template(api):
    client = api["client"]
    client.get(f"/v1/recommendations?date={DAYS[0]}")
    text = client.get("/metrics", headers={"X-API-Key": ""}).text
    assert 'quant_api_requests_total{method="GET",route="/v1/recommendations",status="200"}' in text
    assert "quant_api_request_duration_seconds_bucket" in text
    assert DAYS[0] not in text  # templates, never raw paths or parameters


def test_openapi_documents_every_route_and_the_security_schemes(api):
    schema = api["client"].get("/openapi.json").json()
    for path in ("/v1/recommendations", "/v1/positions", "/v1/pnl", "/v1/factors",
                 "/v1/models", "/v1/performance", "/v1/health", "/oauth/token",
                 "/v1/admin/audit", "/v1/admin/keys"):  # fmt: skip
        assert path in schema["paths"], path
    schemes = schema["components"]["securitySchemes"]
    assert schemes["ApiKey"]["name"] == "X-API-Key"
    assert schemes["OAuth2ClientCredentials"]["flows"]["clientCredentials"]["tokenUrl"] == (
        "/oauth/token"
    )
