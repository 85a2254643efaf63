"""Screening many factors at once: daily rank IC against a label, and the active-set rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from quant_assets.factors.evaluation import by_date_corr


def rank_ic_table(features: pd.DataFrame, label: pd.Series, min_names: int = 10) -> pd.DataFrame:
    """Spearman rank IC of every feature column with `label` on each date (dates x factors).

    Pairs are complete per factor (a symbol missing the factor or the label is left out of that
    factor's ranks), as alphalens does; dates with fewer than `min_names` pairs give NaN.
    Vectorised per factor with grouped sums (`evaluation.by_date_corr`) instead of a per-date
    Python loop.
    """
    y = label.reindex(features.index)
    dates = features.index.get_level_values("date")
    out = {}
    for name in features.columns:
        x = features[name]
        ok = y.notna().to_numpy() & np.isfinite(x.to_numpy(dtype=float))
        if not ok.any():
            out[name] = pd.Series(dtype=float)
            continue
        frame = pd.DataFrame({"x": x[ok].to_numpy(), "y": y[ok].to_numpy()}, index=dates[ok])
        ranks = frame.groupby(level=0).rank()
        ic = by_date_corr(ranks["x"], ranks["y"])
        out[name] = ic.where(ranks.groupby(level=0).size() >= min_names)
    table = pd.DataFrame(out)
    table.index.name = "date"
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
    """Per factor for one day (long rows date, symbol, factor, value): coverage of the expected
    symbols, NaN share, and whether the cross-section is constant."""
    g = values.groupby("factor")["value"]
    out = pd.DataFrame(
        {
            "coverage": g.count() / max(expected_symbols, 1),
            "nan_share": g.apply(lambda v: float(v.isna().mean())),
            "std": g.std(),
        }
    )
    out["constant"] = out["std"].fillna(0) == 0
    return out
