"""Preparation shared by the microstructure factors: one day's trades and book as sorted arrays.

The raw TRADES / ORDER_BOOK frames (see `quant_assets.market.contract.columns`) are reduced once to flat
numpy arrays sorted by (symbol code, time of day), so that every factor is a vectorised
reduction over segments (``np.bincount`` on the symbol code) instead of a groupby. Times are
integer nanoseconds after local (Asia/Shanghai) midnight of the trading day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date as _date

import numpy as np
import pandas as pd
from numba import njit

from quant_assets.calendar import TZ
from quant_assets.market.contract import columns as C
from quant_assets.market.rules import AFTERNOON, DAY_NS, MORNING, local_clock, tod_ns

DateLike = str | _date | pd.Timestamp | np.datetime64  # a trading day (datetimes are normalised)

NS_PER_MINUTE = 60 * 1_000_000_000


AM_START, AM_END = tod_ns(MORNING[0]), tod_ns(MORNING[1])
PM_START, PM_END = tod_ns(AFTERNOON[0]), tod_ns(AFTERNOON[1])
CONTINUOUS_MINUTES = (AM_END - AM_START + PM_END - PM_START) / NS_PER_MINUTE  # 237


def in_continuous(tod: np.ndarray) -> np.ndarray:
    """True inside the continuous sessions 09:30-11:30 and 13:00-14:57 (ends included)."""
    return ((tod >= AM_START) & (tod <= AM_END)) | ((tod >= PM_START) & (tod <= PM_END))


@dataclass
class BookArrays:
    """Continuous-session snapshots of one day, sorted by (code, tod), one row per timestamp.

    Per-snapshot vectors only (the 40 level columns are reduced on the way in): best prices
    (NaN when the side is empty), best sizes, cumulative sizes over 1/5/10 levels and the
    top-5 notional of each side.
    """

    symbols: pd.Index
    code: np.ndarray
    tod: np.ndarray
    bid_px: np.ndarray
    ask_px: np.ndarray
    bid_sz: dict[int, np.ndarray]  # depth k -> sum of bid sizes over levels 1..k (shares)
    ask_sz: dict[int, np.ndarray]
    bid_notional5: np.ndarray  # sum of price * size over bid levels 1-5 (CNY)
    ask_notional5: np.ndarray

    @property
    def mid(self) -> np.ndarray:
        """Mid quote (NaN when either side is empty)."""
        return (self.bid_px + self.ask_px) / 2

    @property
    def key(self) -> np.ndarray:
        return self.code * DAY_NS + self.tod


@dataclass
class TradeArrays:
    """Trades of one day sorted by (code, tod), input order kept among equal times."""

    symbols: pd.Index
    code: np.ndarray
    tod: np.ndarray
    price: np.ndarray
    volume: np.ndarray  # shares, float
    side: np.ndarray  # 1 buyer-, -1 seller-initiated, 0 auction print

    @property
    def key(self) -> np.ndarray:
        return self.code * DAY_NS + self.tod


def trading_day(frame: pd.DataFrame, date: DateLike | None = None) -> pd.Timestamp:
    """The tz-naive trading day: `date` normalised, or the local date of the first row."""
    if date is not None:
        day = pd.Timestamp(date)
        if day.tzinfo is not None:
            day = day.tz_convert(TZ).tz_localize(None)
        return day.normalize()
    if frame.empty:
        raise ValueError("date is required when the frame is empty")
    first = pd.Timestamp(frame["ts"].iloc[0])
    if first.tzinfo is not None:
        first = first.tz_convert(TZ).tz_localize(None)
    return first.normalize()


def _local_tod(ts: pd.Series, day: pd.Timestamp) -> np.ndarray:
    """Nanoseconds since the local midnight of `day` (exchange-local wall clock)."""
    ts = ts.dt.as_unit("ns") if ts.dt.unit != "ns" else ts
    if ts.dt.tz is None:
        return ts.array.asi8 - day.as_unit("ns").value
    local = local_clock(ts.dt.tz_convert(TZ))
    if isinstance(local, int):  # one offset for the whole day: an addition, no zone lookups
        return ts.array.asi8 + (local - day.as_unit("ns").value)
    return local - day.as_unit("ns").value


def symbol_universe(*frames: pd.DataFrame) -> pd.Index:
    """Sorted union of the symbols of the frames."""
    parts = [pd.Index(pd.unique(f["symbol"])) for f in frames if len(f)]
    if not parts:
        return pd.Index([], dtype="str", name="symbol")
    out = parts[0]
    for p in parts[1:]:
        out = out.union(p)
    return pd.Index(out.sort_values(), name="symbol")


def _codes(symbol: pd.Series, symbols: pd.Index) -> np.ndarray:
    # factorize on the (Arrow-backed) Series is ~5x faster than converting strings to objects.
    codes, uniques = pd.factorize(symbol)
    where = symbols.get_indexer(pd.Index(uniques))
    return np.where(codes >= 0, where[codes], -1).astype(np.int64)


def _sort_select(code: np.ndarray, tod: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Row positions with `keep`, in stable (code, tod) order."""
    sel = np.flatnonzero(keep)
    key = code[sel] * DAY_NS + tod[sel]
    if len(key) > 1 and not np.all(key[1:] >= key[:-1]):
        sel = sel[np.argsort(key, kind="stable")]
    return sel


