"""The simulated markets of the AI-factor tests, built once per process (a plain module:
fixtures and the planted IO manager both read it, and `conftest` is not importable by name
when several test folders have one)."""

import functools

import pandas as pd

from quant_assets.market.adjustment import backward_adjusted
from quant_assets.market.sources.simulated import SimulatedMarket

FIELDS = ["date", "symbol", "open", "high", "low", "close", "volume", "vwap"]


def bars_of(sim: SimulatedMarket) -> pd.DataFrame:
    adjusted = backward_adjusted(sim.daily_bars())
    return adjusted[~adjusted["is_suspended"]].reset_index(drop=True)[FIELDS]


@functools.cache
def planted() -> tuple[SimulatedMarket, pd.DataFrame]:
    """150 stocks, 240 days with the planted alphas, and their adjusted bars."""
    sim = SimulatedMarket(pd.bdate_range("2023-01-02", periods=240), n_symbols=150, seed=4)
    return sim, bars_of(sim)
