"""Schedules: the daily run after the close, on trading days only."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from dagster import (
    DefaultScheduleStatus,
    RunRequest,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from quant_assets.automation.jobs import daily_pipeline
from quant_assets.calendar import TRADING_DAYS, TZ, is_trading_day


@schedule(
    cron_schedule="30 17 * * 1-5",
    execution_timezone=TZ,
    job=daily_pipeline,
    default_status=DefaultScheduleStatus.STOPPED,
    description="At 17:30 Shanghai time on trading days, after the vendors' end-of-day files: "
    "the day's partition of daily_pipeline (its recommendations are for the next trading day).",
)
def daily_after_close(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
    """Today's partition on a trading day; a holiday is skipped with the reason."""
    day = context.scheduled_execution_time.astimezone(ZoneInfo(TZ)).date()
    key = day.isoformat()
    if not is_trading_day(key):
        return SkipReason(f"{key} is not a trading day of the Shanghai/Shenzhen exchanges")
    if not TRADING_DAYS.has_partition_key(key):
        return SkipReason(
            f"{key} is outside the trading-day partitions ({TRADING_DAYS.start.date()} on)"
        )
    return RunRequest(run_key=key, partition_key=key)
