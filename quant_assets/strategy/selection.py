"""Turning scores into a portfolio: tradability filters and top-N selection."""

from __future__ import annotations

import numpy as np
import pandas as pd

from quant_assets.market.rules import limit_pct, price_limits


def tradable_mask(bars: pd.DataFrame, universe: pd.DataFrame) -> pd.Series:
    """Symbols that can be bought at the next open, indexed by symbol.

    Excluded: suspended today (may stay suspended), ST shares (delisting risk, 5% limits) and
    closes at the limit-up price (sealed limit-up boards rarely fill buy orders the next open).
    """
    df = bars.set_index("symbol").join(universe.set_index("symbol")[["board"]], how="left")
    pct = limit_pct(df["board"].fillna("main"), df["is_st"].astype(bool))
    up, _ = price_limits(df["preclose"], pct)
    at_limit_up = np.isclose(df["close"], up)
    return ~(df["is_suspended"].astype(bool) | df["is_st"].astype(bool) | at_limit_up)


def select_top_n(scores: pd.Series, tradable: pd.Series, n: int) -> pd.DataFrame:
    """The `n` highest-scoring tradable symbols, equally weighted (rank 1 = best)."""
    ok = scores[tradable.reindex(scores.index).fillna(False).astype(bool)].dropna()
    top = ok.sort_values(ascending=False, kind="stable").head(n)
    return pd.DataFrame(
        {
            "symbol": top.index,
            "rank": np.arange(1, len(top) + 1, dtype="int64"),
            "score": top.to_numpy(),
            "weight": np.full(len(top), 1.0 / len(top)) if len(top) else [],
        }
    )
