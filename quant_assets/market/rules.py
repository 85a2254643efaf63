"""China A-share market rules: boards, price limits, ticks, lots and trading sessions.

Shared by the simulated market, validation and the backtest so that one rule has one home.
"""

from __future__ import annotations

from datetime import time

import numpy as np
import pandas as pd

TICK_SIZE = 0.01  # CNY, every A-share board
PRICE_EPS = 1e-6  # tolerance on a limit price: vendors' float noise stays far below the tick
LOT_SIZE = 100  # shares per board lot for buy orders

# Continuous sessions; the opening call auction prints at 09:25 and the closing call auction
# (14:57-15:00, both exchanges since 2018) prints at 15:00.
OPEN_AUCTION = time(9, 25)
MORNING = (time(9, 30), time(11, 30))
AFTERNOON = (time(13, 0), time(14, 57))
CLOSE_AUCTION = time(15, 0)
MARKET_CLOSE = time(15, 0)
AUCTION_PRINT_END = (time(9, 26), time(15, 1))  # end of the minute in which each print lands

BOARDS = ("main", "chinext", "star")
_LIMIT_PCT = {"main": 0.10, "chinext": 0.20, "star": 0.20}
ST_LIMIT_PCT = 0.05  # ST/*ST shares on the main board


def board_of(symbol: str) -> str:
    """Listing board from the code prefix: 300/301 ChiNext, 688/689 STAR, the rest main board."""
    code = symbol.split(".")[0]
    if code.startswith(("300", "301")):
        return "chinext"
    if code.startswith(("688", "689")):
        return "star"
    return "main"


def limit_pct(board: str | pd.Series, is_st: bool | pd.Series = False) -> float | pd.Series:
    """Daily price-limit fraction: 10% main board, 20% ChiNext/STAR, 5% for ST on the main board."""
    if isinstance(board, pd.Series):
        pct = board.map(_LIMIT_PCT).astype(float)
        st = pd.Series(is_st, index=board.index).astype(bool) & (board == "main")
        return pct.where(~st, ST_LIMIT_PCT)
    if board not in _LIMIT_PCT:
        raise ValueError(f"unknown board {board!r}; expected one of {BOARDS}")
    return ST_LIMIT_PCT if (is_st and board == "main") else _LIMIT_PCT[board]


# New listings. Under the registration system a new share trades without a daily limit for its
# first five trading days: STAR listings from its launch on 2019-07-22, ChiNext from 2020-08-24,
# the main boards from 2023-04-10. Earlier main-board and ChiNext listings had one first day
# capped at +44% / -36% of the issue price (the vendor's preclose of that day), then the usual
# limits from the second day.
NO_LIMIT_DAYS = 5
NO_LIMIT_SINCE = {"star": "2019-07-22", "chinext": "2020-08-24", "main": "2023-04-10"}
FIRST_DAY_UP, FIRST_DAY_DOWN = 0.44, 0.36


def listing_limits(board: str, list_date: object, listed_day: int) -> tuple[float, float] | None:
    """(up, down) fractions of preclose for a share on its `listed_day`-th trading day (1 = the
    listing day), None when the usual limits apply; (inf, inf) for no limit at all."""
    if listed_day < 1 or pd.isna(list_date):
        return None
    since = NO_LIMIT_SINCE.get(board)
    if since is not None and pd.Timestamp(list_date) >= pd.Timestamp(since):
        return (np.inf, np.inf) if listed_day <= NO_LIMIT_DAYS else None
    return (FIRST_DAY_UP, FIRST_DAY_DOWN) if listed_day == 1 else None


def round_price(x: np.ndarray | pd.Series | float) -> np.ndarray | pd.Series | float:
    """Round to the 0.01 CNY tick, half away from zero as the exchanges do for limit prices."""
    return np.sign(x) * np.floor(np.abs(x) * 100 + 0.5 + 1e-9) / 100


def price_limits(preclose, pct):
    """Limit-up and limit-down prices from the previous (ex-rights) close, on the price tick."""
    preclose = (
        np.asarray(preclose, dtype=float) if not isinstance(preclose, pd.Series) else preclose
    )
    up = round_price(preclose * (1 + pct))
    down = round_price(preclose * (1 - pct))
    return up, down


# When a timestamp counts as in session: (start, end, end included). The call auctions print
# once, at 09:25:00 and 15:00:00, but vendors stamp the prints when they receive them (09:25:04,
# 15:00:03 in real data): the whole minute of each print counts.
SESSION_WINDOWS: tuple[tuple[time, time, bool], ...] = (
    (OPEN_AUCTION, AUCTION_PRINT_END[0], False),
    (MORNING[0], MORNING[1], True),
    (AFTERNOON[0], AUCTION_PRINT_END[1], False),
)


def in_session(ts: pd.Series) -> pd.Series:
    """True where a local timestamp lies in a trading session or on an auction print
    (`SESSION_WINDOWS`)."""
    t = ts.dt.time
    inside = pd.Series(False, index=ts.index)
    for start, end, end_included in SESSION_WINDOWS:
        inside |= (t >= start) & ((t <= end) if end_included else (t < end))
    return inside


DAY_NS = 86_400_000_000_000  # nanoseconds in a day
NAT_NS = np.iinfo(np.int64).min  # NaT as int64 nanoseconds


def local_clock(ts: pd.Series) -> np.ndarray | int:
    """Wall-clock time of a tz-aware Series: one offset in ns to add to every row's UTC ns,
    or the local ns of each row. Within a day's span no zone changes its offset and changes it
    back, so when both ends have the same offset the shift is one addition instead of a zone
    lookup per row (a day of ticks; Shanghai has kept UTC+8 since 1991); longer spans take the
    lookup."""
    utc_ns = ts.array.asi8
    valid = utc_ns != NAT_NS
    if valid.any():
        lo = np.min(utc_ns, where=valid, initial=np.iinfo(np.int64).max)
        hi = np.max(utc_ns, where=valid, initial=NAT_NS)
        first, last = (pd.Timestamp(v, unit="ns", tz="UTC").tz_convert(ts.dt.tz) for v in (lo, hi))
        if last - first < pd.Timedelta(days=1) and first.utcoffset() == last.utcoffset():
            return int(first.utcoffset().total_seconds()) * 1_000_000_000
    return ts.dt.tz_localize(None).array.asi8


def tod_ns(t: time) -> int:
    """Nanoseconds after midnight of a clock time."""
    return ((t.hour * 60 + t.minute) * 60 + t.second) * 1_000_000_000 + t.microsecond * 1000


def session_windows_ns() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`SESSION_WINDOWS` as nanoseconds after midnight: starts, ends, end included."""
    starts, ends, included = zip(*SESSION_WINDOWS, strict=True)
    return (
        np.array([tod_ns(t) for t in starts], np.int64),
        np.array([tod_ns(t) for t in ends], np.int64),
        np.array(included, np.bool_),
    )
