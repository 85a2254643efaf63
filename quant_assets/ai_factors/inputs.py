"""What the mining reads, as a plain frame: the traded bars with the news factors as extra
fields."""

from __future__ import annotations

import pandas as pd

BAR_FIELDS = ["open", "high", "low", "close", "volume", "vwap"]


def mining_bars(adjusted_bars: pd.DataFrame, news_factors: pd.DataFrame) -> pd.DataFrame:
    """Adjusted bars of the days each stock traded, with the news factors of the same
    (date, symbol) as fields a formula can read (`$news_sentiment_5d`); a traded stock with
    no news row gets the neutral 0 the news set uses."""
    traded = adjusted_bars[~adjusted_bars["is_suspended"].astype(bool)]
    bars = traded[["date", "symbol", *BAR_FIELDS]].assign(date=lambda f: pd.to_datetime(f["date"]))
    news = news_factors.assign(date=pd.to_datetime(news_factors["date"]))
    columns = [c for c in news.columns if c not in ("date", "symbol")]
    out = bars.merge(news, on=["date", "symbol"], how="left")
    out[columns] = out[columns].fillna(0.0)
    return out.sort_values(["date", "symbol"], kind="stable").reset_index(drop=True)
