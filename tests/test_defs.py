"""The code location loads: assets per stage, checks, jobs, the schedule and resources."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from dagster import RunRequest, SkipReason, build_schedule_context

from quant_assets.automation.schedules import daily_after_close
from quant_assets.definitions import defs

SH = ZoneInfo("Asia/Shanghai")


def test_definitions_load_with_every_stage():
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {
        "universe",
        "raw_daily_bars",
        "factor_values",
        "lgbm_model",
        "predictions",
        "signals",
        "recommendations",
    } <= keys
    assert len(list(graph.asset_check_keys)) >= 21
    for job in ("daily_pipeline", "history_load", "market_ingest"):
        assert defs.resolve_job_def(job).name == job
    assert defs.resolve_sensor_def("landing_zone_sensor").job_name == "market_ingest"
    assert set(defs.resources) >= {
        "clickhouse",
        "clickhouse_io",
        "mlflow_tracking",
        "market",
        "llm",
    }


def test_schedule_runs_trading_days_and_skips_holidays():
    trading = build_schedule_context(
        scheduled_execution_time=datetime(2024, 2, 8, 17, 30, tzinfo=SH)
    )
    request = daily_after_close(trading)
    assert isinstance(request, RunRequest) and request.partition_key == "2024-02-08"
    holiday = build_schedule_context(
        scheduled_execution_time=datetime(2024, 2, 12, 17, 30, tzinfo=SH)
    )
    assert isinstance(daily_after_close(holiday), SkipReason)
