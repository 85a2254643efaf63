"""Asset checks of the market stage that compare two tables (single-table checks sit with
their asset in assets.py)."""

import warnings

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    MetadataValue,
    PreviewWarning,
    asset_check,
)

from quant_assets.calendar import TRADING_DAYS
from quant_assets.market.assets import minute_bars
from quant_assets.market.intraday import compare_daily_bars, minute_bars_to_daily
from quant_assets.wiring import same_day


def _daily_bars_match_trades(
    minute_bars: pd.DataFrame, raw_daily_bars: pd.DataFrame
) -> AssetCheckResult:
    """Vendor bars against the trades' own aggregation; suspended days need no trades."""
    if minute_bars.empty:
        return AssetCheckResult(
            passed=False,
            severity=AssetCheckSeverity.WARN,
            metadata={"note": "no trades stored for the day: nothing to compare the bars with"},
        )
    mismatches = compare_daily_bars(minute_bars_to_daily(minute_bars), raw_daily_bars)
    return AssetCheckResult(
        passed=bool(mismatches.empty),
        severity=AssetCheckSeverity.WARN,
        metadata={
            "mismatches": len(mismatches),
            "examples": MetadataValue.md(mismatches.head(5).to_markdown(index=False) or "none"),
        },
    )


# A check reads its asset's partition of the day, so it is partitioned like it (Dagster marks
# partitioned checks as a preview).
with warnings.catch_warnings():
    warnings.simplefilter("ignore", PreviewWarning)
    daily_bars_match_trades = asset_check(
        asset=minute_bars,
        name="daily_bars_match_trades",
        partitions_def=TRADING_DAYS,
        additional_ins={"raw_daily_bars": same_day()},
        description="The vendor's daily bars agree with the day rebuilt from its trades "
        "(through the minute bars): open, high, low, close, volume and amount within 0.01%.",
    )(_daily_bars_match_trades)
