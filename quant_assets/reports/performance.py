"""Realised performance of past recommendations, using only returns known by the report day."""

from __future__ import annotations

import pandas as pd

from quant_assets.market.labels import labels_by_date


def realised_returns(signals: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """Daily return of each signal day's portfolio next to the equal-weighted universe, indexed
    by the signal day t, for the signal days whose return is known in `labels` (partitions of
    the label table up to the report day).

    The portfolio recommended after the close of t is bought at the open of t+1 and sold at the
    open of t+2 (the `open_ret` label): never at the close the scores were computed from. A
    position that cannot be entered or left at the open (suspended) counts as cash (0)."""
    known = labels_by_date(labels, "open_ret")
    days = known.index.get_level_values("date").unique()
    held = signals[signals["date"].isin(days)]
    ret = known.reindex(pd.MultiIndex.from_frame(held[["date", "symbol"]])).fillna(0.0)
    portfolio = held["weight"].to_numpy() * ret.to_numpy()
    portfolio = pd.Series(portfolio, index=held["date"].to_numpy()).groupby(level=0).sum()
    universe = known.groupby(level="date").mean()
    out = pd.DataFrame({"portfolio": portfolio, "universe": universe.reindex(portfolio.index)})
    out.index.name = "date"
    return out.dropna().sort_index()
