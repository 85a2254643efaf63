"""The metrics endpoint against a real Dagster instance: runs executed with Dagster write what
the collector reads, the endpoint is served on loopback and scraped over HTTP, and the Grafana
dashboard and the Prometheus configuration are checked against what it exposes.

The instance is the repository's embedded one (a temporary DAGSTER_HOME with dagster.yaml:
SQLite storage with the project's event log) and, where the machine's PostgreSQL answers, a
production-like one on a fresh Postgres database. Into each: the real `universe` and
`raw_daily_bars` assets ingest two days of simulated landing files with a bad row (the
second day under a strict audit: its blocking `bad_share` check fails and so does its run),
and small assets named and shaped like the paper book, the performance report, a model and
the champion's live IC emit the project's metadata keys in a job of their own.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import numpy as np
import pandas as pd
import pytest
import yaml
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetSelection,
    DagsterInstance,
    Definitions,
    MaterializeResult,
    asset,
    define_asset_job,
    load_asset_checks_from_modules,
    load_assets_from_modules,
    materialize,
)
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from quant_assets.automation.monitoring.metrics import (
    PAPER_BOOK,
    PERFORMANCE,
    ApiRequestMetrics,
    _quantile,
    partition_start,
    run_partition,
)
from quant_assets.automation.monitoring.server import MetricsServer, masked, metrics_server
from quant_assets.calendar import TRADING_DAYS, TZ, trading_days
from quant_assets.market import assets as market_assets
from quant_assets.market.sources.landing import write_landing_file
from quant_assets.market.sources.simulated import SimulatedMarket
from resources import ClickHouseIOManager, ClickHouseResource, MarketDataResource
from tests.services import missing_services, postgres_connection, postgres_user

REPO = Path(__file__).resolve().parents[2]
MONITORING = REPO / "quant_assets" / "automation" / "monitoring"
D1, D2 = "2024-03-12", "2024-03-13"
STRICT = {"ops": {"raw_daily_bars": {"config": {"max_bad_share": 1e-4, "min_bad_rows": 1}}}}
RAW = AssetSelection.assets("universe", "raw_daily_bars", "bars_quarantine")

# What the stand-ins of the project's assets report per day (the project's metadata keys).
BOOK = {
    D1: {"equity": 1_001_000.0, "cash": 200_000.0, "day_pnl": 1_000.0, "drawdown": 0.0,
         "invested": 0.8, "positions": 20, "fees": 35.5},
    D2: {"equity": 996_000.0, "cash": 150_000.0, "day_pnl": -5_000.0, "drawdown": -0.005,
         "invested": 0.85, "positions": 22, "fees": 41.25},
}  # fmt: skip
FIGURES = {"sharpe": 1.25, "max_drawdown": -0.08, "total_return": 0.031, "history_days": 130}
VALID_RANK_IC, LIVE_RANK_IC = 0.0612, -0.0150


@asset(partitions_def=TRADING_DAYS, name=PAPER_BOOK)
def book_stand_in(context) -> MaterializeResult:
    """The paper book's metadata keys, with the day's figures."""
    return MaterializeResult(metadata=BOOK[context.partition_key])


@asset(partitions_def=TRADING_DAYS, name=PERFORMANCE)
def performance_stand_in() -> MaterializeResult:
    """The performance report's figures as numbers (sharpe, max_drawdown, ...)."""
    return MaterializeResult(metadata={"dagster/row_count": 12, **FIGURES})


@asset(partitions_def=TRADING_DAYS, name="lgbm_model")
def model_stand_in() -> MaterializeResult:
    """A model's metadata: the fit's `valid_*` metrics."""
    return MaterializeResult(
        metadata={"dagster/row_count": 5000, "valid_rank_ic": VALID_RANK_IC, "valid_ic": 0.05}
    )


@asset(
    partitions_def=TRADING_DAYS,
    name="champion_live_ic",
    check_specs=[AssetCheckSpec("champion_live_rank_ic", asset="champion_live_ic")],
)
def live_ic_stand_in() -> MaterializeResult:
    """The champion's live IC below its threshold: the WARN check fails (the drift signal)."""
    return MaterializeResult(
        metadata={"mean_rank_ic": LIVE_RANK_IC, "days": 20},
        check_results=[
            AssetCheckResult(
                check_name="champion_live_rank_ic",
                passed=False,
                severity=AssetCheckSeverity.WARN,
                metadata={"mean_rank_ic": LIVE_RANK_IC, "threshold": 0.0},
            )
        ],
    )