# The per-snapshot reduction of the 40 level columns that every book factor starts from: the
# best prices, the cumulative sizes over 1, 5 and 10 levels and the top-5 notional of each
# side. Written once as ClickHouse expressions (the microstructure asset has them computed
# where the book is stored and reads 13 columns instead of 42) and mirrored by
# `summarise_book` for frames in memory; a test holds the two equal.
SUMMARY_DEPTHS = (1, 5, C.LEVELS)
NOTIONAL_LEVELS = 5


def book_summary_sql() -> dict[str, str]:
    """Summary column -> ClickHouse expression over the ORDER_BOOK columns."""
    out = {}
    for side in ("bid", "ask"):
        for k in SUMMARY_DEPTHS:
            out[f"{side}_depth{k}"] = " + ".join(
                f"toFloat64({side}_sz_{i})" for i in range(1, k + 1)
            )
        # an empty level (NaN price, size 0) or a price without size adds nothing
        out[f"{side}_notional{NOTIONAL_LEVELS}"] = " + ".join(
            f"if({side}_sz_{i} > 0, if(isNaN({side}_px_{i}), 0, {side}_px_{i}) * {side}_sz_{i}, 0)"
            for i in range(1, NOTIONAL_LEVELS + 1)
        )
    return out


SUMMARY_COLUMNS = ["ts", "symbol", "bid_px_1", "ask_px_1", *book_summary_sql()]


def summarise_book(book: pd.DataFrame) -> pd.DataFrame:
    """The SUMMARY_COLUMNS of an ORDER_BOOK frame, as `book_summary_sql` computes them."""
    out = {"ts": book["ts"], "symbol": book["symbol"]}
    out["bid_px_1"] = book["bid_px_1"].to_numpy(dtype=float)
    out["ask_px_1"] = book["ask_px_1"].to_numpy(dtype=float)
    for side in ("bid", "ask"):
        total = np.zeros(len(book))
        value = np.zeros(len(book))
        for i in range(1, C.LEVELS + 1):
            sz = book[f"{side}_sz_{i}"].to_numpy(dtype=float)
            total = total + sz
            if i <= NOTIONAL_LEVELS:
                px = book[f"{side}_px_{i}"].to_numpy(dtype=float)
                value = value + np.where(sz > 0, np.where(np.isnan(px), 0.0, px) * sz, 0.0)
            if i in SUMMARY_DEPTHS:
                out[f"{side}_depth{i}"] = total
        out[f"{side}_notional{NOTIONAL_LEVELS}"] = value
    return pd.DataFrame(out, index=book.index)[SUMMARY_COLUMNS]


def prepare_book(
    book: pd.DataFrame, date: DateLike | None = None, symbols: pd.Index | None = None
) -> BookArrays:
    """Reduce ORDER_BOOK snapshots of `date` (the full frame, or its SUMMARY_COLUMNS) to
    sorted per-snapshot arrays.

    Kept: snapshots of the trading day inside the continuous sessions (auction-period
    indications, where bid = ask, are not quotes). Dropped: snapshots with both sides empty
    (a vendor's blank 14:57:00 row, say). Duplicated (symbol, ts): the last row wins, as the
    latest state of the book at that instant.
    """
    if "bid_depth1" not in book.columns:
        book = summarise_book(book)
    day = trading_day(book, date)
    symbols = symbol_universe(book) if symbols is None else symbols
    tod = _local_tod(book["ts"], day)
    code = _codes(book["symbol"], symbols)
    depth = {
        side: {k: book[f"{side}_depth{k}"].to_numpy(dtype=float) for k in SUMMARY_DEPTHS}
        for side in ("bid", "ask")
    }
    deepest = SUMMARY_DEPTHS[-1]
    keep = (code >= 0) & in_continuous(tod) & (depth["bid"][deepest] + depth["ask"][deepest] > 0)
    sel = _sort_select(code, tod, keep)
    key = code[sel] * DAY_NS + tod[sel]
    sel = sel[np.r_[key[1:] != key[:-1], True][: len(key)]]  # duplicated ts: keep the last
    bid_px = book["bid_px_1"].to_numpy(dtype=float)[sel]
    ask_px = book["ask_px_1"].to_numpy(dtype=float)[sel]
    # An empty level is NaN price with size 0; a price without size is no quote either.
    bid_px[~(depth["bid"][1][sel] > 0)] = np.nan
    ask_px[~(depth["ask"][1][sel] > 0)] = np.nan
    notional = f"notional{NOTIONAL_LEVELS}"
    return BookArrays(
        symbols=symbols,
        code=code[sel],
        tod=tod[sel],
        bid_px=bid_px,
        ask_px=ask_px,
        bid_sz={k: v[sel] for k, v in depth["bid"].items()},
        ask_sz={k: v[sel] for k, v in depth["ask"].items()},
        bid_notional5=book[f"bid_{notional}"].to_numpy(dtype=float)[sel],
        ask_notional5=book[f"ask_{notional}"].to_numpy(dtype=float)[sel],
    )


