"""The landing-zone sensor through Dagster's tick evaluation with the code location's
definitions: one run per complete trading day, keyed by the files' fingerprint, whose
partition exists at the moment of the tick."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from dagster import DagsterInstance, RunRequest, build_sensor_context
from dagster._core.test_utils import freeze_time

from quant_assets.automation.sensors import FINGERPRINT_TAG, LOOKBACK_DAYS, market_ingest
from quant_assets.calendar import TRADING_DAYS, previous_trading_day, trading_days
from quant_assets.definitions import build_definitions
from quant_assets.market.sources.landing import LANDING_KINDS, landing_path, write_landing_file
from quant_assets.market.sources.simulated import SimulatedMarket

SH = ZoneInfo("Asia/Shanghai")


def drop(root: Path, day: str, kinds=LANDING_KINDS, content: bytes = b"header\nrow\n") -> None:
    """Files of `kinds` for `day`; the sensor looks at names, sizes and mtimes only."""
    for kind in kinds:
        path = landing_path(root, kind, day, "csv")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


class Result:
    """What a tick returned: run requests, skip message and cursor."""

    def __init__(self, data):
        self.run_requests: list[RunRequest] = list(data.run_requests or [])
        self.skip_message = data.skip_message
        self.cursor = data.cursor


def tick(
    root: Path,
    cursor: str | None = None,
    source: str = "landing",
    at: datetime | None = None,
    monkeypatch: pytest.MonkeyPatch | None = None,
    kinds: str | None = None,
) -> Result:
    """Evaluate one tick of the code location's sensor against the landing zone `root`, with
    Dagster's clock at `at` (now by default)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QUANT_MARKET_SOURCE", source)
        mp.setenv("QUANT_LANDING_DIR", str(root))
        mp.setenv("QUANT_DATA_DIR", str(root.parent / "data"))
        if kinds is not None:
            mp.setenv("QUANT_MARKET_KINDS", kinds)
        repo = build_definitions().get_repository_def()
        sensor = repo.get_sensor_def("landing_zone_sensor")
        moment = at or datetime.now(SH)
        with freeze_time(moment):
            # as the code server evaluates a tick: the location's own top-level resources
            with build_sensor_context(
                cursor=cursor,
                repository_def=repo,
                resources=repo.get_top_level_resources(),
                instance=DagsterInstance.ephemeral(),
            ) as context:
                data = sensor.evaluate_tick(context)
            for request in data.run_requests or []:
                assert TRADING_DAYS.has_partition_key(request.partition_key)
    return Result(data)


def requests(result: Result) -> list[RunRequest]:
    return result.run_requests


def test_targets_the_market_ingest_job(tmp_path):
    defs = build_definitions()
    assert defs.resolve_sensor_def("landing_zone_sensor").job_name == market_ingest.name
    assert market_ingest.name == "market_ingest"


def test_simulated_source_is_skipped_with_a_reason(tmp_path):
    drop(tmp_path, "2024-03-11")
    result = tick(tmp_path, source="simulated")
    assert result.run_requests == []
    assert "simulated" in result.skip_message


def test_incomplete_day_requests_nothing(tmp_path):
    drop(tmp_path, "2024-03-11", kinds=[k for k in LANDING_KINDS if k != "news"])
    # a half-written file (writers rename `.name.tmp` into place) does not count either
    tmp = landing_path(tmp_path, "news", "2024-03-11", "csv")
    tmp.parent.mkdir()
    tmp.with_name(f".{tmp.name}.tmp").write_bytes(b"partial")
    result = tick(tmp_path)
    assert requests(result) == []
    assert result.skip_message == "no new or changed complete day"


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


def test_a_complete_friday_is_started_on_friday(tmp_path):
    """Files complete at 16:40 on a Friday: the tick then asks for that Friday, whose
    partition exists already (not on Monday, when the Friday's window would close)."""
    drop(tmp_path, "2024-03-14")
    first = tick(tmp_path, at=datetime(2024, 3, 14, 18, 0, tzinfo=SH))
    drop(tmp_path, "2024-03-15")
    friday = tick(tmp_path, cursor=first.cursor, at=datetime(2024, 3, 15, 16, 40, tzinfo=SH))
    assert [r.partition_key for r in requests(friday)] == ["2024-03-15"]


