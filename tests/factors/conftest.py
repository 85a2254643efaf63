"""Synthetic bars for the factor tests: seeded random walks with real-data quirks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

PRICE_COLUMNS = ["open", "high", "low", "close", "volume", "vwap"]


def make_bars(n_symbols: int = 20, n_days: int = 300, seed: int = 0, quirks: bool = True):
    """Long bars table (date, symbol, OHLCV, vwap) of random-walk prices.

    With ``quirks``: suspended days (NaN rows), missing rows, a late listing, a flat stretch
    (constant prices: std 0) and zero-volume days, as real data has."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2020-01-01", periods=n_days)
    shape = (n_days, n_symbols)
    close = 10 * np.exp(np.cumsum(rng.normal(0, 0.02, shape), axis=0))
    open_ = close * np.exp(rng.normal(0, 0.01, shape))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.01, shape)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.01, shape)))
    volume = np.round(rng.lognormal(12, 0.5, shape))
    vwap = (high + low + close) / 3
    data = {"open": open_, "high": high, "low": low, "close": close, "volume": volume,
            "vwap": vwap}  # fmt: skip
    keep = np.ones(shape, dtype=bool)
    if quirks and n_symbols >= 4 and n_days >= 120:
        for arr in data.values():
            arr[50:53, 0] = np.nan  # suspended for three days
        keep[80:82, 1] = False  # rows missing altogether
        keep[:100, 2] = False  # listed late
        for name in ("open", "high", "low", "close", "vwap"):
            data[name][30:45, 3] = 12.5  # flat stretch
        data["volume"][60:62, 3] = 0.0  # zero volume
    frame = pd.DataFrame(
        {
            "date": np.repeat(dates, n_symbols),
            "symbol": np.tile([f"S{i:03d}" for i in range(n_symbols)], n_days),
            **{k: v.ravel() for k, v in data.items()},
        }
    )
    frame = frame[keep.ravel()].reset_index(drop=True)
    # store at float32 precision, as Qlib's binary format does
    frame[PRICE_COLUMNS] = frame[PRICE_COLUMNS].astype(np.float32).astype(np.float64)
    return frame


@pytest.fixture
def bars() -> pd.DataFrame:
    return make_bars()


def one_symbol(values, field: str = "close", symbol: str = "A") -> pd.DataFrame:
    """Bars of a single symbol whose ``field`` (and every price field) is ``values``."""
    values = np.asarray(values, dtype=float)
    frame = pd.DataFrame(
        {"date": pd.bdate_range("2021-01-04", periods=len(values)), "symbol": symbol}
    )
    for col in PRICE_COLUMNS:
        frame[col] = values
    frame[field] = values
    return frame


@pytest.fixture
def synth():
    """The synthetic-bars factory, for tests that need other sizes or seeds."""
    return make_bars


@pytest.fixture(scope="module")
def synth_module():
    """The same factory for module-scoped fixtures."""
    return make_bars


@pytest.fixture
def single():
    """Factory of one-symbol bars from a list of values."""
    return one_symbol
