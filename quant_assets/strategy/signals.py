"""The day's signals: every scored stock ranked, with whether it may be bought or held tomorrow.

What cannot be traded is screened on what is known at the close of the score's day: a stock
suspended today (it may stay suspended), an ST share (when `exclude_st`: delisting risk and a
5% limit), a close at the limit-up price (a sealed board rarely fills a buy at the next open),
a listing younger than `min_listed_days` trading days (its first days have no limit and no
history), or a blacklisted name. ST and blacklisted names may not be held either: a holding
that turns ST is sold. Each excluded stock says why.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from quant_assets.calendar import CALENDAR_START, trading_days
from quant_assets.market.rules import PRICE_EPS, limit_pct, price_limits

SIGNAL_COLUMNS = ("symbol", "rank", "score", "probability", "confidence", "buyable", "holdable",
                  "note")  # fmt: skip


def listed_days(list_dates: pd.Series, day: pd.Timestamp, at_least: int) -> pd.Series:
    """Trading days from each listing date to `day`, both counted (1 on the listing day),
    exact up to `at_least`; a stock listed earlier than that counts more (not exactly)."""
    # twice the days in calendar days, plus a month for the longest holiday, spans `at_least`
    since = max(day - pd.Timedelta(days=2 * at_least + 30), CALENDAR_START)
    cal = trading_days(since, day)
    pos = cal.searchsorted(pd.to_datetime(list_dates))
    return (
        pd.Series(len(cal) - pos, index=list_dates.index, dtype="float64") + (pos == 0) * at_least
    )


def screen(
    predictions: pd.DataFrame,
    bars: pd.DataFrame,
    universe: pd.DataFrame,
    day: pd.Timestamp,
    exclude_st: bool = True,
    min_listed_days: int = 60,
    blacklist: tuple[str, ...] = (),
) -> pd.DataFrame:
    """The scored stocks of `day` ranked by score (1 = best) with `buyable`, `holdable` and
    a `note` saying why a stock may not be bought."""
    p = predictions.set_index("symbol")
    b = bars.set_index("symbol").reindex(p.index)
    u = universe.set_index("symbol").reindex(p.index)
    st = b["is_st"].fillna(False).astype(bool)
    pct = limit_pct(u["board"].fillna("main"), st)
    up, _ = price_limits(b["preclose"], pct)
    reasons = {
        "no bar today": b["close"].isna(),
        "suspended": b["is_suspended"].fillna(False).astype(bool),
        "ST": st & exclude_st,
        "closed at limit-up": (b["close"] >= up - PRICE_EPS).fillna(False),
        f"listed under {min_listed_days} days": listed_days(u["list_date"], day, min_listed_days)
        < min_listed_days,
        "blacklisted": pd.Series(p.index.isin(list(blacklist)), index=p.index),
    }
    note = pd.Series("", index=p.index)
    for text, hit in reasons.items():
        hit = hit.fillna(False).astype(bool)
        note = note.where(~hit, note.where(note.eq(""), note + "; ") + text)
    out = pd.DataFrame({
        "score": p["score"],
        "probability": p.get("probability", pd.Series(np.nan, index=p.index)),
        "confidence": p.get("confidence", pd.Series(np.nan, index=p.index)),
        "buyable": note.eq(""),
        "holdable": ~(reasons["ST"] | reasons["blacklisted"]),
        "note": note,
    })  # fmt: skip
    out = out.sort_values("score", ascending=False, kind="stable")
    out["rank"] = np.arange(1, len(out) + 1, dtype="int64")
    return out.rename_axis("symbol").reset_index()[list(SIGNAL_COLUMNS)]
