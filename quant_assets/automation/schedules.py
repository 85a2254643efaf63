"""Schedules: one per step of the daily timeline (quant_assets/automation/timeline.py), on
trading days only, each asking for what its partition still lacks.

A tick on a holiday or a weekend is skipped with the reason. On a trading day the tick plans
the step's partition against the instance: nothing to do (up to date), a run of the missing or
stale assets only, a wait for missing inputs (named in the skip, looked at again at the next
tick), or no new run while one of the step's runs for the partition is in flight. A run of the
step that failed is not retried by the schedule: the failure alert tells someone, who reruns
it once its cause is fixed.
"""

from __future__ import annotations

from dagster import (
    DagsterRunStatus,
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from quant_assets.automation.timeline import (
    IN_FLIGHT,
    STEP_TAG,
    TIMELINE,
    Step,
    step_plan,
    step_runs,
)
from quant_assets.calendar import TRADING_DAYS, TZ
from resources.market import MarketDataResource


def timeline_schedule(step: Step) -> ScheduleDefinition:
    """The schedule of one step: its partition's missing or stale assets, once inputs are in."""

    @schedule(
        name=f"timeline_{step.name}",
        cron_schedule=step.cron(),
        execution_timezone=TZ,
        job_name=step.job,
        default_status=DefaultScheduleStatus.STOPPED,
        description=f"{step.at:%H:%M} Shanghai time on trading days ({step.target} close): "
        f"{step.description}. Waits for its inputs until {step.until:%H:%M}.",
    )
    def _tick(
        context: ScheduleEvaluationContext, market: MarketDataResource
    ) -> RunRequest | SkipReason:
        moment = context.scheduled_execution_time
        day = step.partition(moment)
        if day is None:
            return SkipReason(f"{moment.date()} is not a trading day of the exchanges")
        if not TRADING_DAYS.has_partition_key(day):
            return SkipReason(f"{day} is outside the trading-day partitions")
        running = step_runs(context.instance, step, day, IN_FLIGHT)
        if running:
            return SkipReason(f"{step.name} of {day} is in flight: run {running[0]}")
        todo = step_plan(context.instance, context.repository_def, market, step, day)
        if todo.waiting:
            late = moment.time() >= step.until
            verb = "late, still waiting" if late else "waiting"
            return SkipReason(f"{step.name} of {day}: {verb} for " + ", ".join(todo.missing))
        if not todo.run:
            return SkipReason(f"{step.name} of {day}: up to date")
        failed = step_runs(context.instance, step, day, [DagsterRunStatus.FAILURE])
        if failed:
            return SkipReason(
                f"{step.name} of {day} failed in run {failed[0]}: "
                "not retried automatically (rerun it once the cause is fixed)"
            )
        return RunRequest(
            run_key=f"{step.name}:{day}:{moment:%H%M}",
            partition_key=day,
            asset_selection=list(todo.run),
            tags={STEP_TAG: step.name},
        )

    return _tick


TIMELINE_SCHEDULES = [timeline_schedule(step) for step in TIMELINE]