STAND_INS = [book_stand_in, performance_stand_in, model_stand_in, live_ic_stand_in]
FIGURES_JOB = "figures"
FIGURES_DEFS = Definitions(
    assets=STAND_INS, jobs=[define_asset_job(FIGURES_JOB, selection=AssetSelection.all())]
)


# ---------------------------------------------------------------------------------------------
# the instances and what runs in them


def _sqlite_home(root: Path) -> Path:
    """The repository's embedded instance configuration in a temporary DAGSTER_HOME."""
    home = root / "dagster_home"
    home.mkdir()
    config = yaml.safe_load((REPO / "dagster.yaml").read_text())
    config["event_log_storage"]["config"] = {"base_dir": str(home / "history" / "runs")}
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    return home


def _postgres_home(root: Path, user: str, database: str) -> Path:
    """A production-like instance: run, event log and schedule storage on Postgres."""
    home = root / "dagster_home"
    home.mkdir()
    url = f"postgresql+psycopg2://{user}@127.0.0.1:5432/{database}"
    config = {"telemetry": {"enabled": False}, "storage": {"postgres": {"postgres_url": url}}}
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    return home


class History:
    """What the runs wrote, to compare the metrics with."""

    def __init__(self, instance: DagsterInstance, root: Path):
        self.instance = instance
        days = trading_days("2024-03-04", "2024-03-15")
        sim = SimulatedMarket(days, n_symbols=8, seed=1, snapshot_seconds=60)
        landing = root / "landing"
        landing.mkdir()
        sim.universe().to_parquet(landing / "universe.parquet", index=False)
        self.file_rows = {}
        for day in (D1, D2):
            bars = sim.delivery("bars", day).copy()
            bars.loc[2, "volume"] = -100  # one bad row: quarantined
            write_landing_file(bars, landing, "bars", day)
            self.file_rows[day] = len(bars)
        ch = ClickHouseResource(dsn=f"chdb://{root / 'clickhouse'}", database="quant")
        resources = {
            "clickhouse": ch,
            "clickhouse_io": ClickHouseIOManager(clickhouse=ch),
            "market": MarketDataResource(source="landing", landing_dir=str(landing)),
        }
        assets = [
            *load_assets_from_modules([market_assets]),
            *load_asset_checks_from_modules([market_assets]),
        ]
        job = FIGURES_DEFS.resolve_job_def(FIGURES_JOB)
        # today's figures, then a backfill of the day before: the newest day must stay shown
        for day in (D2, D1):
            assert job.execute_in_process(instance=instance, partition_key=day).success
        ok = materialize(assets, selection=RAW, partition_key=D1, resources=resources,
                         instance=instance)  # fmt: skip
        assert ok.success
        self.strict = materialize(
            assets, selection=RAW, partition_key=D2, resources=resources, instance=instance,
            run_config=STRICT, raise_on_error=False,
        )  # fmt: skip
        assert not self.strict.success
        self.resources, self.assets = resources, assets


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def history(request, tmp_path_factory) -> Iterator[History]:
    root = tmp_path_factory.mktemp(f"metrics_{request.param}")
    database = None
    if request.param == "sqlite":
        home = _sqlite_home(root)
    else:
        reason = missing_services(redis=False)
        if reason:
            pytest.skip(reason)
        user = postgres_user()
        database = f"quant_metrics_{uuid.uuid4().hex[:10]}"
        conn = postgres_connection(user, "postgres")
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {database}")
        conn.close()
        home = _postgres_home(root, user, database)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DAGSTER_HOME", str(home))
        mp.setenv("QUANT_DATA_DIR", str(root))
        instance = DagsterInstance.get()
        try:
            yield History(instance, root)
        finally:
            instance.dispose()
            if database:
                conn = postgres_connection(user, "postgres")
                with conn.cursor() as cur:
                    cur.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
                conn.close()


class Serving:
    """A metrics server on a loopback port, serving from a thread until closed."""

    def __init__(self, server: MetricsServer):
        self.server = server
        self.thread = threading.Thread(target=server.serve_forever, daemon=True)
        self.thread.start()

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.server.url + path, timeout=60)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def serve():
    started: list[Serving] = []

    def start(instance: DagsterInstance, cache_s: float = 30.0) -> Serving:
        started.append(Serving(metrics_server(instance, "127.0.0.1", 0, cache_s)))
        return started[-1]

    yield start
    for s in started:
        s.close()


