"""Order-book factors of one trading day: imbalance, spread, depth, order flow, realised moments.

Every function takes an ORDER_BOOK frame (or `BookArrays` from `prepare_book`, to share the
preparation) and returns values per symbol. Only continuous-session snapshots count.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from quant_assets.factors.microstructure_prep import (
    AM_END,
    DAY_NS,
    PM_END,
    BookArrays,
    DateLike,
    asof_positions,
    group_mean,
    group_sum,
    last_in_group,
    prepare_book,
    session_grid,
    take,
)

DEPTHS = (1, 5, 10)


def _as_book(book: pd.DataFrame | BookArrays, date: DateLike | None = None) -> BookArrays:
    return book if isinstance(book, BookArrays) else prepare_book(book, date)


def _frame(b: BookArrays, data: dict[str, np.ndarray]) -> pd.DataFrame:
    return pd.DataFrame(data, index=b.symbols)


def order_book_imbalance(
    book: pd.DataFrame | BookArrays, date: DateLike | None = None
) -> pd.DataFrame:
    """Depth imbalance over the first k = 1, 5, 10 levels, daily mean and at the close.

    ``imb_k = (sum_{i<=k} bid_sz_i - sum_{i<=k} ask_sz_i) / (sum of both)`` in [-1, 1]: the
    share of resting volume on the bid minus that on the ask. ``imbalance_k_mean`` averages
    it over the continuous snapshots (equal weights); ``imbalance_k_close`` is its value in
    the last continuous snapshot at or before 14:57:00, the book the closing call auction
    starts from. A one-sided book gives +-1 (limit-up: ask side empty -> 1).
    """
    b = _as_book(book, date)
    n = len(b.symbols)
    close = last_in_group(b.code, np.ones(len(b.code), bool), n)
    out = {}
    for k in DEPTHS:
        bid, ask = b.bid_sz[k], b.ask_sz[k]
        with np.errstate(invalid="ignore", divide="ignore"):
            imb = (bid - ask) / (bid + ask)
        out[f"imbalance_{k}_mean"] = group_mean(b.code, imb, n)
        out[f"imbalance_{k}_close"] = take(imb, close)
    names = [f"imbalance_{k}_{w}" for w in ("mean", "close") for k in DEPTHS]
    return _frame(b, out)[names]


def _holding_times(b: BookArrays) -> np.ndarray:
    """How long each snapshot stands (ns): until the next snapshot of the same symbol, cut at
    the end of its session (11:30 or 14:57), so no quote is credited with the lunch break."""
    end = np.where(b.tod <= AM_END, AM_END, PM_END)
    same = np.r_[b.code[1:] == b.code[:-1], False]
    nxt = np.r_[b.tod[1:], 0]
    return np.minimum(np.where(same, nxt, end), end) - b.tod


def quoted_spread(book: pd.DataFrame | BookArrays, date: DateLike | None = None) -> pd.Series:
    """Time-weighted relative quoted spread over the continuous sessions (fraction of mid).

    ``s = (ask_px_1 - bid_px_1) / mid``, ``mid = (ask_px_1 + bid_px_1) / 2``, each snapshot
    weighted by how long it stood. One-sided snapshots (limit-up/-down) have no spread and are
    left out; NaN when no two-sided snapshot stood for a positive time.
    """
    b = _as_book(book, date)
    mid = b.mid
    spread = (b.ask_px - b.bid_px) / mid
    out = group_mean(b.code, spread, len(b.symbols), w=_holding_times(b).astype(float))
    return pd.Series(out, index=b.symbols, name="quoted_spread")


def depth_notional(book: pd.DataFrame | BookArrays, date: DateLike | None = None) -> pd.DataFrame:
    """Mean top-5 notional depth per side (CNY): ``sum_{i<=5} px_i * sz_i`` averaged over the
    continuous snapshots; columns ``depth5_bid`` and ``depth5_ask``."""
    b = _as_book(book, date)
    n = len(b.symbols)
    return _frame(
        b,
        {
            "depth5_bid": group_mean(b.code, b.bid_notional5, n),
            "depth5_ask": group_mean(b.code, b.ask_notional5, n),
        },
    )


def ofi_increments(
    bid_px: np.ndarray, bid_sz: np.ndarray, ask_px: np.ndarray, ask_sz: np.ndarray
) -> np.ndarray:
    """Cont-Kukanov-Stoikov (2014) order-flow increments between consecutive best quotes.

    ``e_n = 1{Pb_n >= Pb_{n-1}} qb_n - 1{Pb_n <= Pb_{n-1}} qb_{n-1}
          - 1{Pa_n <= Pa_{n-1}} qa_n + 1{Pa_n >= Pa_{n-1}} qa_{n-1}`` (shares), for n >= 1;
    the returned array has one element fewer than the inputs. A bid arriving or a bid queue
    growing adds buy pressure, an ask arriving subtracts it. An empty side (NaN price) counts
    as a bid at -inf / an ask at +inf, so a side that empties or refills (limit-up) gives the
    right sign.
    """
    pb = np.where(np.isnan(bid_px), -np.inf, bid_px)
    pa = np.where(np.isnan(ask_px), np.inf, ask_px)
    qb, qa = np.asarray(bid_sz, float), np.asarray(ask_sz, float)
    return (
        (pb[1:] >= pb[:-1]) * qb[1:]
        - (pb[1:] <= pb[:-1]) * qb[:-1]
        - (pa[1:] <= pa[:-1]) * qa[1:]
        + (pa[1:] >= pa[:-1]) * qa[:-1]
    )


def order_flow_imbalance(
    book: pd.DataFrame | BookArrays, date: DateLike | None = None
) -> pd.Series:
    """Daily order-flow imbalance, normalised by the mean best-level depth (dimensionless).

    ``ofi = sum_n e_n / mean_n((qb_n + qa_n) / 2)`` with e_n from `ofi_increments` over
    consecutive continuous snapshots of the symbol (the pair spanning the lunch break counts:
    no trading happens in between). Positive: net buying pressure at the best quotes, in units
    of a typical best-level queue.
    """
    b = _as_book(book, date)
    n = len(b.symbols)
    qb, qa = b.bid_sz[1], b.ask_sz[1]
    e = ofi_increments(b.bid_px, qb, b.ask_px, qa)
    same = b.code[1:] == b.code[:-1]
    total = group_sum(b.code[1:][same], e[same], n)
    depth = group_mean(b.code, (qb + qa) / 2, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(depth > 0, total / depth, np.nan)
    return pd.Series(out, index=b.symbols, name="ofi")


def mid_on_grid(b: BookArrays, grid: np.ndarray) -> np.ndarray:
    """Mid quote of the last continuous snapshot at or before each grid time, per symbol:
    shape (symbols, grid); NaN before the first snapshot or when that snapshot is one-sided."""
    n = len(b.symbols)
    query = (np.arange(n, dtype=np.int64)[:, None] * DAY_NS + grid[None, :]).ravel()
    pos = asof_positions(b.key, b.code, query, strict=False)
    return take(b.mid, pos).reshape(n, len(grid))


def grid_log_returns(b: BookArrays, minutes: int) -> np.ndarray:
    """Log mid returns over `minutes` bars of the continuous sessions, shape (symbols, bars);
    the lunch-break interval is dropped (no overnight return exists within a day)."""
    grid, inside = session_grid(minutes)
    with np.errstate(invalid="ignore", divide="ignore"):
        logmid = np.log(mid_on_grid(b, grid))
    return np.diff(logmid, axis=1)[:, inside]


def realized_moments(
    book: pd.DataFrame | BookArrays, date: DateLike | None = None, minutes: int = 1
) -> pd.DataFrame:
    """Realised volatility and skewness of `minutes`-bar log mid returns r_j of the day.

    ``realized_vol = sqrt(sum r_j^2)`` (daily, not annualised; log-return units) and
    ``realized_skew = sqrt(N) * sum r_j^3 / (sum r_j^2)^(3/2)`` (Amaya et al. 2015), over
    the N bars with a two-sided quote at both ends, inside the continuous sessions.
    """
    b = _as_book(book, date)
    r = grid_log_returns(b, minutes)
    ok = np.isfinite(r)
    r = np.where(ok, r, 0.0)
    count = ok.sum(axis=1)
    s2, s3 = (r**2).sum(axis=1), (r**3).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        vol = np.where(count > 0, np.sqrt(s2), np.nan)
        skew = np.where(s2 > 0, np.sqrt(count) * s3 / s2**1.5, np.nan)
    return _frame(b, {"realized_vol": vol, "realized_skew": skew})
