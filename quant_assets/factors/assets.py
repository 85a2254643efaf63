"""Factor stage: daily factor values from adjusted bars, stored long-form in ClickHouse."""

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    asset,
)

from quant_assets.calendar import TRADING_DAYS, previous_trading_day
from quant_assets.factors.daily_set import DAILY_FACTORS, LOOKBACK_DAYS, compute_daily_factors
from quant_assets.factors.tables import FACTOR_VALUES
from quant_assets.market.assets import raw_daily_bars
from quant_assets.market.queries import adjusted_bars, read_daily_bars
from resources.clickhouse import ClickHouseResource

MAX_NAN_SHARE = 0.2


@asset(
    partitions_def=TRADING_DAYS,
    group_name="factors",
    deps=[raw_daily_bars],
    check_specs=[
        AssetCheckSpec("nan_share", asset="factor_values"),
        AssetCheckSpec("not_constant", asset="factor_values"),
    ],
)
def factor_values(
    context: AssetExecutionContext, clickhouse: ClickHouseResource
) -> MaterializeResult:
    """The daily factor set for one day, from a lookback window of stored bars (no recompute of
    history: only the new day's values are written)."""
    day = pd.Timestamp(context.partition_key)
    start = previous_trading_day(day, LOOKBACK_DAYS)
    with clickhouse.client() as client:
        raw = read_daily_bars(clickhouse, client, start, day)
        history_days = int(raw["date"].nunique()) if not raw.empty else 0
        values = (
            compute_daily_factors(adjusted_bars(raw), day)
            if not raw.empty
            else pd.DataFrame(columns=list(FACTOR_VALUES.columns))
        )
        rows = clickhouse.replace_partition(client, FACTOR_VALUES, values, day)
    stats = (
        values.groupby("factor")["value"]
        .agg(nan_share=lambda v: float(v.isna().mean()), std="std", mean="mean")
        .reindex(list(DAILY_FACTORS))
    )
    short_history = history_days < LOOKBACK_DAYS + 1
    worst_nan = float(stats["nan_share"].max()) if len(values) else 1.0
    constant = sorted(stats.index[stats["std"].fillna(0) == 0])
    return MaterializeResult(
        metadata={
            "rows": rows,
            "history_days": history_days,
            "factors": MetadataValue.md(stats.round(4).to_markdown()),
        },
        check_results=[
            AssetCheckResult(
                check_name="nan_share",
                passed=worst_nan <= MAX_NAN_SHARE,
                # With less history than the lookback, NaNs are expected: warn, don't block.
                severity=AssetCheckSeverity.WARN if short_history else AssetCheckSeverity.ERROR,
                metadata={"worst_nan_share": worst_nan, "short_history": short_history},
            ),
            AssetCheckResult(
                check_name="not_constant",
                passed=not constant or short_history,
                metadata={"constant_factors": ", ".join(constant) or "none"},
            ),
        ],
    )
