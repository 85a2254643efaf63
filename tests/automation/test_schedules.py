"""The daily timeline's schedules through Dagster's tick evaluation with the code location's
definitions, at real moments: every tick of a normal week, of the 2024 Spring Festival and of
the 2024 National Day week, with Dagster's clock frozen at the tick (a partition that does not
exist yet at that moment makes the evaluation fail, as it would in the daemon). What a step
asks for depends on what the instance holds: materialisations written to a real instance."""

from __future__ import annotations

import functools
import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from dagster import (
    AssetKey,
    AssetMaterialization,
    DagsterInstance,
    DagsterRunStatus,
    build_schedule_context,
    instance_for_test,
)
from dagster._core.test_utils import create_run_for_test, freeze_time
from dagster._utils.schedules import schedule_execution_time_iterator
from tick_resources import required_resources

from quant_assets.automation.timeline import STEP_TAG, TIMELINE
from quant_assets.calendar import TRADING_DAYS
from quant_assets.definitions import build_definitions

SH = ZoneInfo("Asia/Shanghai")
PARTITION = re.compile(r"^\w+ of (\d{4}-\d{2}-\d{2})")


@pytest.fixture(scope="module")
def defs():
    return build_definitions()


@pytest.fixture
def instance():
    with instance_for_test() as inst:  # on disk: a schedule context needs its reference
        yield inst


def _ticks(start: str, end: str, schedule) -> list[datetime]:
    """Every moment the schedule's crons fire in [start, end) (Shanghai dates)."""
    first = datetime.fromisoformat(start).replace(tzinfo=SH).timestamp()
    last = datetime.fromisoformat(end).replace(tzinfo=SH)
    out = []
    for t in schedule_execution_time_iterator(
        first, schedule.cron_schedule, schedule.execution_timezone
    ):
        if t >= last:
            return out
        out.append(t)
    return out


def _evaluate(defs, name: str, moment: datetime, instance: DagsterInstance):
    schedule = defs.resolve_schedule_def(name)
    with freeze_time(moment):
        with build_schedule_context(
            scheduled_execution_time=moment,
            repository_def=defs.get_repository_def(),
            resources=required_resources(defs.get_repository_def(), schedule),
            instance=instance,
        ) as context:
            data = schedule.evaluate_tick(context)
        for r in data.run_requests or []:
            assert TRADING_DAYS.has_partition_key(r.partition_key)
    return data


def _target(data) -> str | None:
    """The partition a tick worked on: its request's, or the one its skip names."""
    if data.run_requests:
        (request,) = data.run_requests
        return request.partition_key
    m = PARTITION.match(data.skip_message or "")
    return m.group(1) if m else None


def _first_ticks(defs, name: str, start: str, end: str, instance) -> dict[str, str]:
    """Day -> the partition targeted by the step's first tick of the day (or the skip)."""
    schedule = defs.resolve_schedule_def(name)
    out: dict[str, str] = {}
    for moment in _ticks(start, end, schedule):
        day = moment.date().isoformat()
        if day in out:
            continue
        data = _evaluate(defs, name, moment, instance)
        out[day] = _target(data) or data.skip_message
    return out


def _holiday(day: str) -> str:
    return f"{day} is not a trading day of the exchanges"


def test_each_step_fires_at_its_time_and_looks_again_until_its_last_look(defs):
    starts = {}
    for step in TIMELINE:
        ticks = _ticks(
            "2024-03-11", "2024-03-12", defs.resolve_schedule_def(f"timeline_{step.name}")
        )
        starts[step.name] = (f"{ticks[0]:%H:%M}", f"{ticks[-1]:%H:%M}", len(ticks))
        assert ticks[0].utcoffset().total_seconds() == 8 * 3600
    assert starts == {
        "data_preparation": ("08:00", "08:25", 6),
        "factor_calculation": ("08:30", "08:55", 6),
        "model_inference": ("09:00", "09:15", 4),
        "signal_generation": ("09:20", "09:25", 2),
        "performance_analysis": ("15:00", "21:00", 73),
        "report_generation": ("15:30", "21:30", 73),
        "model_retraining": ("16:00", "22:00", 73),
    }


PRE_MARKET = ["data_preparation", "factor_calculation", "model_inference", "signal_generation"]
POST_CLOSE = ["performance_analysis", "report_generation", "model_retraining"]


@pytest.mark.parametrize("name", PRE_MARKET + POST_CLOSE)
def test_the_national_day_week_targets_the_right_close_and_skips_the_holidays(defs, instance, name):
    got = _first_ticks(defs, f"timeline_{name}", "2024-09-27", "2024-10-10", instance)
    for day in ["2024-10-01", "2024-10-02", "2024-10-03", "2024-10-04", "2024-10-07"]:
        assert got[day] == _holiday(day)
    if name in PRE_MARKET:  # the previous trading day's close: over the holiday to 30 Sep
        assert got == got | {"2024-09-27": "2024-09-26", "2024-09-30": "2024-09-27",
                             "2024-10-08": "2024-09-30", "2024-10-09": "2024-10-08"}  # fmt: skip
    else:  # the day's own close
        assert got == got | {"2024-09-27": "2024-09-27", "2024-09-30": "2024-09-30",
                             "2024-10-08": "2024-10-08", "2024-10-09": "2024-10-09"}  # fmt: skip


