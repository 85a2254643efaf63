"""Direct reference kernels used as oracles for the O(1)-per-step kernels in
``quant_assets/factors/kernels_online.py`` (``test_online_kernels.py``); no production code
calls them.

Same panel layout (symbols, dates) and semantics as the package's rolling kernels: pandas'
``rolling(N, min_periods=1)`` as Qlib uses it (NaNs inside a window skipped, a window with no
valid value gives NaN, partial first windows). Each window is evaluated directly, O(N) per
output (``roll_sorted`` keeps a sorted window buffer: O(N) memory moves per step), so the
results carry no accumulated rounding drift and infinities do not poison later windows.
"""

from __future__ import annotations

import math

import numpy as np

from quant_assets.factors.kernels import _JIT, STD_EPS, njit, prange


@njit(**_JIT)
def roll_extreme(x, n_win, kind, first):
    """kind 0 max, 1 min, 2 idxmax, 3 idxmin.

    Idx* reproduce Qlib's ``rolling.apply(lambda x: x.argmax() + 1)``: the 1-based position
    inside the (possibly partial) window, and numpy's argmax/argmin pick the first NaN if the
    window holds one (NaN compares as the extreme). Windows start no earlier than the
    symbol's first date ``first[s]``: before listing there is no data, not NaN data."""
    S, T = x.shape
    out = np.empty((S, T))
    for s in prange(S):
        for t in range(T):
            lo = max(first[s], t - n_win + 1)
            best = np.nan
            best_i = -1
            nan_i = -1
            n = 0
            for k in range(lo, t + 1):
                v = x[s, k]
                if v != v:
                    if nan_i < 0:
                        nan_i = k
                    continue
                n += 1
                if best_i < 0 or (kind % 2 == 0 and v > best) or (kind % 2 == 1 and v < best):
                    best = v
                    best_i = k
            if n == 0:
                out[s, t] = np.nan
            elif kind < 2:
                out[s, t] = best
            elif nan_i >= 0:
                out[s, t] = nan_i - lo + 1
            else:
                out[s, t] = best_i - lo + 1
    return out


@njit(**_JIT)
def roll_sorted(x, n_win, kind, q):
    """kind 0 linear-interpolated quantile q, 1 percentile rank of the current value.

    Keeps each window's valid values sorted (remove the leaving value, insert the new one), so
    a step costs O(N) memory moves instead of a sort. Rank is pandas' ``rank(pct=True)``:
    average rank of ties divided by the number of valid values."""
    S, T = x.shape
    out = np.empty((S, T))
    for s in prange(S):
        buf = np.empty(n_win)
        n = 0
        for t in range(T):
            if t >= n_win:
                old = x[s, t - n_win]
                if old == old:
                    i = np.searchsorted(buf[:n], old)
                    for j in range(i, n - 1):
                        buf[j] = buf[j + 1]
                    n -= 1
            v = x[s, t]
            if v == v:
                i = np.searchsorted(buf[:n], v, side="right")
                for j in range(n, i, -1):
                    buf[j] = buf[j - 1]
                buf[i] = v
                n += 1
            if n == 0:
                out[s, t] = np.nan
            elif kind == 0:
                pos = q * (n - 1)
                lo = int(math.floor(pos))
                if lo >= n - 1:
                    out[s, t] = buf[n - 1]
                elif pos == lo:
                    out[s, t] = buf[lo]
                else:
                    out[s, t] = buf[lo] + (buf[lo + 1] - buf[lo]) * (pos - lo)
            elif v != v:
                out[s, t] = np.nan
            else:
                less = np.searchsorted(buf[:n], v)
                leq = np.searchsorted(buf[:n], v, side="right")
                out[s, t] = (less + 1 + leq) / 2.0 / n
    return out


@njit(**_JIT)
def roll_reg(x, n_win, kind):
    """Regression of the window on time positions 1..N (last date = N), NaNs skipped.

    kind 0 slope, 1 R-squared (NaN where the window's std <= 2e-5, as Qlib), 2 residual of
    the current date (NaN if the current value is NaN)."""
    S, T = x.shape
    out = np.empty((S, T))
    for s in prange(S):
        for t in range(T):
            lo = max(0, t - n_win + 1)
            base = t - n_win  # position p = k - base runs 1..N
            n = 0
            sp = 0.0
            sy = 0.0
            for k in range(lo, t + 1):
                v = x[s, k]
                if v == v:
                    n += 1
                    sp += k - base
                    sy += v
            res = np.nan
            if n >= 2:
                mp = sp / n
                my = sy / n
                sxx = 0.0
                sxy = 0.0
                syy = 0.0
                for k in range(lo, t + 1):
                    v = x[s, k]
                    if v == v:
                        dp = (k - base) - mp
                        dy = v - my
                        sxx += dp * dp
                        sxy += dp * dy
                        syy += dy * dy
                slope = sxy / sxx
                if kind == 0:
                    res = slope
                elif kind == 1:
                    if math.sqrt(syy / (n - 1)) > STD_EPS:
                        res = sxy * sxy / (sxx * syy)
                else:
                    v = x[s, t]
                    res = v - (my + slope * (n_win - mp))
            out[s, t] = res
    return out


@njit(**_JIT)
def roll_pair(x, y, n_win, kind):
    """kind 0 covariance, 1 correlation over dates where both are valid (ddof=1).

    Correlation is NaN where either input's own window std is <= 2e-5, as Qlib masks it."""
    S, T = x.shape
    out = np.empty((S, T))
    for s in prange(S):
        for t in range(T):
            lo = max(0, t - n_win + 1)
            n = 0
            sx = 0.0
            sy = 0.0
            nx = 0
            ny = 0
            ox = 0.0
            oy = 0.0
            for k in range(lo, t + 1):
                a = x[s, k]
                b = y[s, k]
                if a == a:
                    nx += 1
                    ox += a
                if b == b:
                    ny += 1
                    oy += b
                if a == a and b == b:
                    n += 1
                    sx += a
                    sy += b
            res = np.nan
            if n >= 2:
                mx = sx / n
                my = sy / n
                sxx = 0.0
                syy = 0.0
                sxy = 0.0
                for k in range(lo, t + 1):
                    a = x[s, k]
                    b = y[s, k]
                    if a == a and b == b:
                        da = a - mx
                        db = b - my
                        sxx += da * da
                        syy += db * db
                        sxy += da * db
                if kind == 0:
                    res = sxy / (n - 1)
                elif sxx > 0 and syy > 0:
                    res = sxy / math.sqrt(sxx * syy)
                    # Qlib's mask uses each series' own valid values, not the paired ones.
                    mox = ox / nx
                    moy = oy / ny
                    vx = 0.0
                    vy = 0.0
                    for k in range(lo, t + 1):
                        a = x[s, k]
                        b = y[s, k]
                        if a == a:
                            vx += (a - mox) * (a - mox)
                        if b == b:
                            vy += (b - moy) * (b - moy)
                    if math.sqrt(vx / (nx - 1)) <= STD_EPS or math.sqrt(vy / (ny - 1)) <= STD_EPS:
                        res = np.nan
            out[s, t] = res
    return out
