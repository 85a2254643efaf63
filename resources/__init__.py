"""Dagster resources of the platform, built from the environment (embedded defaults otherwise).

The names are imported on first use (a module `__getattr__`), so that reading
`resources.settings` - what an entry point does first, to refuse a bad environment at once -
imports neither ClickHouse nor MLflow, and `python -m resources.settings` runs it only once.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from resources.cache import CacheResource
    from resources.clickhouse import ClickHouseResource, TableSpec
    from resources.clickhouse_io import ClickHouseIOManager
    from resources.llm import LLMResource
    from resources.market import MarketDataResource
    from resources.mlflow_io import MLflowModelIOManager
    from resources.mlflow_tracking import MLflowResource
    from resources.notifications import NotificationResource
    from resources.settings import data_dir, setting

# Public name -> the module that defines it.
_LAZY = {
    "ClickHouseResource": "resources.clickhouse",
    "TableSpec": "resources.clickhouse",
    "ClickHouseIOManager": "resources.clickhouse_io",
    "LLMResource": "resources.llm",
    "MarketDataResource": "resources.market",
    "MLflowModelIOManager": "resources.mlflow_io",
    "MLflowResource": "resources.mlflow_tracking",
    "data_dir": "resources.settings",
    "setting": "resources.settings",
}


def __getattr__(name: str) -> object:
    """A resource class (or a settings function), imported from its module when first asked
    for."""
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'resources' has no attribute {name!r}")


def clickhouse_is_embedded() -> bool:
    """True when the configured DSN is the in-process chDB engine (the default)."""
    from resources.settings import setting

    return setting("QUANT_CLICKHOUSE_DSN").startswith("chdb://")


def build_resources() -> dict[str, object]:
    """The resource set for this process, from the settings (`resources.settings.SETTINGS`):
    the ClickHouse, MLflow, market-data and LLM settings, embedded defaults where unset."""
    from resources.backup_store import BackupStoreResource
    from resources.cache import CacheResource
    from resources.clickhouse import ClickHouseResource
    from resources.llm import LLMResource
    from resources.mlflow_tracking import MLflowResource
    from resources.settings import dagster_value, data_dir

    (data_dir() / "mlflow").mkdir(parents=True, exist_ok=True)
    clickhouse = ClickHouseResource(
        dsn=dagster_value("QUANT_CLICKHOUSE_DSN"),
        database=dagster_value("QUANT_CLICKHOUSE_DATABASE"),
        insert_threads=dagster_value("QUANT_CLICKHOUSE_INSERT_THREADS"),
        cluster=dagster_value("QUANT_CLICKHOUSE_CLUSTER"),
    )
    tracking = MLflowResource(
        tracking_uri=dagster_value("MLFLOW_TRACKING_URI"),
        artifact_location=dagster_value("QUANT_MLFLOW_ARTIFACTS"),
        s3_bucket=dagster_value("QUANT_MLFLOW_S3_BUCKET"),
    )
    cache = CacheResource(redis_url=dagster_value("QUANT_REDIS_URL"))
    return stack_resources(clickhouse, tracking, market_resource(), cache) | {
        "notifications": notification_resource(),
        "backup_store": BackupStoreResource(
            url=dagster_value("QUANT_BACKUP_URL"),
            endpoint_url=dagster_value("QUANT_BACKUP_S3_ENDPOINT"),
            keep_daily=dagster_value("QUANT_BACKUP_KEEP_DAILY"),
            keep_weekly=dagster_value("QUANT_BACKUP_KEEP_WEEKLY"),
            encryption_key=dagster_value("QUANT_BACKUP_KEY"),
        ),
        "llm": LLMResource(
            model=dagster_value("QUANT_LLM_MODEL"),
            api_key=dagster_value("QUANT_LLM_API_KEY"),
            api_base=dagster_value("QUANT_LLM_API_BASE"),
        ),
    }


def notification_resource() -> NotificationResource:
    """Where alerts go, from the settings: the log always, email and a webhook when set."""
    from resources.notifications import NotificationResource
    from resources.settings import dagster_value

    return NotificationResource(
        smtp_host=dagster_value("QUANT_SMTP_HOST"),
        smtp_port=dagster_value("QUANT_SMTP_PORT"),
        smtp_starttls=dagster_value("QUANT_SMTP_STARTTLS"),
        smtp_user=dagster_value("QUANT_SMTP_USER"),
        smtp_password=dagster_value("QUANT_SMTP_PASSWORD"),
        mail_from=dagster_value("QUANT_ALERT_FROM"),
        mail_to=dagster_value("QUANT_ALERT_TO"),
        webhook_url=dagster_value("QUANT_ALERT_WEBHOOK_URL"),
        webhook_secret=dagster_value("QUANT_ALERT_WEBHOOK_SECRET"),
    )


def market_resource() -> MarketDataResource:
    """Where market data comes from, from the settings (the simulated market by default)."""
    from resources.market import MarketDataResource
    from resources.settings import dagster_value

    return MarketDataResource(
        source=dagster_value("QUANT_MARKET_SOURCE"),
        landing_dir=dagster_value("QUANT_LANDING_DIR"),
        seed=dagster_value("QUANT_SIM_SEED"),
        n_symbols=dagster_value("QUANT_SIM_SYMBOLS"),
        snapshot_seconds=dagster_value("QUANT_SIM_SNAPSHOT_SECONDS"),
        kinds=dagster_value("QUANT_MARKET_KINDS"),
    )


def stack_resources(
    clickhouse: ClickHouseResource,
    tracking: MLflowResource,
    market: MarketDataResource,
    cache: CacheResource | None = None,
) -> dict[str, object]:
    """The resources every asset run needs, with the IO managers on the same engines; `cache`
    holds hot reads (in-process when None, Redis when it names one)."""
    from resources.clickhouse_io import ClickHouseIOManager
    from resources.llm import LLMResource
    from resources.mlflow_io import MLflowModelIOManager
    from resources.mlflow_reports import MLflowReportIOManager
    from resources.notifications import NotificationResource
    from resources.tracked_tables import TrackedTableIOManager

    return {
        "clickhouse": clickhouse,
        "clickhouse_io": ClickHouseIOManager(clickhouse=clickhouse, cache=cache),
        "mlflow_tracking": tracking,
        "mlflow_model_io": MLflowModelIOManager(mlflow_tracking=tracking),
        "mlflow_report_io": MLflowReportIOManager(mlflow_tracking=tracking),
        "tracked_table_io": TrackedTableIOManager(
            clickhouse=clickhouse, mlflow_tracking=tracking, cache=cache
        ),
        "market": market,
        "llm": LLMResource(),  # unset: the AI-factor stage runs offline
        "notifications": NotificationResource(),  # unset: alerts go to the log only
    }


__all__ = [
    "ClickHouseIOManager",
    "ClickHouseResource",
    "LLMResource",
    "MLflowModelIOManager",
    "MLflowResource",
    "MarketDataResource",
    "TableSpec",
    "build_resources",
    "market_resource",
    "notification_resource",
    "stack_resources",
    "clickhouse_is_embedded",
    "data_dir",
    "setting",
]
