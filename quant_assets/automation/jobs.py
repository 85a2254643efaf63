"""Jobs: the whole daily pipeline, and the history load (market + factors) for backfills."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

from quant_assets.calendar import TRADING_DAYS
from quant_assets.market.assets import daily_bars_match_trades

daily_pipeline = define_asset_job(
    "daily_pipeline",
    selection=AssetSelection.groups("market", "factors", "models", "strategy", "reports"),
    partitions_def=TRADING_DAYS,
    description="Raw data -> factors -> model -> predictions -> signals -> recommendations.",
)

history_load = define_asset_job(
    "history_load",
    selection=(
        AssetSelection.assets(
            "universe",
            "raw_daily_bars",
            "raw_corporate_actions",
            "adjustment_factors",
            "factor_values",
            "alpha158_values",
        )
    )
    # Without the day's trades there is nothing to compare the vendor's bars with.
    - AssetSelection.checks(daily_bars_match_trades),
    partitions_def=TRADING_DAYS,
    description="Daily bars, corporate actions and the bar-based factors: the history a "
    "model's training window needs, without the intraday tables.",
)

market_ingest = define_asset_job(
    "market_ingest",
    selection=AssetSelection.groups("market"),
    partitions_def=TRADING_DAYS,
    description="Validate and store one trading day of landing-zone files (the market stage).",
)
