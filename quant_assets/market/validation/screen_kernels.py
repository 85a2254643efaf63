"""One-pass numba screens for the order-book and ordering rules of `validation`.

A day of 10-level snapshots is about 1.4 million rows of 42 columns, almost all of them good.
Running every rule as numpy column expressions makes dozens of full-length temporaries; these
kernels read each row once and only say which rows *might* break a rule. The rules themselves
then run, unchanged, on those few rows, so the quarantine's rules and details are the same
whichever path found them.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from quant_assets.market.rules import DAY_NS, NAT_NS, PRICE_EPS


@njit(cache=True, nogil=True)
def _level_bad(px, sz, hi, lo, eps, size_max):  # pragma: no cover - jit
    if sz < 0 or sz > size_max:
        return True
    if np.isnan(px):  # an empty level has no size
        return sz != 0
    return px <= 0 or sz == 0 or px > hi + eps or px < lo - eps


@njit(cache=True, nogil=True, parallel=True)
def _book_suspects(
    bid_px, bid_sz, ask_px, ask_sz, codes, up, down, eps, size_max
):  # pragma: no cover - jit
    n = bid_px[0].shape[0]
    out = np.zeros(n, np.bool_)
    for i in prange(n):
        c = codes[i]
        hi = up[c] if c >= 0 else np.inf
        lo = down[c] if c >= 0 else -np.inf
        bad = bid_px[0][i] >= ask_px[0][i]  # crossed or locked (NaN compares False)
        last_bid = np.inf  # present levels must fall (bids) or rise (asks) strictly
        last_ask = -np.inf
        for k in range(len(bid_px)):
            b = bid_px[k][i]
            a = ask_px[k][i]
            bad |= _level_bad(b, bid_sz[k][i], hi, lo, eps, size_max)
            bad |= _level_bad(a, ask_sz[k][i], hi, lo, eps, size_max)
            if not np.isnan(b):
                bad |= b >= last_bid
                last_bid = b
            if not np.isnan(a):
                bad |= a <= last_ask
                last_ask = a
        out[i] = bad
    return out


def book_suspects(
    bid_px: list[np.ndarray],
    bid_sz: list[np.ndarray],
    ask_px: list[np.ndarray],
    ask_sz: list[np.ndarray],
    limits: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    size_max: float = np.inf,
) -> np.ndarray:
    """Rows that may break a book rule: a bad or size-less price, a negative size or one above
    `size_max` (what the stored column holds), a crossed book, levels out of order, or (with
    `limits`) a price beyond the day's limits. Sizes may be
    int64 or float64 (NaN where a value did not parse). `limits` is (codes, up, down): each
    row's symbol code (-1 for none) and each symbol's limit-up and limit-down prices, read
    per row in the kernel rather than spread into full-length arrays; a NaN limit or a row
    without a symbol has no limit to break."""
    n = len(bid_px[0])
    codes, up, down = limits if limits is not None else (np.full(n, -1), np.empty(0), np.empty(0))
    up = np.where(np.isnan(up), np.inf, np.asarray(up, dtype=np.float64))
    down = np.where(np.isnan(down), -np.inf, np.asarray(down, dtype=np.float64))

    def tup(arrays: list[np.ndarray], dtype: type) -> tuple[np.ndarray, ...]:
        # numba indexes a tuple only if all its arrays have one type, read-only flag included
        # (pandas hands out read-only views under copy-on-write)
        out = []
        for a in arrays:
            v = np.ascontiguousarray(a, dtype=dtype).view()
            v.flags.writeable = False
            out.append(v)
        return tuple(out)

    sizes = bid_sz + ask_sz
    size_dtype = np.int64 if all(a.dtype == np.int64 for a in sizes) else np.float64
    return _book_suspects(
        tup(bid_px, np.float64),
        tup(bid_sz, size_dtype),
        tup(ask_px, np.float64),
        tup(ask_sz, size_dtype),
        np.ascontiguousarray(codes, dtype=np.int64),
        up,
        down,
        PRICE_EPS,
        float(size_max),
    )


@njit(cache=True, nogil=True)
def _strictly_increasing(codes, t, n_codes):  # pragma: no cover - jit
    last = np.full(n_codes, NAT_NS, np.int64)
    for i in range(codes.shape[0]):
        c = codes[i]
        if c < 0 or t[i] <= last[c]:
            return False
        last[c] = t[i]
    return True


def strictly_increasing_per_symbol(codes: np.ndarray, t: np.ndarray, n_codes: int) -> bool:
    """True when every row has a symbol and a time (NaT is int64 min) later than the previous
    row of its symbol: then no (symbol, time) repeats and no row is out of order."""
    return bool(
        _strictly_increasing(
            np.ascontiguousarray(codes, dtype=np.int64),
            np.ascontiguousarray(t, dtype=np.int64),
            max(int(n_codes), 1),
        )
    )


@njit(cache=True, nogil=True)
def _keep_longest_in_order(v):  # pragma: no cover - jit
    """Mask of the rows kept by `out_of_order_rows` for one symbol's times `v` (file order)."""
    m = v.shape[0]
    # run[k]: length of the longest non-decreasing run of rows starting at row k; heads[j]: the
    # latest possible start time of such a run of length j + 1 among the rows after k (heads
    # never rises with j, so the runs row k can start are found by a binary search)
    run = np.empty(m, np.int64)
    heads = np.empty(m, np.int64)
    size = 0
    for k in range(m - 1, -1, -1):
        x = v[k]
        lo, hi = 0, size
        while lo < hi:  # first j with heads[j] < x
            mid = (lo + hi) // 2
            if heads[mid] >= x:
                lo = mid + 1
            else:
                hi = mid
        heads[lo] = x
        if lo == size:
            size += 1
        run[k] = lo + 1
    # the earliest rows that make a longest run: row k joins when a run of the length still
    # needed starts at it and it is not earlier than the last row kept
    keep = np.zeros(m, np.bool_)
    need = size
    last = NAT_NS
    for k in range(m):
        if need > 0 and run[k] == need and v[k] >= last:
            keep[k] = True
            last = v[k]
            need -= 1
    return keep


