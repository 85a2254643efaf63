"""Screening many factors at once: daily rank IC against a label, and the active-set rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
from numba import njit, prange
from scipy import stats


@njit(cache=True, nogil=True)
def _average_ranks(v: np.ndarray) -> np.ndarray:  # pragma: no cover - jit
    """1-based ranks with ties sharing their average rank (pandas' rank())."""
    order = np.argsort(v)  # quicksort: tied values get their average rank whatever their order
    ranks = np.empty(len(v))
    i = 0
    while i < len(v):
        j = i
        while j + 1 < len(v) and v[order[j + 1]] == v[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


@njit(cache=True)
def _label_ranks(y, starts):  # pragma: no cover - jit
    """Each date's ranks of the finite labels (NaN elsewhere): shared by every factor that has
    a value wherever the label has one (most factors on most dates)."""
    out = np.full(len(y), np.nan)
    for d in range(len(starts) - 1):
        a, b = starts[d], starts[d + 1]
        idx = np.empty(b - a, np.int64)
        m = 0
        for i in range(a, b):
            if np.isfinite(y[i]):
                idx[m] = i
                m += 1
        if m:
            r = _average_ranks(y[idx[:m]])
            for k in range(m):
                out[idx[k]] = r[k]
    return out


@njit(cache=True, parallel=True)
def _rank_ic(x, y, starts, min_names):  # pragma: no cover - jit
    n_dates = len(starts) - 1
    out = np.full((n_dates, x.shape[1]), np.nan)
    shared = _label_ranks(y, starts)
    for f in prange(x.shape[1]):
        for d in range(n_dates):
            a, b = starts[d], starts[d + 1]
            xs = np.empty(b - a)
            ys = np.empty(b - a)
            rs = np.empty(b - a)
            m = 0
            n_y = 0
            for i in range(a, b):
                if np.isfinite(y[i]):
                    n_y += 1
                    if np.isfinite(x[i, f]):
                        xs[m] = x[i, f]
                        ys[m] = y[i]
                        rs[m] = shared[i]
                        m += 1
            if m < max(min_names, 2):
                continue
            rx = _average_ranks(xs[:m])
            # pairs complete per factor: the label's own ranks only when no label was left out
            ry = rs[:m] if m == n_y else _average_ranks(ys[:m])
            mx = rx.mean()
            my = ry.mean()
            sxy = 0.0
            sxx = 0.0
            syy = 0.0
            for k in range(m):
                sxy += (rx[k] - mx) * (ry[k] - my)
                sxx += (rx[k] - mx) ** 2
                syy += (ry[k] - my) ** 2
            if sxx > 0 and syy > 0:
                out[d, f] = sxy / np.sqrt(sxx * syy)
    return out


def rank_ic_table(features: pd.DataFrame, label: pd.Series, min_names: int = 10) -> pd.DataFrame:
    """Spearman rank IC of every feature column with `label` on each date (dates x factors).

    Pairs are complete per factor (a symbol missing the factor or the label, or with an
    infinite value, is left out of that factor's ranks), as alphalens does; ties share their
    average rank; dates with fewer than `min_names` pairs, or a constant side, give NaN. One
    numba pass sorts each (date, factor) cross-section once, factors in parallel, and ranks a
    date's labels once for all the factors that leave none of them out.
    """
    dates = features.index.get_level_values("date").to_numpy()
    x = features.to_numpy(dtype=np.float64)
    y = label.reindex(features.index).to_numpy(dtype=np.float64)
    if len(dates) > 1 and not (dates[1:] >= dates[:-1]).all():
        order = np.argsort(dates, kind="stable")
        dates, x, y = dates[order], x[order], y[order]
    x = np.asfortranarray(x)  # one factor's column contiguous: a kernel thread walks it
    codes, uniques = pd.factorize(dates, sort=True)
    starts = np.searchsorted(codes, np.arange(len(uniques) + 1))
    table = pd.DataFrame(
        _rank_ic(x, y, starts, min_names) if len(x) else np.empty((0, x.shape[1])),
        index=pd.DatetimeIndex(uniques, name="date"),
        columns=features.columns,
    )
    return table


def screen(
    ic: pd.DataFrame, threshold: float, min_t: float = 2.0, min_days: int = 20
) -> pd.DataFrame:
    """Summary per factor (mean, std, ICIR, t-stat, p-value of the daily rank IC) and whether it
    is active: |mean rank IC| above `threshold`, |t| above `min_t`, over at least `min_days`.

    The sign is kept: a factor with a reliably negative IC is as useful as a positive one,
    the model learns the direction.
    """
    n = ic.count()
    mean = ic.mean()
    std = ic.std(ddof=1)
    t = mean / (std / np.sqrt(n))
    p = pd.Series(2 * stats.t.sf(np.abs(t.fillna(0)), df=np.maximum(n - 1, 1)), index=ic.columns)
    summary = pd.DataFrame(
        {
            "rank_ic_mean": mean,
            "rank_ic_std": std,
            "icir": mean / std,
            "t_stat": t,
            "p_value": p.where(n > 1),
            "n_days": n.astype("int64"),
        }
    )
    summary["active"] = (
        (summary["rank_ic_mean"].abs() > threshold)
        & (summary["t_stat"].abs() > min_t)
        & (summary["n_days"] >= min_days)
    )
    summary.index.name = "factor"
    return summary.sort_values("t_stat", key=np.abs, ascending=False)


def quality(values: pd.DataFrame, expected_symbols: int) -> pd.DataFrame:
    """Per factor for one day (rows date, symbol and one column per factor): coverage of the
    expected symbols, NaN share, and whether the cross-section is constant."""
    x = values.drop(columns=[c for c in ("date", "symbol") if c in values.columns])
    x = x.astype("float64")
    out = pd.DataFrame(
        {
            "coverage": x.notna().sum() / max(expected_symbols, 1),
            "nan_share": x.isna().mean() if len(x) else pd.Series(1.0, index=x.columns),
            "std": x.std(),
        }
    )
    out["constant"] = out["std"].fillna(0) == 0
    out.index.name = "factor"
    return out
