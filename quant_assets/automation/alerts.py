"""Sensors that tell people: a failed blocking check, a failed run, stale data, model drift, a
rejected portfolio and a late step of the timeline, through the `notifications` resource.

One alert per event: the check sensor's cursor is the event log's storage id (an evaluation is
read once), Dagster's run-failure sensor keeps its own cursor, and the stale-data and
late-step sensors remember the alerts they sent (`Alert.key`) in theirs. A sensor that starts
with no cursor begins at the current end of the event log instead of alerting on history.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime

from dagster import (
    AssetCheckKey,
    AssetKey,
    DagsterInstance,
    DefaultSensorStatus,
    RunFailureSensorContext,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    run_failure_sensor,
    sensor,
)
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecord
from dagster._time import get_current_datetime  # what Dagster's test clocks freeze

from quant_assets.automation.timeline import IN_FLIGHT, SHANGHAI, TIMELINE, step_plan, step_runs
from quant_assets.calendar import TRADING_DAYS, is_trading_day, previous_trading_day
from resources.market import MarketDataResource
from resources.notifications import Alert, NotificationResource

# Checks with an alert of their own kind; any other failed blocking check is "check_failed".
RISK_CHECK = ("orders", "risk_check")
DRIFT_CHECK = ("champion_live_ic", "champion_live_rank_ic")
# Tables whose newest partition tells whether the day's data and decisions are in.
WATCHED = ("raw_daily_bars", "adjusted_bars", "predictions", "paper_book", "recommendations")
# The day's chain is due by the performance step's last look (21:00 Shanghai); before that
# the previous trading day's is expected.
DUE_TODAY_AT = (21, 0)
EVENTS_PER_TICK = 500
REMEMBERED = 400  # alert keys kept in a cursor (a few weeks of alerts)


def _value(entry: object) -> object:
    return getattr(entry, "value", entry)


def check_alert(evaluation: object, run_id: str) -> Alert | None:
    """The alert a check evaluation raises, or None: a failed blocking check (a rejected
    portfolio when it is the risk check) and a failed drift check (a warning)."""
    if evaluation.passed:
        return None
    asset = evaluation.asset_key.to_user_string()
    pair = (asset, evaluation.check_name)
    day = evaluation.partition or "unpartitioned"
    metadata = {k: _value(v) for k, v in (evaluation.metadata or {}).items()}
    metadata["run_id"] = run_id
    if pair == RISK_CHECK:
        kind, severity = "portfolio_rejected", "error"
        title = f"Portfolio of {day} rejected by the risk check: no orders"
    elif pair == DRIFT_CHECK:
        kind, severity = "model_drift", "warning"
        title = f"Model drift on {day}: the champion's live rank IC is under its threshold"
    elif evaluation.blocking:
        kind, severity = "check_failed", "error"
        title = f"Blocking check {asset}.{evaluation.check_name} failed on {day}"
    else:
        return None
    text = evaluation.description or f"{asset}.{evaluation.check_name} did not pass."
    return Alert(
        key=f"{kind}:{asset}:{evaluation.check_name}:{day}",
        kind=kind,
        severity=severity,
        title=title,
        text=text,
        metadata=metadata,
    )


def _new_evaluations(
    instance: DagsterInstance, check: AssetCheckKey, after: int
) -> list[AssetCheckExecutionRecord]:
    """The check's executions with an id above `after`, oldest first (bounded per tick)."""
    records = instance.event_log_storage.get_asset_check_execution_history(
        check, limit=EVENTS_PER_TICK
    )
    return sorted((r for r in records if r.id > after), key=lambda r: r.id)


@sensor(
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.STOPPED,
    description="Alerts on failed blocking checks (with the check's metadata), rejected "
    "portfolios (the risk check) and model drift (the champion's live rank IC check).",
)
def check_alerts(
    context: SensorEvaluationContext, notifications: NotificationResource
) -> SensorResult:
    """Every check evaluation written since the last tick, read once. The cursor holds the
    newest execution id seen per check (the check history is what every event-log storage,
    SQLite's run-sharded one included, can page through)."""
    checks = sorted(context.repository_def.asset_graph.asset_check_keys, key=str)
    seen = json.loads(context.cursor) if context.cursor else None
    last: dict[str, int] = {}
    fresh: list[AssetCheckExecutionRecord] = []
    for check in checks:
        name = check.to_user_string()
        new = _new_evaluations(context.instance, check, (seen or {}).get(name, 0))
        last[name] = max([r.id for r in new], default=(seen or {}).get(name, 0))
        fresh += new
    sent = []
    if seen is not None:  # (the first tick starts at the end of the history)
        for record in sorted(fresh, key=lambda r: r.id):  # in the order they happened
            evaluation = record.event.asset_check_evaluation if record.event else None
            alert = check_alert(evaluation, record.run_id) if evaluation else None
            if alert is not None:
                notifications.send(alert, logger=context.log)
                sent.append(alert.key)
    read = len(fresh)
    if seen is None:
        reason = f"watching {len(checks)} checks from now on"
    else:
        reason = f"{read} evaluations read, {len(sent)} alerts" if read else "no new checks"
    return SensorResult(skip_reason=SkipReason(reason), cursor=json.dumps(last))