@njit(cache=True, nogil=True)
def _out_of_order(codes, t, n_codes):  # pragma: no cover - jit
    n = codes.shape[0]
    latest = np.full(n_codes, NAT_NS, np.int64)
    broken = np.zeros(n_codes, np.bool_)
    any_broken = False
    for i in range(n):  # one pass: which symbols have a row earlier than one before it
        c = codes[i]
        if c < 0 or t[i] == NAT_NS:
            continue
        if t[i] < latest[c]:
            broken[c] = True
            any_broken = True
        else:
            latest[c] = t[i]
    out = np.zeros(n, np.bool_)
    if not any_broken:
        return out
    # the rows of the broken symbols, grouped by symbol in file order (a counting sort)
    start = np.zeros(n_codes + 1, np.int64)
    for i in range(n):
        c = codes[i]
        if c >= 0 and broken[c] and t[i] != NAT_NS:
            start[c + 1] += 1
    for c in range(n_codes):
        start[c + 1] += start[c]
    rows = np.empty(start[n_codes], np.int64)
    fill = start[:n_codes].copy()
    for i in range(n):
        c = codes[i]
        if c >= 0 and broken[c] and t[i] != NAT_NS:
            rows[fill[c]] = i
            fill[c] += 1
    for c in range(n_codes):
        if not broken[c]:
            continue
        idx = rows[start[c] : start[c + 1]]
        v = t[idx]
        keep = _keep_longest_in_order(v)  # the earliest rows of a longest run
        latest = _keep_longest_in_order(-v[::-1])[::-1]  # the latest rows of one
        if _span(v, latest) < _span(v, keep):
            keep = latest
        for k in range(idx.shape[0]):
            out[idx[k]] = not keep[k]
    return out


@njit(cache=True, nogil=True)
def _span(v, keep):  # pragma: no cover - jit
    """Time from the first to the last kept row (kept rows are in order)."""
    first = np.argmax(keep)
    last = keep.shape[0] - 1 - np.argmax(keep[::-1])
    return v[last] - v[first]


def out_of_order_rows(codes: np.ndarray, t: np.ndarray, n_codes: int) -> np.ndarray:
    """Rows out of time order within their symbol, the fewest that explain the disorder.

    Per symbol (codes; -1 and NaT rows take no part), the rows kept are a longest run that is
    in order (times never falling, in file order); the other rows are out of order. Where
    several runs are equally long, of the earliest rows that make one and the latest rows that
    make one, the run spanning less time is kept (the earliest on a tie): a stamp far off
    stretches the span, so it is the row dropped even next to the first or last row. So one
    row stamped in 2030 in the middle of a morning is the only row flagged, not the thousands
    after it, and of two blocks swapped the shorter one is flagged (the later one when they are
    equally long). One pass finds the symbols with any disorder; only their rows are sorted
    out, in O(n log n).
    """
    return _out_of_order(
        np.ascontiguousarray(codes, dtype=np.int64),
        np.ascontiguousarray(t, dtype=np.int64),
        max(int(n_codes), 1),
    )


@njit(cache=True, nogil=True, parallel=True)
def _time_flags(
    utc_ns, local_ns, shift, starts, ends, end_included, day, after_day_only, now_ns
):  # pragma: no cover - jit
    n = utc_ns.shape[0]
    outside = np.zeros(n, np.bool_)
    off_day = np.zeros(n, np.bool_)
    future = np.zeros(n, np.bool_)
    lookup = local_ns.shape[0] == n
    for i in prange(n):
        u = utc_ns[i]
        if u == NAT_NS:
            continue
        local = local_ns[i] if lookup else u + shift
        d = local // DAY_NS  # floor division: days before 1970 stay whole
        tod = local - d * DAY_NS
        inside = False
        for k in range(starts.shape[0]):
            if tod >= starts[k] and (tod < ends[k] or (end_included[k] and tod == ends[k])):
                inside = True
        outside[i] = not inside
        off_day[i] = d > day if after_day_only else d != day
        future[i] = u > now_ns
    return outside, off_day, future


def time_flags(
    utc_ns: np.ndarray,
    local: np.ndarray | int,
    windows: tuple[np.ndarray, np.ndarray, np.ndarray],
    day: int,
    after_day_only: bool,
    now_ns: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row, for timestamps `utc_ns` (NaT is int64 min and flags nothing): outside the
    session `windows` (starts, ends, end included; ns after local midnight); not on local
    `day` (days since 1970; with `after_day_only`, only after it); after `now_ns`. `local` is
    the local wall-clock ns of each row, or one offset in ns to add to every row."""
    lookup = not np.isscalar(local)
    starts, ends, included = windows
    return _time_flags(
        np.ascontiguousarray(utc_ns, dtype=np.int64),
        np.ascontiguousarray(local, dtype=np.int64) if lookup else np.empty(0, np.int64),
        0 if lookup else int(local),
        starts,
        ends,
        included,
        int(day),
        bool(after_day_only),
        int(now_ns),
    )
