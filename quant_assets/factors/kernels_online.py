"""O(1)-per-step rolling kernels over (symbols, dates) panels, for the hot Alpha158 operators.

Same semantics as the direct O(N) kernels in ``kernels.py`` (pandas ``rolling(N,
min_periods=1)`` as Qlib uses it: NaNs skipped, partial first windows), which stay the
reference implementations the tests compare these against. Numerical tricks:

* Running sums are of *shifted* values ``v - K`` with ``K`` the window's latest valid value, so centred sums such as ``sum(d^2) - sum(d)^2 / n`` do not cancel catastrophically
  when the mean is large relative to the spread (the shifted-data variance algorithm).
* Every N dates the sums (and ``K``) are recomputed from scratch over the window, so
  rounding drift never spans more than two windows.
* As pandas does, a window whose valid values are all equal has variance exactly 0: the
  length of the current run of equal values is tracked, instead of trusting ``s2 - s1^2/n``
  to cancel to exactly zero.
"""

from __future__ import annotations

import math

import numpy as np

from .kernels import _JIT, STD_EPS, njit, prange


@njit(cache=True)
def _last_valid(x, s, lo, t):
    """The latest valid value of x[s, lo..t] (0 if none): the shift for the running sums,
    the best guess of where the coming windows are centred (prices trend)."""
    for k in range(t, lo - 1, -1):
        if x[s, k] == x[s, k]:
            return x[s, k]
    return 0.0


@njit(**_JIT)
def roll_var(x, n_win, kind):
    """kind 0 variance, 1 standard deviation (ddof=1); NaN with fewer than 2 valid values."""
    S, T = x.shape
    out = np.empty((S, T))
    for s in prange(S):
        refresh = 0
        shift = 0.0
        n = 0
        s1 = 0.0
        s2 = 0.0
        run = 0  # valid values in the current run of equal values
        last = np.nan
        for t in range(T):
            v = x[s, t]
            if v == v:
                run = run + 1 if v == last else 1
                last = v
            if t == refresh:
                refresh = t + n_win  # exact recomputation every N dates (t % N == 0)
                # exact recomputation over the window, re-anchored on its latest valid value
                lo = max(0, t - n_win + 1)
                shift = _last_valid(x, s, lo, t)
                n = 0
                s1 = 0.0
                s2 = 0.0
                for k in range(lo, t + 1):
                    w = x[s, k]
                    if w == w:
                        d = w - shift
                        n += 1
                        s1 += d
                        s2 += d * d
            else:
                if v == v:
                    if n == 0:  # empty window: re-anchor on the value that enters
                        shift = v
                        s1 = 0.0
                        s2 = 0.0
                    d = v - shift
                    n += 1
                    s1 += d
                    s2 += d * d
                if t >= n_win:
                    old = x[s, t - n_win]
                    if old == old:
                        d = old - shift
                        n -= 1
                        s1 -= d
                        s2 -= d * d
            if n < 2:
                out[s, t] = np.nan
                continue
            var = 0.0 if run >= n else max((s2 - s1 * s1 / n) / (n - 1), 0.0)
            out[s, t] = math.sqrt(var) if kind == 1 else var
    return out


