"""The alert sensors through Dagster's tick evaluation with the code location's definitions, on
a real instance, delivering to a real webhook receiver on loopback: each fires once per event
and stays silent when nothing happened."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from dagster import (
    AssetCheckEvaluation,
    AssetKey,
    AssetMaterialization,
    DagsterInstance,
    build_sensor_context,
    instance_for_test,
)
from dagster._core.test_utils import freeze_time
from loopback_receiver import Receiver, Reply
from tick_resources import required_resources

from quant_assets.automation.jobs import TIMELINE_JOBS
from quant_assets.definitions import build_definitions
from resources.notifications import NotificationResource

SH = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver([Reply()])
    yield r
    r.close()


@pytest.fixture
def defs(receiver: Receiver):
    d = build_definitions()
    hook = NotificationResource(webhook_url=receiver.url, webhook_retries=0, timeout=5.0)
    resources = {**d.resources, "notifications": hook}
    return d.__class__(
        assets=d.assets,
        asset_checks=d.asset_checks,
        jobs=d.jobs,
        schedules=d.schedules,
        sensors=d.sensors,
        resources=resources,
        executor=d.executor,
    )


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with instance_for_test() as inst:
        yield inst


def _tick(defs, name: str, instance: DagsterInstance, cursor: str | None, moment=None):
    sensor = defs.resolve_sensor_def(name)
    repo = defs.get_repository_def()
    with (
        freeze_time(moment or datetime.now(SH)),
        build_sensor_context(
            instance=instance,
            cursor=cursor,
            repository_def=repo,
            resources=required_resources(repo, sensor),
        ) as context,
    ):
        return sensor.evaluate_tick(context)


def _alerts(receiver: Receiver) -> list[dict]:
    return [json.loads(seen.body) for seen in receiver.seen]


def _check(
    instance, asset: str, check: str, passed: bool, blocking: bool, day="2024-06-03", **metadata
) -> None:
    instance.report_runless_asset_event(
        AssetCheckEvaluation(
            asset_key=AssetKey(asset),
            check_name=check,
            passed=passed,
            blocking=blocking,
            partition=day,
            metadata=metadata,
        )
    )


def test_check_alerts_fire_once_per_failed_evaluation(defs, instance, receiver):
    _check(instance, "orders", "risk_check", False, True, "2024-05-31", status="rejected")
    first = _tick(defs, "check_alerts", instance, None)
    assert receiver.seen == [] and first.cursor  # starts at the end of the log

    _check(instance, "orders", "risk_check", False, True, breaches="- industry Bank 31% > 30%")
    _check(instance, "predictions", "covers_universe", False, True, symbols=100, scored=97)
    _check(instance, "champion_live_ic", "champion_live_rank_ic", False, False, mean_rank_ic=-0.02)
    _check(instance, "performance", "figures_finite", False, False)  # a warning: UI only
    _check(instance, "predictions", "champion_exists", True, True)  # passed: silent
    second = _tick(defs, "check_alerts", instance, first.cursor)
    alerts = _alerts(receiver)
    assert [(a["kind"], a["key"]) for a in alerts] == [
        ("portfolio_rejected", "portfolio_rejected:orders:risk_check:2024-06-03"),
        ("check_failed", "check_failed:predictions:covers_universe:2024-06-03"),
        ("model_drift", "model_drift:champion_live_ic:champion_live_rank_ic:2024-06-03"),
    ]
    assert "Bank 31%" in alerts[0]["metadata"]["breaches"]
    assert alerts[1]["metadata"]["scored"] == 97 and alerts[2]["severity"] == "warning"

    third = _tick(defs, "check_alerts", instance, second.cursor)
    assert len(receiver.seen) == 3 and third.skip_message == "no new checks"


def test_a_failed_run_alerts_once_with_its_error(defs, instance, receiver):
    first = _tick(defs, "run_failure_alerts", instance, None)
    assert receiver.seen == []
    # a real run of a timeline job that fails: its stores are unreachable
    job = defs.resolve_job_def("report_generation")
    result = job.execute_in_process(
        instance=instance,
        partition_key="2024-06-03",
        raise_on_error=False,
        resources={"mlflow_report_io": _failing_io(), "clickhouse_io": _failing_io()},
    )
    assert not result.success
    second = _tick(defs, "run_failure_alerts", instance, first.cursor)
    (alert,) = _alerts(receiver)
    assert alert["kind"] == "run_failed" and alert["metadata"]["job"] == "report_generation"
    assert alert["metadata"]["partition"] == "2024-06-03"
    assert "no report store" in alert["metadata"]["errors"]
    _tick(defs, "run_failure_alerts", instance, second.cursor)
    assert len(receiver.seen) == 1


def _failing_io():
    from dagster import IOManager, io_manager

    class NoStore(IOManager):
        def handle_output(self, context, obj):
            raise RuntimeError("no report store on this test machine")

        def load_input(self, context):
            raise RuntimeError("no report store on this test machine")

    return io_manager(lambda _: NoStore())


def _materialize(instance, names, day):
    for name in names:
        instance.report_runless_asset_event(AssetMaterialization(name, partition=day))


def test_stale_data_alerts_once_per_table_and_day(defs, instance, receiver):
    tuesday_night = datetime(2024, 6, 4, 21, 30, tzinfo=SH)
    watched = ["raw_daily_bars", "adjusted_bars", "predictions", "paper_book", "recommendations"]
    _materialize(instance, watched, "2024-06-04")
    quiet = _tick(defs, "stale_data_alerts", instance, None, tuesday_night)
    assert receiver.seen == [] and quiet.skip_message.startswith("0 stale")

    wednesday_night = datetime(2024, 6, 5, 21, 30, tzinfo=SH)
    _materialize(instance, ["raw_daily_bars", "adjusted_bars"], "2024-06-05")
    first = _tick(defs, "stale_data_alerts", instance, quiet.cursor, wednesday_night)
    alerts = _alerts(receiver)
    assert sorted(a["metadata"]["table"] for a in alerts) == [
        "paper_book",
        "predictions",
        "recommendations",
    ]
    assert {a["metadata"]["newest"] for a in alerts} == {"2024-06-04"}
    assert {a["metadata"]["expected"] for a in alerts} == {"2024-06-05"}
    _tick(defs, "stale_data_alerts", instance, first.cursor, wednesday_night)
    assert len(receiver.seen) == 3

    # before 21:00 the previous close is what is due: nothing more to say
    morning = datetime(2024, 6, 5, 10, 0, tzinfo=SH)
    _tick(defs, "stale_data_alerts", instance, None, morning)
    assert len(receiver.seen) == 3


def test_late_steps_alert_once_after_their_last_look(defs, instance, receiver):
    day = "2024-06-03"
    order = defs.get_repository_def().asset_graph.toposorted_asset_keys
    ready = set()
    for job in TIMELINE_JOBS:
        if job.name in ("market_ingest", "factor_calculation"):
            ready |= set(
                defs.get_repository_def().get_job(job.name).asset_layer.selected_asset_keys
            )
    _materialize(instance, [k for k in order if k in ready], day)

    before = datetime(2024, 6, 4, 8, 50, tzinfo=SH)  # nothing is due yet
    quiet = _tick(defs, "late_steps", instance, None, before)
    assert receiver.seen == [] and quiet.skip_message == "0 late steps"

    after = datetime(2024, 6, 4, 9, 30, tzinfo=SH)  # inference and signals are past due
    first = _tick(defs, "late_steps", instance, quiet.cursor, after)
    alerts = _alerts(receiver)
    assert [a["metadata"]["step"] for a in alerts] == ["model_inference", "signal_generation"]
    assert all(a["metadata"]["partition"] == day for a in alerts)
    assert "not run: predictions" in alerts[0]["text"]
    assert "waiting for predictions[2024-06-03]" in alerts[1]["text"]
    _tick(defs, "late_steps", instance, first.cursor, after)
    assert len(receiver.seen) == 2
