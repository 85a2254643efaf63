"""The one Definitions object of the code location: assets per stage, checks, jobs, schedules,
sensors and resources."""

from __future__ import annotations

from dagster import (
    Definitions,
    in_process_executor,
    load_asset_checks_from_modules,
    load_assets_from_modules,
    multiprocess_executor,
)

from quant_assets.ai_factors import assets as ai_factor_assets
from quant_assets.automation.alerts import ALERT_SENSORS
from quant_assets.automation.backup.jobs import backup_daily, backup_job, restore_job
from quant_assets.automation.jobs import (
    TIMELINE_JOBS,
    ai_factor_mining_job,
    daily_pipeline,
    daily_scoring,
    history_load,
    zoo_training,
)
from quant_assets.automation.schedules import TIMELINE_SCHEDULES
from quant_assets.automation.sensors import landing_zone_sensor
from quant_assets.factors import assets as factor_assets
from quant_assets.market import assets as market_assets
from quant_assets.market import checks as market_checks
from quant_assets.models import assets as model_assets
from quant_assets.reports import assets as report_assets
from quant_assets.strategy import assets as strategy_assets
from resources import build_resources, clickhouse_is_embedded
from resources.settings import check_environment

STAGES = [
    market_assets,
    market_checks,
    factor_assets,
    ai_factor_assets,
    model_assets,
    strategy_assets,
    report_assets,
]


def build_definitions() -> Definitions:
    """The code location's definitions with resources from the current environment, which is
    checked first: a misspelled or impossible setting stops the load with a one-line
    SettingsError instead of being ignored or failing a run later."""
    check_environment()
    return Definitions(
        assets=load_assets_from_modules(STAGES),
        asset_checks=load_asset_checks_from_modules(STAGES),
        jobs=[
            daily_pipeline,
            daily_scoring,
            history_load,
            zoo_training,
            ai_factor_mining_job,
            *TIMELINE_JOBS,
            backup_job,
            restore_job,
        ],
        schedules=[*TIMELINE_SCHEDULES, backup_daily],
        sensors=[landing_zone_sensor, *ALERT_SENSORS],
        resources=build_resources(),
        # An embedded chDB folder is open in one process at a time: run a job's steps in one
        # process. Against a ClickHouse server, steps run in parallel.
        executor=in_process_executor if clickhouse_is_embedded() else multiprocess_executor,
    )


defs = build_definitions()
