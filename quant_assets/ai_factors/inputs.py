"""What the mining reads, as plain frames: the traded bars with the news factors as extra
fields, and the train/validation/test split of a mining window."""

from __future__ import annotations

import pandas as pd

from quant_assets.models.segments import Segments

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


def window_segments(days: pd.DatetimeIndex, valid_share: float, test_share: float) -> Segments:
    """Train on the window's oldest days, validate on the next `valid_share`, and keep the
    newest `test_share` as the test segment, reported after selection."""
    days = pd.DatetimeIndex(days).sort_values()
    n = len(days)
    n_test = max(1, int(round(n * test_share)))
    n_valid = max(1, int(round(n * valid_share)))
    n_train = n - n_valid - n_test
    if n_train < 20 or n_valid < 20:
        raise ValueError(
            f"a window of {n} days leaves {n_train} train and {n_valid} valid days; "
            "at least 20 of each are needed"
        )
    return Segments(
        (days[0], days[n_train - 1]),
        (days[n_train], days[n_train + n_valid - 1]),
        (days[n_train + n_valid], days[-1]),
    )
