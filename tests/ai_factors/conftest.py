"""Simulated markets for the AI-factor tests: one with its planted alphas, one without."""

import pandas as pd
import pytest
from sim_markets import bars_of, planted

from quant_assets.market.sources.simulated import AlphaStrengths, SimulatedMarket


def _segments(bars: pd.DataFrame, train: int, valid: int) -> dict:
    days = sorted(bars["date"].unique())
    return {"train": (days[30], days[train - 1]), "valid": (days[train], days[valid - 1]),
            "test": (days[valid], days[-1])}  # fmt: skip


@pytest.fixture(scope="session")
def planted_market() -> tuple[SimulatedMarket, pd.DataFrame, dict]:
    """150 stocks, 240 days with the planted alphas; train to day 159, valid to 199."""
    sim, bars = planted()
    return sim, bars, _segments(bars, 160, 200)


@pytest.fixture(scope="session")
def null_market() -> tuple[pd.DataFrame, dict]:
    """The same market shape with every planted alpha switched off."""
    sim = SimulatedMarket(
        pd.bdate_range("2023-01-02", periods=240), n_symbols=150, seed=4,
        alphas=AlphaStrengths(0.0, 0.0, 0.0),
    )  # fmt: skip
    bars = bars_of(sim)
    return bars, _segments(bars, 160, 200)


@pytest.fixture(scope="session")
def small_market() -> tuple[pd.DataFrame, dict]:
    """80 stocks, 180 days: enough for the LLM loop's checks, quick to score."""
    sim = SimulatedMarket(pd.bdate_range("2023-01-02", periods=180), n_symbols=80, seed=7)
    bars = bars_of(sim)
    return bars, _segments(bars, 110, 150)
