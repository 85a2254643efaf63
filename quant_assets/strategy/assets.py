"""Strategy stage: the target portfolio for the next trading day from the day's scores."""

from collections.abc import Iterator

import pandas as pd
from dagster import AssetCheckResult, AssetCheckSpec, AssetExecutionContext, Config, Output
from pydantic import Field

from quant_assets.strategy.selection import select_top_n, tradable_mask
from quant_assets.strategy.tables import SIGNALS
from quant_assets.wiring import daily_table, partition_day, same_day


class SignalConfig(Config):
    top_n: int = Field(default=10, description="names in the portfolio, equally weighted")


@daily_table(
    SIGNALS,
    group="strategy",
    ins={
        "predictions": same_day(columns=["symbol", "score"]),
        "raw_daily_bars": same_day(),
        "universe": same_day(columns=["symbol", "board"]),
    },
    check_specs=[
        AssetCheckSpec(
            "portfolio_valid",
            asset="signals",
            blocking=True,
            description="The portfolio holds top_n names and its weights sum to one.",
        )
    ],
)
def signals(
    context: AssetExecutionContext,
    config: SignalConfig,
    predictions: pd.DataFrame,
    raw_daily_bars: pd.DataFrame,
    universe: pd.DataFrame,
) -> Iterator:
    """Top-N tradable symbols by score, equally weighted, to hold from the next trading day."""
    day = partition_day(context)
    tradable = tradable_mask(raw_daily_bars, universe)
    scores = predictions.set_index("symbol")["score"]
    portfolio = select_top_n(scores, tradable, config.top_n).assign(date=day)
    weight_sum = float(portfolio["weight"].sum())
    yield Output(portfolio, metadata={"tradable": int(tradable.sum())})
    yield AssetCheckResult(
        passed=len(portfolio) == config.top_n and abs(weight_sum - 1) < 1e-9,
        metadata={"positions": len(portfolio), "weight_sum": weight_sum},
    )
