"""Jobs: the whole daily pipeline, and the history load (market + factors) for backfills."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

from quant_assets.calendar import TRADING_DAYS

daily_pipeline = define_asset_job(
    "daily_pipeline",
    selection=AssetSelection.groups("market", "factors", "models", "strategy", "reports"),
    partitions_def=TRADING_DAYS,
    description="Raw data -> factors -> model -> predictions -> signals -> recommendations.",
)

history_load = define_asset_job(
    "history_load",
    selection=AssetSelection.groups("market", "factors"),
    partitions_def=TRADING_DAYS,
    description="Market data and factors only: the history a model's training window needs.",
)