@njit(**_JIT)
def roll_pair(x, y, n_win, kind):
    """kind 0 covariance, 1 correlation over the dates where both are valid (ddof=1).

    Correlation is NaN where either input's own window std is <= 2e-5 (Qlib's mask, over
    each series' own valid values) or where a paired window is constant."""
    S, T = x.shape
    out = np.empty((S, T))
    for s in prange(S):
        refresh = 0
        kx = 0.0
        ky = 0.0
        # paired sums (both valid) of shifted values, and each series' own sums
        n = 0
        sa = 0.0
        sb = 0.0
        saa = 0.0
        sbb = 0.0
        sab = 0.0
        nx = 0
        ox = 0.0
        oxx = 0.0
        ny = 0
        oy = 0.0
        oyy = 0.0
        # runs of equal values: paired a, paired b, own x, own y
        run_a = 0
        run_b = 0
        run_x = 0
        run_y = 0
        last_a = np.nan
        last_b = np.nan
        last_x = np.nan
        last_y = np.nan
        for t in range(T):
            a = x[s, t]
            b = y[s, t]
            if a == a:
                run_x = run_x + 1 if a == last_x else 1
                last_x = a
            if b == b:
                run_y = run_y + 1 if b == last_y else 1
                last_y = b
            if a == a and b == b:
                run_a = run_a + 1 if a == last_a else 1
                last_a = a
                run_b = run_b + 1 if b == last_b else 1
                last_b = b
            if t == refresh:
                refresh = t + n_win  # exact recomputation every N dates (t % N == 0)
                lo = max(0, t - n_win + 1)
                n = 0
                sa = 0.0
                sb = 0.0
                saa = 0.0
                sbb = 0.0
                sab = 0.0
                nx = 0
                ox = 0.0
                oxx = 0.0
                ny = 0
                oy = 0.0
                oyy = 0.0
                kx = _last_valid(x, s, lo, t)
                ky = _last_valid(y, s, lo, t)
                for k in range(lo, t + 1):
                    p = x[s, k]
                    q = y[s, k]
                    if p == p:
                        nx += 1
                        ox += p - kx
                        oxx += (p - kx) * (p - kx)
                    if q == q:
                        ny += 1
                        oy += q - ky
                        oyy += (q - ky) * (q - ky)
                    if p == p and q == q:
                        n += 1
                        sa += p - kx
                        sb += q - ky
                        saa += (p - kx) * (p - kx)
                        sbb += (q - ky) * (q - ky)
                        sab += (p - kx) * (q - ky)
            else:
                # an empty window re-anchors on the value that enters (all its sums restart)
                if a == a and nx == 0:
                    kx = a
                    ox = 0.0
                    oxx = 0.0
                if b == b and ny == 0:
                    ky = b
                    oy = 0.0
                    oyy = 0.0
                if a == a and b == b and n == 0:
                    sa = 0.0
                    sb = 0.0
                    saa = 0.0
                    sbb = 0.0
                    sab = 0.0
                for sign in (1, -1):
                    if sign == 1:
                        p = a
                        q = b
                    elif t >= n_win:
                        p = x[s, t - n_win]
                        q = y[s, t - n_win]
                    else:
                        break
                    dp = p - kx
                    dq = q - ky
                    if p == p:
                        nx += sign
                        ox += sign * dp
                        oxx += sign * dp * dp
                    if q == q:
                        ny += sign
                        oy += sign * dq
                        oyy += sign * dq * dq
                    if p == p and q == q:
                        n += sign
                        sa += sign * dp
                        sb += sign * dq
                        saa += sign * dp * dp
                        sbb += sign * dq * dq
                        sab += sign * dp * dq
            res = np.nan
            if n >= 2:
                const_a = run_a >= n
                const_b = run_b >= n
                sxy = 0.0 if const_a or const_b else sab - sa * sb / n
                if kind == 0:
                    res = sxy / (n - 1)
                elif not (const_a or const_b):
                    sxx = saa - sa * sa / n
                    syy = sbb - sb * sb / n
                    if sxx > 0 and syy > 0:
                        res = sxy / math.sqrt(sxx * syy)
                        vx = 0.0 if run_x >= nx else max(oxx - ox * ox / nx, 0.0) / (nx - 1)
                        vy = 0.0 if run_y >= ny else max(oyy - oy * oy / ny, 0.0) / (ny - 1)
                        if math.sqrt(vx) <= STD_EPS or math.sqrt(vy) <= STD_EPS:
                            res = np.nan
            out[s, t] = res
    return out