def test_the_spring_festival_monday_morning_looks_at_the_last_close_before_it(defs, instance):
    got = _first_ticks(defs, "timeline_signal_generation", "2024-02-05", "2024-02-20", instance)
    assert got["2024-02-19"] == "2024-02-08"  # the first session after the holiday
    for day in ["2024-02-09", "2024-02-12", "2024-02-13", "2024-02-14", "2024-02-15", "2024-02-16"]:
        assert got[day] == _holiday(day)


@functools.cache
def _graph_order() -> list[AssetKey]:
    return list(build_definitions().get_repository_def().asset_graph.toposorted_asset_keys)


def _materialize(instance, names, day: str) -> None:
    """Materialisations of `names` for `day`, written in the graph's order as a run would."""
    for key in [k for k in _graph_order() if k.to_user_string() in set(names)]:
        instance.report_runless_asset_event(AssetMaterialization(key, partition=day))


def _job_assets(defs, job: str) -> set[str]:
    keys = defs.get_repository_def().get_job(job).asset_layer.selected_asset_keys
    return {k.to_user_string() for k in keys}


def test_a_step_waits_for_its_inputs_then_asks_only_for_what_is_missing(defs, instance):
    monday = datetime(2024, 6, 3, 8, 30, tzinfo=SH)  # the factor step of Friday's close
    data = _evaluate(defs, "timeline_factor_calculation", monday, instance)
    assert not data.run_requests
    assert data.skip_message.startswith("factor_calculation of 2024-05-31: waiting for ")
    assert "adjusted_bars[2024-05-31]" in data.skip_message

    market = _job_assets(defs, "market_ingest")
    _materialize(instance, sorted(market), "2024-05-31")
    factors = _job_assets(defs, "factor_calculation")
    data = _evaluate(defs, "timeline_factor_calculation", monday, instance)
    (request,) = data.run_requests
    assert request.partition_key == "2024-05-31"
    assert {k.to_user_string() for k in request.asset_selection} == factors
    assert request.tags[STEP_TAG] == "factor_calculation"

    # a run of the step in flight: no second run
    create_run_for_test(
        instance,
        job_name="factor_calculation",
        tags={STEP_TAG: "factor_calculation", "dagster/partition": "2024-05-31"},
        status=DagsterRunStatus.STARTED,
    )
    data = _evaluate(defs, "timeline_factor_calculation", monday, instance)
    assert not data.run_requests and "in flight" in data.skip_message


def test_nothing_is_redone_and_a_new_champion_reruns_inference_and_signals(defs, instance):
    day = "2024-05-31"
    upstream = _job_assets(defs, "performance_analysis")
    _materialize(instance, sorted(upstream), day)  # the close's chain, 15:00 on Friday
    _materialize(instance, ["performance_report"], day)
    _materialize(instance, sorted(_job_assets(defs, "model_retraining")), day)  # 16:00
    monday = datetime(2024, 6, 3, 9, 0, tzinfo=SH)

    # the retraining's ensemble is newer than Friday's predictions: score again, then trade
    data = _evaluate(defs, "timeline_model_inference", monday, instance)
    (request,) = data.run_requests
    assert {k.to_user_string() for k in request.asset_selection} == {
        "predictions",
        "champion_live_ic",
    }
    _materialize(instance, ["predictions", "champion_live_ic"], day)
    data = _evaluate(defs, "timeline_model_inference", monday, instance)
    assert data.skip_message == f"model_inference of {day}: up to date"
    data = _evaluate(defs, "timeline_signal_generation", monday.replace(minute=20), instance)
    (request,) = data.run_requests
    assert {"signals", "paper_book", "orders", "recommendations"} <= {
        k.to_user_string() for k in request.asset_selection
    }
    for name in ["data_preparation", "factor_calculation"]:
        data = _evaluate(defs, f"timeline_{name}", monday.replace(hour=8), instance)
        assert data.skip_message == f"{name} of {day}: up to date"
    assert AssetKey("ensemble_model") not in request.asset_selection


def test_a_failed_run_of_a_step_is_not_retried_by_the_schedule(defs, instance):
    friday = datetime(2024, 5, 31, 15, 30, tzinfo=SH)
    _materialize(instance, ["performance"], "2024-05-31")
    create_run_for_test(
        instance,
        job_name="report_generation",
        tags={STEP_TAG: "report_generation", "dagster/partition": "2024-05-31"},
        status=DagsterRunStatus.FAILURE,
    )
    data = _evaluate(defs, "timeline_report_generation", friday, instance)
    assert not data.run_requests
    assert "failed in run" in data.skip_message and "not retried" in data.skip_message


def test_the_on_call_status_says_what_is_done_waiting_and_late(defs, instance):
    from quant_assets.automation.status import report

    day = "2024-05-31"
    _materialize(instance, sorted(_job_assets(defs, "market_ingest")), day)
    _materialize(instance, sorted(_job_assets(defs, "factor_calculation")), day)
    text = report(instance, defs.get_repository_def(), datetime(2024, 6, 3, 9, 10, tzinfo=SH))
    lines = {line.split()[1]: line for line in text.splitlines()[1:]}
    assert lines["data_preparation"].endswith(f"{day}  done")
    assert lines["factor_calculation"].endswith(f"{day}  done")
    assert "to run: predictions" in lines["model_inference"]
    assert "LATE" not in lines["model_inference"]
    assert "waiting for predictions[2024-05-31]" in lines["signal_generation"]
    assert "2024-06-03  not started (at 15:00)" in lines["performance_analysis"]
    later = report(instance, defs.get_repository_def(), datetime(2024, 6, 3, 9, 30, tzinfo=SH))
    assert "LATE: to run: predictions" in later