@run_failure_sensor(
    default_status=DefaultSensorStatus.STOPPED,
    description="Alerts on every failed run of the code location, with the failed steps' errors.",
)
def run_failure_alerts(context: RunFailureSensorContext, notifications: NotificationResource):
    """One alert per failed run."""
    run = context.dagster_run
    errors = [
        f"{e.step_key}: {_error_text(e.step_failure_data.error)}"
        for e in context.get_step_failure_events()
        if e.step_failure_data and e.step_failure_data.error
    ]
    partition = run.tags.get("dagster/partition", "-")
    alert = Alert(
        key=f"run_failed:{run.run_id}",
        kind="run_failed",
        severity="error",
        title=f"Run of {run.job_name} failed (partition {partition})",
        text=context.failure_event.message or "the run failed",
        metadata={
            "run_id": run.run_id,
            "job": run.job_name,
            "partition": partition,
            "step": run.tags.get("quant/step", "-"),
            "errors": "\n".join(errors)[:2000] or "-",
        },
    )
    notifications.send(alert, logger=context.log)


def _error_text(error: object) -> str:
    """An error's message with its causes' (Dagster wraps a user error in its own)."""
    parts = []
    while error is not None and len(parts) < 4:
        parts.append(error.message.strip())
        error = error.cause
    return " <- ".join(parts)


def _remembered(cursor: str | None) -> list[str]:
    return list(json.loads(cursor)) if cursor else []


def _remember(keys: list[str], new: Iterable[str]) -> str:
    return json.dumps((keys + list(new))[-REMEMBERED:])


def expected_day(moment: datetime) -> str:
    """The newest partition whose data should be stored at `moment` (Shanghai time)."""
    local = moment.astimezone(SHANGHAI)
    today = local.date()
    if is_trading_day(today) and (local.hour, local.minute) >= DUE_TODAY_AT:
        return today.isoformat()
    return previous_trading_day(today).date().isoformat()


@sensor(
    minimum_interval_seconds=900,
    default_status=DefaultSensorStatus.STOPPED,
    description="Alerts once per table and day when a watched table's newest partition is "
    "older than the day whose data should be in.",
)
def stale_data_alerts(
    context: SensorEvaluationContext, notifications: NotificationResource
) -> SensorResult:
    """Newest materialised partition of each watched table against the expected day."""
    due = expected_day(get_current_datetime().astimezone(SHANGHAI))
    known = _remembered(context.cursor)
    sent = []
    if not TRADING_DAYS.has_partition_key(due):
        return SensorResult(skip_reason=SkipReason(f"{due} is outside the partitions"))
    for name in WATCHED:
        done = context.instance.get_materialized_partitions(AssetKey(name))
        newest = max(done, default=None)
        key = f"stale_data:{name}:{due}"
        if (newest is not None and newest >= due) or key in known:
            continue
        alert = Alert(
            key=key,
            kind="stale_data",
            severity="error",
            title=f"Stale data: {name} ends at {newest or 'nothing'}, {due} was due",
            text=f"The newest stored partition of {name} is {newest or 'none'}; the data of "
            f"{due} should be in by now. Look at the timeline's runs of that day.",
            metadata={"table": name, "newest": newest or "-", "expected": due},
        )
        notifications.send(alert, logger=context.log)
        sent.append(key)
    return SensorResult(
        skip_reason=SkipReason(f"{len(sent)} stale tables (due: {due})"),
        cursor=_remember(known, sent),
    )


@sensor(
    minimum_interval_seconds=300,
    default_status=DefaultSensorStatus.STOPPED,
    description="Alerts once when a step of the daily timeline is not done by its last look "
    "(its inputs never came, or its run failed or is still going).",
)
def late_steps(
    context: SensorEvaluationContext,
    notifications: NotificationResource,
    market: MarketDataResource,
) -> SensorResult:
    """Each step whose deadline of today has passed and whose partition is not up to date."""
    now = get_current_datetime().astimezone(SHANGHAI)
    known = _remembered(context.cursor)
    sent = []
    if not is_trading_day(now.date()):
        return SensorResult(skip_reason=SkipReason(f"{now.date()} is not a trading day"))
    for step in TIMELINE:
        day = step.partition(now)
        key = f"late:{step.name}:{day}"
        if day is None or key in known or now < step.deadline(day):
            continue
        todo = step_plan(context.instance, context.repository_def, market, step, day)
        if not (todo.run or todo.waiting):
            continue
        running = step_runs(context.instance, step, day, IN_FLIGHT)
        why = (
            f"still running ({running[0]})"
            if running
            else "waiting for " + ", ".join(todo.missing)
            if todo.waiting
            else "not run: " + ", ".join(k.to_user_string() for k in todo.run)
        )
        alert = Alert(
            key=key,
            kind="late_step",
            severity="error",
            title=f"{step.name} of {day} is late (due {step.until:%H:%M})",
            text=f"{step.description}: {why}.",
            metadata={"step": step.name, "partition": day, "due": f"{step.until:%H:%M}"},
        )
        notifications.send(alert, logger=context.log)
        sent.append(key)
    return SensorResult(
        skip_reason=SkipReason(f"{len(sent)} late steps"), cursor=_remember(known, sent)
    )


ALERT_SENSORS = [check_alerts, run_failure_alerts, stale_data_alerts, late_steps]
