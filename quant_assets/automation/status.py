"""The day's timeline at a glance, for the engineer on call: each step, the partition it works
on, and whether it is done, waiting (for what), due to run, running, failed or late (the
command is `python -m quant_assets.on_call`). Read from the Dagster instance and the code
location's asset graph only; ClickHouse is never opened (a run may hold the embedded folder).
"""

from __future__ import annotations

from datetime import datetime

from dagster import DagsterInstance, DagsterRunStatus, RepositoryDefinition

from quant_assets.automation.timeline import (
    IN_FLIGHT,
    SHANGHAI,
    TIMELINE,
    Step,
    step_plan,
    step_runs,
)
from resources import market_resource
from resources.market import MarketDataResource


def _some(names: list[str] | tuple[str, ...], shown: int = 6) -> str:
    """The first names, and how many more: a line a person reads."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def step_state(
    instance: DagsterInstance,
    repo: RepositoryDefinition,
    market: MarketDataResource,
    step: Step,
    now: datetime,
) -> tuple[str, str]:
    """(partition, state in words) of `step` at `now`."""
    day = step.partition(now)
    if day is None:
        return "-", f"{now.date()} is not a trading day"
    running = step_runs(instance, step, day, IN_FLIGHT)
    if running:
        return day, f"running ({running[0]})"
    todo = step_plan(instance, repo, market, step, day)
    late = now >= step.deadline(day)
    if not (todo.run or todo.waiting):
        return day, "done"
    failed = step_runs(instance, step, day, [DagsterRunStatus.FAILURE])
    if failed:
        state = f"failed ({failed[0]})"
    elif todo.waiting:
        state = "waiting for " + _some(todo.missing)
    else:
        state = "to run: " + _some([k.to_user_string() for k in todo.run])
    if now < datetime.combine(now.date(), step.at, tzinfo=SHANGHAI) and step.target == "today":
        state = f"not started (at {step.at:%H:%M}); " + state
    return day, ("LATE: " if late else "") + state


def report(instance: DagsterInstance, repo: RepositoryDefinition, now: datetime) -> str:
    """One line per step of the timeline."""
    market = market_resource()  # the settings' market, as the code location builds it
    lines = [f"timeline at {now:%Y-%m-%d %H:%M} Shanghai"]
    for step in TIMELINE:
        day, state = step_state(instance, repo, market, step, now)
        lines.append(f"  {step.at:%H:%M} {step.name:<21} {day:<10}  {state}")
    return "\n".join(lines)