@njit(**_JIT)
def roll_reg(x, n_win, codes):
    """Regression of the window on time positions 1..N (last date = N), NaNs skipped.

    ``out[j]`` is statistic ``codes[j]``: 0 slope, 1 R-squared (NaN where the window's std
    <= 2e-5, as Qlib), 2 residual of the current date; one pass serves all three. Positions
    are summed relative to an anchor date, so their sums are small exact integers. Qlib does
    not treat +-inf as missing here: a window holding one is evaluated directly by
    ``_reg_window`` (same arithmetic as the reference kernel)."""
    S, T = x.shape
    out = np.empty((len(codes), S, T))
    for s in prange(S):
        refresh = 0
        anchor = 0
        ky = 0.0
        n = 0
        sq = 0.0
        sqq = 0.0
        sy = 0.0
        syy = 0.0
        sqy = 0.0
        run = 0
        last = np.nan
        bad = 0  # infinities in the window
        dirty = False  # sums invalid (an infinity passed through): recompute when clean
        for t in range(T):
            v = x[s, t]
            if v == v:
                run = run + 1 if v == last else 1
                last = v
                if math.isinf(v):
                    bad += 1
            if t >= n_win:
                old = x[s, t - n_win]
                if math.isinf(old):
                    bad -= 1
            if bad > 0:
                dirty = True
                for j in range(len(codes)):
                    out[j, s, t] = _reg_window(x, s, max(0, t - n_win + 1), t, n_win, codes[j])
                continue
            if t == refresh or dirty:
                refresh = t + n_win  # exact recomputation every N dates (t % N == 0)
                dirty = False
                lo = max(0, t - n_win + 1)
                anchor = t
                n = 0
                sq = 0.0
                sqq = 0.0
                sy = 0.0
                syy = 0.0
                sqy = 0.0
                ky = _last_valid(x, s, lo, t)
                for k in range(lo, t + 1):
                    w = x[s, k]
                    if w == w:
                        q = float(k - anchor)
                        d = w - ky
                        n += 1
                        sq += q
                        sqq += q * q
                        sy += d
                        syy += d * d
                        sqy += q * d
            else:
                if v == v and n == 0:  # empty window: re-anchor on the value that enters
                    ky = v
                    sq = 0.0
                    sqq = 0.0
                    sy = 0.0
                    syy = 0.0
                    sqy = 0.0
                if v == v:
                    q = float(t - anchor)
                    d = v - ky
                    n += 1
                    sq += q
                    sqq += q * q
                    sy += d
                    syy += d * d
                    sqy += q * d
                if t >= n_win:
                    old = x[s, t - n_win]
                    if old == old:
                        q = float(t - n_win - anchor)
                        d = old - ky
                        n -= 1
                        sq -= q
                        sqq -= q * q
                        sy -= d
                        syy -= d * d
                        sqy -= q * d
            if n < 2:
                for j in range(len(codes)):
                    out[j, s, t] = np.nan
                continue
            const = run >= n
            sxx = sqq - sq * sq / n
            sxy = 0.0 if const else sqy - sq * sy / n
            slope = sxy / sxx
            for j in range(len(codes)):
                kind = codes[j]
                if kind == 0:
                    res = slope
                elif kind == 1:
                    res = np.nan
                    syc = 0.0 if const else max(syy - sy * sy / n, 0.0)
                    if math.sqrt(syc / (n - 1)) > STD_EPS:
                        res = sxy * sxy / (sxx * syc)
                else:
                    # mean position on the 1..N scale: positions p = k - (t - N)
                    mp = sq / n + anchor - (t - n_win)
                    res = v - (sy / n + ky + slope * (n_win - mp))
                out[j, s, t] = res
    return out


@njit(cache=True)
def _reg_window(x, s, lo, t, n_win, kind):
    """One regression window evaluated directly (two passes), as ``kernels.roll_reg``."""
    base = t - n_win
    n = 0
    sp = 0.0
    sy = 0.0
    for k in range(lo, t + 1):
        v = x[s, k]
        if v == v:
            n += 1
            sp += k - base
            sy += v
    if n < 2:
        return np.nan
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
        return slope
    if kind == 1:
        return sxy * sxy / (sxx * syy) if math.sqrt(syy / (n - 1)) > STD_EPS else np.nan
    return x[s, t] - (my + slope * (n_win - mp))


@njit(**_JIT)
def roll_extreme(x, n_win, is_max, first, codes):
    """Rolling max (``is_max``) or min with monotone deques (O(1) amortised per step).

    ``out[j]`` is statistic ``codes[j]``: 0 the extreme value, 1 its 1-based position in the
    window (Qlib's IdxMax/IdxMin), so Max and IdxMax share one pass. The deque holds the
    window's candidate indices, values non-increasing (max) or non-decreasing (min) from the
    front; equal values are kept, so the front is the earliest extreme, as numpy's argmax.
    As ``np.argmax``, the position is that of the window's first NaN if it holds one (a second
    FIFO keeps the window's NaN dates). Windows start no earlier than the symbol's first
    date ``first[s]``."""
    S, T = x.shape
    out = np.empty((len(codes), S, T))
    for s in prange(S):
        dq = np.empty(T, dtype=np.int64)
        nans = np.empty(T, dtype=np.int64)
        head = 0
        tail = 0
        nhead = 0
        ntail = 0
        for t in range(T):
            lo = max(first[s], t - n_win + 1)
            v = x[s, t]
            if v == v:
                if is_max:
                    while tail > head and x[s, dq[tail - 1]] < v:
                        tail -= 1
                else:
                    while tail > head and x[s, dq[tail - 1]] > v:
                        tail -= 1
                dq[tail] = t
                tail += 1
            else:
                nans[ntail] = t
                ntail += 1
            while head < tail and dq[head] < lo:
                head += 1
            while nhead < ntail and nans[nhead] < lo:
                nhead += 1
            for j in range(len(codes)):
                if head == tail:
                    out[j, s, t] = np.nan
                elif codes[j] == 0:
                    out[j, s, t] = x[s, dq[head]]
                elif nhead < ntail:
                    out[j, s, t] = nans[nhead] - lo + 1
                else:
                    out[j, s, t] = dq[head] - lo + 1
    return out