def test_a_late_friday_delivery_runs_on_monday_morning(tmp_path):
    drop(tmp_path, "2024-03-15", kinds=["bars", "trades", "order_book", "news"])
    friday = tick(tmp_path, at=datetime(2024, 3, 15, 20, 0, tzinfo=SH))
    assert requests(friday) == []  # corporate actions not delivered yet
    drop(tmp_path, "2024-03-15", kinds=["corporate_actions"])
    drop(tmp_path, "2024-03-18", kinds=["news"])  # Monday's first file: incomplete
    monday = tick(tmp_path, cursor=friday.cursor, at=datetime(2024, 3, 18, 8, 0, tzinfo=SH))
    assert [r.partition_key for r in requests(monday)] == ["2024-03-15"]


def test_files_dropped_in_the_spring_festival_run_for_the_day_before_it(tmp_path):
    drop(tmp_path, "2024-02-08")  # the last trading day, delivered on the holiday
    drop(tmp_path, "2024-02-13")  # a vendor's mistake: a holiday
    result = tick(tmp_path, at=datetime(2024, 2, 9, 9, 0, tzinfo=SH))
    assert [r.partition_key for r in requests(result)] == ["2024-02-08"]
    assert "2024-02-13" in json.loads(result.cursor)["recent"]  # skipped, remembered


@pytest.mark.slow
def test_the_requested_run_ingests_the_day_through_market_ingest(tmp_path, monkeypatch):
    """End to end: files land, the sensor asks for the partition, the code location's
    market_ingest job stores the day."""
    day = "2024-03-12"
    sim = SimulatedMarket(trading_days("2024-03-11", day), n_symbols=5, seed=2, snapshot_seconds=60)
    root = tmp_path / "landing"
    root.mkdir()
    sim.universe().to_parquet(root / "universe.parquet", index=False)
    for kind in LANDING_KINDS:
        write_landing_file(sim.delivery(kind, day), root, kind, day)
    (run,) = requests(tick(root))
    monkeypatch.setenv("QUANT_MARKET_SOURCE", "landing")
    monkeypatch.setenv("QUANT_LANDING_DIR", str(root))
    monkeypatch.setenv("QUANT_DATA_DIR", str(tmp_path / "data"))
    defs = build_definitions()
    result = defs.resolve_job_def("market_ingest").execute_in_process(
        partition_key=run.partition_key, tags=run.tags, instance=DagsterInstance.ephemeral()
    )
    assert result.success
    assert result.dagster_run.tags[FINGERPRINT_TAG] == run.tags[FINGERPRINT_TAG]
    ch = defs.resources["clickhouse"]
    with ch.client() as client:
        n = ch.query_df(client, f"SELECT count() AS n FROM {{db}}.raw_trades WHERE date = '{day}'")
    assert int(n["n"][0]) == len(sim.delivery("trades", day))


def test_a_bars_only_market_waits_for_its_own_kinds_only(tmp_path):
    drop(tmp_path, "2024-03-11", kinds=["bars"])
    drop(tmp_path, "2024-03-12", kinds=["corporate_actions"])  # no bars: not complete
    # the five kinds by default: a day of bars alone is incomplete
    assert tick(tmp_path).run_requests == []
    result = tick(tmp_path, kinds="bars,corporate_actions")
    assert result.run_requests == []  # bars without the actions still wait
    drop(tmp_path, "2024-03-11", kinds=["corporate_actions"])
    (request,) = tick(tmp_path, kinds="bars,corporate_actions").run_requests
    assert request.partition_key == "2024-03-11"
    (request,) = tick(tmp_path, kinds="bars").run_requests
    assert request.partition_key == "2024-03-11"
