"""News factors: how much was said about a stock and in which tone, by the trading day the news
can first act on (`news_items`). A stock without news has count 0 and a neutral tone 0."""

from __future__ import annotations

import numpy as np
import pandas as pd

from quant_assets.calendar import trading_days

WINDOWS = (1, 5)
NEWS_FACTORS = [f"news_{what}_{w}d" for w in WINDOWS for what in ("count", "sentiment")]
LOOKBACK_DAYS = max(WINDOWS)


def news_factors(news: pd.DataFrame, symbols: pd.Index | list, day: object) -> pd.DataFrame:
    """The news factors of `day` for `symbols` from news items (date = the trading day each can
    first act on) covering at least the last LOOKBACK_DAYS trading days: per window, the number
    of items and their mean sentiment (items without a score are counted but not averaged)."""
    day = pd.Timestamp(day)
    days = trading_days(day - pd.Timedelta(days=LOOKBACK_DAYS * 3 + 30), day)
    symbols = pd.Index(sorted(symbols), name="symbol")
    out = pd.DataFrame(index=symbols)
    for w in WINDOWS:
        since = days[-w]
        recent = news[(news["date"] >= since) & (news["date"] <= day)]
        g = recent.groupby("symbol")
        out[f"news_count_{w}d"] = g.size().reindex(symbols).fillna(0).astype(float)
        out[f"news_sentiment_{w}d"] = g["sentiment"].mean().reindex(symbols).fillna(0.0)
    out = out.reset_index()
    out.insert(0, "date", day)
    return out[["date", "symbol", *NEWS_FACTORS]].astype({c: np.float64 for c in NEWS_FACTORS})