# ---------------------------------------------------------------------------------------------
# reading the exposition


def parse(text: str) -> dict[str, list]:
    """Samples by sample name, each a (labels, value) pair."""
    out: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def value(samples: dict[str, list], name: str, **labels: str) -> float:
    """The one sample of `name` whose labels include `labels`."""
    found = [v for lab, v in samples.get(name, []) if labels.items() <= lab.items()]
    assert len(found) == 1, f"{name}{labels}: {len(found)} samples in {samples.get(name)}"
    return found[0]


def exposed_names(text: str) -> set[str]:
    """Every series name a query may use: the families' names and their samples' suffixes by
    type (an empty family shows only its HELP and TYPE lines)."""
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "summary": ("", "_count", "_sum", "_created"),
        "gauge": ("",),
    }
    names = set()
    for family in text_string_to_metric_families(text):
        names |= {family.name + s for s in suffixes.get(family.type, ("",))}
        names |= {s.name for s in family.samples}
    return names


# ---------------------------------------------------------------------------------------------
# the endpoint


def test_metrics_report_runs_rows_quarantine_checks_and_figures(history, serve):
    started = time.time()
    serving = serve(history.instance)
    response = serving.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    m = parse(response.text)

    # runs: 2 + 1 successful (figures job, the lenient ingest), the strict ingest failed
    assert value(m, "quant_runs", status="SUCCESS") == 3
    assert value(m, "quant_runs", status="FAILURE") == 1
    assert value(m, "quant_run_duration_seconds_count", job=FIGURES_JOB, status="SUCCESS") == 2
    p50 = value(m, "quant_run_duration_seconds", job=FIGURES_JOB, status="SUCCESS", quantile="0.5")
    p90 = value(m, "quant_run_duration_seconds", job=FIGURES_JOB, status="SUCCESS", quantile="0.9")
    assert 0 < p50 <= p90 < 120
    ingest = "__ephemeral_asset_job__"
    assert value(m, "quant_job_last_run_success", job=ingest) == 0  # the strict run came last
    assert value(m, "quant_job_last_run_success", job=FIGURES_JOB) == 1
    assert value(m, "quant_job_last_run_duration_seconds", job=ingest) > 0
    assert (
        started - 600 < value(m, "quant_job_last_success_timestamp_seconds", job=ingest) < started
    )

    # rows written and quarantine: D1's ingest (D2's was not published: its audit failed)
    n = history.file_rows[D1]
    assert value(m, "quant_asset_rows_written", asset="raw_daily_bars", partition=D1) == n - 1
    assert value(m, "quant_asset_rows_written", asset="bars_quarantine", partition=D1) == 1
    assert value(m, "quant_quarantine_rows", asset="raw_daily_bars", partition=D1) == 1
    assert value(m, "quant_quarantine_share", asset="raw_daily_bars") == pytest.approx(1 / n)
    assert [lab["asset"] for lab, _ in m["quant_quarantine_share"]] == ["raw_daily_bars"]
    assert value(m, "quant_asset_metadata_value", asset="universe", key="industries") > 0

    # checks: the strict day's blocking audit and the live IC's warning failed
    audit = dict(asset="raw_daily_bars", check="bad_share", severity="ERROR", partition=D2)
    assert value(m, "quant_asset_check_passed", **audit) == 0
    assert value(m, "quant_asset_check_passed", asset="universe", check="not_empty") == 1
    assert value(m, "quant_asset_check_failures", asset="raw_daily_bars", check="bad_share",
                 severity="ERROR") == 1  # fmt: skip
    live = dict(asset="champion_live_ic", check="champion_live_rank_ic", severity="WARN")
    assert value(m, "quant_asset_check_passed", **live) == 0
    assert value(m, "quant_asset_check_failures", **live) == 2  # D2, then the backfilled D1
    assert value(m, "quant_asset_check_failure_window_seconds") == 24 * 3600

    # figures of the newest day, though the day before was materialised after it
    for key, figure in BOOK[D2].items():
        name = {"invested": "quant_paper_invested_share"}.get(key, f"quant_paper_{key}")
        assert value(m, name, partition=D2) == pytest.approx(figure), key
    for key, figure in FIGURES.items():
        assert value(m, "quant_performance_figure", figure=key, partition=D2) == figure
    assert value(m, "quant_model_validation_rank_ic", asset="lgbm_model") == VALID_RANK_IC
    assert value(m, "quant_model_live_rank_ic", asset="champion_live_ic") == LIVE_RANK_IC

    # freshness
    start_d2 = pd.Timestamp(D2, tz=TZ).timestamp()
    assert value(m, "quant_asset_newest_partition_timestamp_seconds", asset=PAPER_BOOK) == start_d2
    assert value(m, "quant_asset_newest_partition_timestamp_seconds", asset="universe") == start_d2
    assert value(m, "quant_asset_newest_partition_timestamp_seconds", asset="raw_daily_bars") == (
        pd.Timestamp(D1, tz=TZ).timestamp()
    )
    age = value(m, "quant_asset_seconds_since_materialization", asset=PAPER_BOOK)
    assert 0 <= age < time.time() - started + 600
    assert value(m, "quant_metrics_collection_seconds") > 0


