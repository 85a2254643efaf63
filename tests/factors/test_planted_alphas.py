"""The factor engine and evaluation find the simulated market's planted reversal alpha, and a
factor of pure noise is not significant."""

import numpy as np
import pandas as pd
import pytest

from quant_assets.factors import evaluate_expression, factor_report
from quant_assets.market.adjustment import backward_adjusted
from quant_assets.market.sources.simulated import SimulatedMarket


@pytest.fixture(scope="module")
def market_bars():
    sim = SimulatedMarket(pd.bdate_range("2024-01-01", periods=130), n_symbols=80, seed=4)
    raw = sim.daily_bars()
    adjusted = backward_adjusted(raw)
    return adjusted[~adjusted["is_suspended"]].reset_index(drop=True)


def _report(factor: pd.Series, bars: pd.DataFrame):
    prices = bars.pivot(index="date", columns="symbol", values="close")
    return factor_report(factor.dropna(), prices, periods=(1, 5), quantiles=5)


def test_reversal_formula_has_a_significant_positive_rank_ic(market_bars):
    reversal = evaluate_expression("-1 * ($close / Ref($close, 5) - 1)", market_bars)
    report = _report(reversal, market_bars)
    one_day = report.summary[1]
    assert one_day["Rank IC Mean"] > 0.02
    assert one_day["Rank IC t-stat"] > 3
    # The top quantile beats the bottom one on the next day.
    q = report.quantile_returns[1]  # mean forward return by quantile (rows) and period
    assert q.loc[5] > q.loc[1]


def test_noise_factor_is_not_significant(market_bars):
    rng = np.random.default_rng(0)
    noise = pd.Series(
        rng.normal(size=len(market_bars)),
        index=pd.MultiIndex.from_frame(market_bars[["date", "symbol"]]),
    )
    summary = _report(noise, market_bars).summary[1]
    assert abs(summary["Rank IC t-stat"]) < 2.5
    assert abs(summary["Rank IC Mean"]) < 0.02
