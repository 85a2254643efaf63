"""Numba kernels over 2-D panels shaped (symbols, dates): every time series is a contiguous row.

The rolling and cross-sectional kernels the operators in ``ops.py`` call (Sum/Mean/Count,
Skew/Kurt/Mad, WMA/DecayLinear/Prod, EMA, CSRank, CSNeutralize), the numba thread helpers
``engine.py`` uses, and the JIT options and std threshold shared with ``kernels_online.py``
(the O(1)-per-step kernels of the hot operators; the tests check those against direct
reference kernels in ``tests/factors/reference_kernels.py``).

Rolling kernels follow pandas' ``rolling(N, min_periods=1)`` as Qlib uses it: NaNs inside a
window are skipped, a window with no valid value gives NaN, and the first N-1 dates use the
partial window. ``roll_moment`` and ``roll_weighted`` recompute each window directly (O(N) per
output), so they carry no accumulated rounding drift and infinities do not poison later
windows; ``roll_sum`` keeps running sums recomputed from scratch every N dates. Without numba
the same code runs as (slow) plain Python.
"""

from __future__ import annotations

import math

import numpy as np

try:
    from numba import njit, prange

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised only without numba
    HAVE_NUMBA = False
    prange = range

    def njit(*args, **kwargs):
        if args and callable(args[0]):
            return args[0]
        return lambda f: f


_JIT = {"cache": True, "parallel": True, "nogil": True}
# Qlib masks Corr/Rsquare where a window's std is np.isclose(.., 0, atol=2e-05).
STD_EPS = 2e-05


@njit(**_JIT)
def roll_sum(x, n_win, kind):
    """kind 0 sum, 1 mean, 2 count of valid values.

    Running sums, recomputed from scratch every N dates so rounding drift never spans more
    than two windows; a window of zeros sums to exactly 0 (tracked by a count of non-zeros)."""
    S, T = x.shape
    out = np.empty((S, T))
    for s in prange(S):
        refresh = 0
        acc = 0.0
        n = 0
        nonzero = 0
        for t in range(T):
            v = x[s, t]
            if v == v:
                acc += v
                n += 1
                nonzero += v != 0  # branch-free: zeros are frequent and unpredictable
            if t >= n_win:
                old = x[s, t - n_win]
                if old == old:
                    acc -= old
                    n -= 1
                    nonzero -= old != 0
            if t == refresh:
                refresh = t + n_win  # exact recomputation every N dates (t % N == 0)
                acc = 0.0
                for k in range(max(0, t - n_win + 1), t + 1):
                    w = x[s, k]
                    if w == w:
                        acc += w
            if nonzero == 0:
                acc = 0.0
            if kind == 2:
                out[s, t] = n
            elif n == 0:
                out[s, t] = np.nan
            elif kind == 0:
                out[s, t] = acc
            else:
                out[s, t] = acc / n
    return out


@njit(**_JIT)
def roll_moment(x, n_win, kind):
    """kind 0 var, 1 std (ddof=1), 2 skew, 3 kurt (pandas' bias-corrected), 4 mean abs dev."""
    S, T = x.shape
    out = np.empty((S, T))
    for s in prange(S):
        for t in range(T):
            lo = max(0, t - n_win + 1)
            acc = 0.0
            n = 0
            first = np.nan
            same = True
            for k in range(lo, t + 1):
                v = x[s, k]
                if v == v:
                    if n == 0:
                        first = v
                    elif v != first:
                        same = False
                    acc += v
                    n += 1
            res = np.nan
            if n > 0:
                mean = acc / n
                m2 = 0.0
                m3 = 0.0
                m4 = 0.0
                mad = 0.0
                for k in range(lo, t + 1):
                    v = x[s, k]
                    if v == v:
                        d = v - mean
                        d2 = d * d
                        m2 += d2
                        m3 += d2 * d
                        m4 += d2 * d2
                        mad += abs(d)
                if kind == 4:
                    res = mad / n
                elif kind <= 1:
                    if n >= 2:
                        res = 0.0 if same else m2 / (n - 1)
                        if kind == 1:
                            res = math.sqrt(res)
                elif not same:
                    m2 /= n
                    if kind == 2 and n >= 3 and m2 > 0:
                        res = math.sqrt(n * (n - 1.0)) / (n - 2.0) * (m3 / n) / m2**1.5
                    elif kind == 3 and n >= 4 and m2 > 0:
                        g2 = (m4 / n) / (m2 * m2) - 3.0
                        res = ((n + 1.0) * g2 + 6.0) * (n - 1.0) / ((n - 2.0) * (n - 3.0))
            out[s, t] = res
    return out