def test_a_second_scrape_within_the_cache_time_is_the_cached_one(history, serve):
    serving = serve(history.instance, cache_s=3.0)
    first = serving.get("/metrics")
    job = FIGURES_DEFS.resolve_job_def(FIGURES_JOB)
    assert job.execute_in_process(instance=history.instance, partition_key=D2).success
    second = serving.get("/metrics")
    assert second.status_code == 200
    assert second.content == first.content  # the new run is not read yet
    assert serving.server.cache.collections == 1
    assert second.headers["cache-control"] == "max-age=3"
    time.sleep(3.1)
    third = parse(serving.get("/metrics").text)
    assert serving.server.cache.collections == 2
    assert value(third, "quant_run_duration_seconds_count", job=FIGURES_JOB, status="SUCCESS") == (
        value(parse(first.text), "quant_run_duration_seconds_count", job=FIGURES_JOB,
              status="SUCCESS") + 1
    )  # fmt: skip


def test_healthz_and_unknown_paths(history, serve):
    serving = serve(history.instance)
    health = serving.get("/healthz")
    assert (health.status_code, health.text) == (200, "ok\n")
    assert serving.server.cache.collections == 0  # a health check does not read the instance
    assert serving.get("/nothing").status_code == 404


def test_a_failing_collection_answers_500_with_a_one_line_reason(
    tmp_path, serve, monkeypatch, caplog
):
    home = _sqlite_home(tmp_path)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    instance = DagsterInstance.get()
    try:
        serving = serve(instance, cache_s=0)
        assert serving.get("/metrics").status_code == 200
        (home / "history" / "runs.db").unlink()  # the run storage is gone
        response = serving.get("/metrics")
        assert response.status_code == 500
        lines = response.text.splitlines()
        assert len(lines) == 1 and lines[0].startswith("metrics collection failed: ")
        assert lines[0] == "metrics collection failed: NoSuchTableError: runs"
        assert lines[0] in caplog.text  # logged, with the traceback
        assert serving.get("/healthz").status_code == 200
    finally:
        instance.dispose()


def test_masked_hides_passwords_in_urls_and_connection_strings():
    text = (
        'could not connect: postgresql://quant:s3cret@postgres:5432/dagster (host="pg" '
        "password=hunter2 port=5432), http://user:p%40ss@clickhouse:8123"
    )
    shown = masked(text)
    assert "s3cret" not in shown and "hunter2" not in shown and "p%40ss" not in shown
    assert "postgresql://quant:***@postgres:5432/dagster" in shown
    assert "http://user:***@clickhouse:8123" in shown


