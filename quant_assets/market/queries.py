"""Reads of the market tables that later stages share, and the adjusted-price view they use."""

from __future__ import annotations

import numpy as np
import pandas as pd
from clickhouse_connect.driver.client import Client

from resources.clickhouse import ClickHouseResource


def read_daily_bars(
    ch: ClickHouseResource, client: Client, start: pd.Timestamp, end: pd.Timestamp
) -> pd.DataFrame:
    """Raw (unadjusted) daily bars with dates in [start, end], sorted by (date, symbol)."""
    df = ch.query_df(
        client,
        "SELECT * FROM {db}.raw_daily_bars WHERE date BETWEEN %(start)s AND %(end)s "
        "ORDER BY date, symbol",
        {"start": pd.Timestamp(start).date(), "end": pd.Timestamp(end).date()},
    )
    if not df.empty:
        df["date"] = pd.to_datetime(df["date"]).astype("datetime64[ns]")
    return df


def adjusted_bars(raw: pd.DataFrame) -> pd.DataFrame:
    """Backward-adjusted prices from the exchange's ex-rights `preclose`, without look-ahead.

    The adjustment factor compounds close_{t-1} / preclose_t, which is 1 except on ex-dates,
    and only uses rows up to each date: a window's adjusted series is relative to its first
    day, so ratios (returns, moving-average ratios) are exact and nothing from after t leaks in.
    Adds `vwap` (amount / volume; close when nothing traded) and `ret1` (adjusted daily return).
    """
    df = raw.sort_values(["symbol", "date"]).copy()
    prev_close = df.groupby("symbol")["close"].shift(1)
    step = (prev_close / df["preclose"]).where(prev_close.notna(), 1.0)
    factor = step.groupby(df["symbol"]).cumprod()
    for col in ("open", "high", "low", "close", "preclose"):
        df[col] = df[col] * factor
    vwap = np.where(df["volume"] > 0, df["amount"] / df["volume"].clip(lower=1), np.nan)
    df["vwap"] = np.where(np.isfinite(vwap), vwap * factor, df["close"])
    df["volume"] = df["volume"].astype(float) / factor  # shares scale inversely to prices
    df["ret1"] = df["close"] / df["preclose"] - 1.0
    df["adj_factor"] = factor
    return df.sort_values(["date", "symbol"]).reset_index(drop=True)
