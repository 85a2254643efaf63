"""Realised performance of past recommendations, using only returns known by the report day."""

from __future__ import annotations

import pandas as pd


def realised_returns(signals: pd.DataFrame, adjusted: pd.DataFrame) -> pd.DataFrame:
    """Daily return of each signal date's portfolio over the next trading day, next to the
    equal-weight universe; indexed by the holding day (t+1). Held at close-to-close returns,
    before costs."""
    rets = adjusted.sort_values(["symbol", "date"])[["date", "symbol", "ret1"]].copy()
    rets["signal_date"] = rets.groupby("symbol")["date"].shift(1)
    held = signals.merge(rets, left_on=["date", "symbol"], right_on=["signal_date", "symbol"])
    portfolio = (held["weight"] * held["ret1"]).groupby(held["date_y"]).sum()
    signal_days = set(signals["date"])
    universe = rets[rets["signal_date"].isin(signal_days)].groupby("date")["ret1"].mean()
    out = pd.DataFrame({"portfolio": portfolio, "universe": universe}).dropna()
    out.index.name = "date"
    return out