@njit(cache=True, inline="always")
def _lower_bound(buf, n, v):
    """First index of buf[:n] (sorted) whose value is >= v."""
    lo = 0
    hi = n
    while lo < hi:
        mid = (lo + hi) >> 1
        if buf[mid] < v:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True, inline="always")
def _upper_bound(buf, n, v):
    """First index of buf[:n] (sorted) whose value is > v."""
    lo = 0
    hi = n
    while lo < hi:
        mid = (lo + hi) >> 1
        if buf[mid] <= v:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(**_JIT)
def roll_sorted(x, n_win, codes):
    """``out[j]`` is the linear-interpolated quantile ``codes[j]`` in [0, 1] of the window, or
    for ``codes[j] < 0`` the percentile rank of the current value; one pass serves all.

    Keeps each window's valid values sorted. When one value leaves and one enters, the slot
    of the leaving value is moved towards the entering value's place, shifting only the
    values in between (usually few) instead of deleting and inserting through the buffer.
    Rank is pandas' ``rank(pct=True)``: average rank of ties over the number of valid values;
    the current value's slot is known, so its ties are counted by scanning its neighbours."""
    S, T = x.shape
    out = np.empty((len(codes), S, T))
    for s in prange(S):
        buf = np.empty(n_win)
        n = 0
        for t in range(T):
            v = x[s, t]
            old = x[s, t - n_win] if t >= n_win else np.nan
            vi = -1  # slot of v in buf
            if old == old and v == v:
                i = _lower_bound(buf, n, old)
                if v > old:
                    while i + 1 < n and buf[i + 1] <= v:
                        buf[i] = buf[i + 1]
                        i += 1
                else:
                    while i > 0 and buf[i - 1] > v:
                        buf[i] = buf[i - 1]
                        i -= 1
                buf[i] = v
                vi = i
            else:
                if old == old:
                    i = _lower_bound(buf, n, old)
                    for j in range(i, n - 1):
                        buf[j] = buf[j + 1]
                    n -= 1
                if v == v:
                    i = _upper_bound(buf, n, v)
                    for j in range(n, i, -1):
                        buf[j] = buf[j - 1]
                    buf[i] = v
                    n += 1
                    vi = i
            for j in range(len(codes)):
                q = codes[j]
                if n == 0:
                    out[j, s, t] = np.nan
                elif q >= 0:
                    pos = q * (n - 1)
                    lo = int(math.floor(pos))
                    if lo >= n - 1:
                        out[j, s, t] = buf[n - 1]
                    elif pos == lo:
                        out[j, s, t] = buf[lo]
                    else:
                        out[j, s, t] = buf[lo] + (buf[lo + 1] - buf[lo]) * (pos - lo)
                elif vi < 0:
                    out[j, s, t] = np.nan
                else:
                    less = vi
                    while less > 0 and buf[less - 1] == v:
                        less -= 1
                    leq = vi + 1
                    while leq < n and buf[leq] == v:
                        leq += 1
                    out[j, s, t] = (less + 1 + leq) / 2.0 / n
    return out


@njit(**_JIT)
def scatter_into(out, col, panel, pos):
    """out[pos[s, d], col] = panel[s, d] wherever pos >= 0, cast to out's dtype.

    The output rows are date-major and the panel symbol-major, so this is a transpose. It
    runs over tiles of 64 dates (in parallel): within a tile the output rows are written in
    order while the panel rows read stay in cache (64 dates = 8 cache lines per symbol),
    instead of one cache miss per element."""
    S, T = panel.shape
    tile = 64
    for b in prange((T + tile - 1) // tile):
        for d in range(b * tile, min(T, (b + 1) * tile)):
            for s in range(S):
                r = pos[s, d]
                if r >= 0:
                    out[r, col] = panel[s, d]


@njit(**_JIT)
def transpose_into(out, col, panel, d0, row0, stride):
    """out[row0 + (d - d0) * stride + s, col] = panel[s, d] for every date d >= d0.

    ``scatter_into`` for a panel whose every cell has an output row, laid out date-major
    with ``stride`` symbols per date (the usual dense grid): no position table to read."""
    S, T = panel.shape
    tile = 64
    for b in prange((T - d0 + tile - 1) // tile):
        for d in range(d0 + b * tile, min(T, d0 + (b + 1) * tile)):
            r = row0 + (d - d0) * stride
            for s in range(S):
                out[r + s, col] = panel[s, d]
