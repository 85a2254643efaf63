"""The landing-zone sensor: one run per complete trading day, keyed by the files' fingerprint."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from dagster import (
    DagsterInstance,
    Definitions,
    RunRequest,
    SensorResult,
    SkipReason,
    build_sensor_context,
    load_asset_checks_from_modules,
    load_assets_from_modules,
)

from quant_assets.automation.sensors import (
    FINGERPRINT_TAG,
    LOOKBACK_DAYS,
    landing_zone_sensor,
    market_ingest,
)
from quant_assets.calendar import TRADING_DAYS, previous_trading_day, trading_days
from quant_assets.market import assets as market_assets
from quant_assets.market.sources.landing import LANDING_KINDS, landing_path, write_landing_file
from quant_assets.market.sources.simulated import SimulatedMarket
from quant_assets.storage import ClickHouseTableIOManager
from resources.clickhouse import ClickHouseResource
from resources.market import MarketDataResource


def drop(root: Path, day: str, kinds=LANDING_KINDS, content: bytes = b"header\nrow\n") -> None:
    """Files of `kinds` for `day`; the sensor looks at names, sizes and mtimes only."""
    for kind in kinds:
        path = landing_path(root, kind, day, "csv")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def tick(root: Path, cursor: str | None = None, source: str = "landing"):
    market = MarketDataResource(source=source, landing_dir=str(root))
    context = build_sensor_context(resources={"market": market}, cursor=cursor)
    return landing_zone_sensor(context)


def requests(result) -> list[RunRequest]:
    return list(result.run_requests or []) if isinstance(result, SensorResult) else []


def test_targets_the_market_ingest_job():
    assert landing_zone_sensor.job_name == "market_ingest" == market_ingest.name


def test_simulated_source_is_skipped_with_a_reason(tmp_path):
    drop(tmp_path, "2024-03-11")
    result = tick(tmp_path, source="simulated")
    assert isinstance(result, SkipReason)
    assert "simulated" in result.skip_message


def test_incomplete_day_requests_nothing(tmp_path):
    drop(tmp_path, "2024-03-11", kinds=[k for k in LANDING_KINDS if k != "news"])
    # a half-written file (writers rename `.name.tmp` into place) does not count either
    tmp = landing_path(tmp_path, "news", "2024-03-11", "csv")
    tmp.parent.mkdir()
    tmp.with_name(f".{tmp.name}.tmp").write_bytes(b"partial")
    result = tick(tmp_path)
    assert requests(result) == []
    assert result.skip_reason is not None


def test_one_run_per_complete_trading_day_with_its_partition(tmp_path):
    drop(tmp_path, "2024-03-12")
    drop(tmp_path, "2024-03-11")
    drop(tmp_path, "2024-03-13", kinds=["bars", "trades"])  # incomplete
    drop(tmp_path, "2024-03-16")  # a Saturday: skipped with a log line
    drop(tmp_path, "2024-02-12")  # Spring Festival holiday (a weekday)
    early = previous_trading_day(TRADING_DAYS.start.date()).strftime("%Y-%m-%d")
    drop(tmp_path, early)  # a trading day before the first daily partition
    drop(tmp_path, "2004-06-01")  # before the calendar itself: skipped, not an error
    result = tick(tmp_path)
    runs = requests(result)
    assert [r.partition_key for r in runs] == ["2024-03-11", "2024-03-12"]  # oldest first
    for run in runs:
        day, fp = run.run_key.split(":")
        assert day == run.partition_key and run.tags[FINGERPRINT_TAG] == fp and len(fp) == 16
    assert runs[0].run_key != runs[1].run_key
    # the skipped days are remembered so that they are not looked at (or logged) every tick
    state = json.loads(result.cursor)
    remembered = {*state["recent"], *state["settled"]}
    assert remembered == {
        "2004-06-01",
        early,
        "2024-02-12",
        "2024-03-11",
        "2024-03-12",
        "2024-03-16",
    }


def test_an_unchanged_day_is_not_requested_twice(tmp_path):
    drop(tmp_path, "2024-03-11")
    first = tick(tmp_path)
    (run,) = requests(first)
    second = tick(tmp_path, cursor=first.cursor)
    assert requests(second) == [] and second.cursor == first.cursor
    # without the cursor (e.g. reset), the same files give the same run key: Dagster dedupes
    (again,) = requests(tick(tmp_path))
    assert again.run_key == run.run_key


def test_a_redelivered_file_requests_a_new_run(tmp_path):
    drop(tmp_path, "2024-03-11")
    drop(tmp_path, "2024-03-12")
    first = tick(tmp_path)
    keys = {r.partition_key: r.run_key for r in requests(first)}
    # the vendor re-delivers the trades of 03-11 with one row more
    drop(tmp_path, "2024-03-11", kinds=["trades"], content=b"header\nrow\nrow\n")
    (run,) = requests(tick(tmp_path, cursor=first.cursor))
    assert run.partition_key == "2024-03-11" and run.run_key != keys["2024-03-11"]
    # same size, new modification time: a new delivery too
    path = landing_path(tmp_path, "bars", "2024-03-12", "csv")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    second = tick(tmp_path, cursor=first.cursor)
    assert {r.partition_key for r in requests(second)} == {"2024-03-11", "2024-03-12"}


def test_days_past_the_lookback_are_settled_but_late_arrivals_still_run(tmp_path):
    drop(tmp_path, "2024-03-01")
    drop(tmp_path, "2024-04-01")
    first = tick(tmp_path)
    assert [r.partition_key for r in requests(first)] == ["2024-03-01", "2024-04-01"]
    state = json.loads(first.cursor)
    assert state["settled"] == ["2024-03-01"]  # more than LOOKBACK_DAYS before 04-01
    assert LOOKBACK_DAYS < 31
    # a re-delivery of a settled day is not looked at again ...
    drop(tmp_path, "2024-03-01", kinds=["trades"], content=b"changed\n")
    # ... but a day never seen before is requested, however old
    drop(tmp_path, "2024-02-29")
    (run,) = requests(tick(tmp_path, cursor=first.cursor))
    assert run.partition_key == "2024-02-29"


@pytest.mark.parametrize("missing_root", [True, False])
def test_missing_or_empty_landing_zone_skips(tmp_path, missing_root):
    root = tmp_path / "nowhere" if missing_root else tmp_path
    result = tick(root)
    assert requests(result) == []


@pytest.mark.slow
def test_the_requested_run_ingests_the_day_through_market_ingest(tmp_path):
    """End to end: files land, the sensor asks for the partition, the job stores the day."""
    day = "2024-03-12"
    sim = SimulatedMarket(trading_days("2024-03-11", day), n_symbols=5, seed=2, snapshot_seconds=60)
    root = tmp_path / "landing"
    root.mkdir()
    sim.universe().to_parquet(root / "universe.parquet", index=False)
    frames = {
        "bars": sim.daily_bars(day, day),
        "trades": sim.trades(day),
        "order_book": sim.order_book(day),
        "news": sim.news(day),
        "corporate_actions": sim.corporate_actions(day),
    }
    for kind, frame in frames.items():
        write_landing_file(frame, root, kind, day)
    (run,) = requests(tick(root))
    ch = ClickHouseResource(dsn=f"chdb://{tmp_path / 'ch'}", database="quant")
    defs = Definitions(
        assets=load_assets_from_modules([market_assets]),
        asset_checks=load_asset_checks_from_modules([market_assets]),
        jobs=[market_ingest],
        sensors=[landing_zone_sensor],
        resources={
            "clickhouse": ch,
            "clickhouse_io": ClickHouseTableIOManager(clickhouse=ch),
            "market": MarketDataResource(source="landing", landing_dir=str(root)),
        },
    )
    assert defs.resolve_sensor_def("landing_zone_sensor").job_name == "market_ingest"
    result = defs.resolve_job_def("market_ingest").execute_in_process(
        partition_key=run.partition_key, tags=run.tags, instance=DagsterInstance.ephemeral()
    )
    assert result.success
    assert result.dagster_run.tags[FINGERPRINT_TAG] == run.tags[FINGERPRINT_TAG]
    with ch.client() as client:
        n = ch.query_df(client, f"SELECT count() AS n FROM {{db}}.raw_trades WHERE date = '{day}'")
    assert int(n["n"][0]) == len(frames["trades"])
