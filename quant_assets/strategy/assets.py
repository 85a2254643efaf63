"""Strategy stage: today's target portfolio from the model's scores."""

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    MaterializeResult,
    asset,
)

from quant_assets.calendar import TRADING_DAYS
from quant_assets.models.assets import predictions
from quant_assets.strategy.selection import select_top_n, tradable_mask
from quant_assets.strategy.tables import SIGNALS
from resources.clickhouse import ClickHouseResource


class SignalConfig(Config):
    top_n: int = 10


@asset(
    partitions_def=TRADING_DAYS,
    group_name="strategy",
    deps=[predictions],
    check_specs=[AssetCheckSpec("portfolio_valid", asset="signals", blocking=True)],
)
def signals(
    context: AssetExecutionContext, config: SignalConfig, clickhouse: ClickHouseResource
) -> MaterializeResult:
    """Top-N tradable symbols by score, equally weighted, to hold from the next trading day."""
    day = pd.Timestamp(context.partition_key)
    params = {"d": day.date()}
    with clickhouse.client() as client:
        scores = clickhouse.query_df(
            client, "SELECT symbol, score FROM {db}.predictions WHERE date = %(d)s", params
        ).set_index("symbol")["score"]
        bars = clickhouse.query_df(
            client, "SELECT * FROM {db}.raw_daily_bars WHERE date = %(d)s", params
        )
        uni = clickhouse.query_df(
            client, "SELECT symbol, board FROM {db}.universe_daily WHERE date = %(d)s", params
        )
        portfolio = select_top_n(scores, tradable_mask(bars, uni), config.top_n).assign(date=day)
        rows = clickhouse.replace_partition(client, SIGNALS, portfolio, day)
    weight_sum = float(portfolio["weight"].sum())
    return MaterializeResult(
        metadata={"rows": rows, "tradable": int(tradable_mask(bars, uni).sum())},
        check_results=[
            AssetCheckResult(
                passed=rows == config.top_n and abs(weight_sum - 1) < 1e-9,
                metadata={"positions": rows, "weight_sum": weight_sum},
            )
        ],
    )
