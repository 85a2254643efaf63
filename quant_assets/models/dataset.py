"""Training and scoring frames for the daily cross-sectional models, free of look-ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd

from quant_assets.factors.screening import rank_ic_table


def cross_sectional_rank(values: pd.Series) -> pd.Series:
    """Per-date percentile rank centred on zero: the usual target of a stock-selection model,
    insensitive to the market's level and to outliers."""
    return values.groupby(level="date").rank(pct=True) - 0.5


def training_frame(
    features: pd.DataFrame, label: pd.Series, day: pd.Timestamp
) -> tuple[pd.DataFrame, pd.Series]:
    """Rows strictly before `day` whose label is known, with the ranked label as target.

    `label` is indexed by (date, symbol) of the day it belongs to; it holds only labels known
    by `day` when read from the label partitions up to `day`."""
    joined = features.join(label.rename("__label__"), how="inner")
    joined = joined[joined.index.get_level_values("date") < day]
    joined = joined[np.isfinite(joined["__label__"])]
    target = cross_sectional_rank(joined["__label__"])
    return joined.drop(columns="__label__"), target.rename("label")


def daily_rank_ic(score: pd.Series, label: pd.Series) -> pd.Series:
    """Spearman correlation between score and label on each date (pairwise complete)."""
    return rank_ic_table(score.rename("score").to_frame(), label, min_names=2)["score"]
