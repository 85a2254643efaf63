"""Out-of-sample figures of a score against a label: IC, rank IC, their IRs, top-k excess."""

from __future__ import annotations

import numpy as np
import pandas as pd

from quant_assets.factors.evaluation import by_date_corr
from quant_assets.factors.screening import rank_ic_table


def daily_rank_ic(score: pd.Series, label: pd.Series, min_names: int = 2) -> pd.Series:
    """Spearman correlation of score and label on each date (pairwise complete)."""
    return rank_ic_table(score.rename("score").to_frame(), label, min_names=min_names)["score"]


def daily_ic(score: pd.Series, label: pd.Series) -> pd.Series:
    """Pearson correlation of score and label on each date (pairwise complete)."""
    both = pd.concat([score.rename("s"), label.rename("l")], axis=1, join="inner").dropna()
    return by_date_corr(both["s"], both["l"])


def _ir(series: pd.Series) -> float:
    std = series.std()
    return float(series.mean() / std) if len(series) > 1 and std > 0 else float("nan")


def top_k_excess(score: pd.Series, label: pd.Series, k: int = 50) -> pd.Series:
    """Per date: the mean label of the `k` highest scores minus the mean label of all names
    (the return of an equal-weight top-k book over the equal-weight universe, before costs)."""
    both = pd.concat([score.rename("s"), label.rename("l")], axis=1, join="inner").dropna()
    rank = both["s"].groupby(level="date").rank(ascending=False, method="first")
    top = both.loc[rank <= k, "l"].groupby(level="date").mean()
    return top - both["l"].groupby(level="date").mean()


def score_report(score: pd.Series, label: pd.Series, k: int = 50) -> dict[str, float]:
    """IC, rank IC, ICIR, rank ICIR, the top-k daily excess (mean) and the number of dates."""
    # a date the model cannot rank (a constant score) counts as no skill, not as no date
    ric = daily_rank_ic(score, label).fillna(0.0)
    ic = daily_ic(score, label).reindex(ric.index).fillna(0.0)
    excess = top_k_excess(score, label, k)
    return {
        "ic": float(ic.mean()),
        "icir": _ir(ic),
        "rank_ic": float(ric.mean()),
        "rank_icir": _ir(ric),
        f"top{k}_excess": float(excess.mean()),
        "dates": float(len(ric)),
    }


def score_correlation(a: pd.Series, b: pd.Series) -> float:
    """Mean daily Spearman correlation of two score sets (how alike two models rank)."""
    return float(np.nanmean(daily_rank_ic(a, b).to_numpy()))
