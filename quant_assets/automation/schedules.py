"""Schedules: the daily run after the close, on trading days only."""

from dagster import RunRequest, ScheduleEvaluationContext, SkipReason, schedule

from quant_assets.automation.jobs import daily_pipeline
from quant_assets.calendar import is_trading_day
from quant_assets.market.rules import TZ


@schedule(cron_schedule="30 17 * * 1-5", execution_timezone=TZ, job=daily_pipeline)
def daily_after_close(context: ScheduleEvaluationContext):
    """At 17:30 Shanghai time, after the vendors' end-of-day files, run today's partition."""
    day = context.scheduled_execution_time.strftime("%Y-%m-%d")
    if not is_trading_day(day):
        return SkipReason(f"{day} is not a trading day of the Shanghai/Shenzhen exchanges")
    return RunRequest(run_key=day, partition_key=day)
