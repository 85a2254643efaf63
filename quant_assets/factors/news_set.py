"""News factors: how much was said about a stock and in which tone, by the trading day the news
can first act on (`news_items`). A stock without news has count 0 and a neutral tone 0."""

from __future__ import annotations

import numpy as np
import pandas as pd

from quant_assets.calendar import trading_days

WINDOWS = (1, 5)
NEWS_FACTORS = [f"news_{what}_{w}d" for w in WINDOWS for what in ("count", "sentiment")]
# The platform's own reading of the titles (news_analysis: an LLM or the lexicon), next to the
# vendor's sentiment: the mean score over the items that concern the stock.
TONE_FACTORS = [f"news_tone_{w}d" for w in WINDOWS]
LOOKBACK_DAYS = max(WINDOWS)


def _window_stats(news: pd.DataFrame, column: str, day: pd.Timestamp) -> dict:
    """Per window length: the window's items grouped by stock, their `column` selected."""
    days = trading_days(day - pd.Timedelta(days=LOOKBACK_DAYS * 3 + 30), day)
    out = {}
    for w in WINDOWS:
        since = days[-w]
        recent = news[(news["date"] >= since) & (news["date"] <= day)]
        out[w] = recent.groupby("symbol")[column]
    return out


def news_factors(
    news: pd.DataFrame,
    symbols: pd.Index | list,
    day: object,
    analysis: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The news factors of `day` for `symbols` from news items (date = the trading day each can
    first act on) covering at least the last LOOKBACK_DAYS trading days: per window, the number
    of items and their mean vendor sentiment (items without a score are counted but not
    averaged); with `analysis` (date, symbol, score), the mean analysed tone too. A stock
    without news has count 0 and neutral 0s."""
    day = pd.Timestamp(day)
    symbols = pd.Index(sorted(symbols), name="symbol")
    out = pd.DataFrame(index=symbols)
    for w, g in _window_stats(news, "sentiment", day).items():
        out[f"news_count_{w}d"] = g.size().reindex(symbols).fillna(0).astype(float)
        out[f"news_sentiment_{w}d"] = g.mean().reindex(symbols).fillna(0.0)
    columns = list(NEWS_FACTORS)
    if analysis is not None:
        for w, g in _window_stats(analysis, "score", day).items():
            out[f"news_tone_{w}d"] = g.mean().reindex(symbols).fillna(0.0)
        columns += TONE_FACTORS
    out = out.reset_index()
    out.insert(0, "date", day)
    return out[["date", "symbol", *columns]].astype({c: np.float64 for c in columns})