def prepare_trades(
    trades: pd.DataFrame, date: DateLike | None = None, symbols: pd.Index | None = None
) -> TradeArrays:
    """Trades of `date` (any session, auction prints included) as sorted arrays."""
    day = trading_day(trades, date)
    symbols = symbol_universe(trades) if symbols is None else symbols
    tod = _local_tod(trades["ts"], day)
    code = _codes(trades["symbol"], symbols)
    volume = trades["volume"].to_numpy(dtype=float)
    keep = (code >= 0) & (tod >= 0) & (tod < DAY_NS) & (volume > 0)
    sel = _sort_select(code, tod, keep)
    return TradeArrays(
        symbols=symbols,
        code=code[sel],
        tod=tod[sel],
        price=trades["price"].to_numpy(dtype=float)[sel],
        volume=volume[sel],
        side=trades["side"].to_numpy(dtype=np.int64)[sel],
    )


def prepare(
    trades: pd.DataFrame, book: pd.DataFrame, date: DateLike | None = None
) -> tuple[TradeArrays, BookArrays]:
    """Both frames of one day over the sorted union of their symbols."""
    day = trading_day(trades if len(trades) else book, date)
    symbols = symbol_universe(trades, book)
    return prepare_trades(trades, day, symbols), prepare_book(book, day, symbols)


# ---------------------------------------------------------------------------- reductions
@njit(cache=True, nogil=True)
def _group_mean(code, x, w, n):  # pragma: no cover - jit
    num = np.zeros(n)
    den = np.zeros(n)
    for i in range(len(code)):
        if np.isfinite(x[i]):
            num[code[i]] += x[i] * w[i]
            den[code[i]] += w[i]
    out = np.full(n, np.nan)
    for g in range(n):
        if den[g] > 0:
            out[g] = num[g] / den[g]
    return out


def group_sum(code: np.ndarray, x: np.ndarray, n: int) -> np.ndarray:
    """Per-code sum of x, NaN entries skipped (all-NaN or empty groups sum to 0)."""
    x = np.asarray(x, dtype=float)
    return np.bincount(code, weights=np.where(np.isnan(x), 0.0, x), minlength=n)


def group_mean(code: np.ndarray, x: np.ndarray, n: int, w: np.ndarray | None = None) -> np.ndarray:
    """Per-code (weighted) mean of the finite x; NaN where a group has no weight. One numba
    pass (a day's book is 23 million snapshots at 5,000 stocks)."""
    x = np.asarray(x, dtype=float)
    w = np.ones(len(x)) if w is None else np.asarray(w, dtype=float)
    return _group_mean(np.asarray(code, dtype=np.int64), x, w, n)


def last_in_group(code: np.ndarray, mask: np.ndarray, n: int) -> np.ndarray:
    """Position of the last row with `mask` per code (rows sorted by code); -1 if none."""
    idx = np.flatnonzero(mask)
    c = code[idx]
    last = idx[np.r_[c[1:] != c[:-1], True]] if len(idx) else idx
    out = np.full(n, -1, dtype=np.int64)
    out[code[last]] = last
    return out


def take(x: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """x[pos] as float with NaN where pos is -1."""
    out = np.full(len(pos), np.nan)
    ok = pos >= 0
    out[ok] = x[pos[ok]]
    return out


def session_grid(minutes: int) -> tuple[np.ndarray, np.ndarray]:
    """Bar end points every `minutes` over each continuous session (session ends included).

    Returns the grid (ns after midnight) and a mask over the len(grid) - 1 consecutive
    intervals that is False for the lunch-break interval 11:30 -> 13:00.
    """
    step = minutes * NS_PER_MINUTE
    parts = []
    for start, end in ((AM_START, AM_END), (PM_START, PM_END)):
        g = np.arange(start, end + 1, step, dtype=np.int64)
        parts.append(g if g[-1] == end else np.r_[g, end])
    grid = np.concatenate(parts)
    inside = np.ones(len(grid) - 1, dtype=bool)
    inside[len(parts[0]) - 1] = False
    return grid, inside


def asof_positions(
    keys: np.ndarray, code: np.ndarray, query: np.ndarray, strict: bool
) -> np.ndarray:
    """Position in sorted `keys` of the last row of the same code at or before (or strictly
    before, with `strict`) each query key; -1 where there is none."""
    pos = np.searchsorted(keys, query, side="left" if strict else "right") - 1
    qcode = query // DAY_NS
    ok = pos >= 0
    ok[ok] = code[pos[ok]] == qcode[ok]
    return np.where(ok, pos, -1)
