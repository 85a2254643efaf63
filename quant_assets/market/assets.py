"""Market stage: the daily universe and raw daily bars, validated and stored in ClickHouse."""


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

from quant_assets.calendar import TRADING_DAYS
from quant_assets.market import columns
from quant_assets.market.tables import RAW_DAILY_BARS, UNIVERSE_DAILY
from resources.clickhouse import ClickHouseResource
from resources.market import MarketDataResource


def _day(context: AssetExecutionContext) -> pd.Timestamp:
    return pd.Timestamp(context.partition_key)


@asset(
    partitions_def=TRADING_DAYS,
    group_name="market",
    check_specs=[AssetCheckSpec("not_empty", asset="universe", blocking=True)],
)
def universe(
    context: AssetExecutionContext, clickhouse: ClickHouseResource, market: MarketDataResource
) -> MaterializeResult:
    """Point-in-time universe: symbols listed on the day, with name, industry, board and ST flag."""
    day = _day(context)
    uni = market.simulated().universe()
    uni = uni[uni["list_date"] <= day].assign(date=day)
    frame = uni[list(UNIVERSE_DAILY.columns)]
    with clickhouse.client() as client:
        rows = clickhouse.replace_partition(client, UNIVERSE_DAILY, frame, day)
    return MaterializeResult(
        metadata={"rows": rows, "industries": int(frame["industry"].nunique())},
        check_results=[AssetCheckResult(passed=rows > 0, metadata={"rows": rows})],
    )


def bar_problems(bars: pd.DataFrame) -> dict[str, int]:
    """Counts of rows breaking basic daily-bar invariants (prices, OHLC order, volumes)."""
    prices = bars[["open", "high", "low", "close", "preclose"]]
    return {
        "non_positive_or_nan_price": int((~(prices > 0)).any(axis=1).sum()),
        "high_below_open_close": int((bars["high"] < bars[["open", "close"]].max(axis=1)).sum()),
        "low_above_open_close": int((bars["low"] > bars[["open", "close"]].min(axis=1)).sum()),
        "negative_volume": int((bars["volume"] < 0).sum()),
        "duplicate_symbol": int(bars["symbol"].duplicated().sum()),
    }


@asset(
    partitions_def=TRADING_DAYS,
    group_name="market",
    deps=[universe],
    check_specs=[
        AssetCheckSpec("bars_valid", asset="raw_daily_bars", blocking=True),
        AssetCheckSpec("covers_universe", asset="raw_daily_bars"),
    ],
)
def raw_daily_bars(
    context: AssetExecutionContext, clickhouse: ClickHouseResource, market: MarketDataResource
) -> MaterializeResult:
    """Unadjusted daily bars of every listed symbol (suspended days kept with zero volume)."""
    day = _day(context)
    bars = market.simulated().daily_bars(day, day)[columns.BARS]
    problems = bar_problems(bars)
    with clickhouse.client() as client:
        rows = clickhouse.replace_partition(client, RAW_DAILY_BARS, bars, day)
        listed = clickhouse.query_df(
            client,
            "SELECT symbol FROM {db}.universe_daily WHERE date = %(d)s",
            {"d": day.date()},
        )
    missing = sorted(set(listed["symbol"]) - set(bars["symbol"]))
    return MaterializeResult(
        metadata={
            "rows": rows,
            "suspended": int(bars["is_suspended"].sum()),
            "preview": MetadataValue.md(bars.head(10).to_markdown(index=False)),
        },
        check_results=[
            AssetCheckResult(
                check_name="bars_valid",
                passed=not any(problems.values()),
                metadata=problems,
            ),
            AssetCheckResult(
                check_name="covers_universe",
                passed=not missing,
                severity=AssetCheckSeverity.WARN,
                metadata={"missing": len(missing), "examples": ", ".join(missing[:10])},
            ),
        ],
    )
