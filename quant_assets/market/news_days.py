"""News by the trading day it can first act on."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from quant_assets.calendar import TZ

CLOSE = pd.Timedelta(hours=15)


def news_to_trading_days(news: pd.DataFrame, trading_days: Iterable[object]) -> pd.DataFrame:
    """News items with the trading day they belong to (column `trading_date`, first).

    An item published before 15:00 local time on a trading day belongs to that day (it is
    known before the close); one published at or after 15:00, or on a non-trading day,
    belongs to the next trading day. Items after the last known trading day get NaT.
    """
    days = pd.DatetimeIndex(sorted(pd.DatetimeIndex(list(trading_days)).normalize().unique()))
    days = days.astype("datetime64[ns]")
    local = news["ts"].dt.tz_convert(TZ).dt.tz_localize(None)
    day = local.dt.normalize()
    after_close = (local - day >= CLOSE).astype("int64")
    candidate = (day + after_close * pd.Timedelta(days=1)).astype("datetime64[ns]")
    pos = days.searchsorted(candidate.to_numpy(), side="left")
    inside = pos < len(days)
    td = np.full(len(news), np.datetime64("NaT"), dtype="datetime64[ns]")
    td[inside] = days.to_numpy()[pos[inside]]
    out = news.copy()
    out.insert(0, "trading_date", td)
    return out