@njit(**_JIT)
def roll_weighted(x, n_win, kind, first):
    """kind 0 Qlib's WMA, 1 DecayLinear, 2 product.

    Qlib's WMA is ``np.nanmean(w * x)`` with w = 1..L normalised over the window length L, i.e.
    the linearly weighted sum divided once more by the number of valid values; kept as is for
    parity. DecayLinear is the proper weighted mean (weights L..1, newest heaviest) over the
    valid values. Windows start no earlier than the symbol's first date ``first[s]``."""
    S, T = x.shape
    out = np.empty((S, T))
    for s in prange(S):
        for t in range(T):
            lo = max(first[s], t - n_win + 1)
            length = max(t - lo + 1, 1)
            wsum_all = length * (length + 1) / 2.0
            acc = 0.0
            wsum = 0.0
            prod = 1.0
            n = 0
            for k in range(lo, t + 1):
                v = x[s, k]
                if v == v:
                    w = k - lo + 1.0
                    acc += w * v
                    wsum += w
                    prod *= v
                    n += 1
            if n == 0:
                out[s, t] = np.nan
            elif kind == 0:
                out[s, t] = acc / wsum_all / n
            elif kind == 1:
                out[s, t] = acc / wsum
            else:
                out[s, t] = prod
    return out


@njit(**_JIT)
def ewm_mean(x, alpha):
    """pandas ``ewm(alpha=alpha, adjust=True, ignore_na=False, min_periods=1).mean()``."""
    S, T = x.shape
    out = np.empty((S, T))
    decay = 1.0 - alpha
    for s in prange(S):
        weighted = np.nan
        old_wt = 1.0
        for t in range(T):
            v = x[s, t]
            if weighted == weighted:
                old_wt *= decay
                if v == v:
                    if weighted != v:
                        weighted = (old_wt * weighted + v) / (old_wt + 1.0)
                    old_wt += 1.0
            elif v == v:
                weighted = v
                old_wt = 1.0
            out[s, t] = weighted
    return out


@njit(**_JIT)
def cs_rank(x):
    """Cross-sectional percentile rank per date (axis 0), average ties, NaN stays NaN."""
    S, T = x.shape
    out = np.full((S, T), np.nan)
    for t in prange(T):
        col = x[:, t].copy()
        valid = np.where(col == col)[0]
        n = valid.shape[0]
        if n == 0:
            continue
        vals = col[valid]
        order = np.argsort(vals, kind="mergesort")
        i = 0
        while i < n:
            j = i
            while j + 1 < n and vals[order[j + 1]] == vals[order[i]]:
                j += 1
            rank = (i + j + 2) / 2.0 / n
            for m in range(i, j + 1):
                out[valid[order[m]], t] = rank
            i = j + 1
    return out


@njit(**_JIT)
def cs_group_demean(x, g, n_groups):
    """Subtract the per-date mean of each group (codes in ``g``; negative code -> NaN)."""
    S, T = x.shape
    out = np.full((S, T), np.nan)
    for t in prange(T):
        sums = np.zeros(n_groups)
        counts = np.zeros(n_groups)
        for s in range(S):
            v = x[s, t]
            c = g[s, t]
            if v == v and c >= 0:
                sums[c] += v
                counts[c] += 1
        for s in range(S):
            v = x[s, t]
            c = g[s, t]
            if v == v and c >= 0:
                out[s, t] = v - sums[c] / counts[c]
    return out


def numba_threads() -> int:
    """Threads numba's parallel kernels use (1 without numba)."""
    if not HAVE_NUMBA:
        return 1
    import numba

    return numba.get_num_threads()


def set_thread_kernels(n: int) -> None:
    """Number of threads the calling thread's parallel kernels use (thread-local in numba)."""
    if HAVE_NUMBA:
        import numba

        numba.set_num_threads(n)


def threadsafe_layer() -> bool:
    """Whether parallel kernels may be called from several threads at once: numba's omp and
    tbb threading layers are thread-safe, its fallback workqueue layer is not."""
    if not HAVE_NUMBA:
        return True
    import numba

    _touch(np.zeros(2))  # the threading layer is chosen at the first parallel launch
    try:
        return numba.threading_layer() in ("omp", "tbb")
    except ValueError:
        return False


@njit(**_JIT)
def _touch(x):
    for i in prange(x.shape[0]):
        x[i] += 1.0
