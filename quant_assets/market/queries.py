"""Reads of the market tables that later stages share, and the adjusted-price view they use."""

from __future__ import annotations

import pandas as pd
from clickhouse_connect.driver.client import Client

from quant_assets.market.normalise import adjust_prices, factors_from_preclose
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
    """Backward-adjusted bars from the exchange's ex-rights `preclose`, without look-ahead.

    The factor compounds close_{t-1} / preclose_t using rows up to each date only, so a
    window's adjusted series is exact for ratios (returns, moving-average ratios) and nothing
    from after t leaks in. Adds `vwap` (amount / adjusted volume; the close when nothing
    traded) and `ret1` (adjusted close-to-close return), sorted by (date, symbol).
    """
    df = adjust_prices(raw, factors_from_preclose(raw), how="backward")
    traded = df["volume"] > 0
    df["vwap"] = (df["amount"] / df["volume"].where(traded)).where(traded, df["close"])
    df["ret1"] = df["close"] / df["preclose"] - 1.0
    return df.sort_values(["date", "symbol"], kind="stable", ignore_index=True)