def test_the_command_serves_the_instance_of_dagster_home(history):
    env = {**os.environ, "DAGSTER_HOME": os.environ["DAGSTER_HOME"]}
    proc = subprocess.Popen(
        [sys.executable, "-m", "quant_assets.automation.monitoring.server",
         "--host", "127.0.0.1", "--port", "0", "--cache-seconds", "1"],
        cwd=REPO, env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        url = None
        deadline = time.monotonic() + 90
        while url is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            found = re.search(r"serving (http://127\.0\.0\.1:\d+)/metrics", line)
            url = found.group(1) if found else None
        assert url, "the server did not say where it serves"
        assert httpx.get(url + "/healthz", timeout=30).text == "ok\n"
        m = parse(httpx.get(url + "/metrics", timeout=60).text)
        assert value(m, "quant_paper_equity", partition=D2) == BOOK[D2]["equity"]
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stderr.close()


# ---------------------------------------------------------------------------------------------
# the dashboard and the scrape configuration


def _dashboard() -> dict:
    return json.loads((MONITORING / "grafana_dashboard.json").read_text())


def _expressions(dashboard: dict) -> list[str]:
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    for var in dashboard["templating"]["list"]:
        query = var.get("query")
        if var["type"] == "query":
            exprs.append(query["query"] if isinstance(query, dict) else query)
    return exprs


def test_every_metric_the_dashboard_uses_is_exposed(history, serve):
    text = serve(history.instance).get("/metrics").text
    exposed = exposed_names(text)
    used = {name for e in _expressions(_dashboard()) for name in re.findall(r"\bquant_\w+", e)}
    assert used, "the dashboard queries no quant_ metric"
    assert used - exposed == set()
    # and every family carries a help text and the prefix
    for family in text_string_to_metric_families(text):
        assert family.name.startswith("quant_") and family.documentation, family.name


def test_the_dashboard_is_a_grafana_dashboard_on_a_prometheus_variable():
    dash = _dashboard()
    assert dash["uid"] and dash["title"] and isinstance(dash["schemaVersion"], int)
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    source = variables["datasource"]
    assert (source["type"], source["query"]) == ("datasource", "prometheus")
    panels = [p for p in dash["panels"] if p["type"] != "row"]
    assert len(panels) >= 10
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for p in panels:
        assert p["title"] and p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["expr"].strip() and t["refId"], p["title"]
            assert t["datasource"]["uid"] == "${datasource}"
        g = p["gridPos"]
        assert g["w"] > 0 and g["h"] > 0 and g["x"] >= 0 and g["x"] + g["w"] <= 24, p["title"]
    for expr in _expressions(dash):  # balanced brackets: a typo would show as an empty panel
        for left, right in ("()", "{}", "[]"):
            assert expr.count(left) == expr.count(right), expr


def test_prometheus_scrapes_the_endpoint():
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    job = jobs["quant-metrics"]
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == ["metrics:9108"]
    provisioned = yaml.safe_load((MONITORING / "grafana_datasource.yml").read_text())
    assert provisioned["datasources"][0]["type"] == "prometheus"
    assert yaml.safe_load((MONITORING / "grafana_dashboards.yml").read_text())["providers"]


def test_the_assets_the_named_gauges_read_are_the_projects():
    from quant_assets.definitions import defs

    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    stand_ins = {a.key.to_user_string() for a in STAND_INS}
    assert stand_ins | {"raw_daily_bars", "bars_quarantine", "universe"} <= keys


# ---------------------------------------------------------------------------------------------
# the API's counters and the small pure parts


def test_api_request_metrics_count_requests_by_route_template():
    registry = CollectorRegistry()
    api = ApiRequestMetrics(registry)
    api.observe("GET", "/recommendations/{day}", 200, 0.012)
    api.observe("GET", "/recommendations/{day}", 200, 0.020)
    api.observe("GET", "/recommendations/{day}", 401, 0.001)
    m = parse(generate_latest(registry).decode())
    route = {"method": "GET", "route": "/recommendations/{day}"}
    assert value(m, "quant_api_requests_total", status="200", **route) == 2
    assert value(m, "quant_api_requests_total", status="401", **route) == 1
    assert value(m, "quant_api_request_duration_seconds_count", **route) == 3
    assert value(m, "quant_api_request_duration_seconds_sum", **route) == pytest.approx(0.033)


def test_quantiles_partition_starts_and_run_partitions():
    values = [3.0, 1.0, 10.0, 4.0, 7.5]
    for q in (0.0, 0.5, 0.9, 0.99, 1.0):
        assert _quantile(values, q) == pytest.approx(np.quantile(values, q))
    assert partition_start("2024-03-13") == pd.Timestamp("2024-03-13", tz=ZoneInfo(TZ)).timestamp()
    assert partition_start("static-key") is None and partition_start(None) is None
    assert run_partition({"dagster/partition": D1}) == D1
    ranged = {"dagster/asset_partition_range_start": D1, "dagster/asset_partition_range_end": D2}
    assert run_partition(ranged) == f"{D1}...{D2}"
    assert run_partition({}) is None
