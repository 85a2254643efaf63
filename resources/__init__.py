"""Dagster resources of the platform, built from the environment (embedded defaults otherwise)."""

from __future__ import annotations

import os

from resources.clickhouse import ClickHouseResource, TableSpec
from resources.clickhouse_io import ClickHouseIOManager
from resources.llm import LLMResource
from resources.market import MarketDataResource
from resources.mlflow_io import MLflowModelIOManager
from resources.mlflow_tracking import MLflowResource
from resources.settings import data_dir, env_int, env_or


def clickhouse_is_embedded() -> bool:
    """True when the configured DSN is the in-process chDB engine (the default)."""
    return os.environ.get("QUANT_CLICKHOUSE_DSN", "chdb://").startswith("chdb://")


def build_resources() -> dict[str, object]:
    """The resource set for this process: environment variables override embedded defaults.

    QUANT_CLICKHOUSE_DSN (default chdb://<data>/clickhouse), QUANT_CLICKHOUSE_DATABASE,
    QUANT_CLICKHOUSE_INSERT_THREADS,
    MLFLOW_TRACKING_URI (default sqlite:///<data>/mlflow/mlflow.db), QUANT_MLFLOW_ARTIFACTS,
    QUANT_LLM_MODEL, QUANT_LLM_API_KEY, QUANT_LLM_API_BASE, QUANT_MARKET_SOURCE, QUANT_LANDING_DIR,
    QUANT_SIM_SEED, QUANT_SIM_SYMBOLS, QUANT_SIM_SNAPSHOT_SECONDS.
    """
    root = data_dir()
    (root / "mlflow").mkdir(parents=True, exist_ok=True)
    clickhouse = ClickHouseResource(
        dsn=env_or("QUANT_CLICKHOUSE_DSN", f"chdb://{root / 'clickhouse'}"),
        database=env_or("QUANT_CLICKHOUSE_DATABASE", "quant"),
        insert_threads=env_int("QUANT_CLICKHOUSE_INSERT_THREADS", 2),
    )
    tracking = MLflowResource(
        tracking_uri=env_or("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow' / 'mlflow.db'}"),
        artifact_location=env_or(
            "QUANT_MLFLOW_ARTIFACTS", (root / "mlflow" / "artifacts").as_uri()
        ),
    )
    market = MarketDataResource(
        source=env_or("QUANT_MARKET_SOURCE", "simulated"),
        landing_dir=env_or("QUANT_LANDING_DIR", str(root / "landing")),
        seed=env_int("QUANT_SIM_SEED", 7),
        n_symbols=env_int("QUANT_SIM_SYMBOLS", 100),
        snapshot_seconds=env_int("QUANT_SIM_SNAPSHOT_SECONDS", 3),
    )
    return stack_resources(clickhouse, tracking, market) | {
        "llm": LLMResource(
            model=env_or("QUANT_LLM_MODEL", None),
            api_key=env_or("QUANT_LLM_API_KEY", None),
            api_base=env_or("QUANT_LLM_API_BASE", None),
        ),
    }


def stack_resources(
    clickhouse: ClickHouseResource, tracking: MLflowResource, market: MarketDataResource
) -> dict[str, object]:
    """The resources every asset run needs, with the two IO managers on the same engines."""
    return {
        "clickhouse": clickhouse,
        "clickhouse_io": ClickHouseIOManager(clickhouse=clickhouse),
        "mlflow_tracking": tracking,
        "mlflow_model_io": MLflowModelIOManager(mlflow_tracking=tracking),
        "market": market,
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
    "stack_resources",
    "clickhouse_is_embedded",
    "data_dir",
    "env_or",
]
