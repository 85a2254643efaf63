"""Training and scoring frames for the daily cross-sectional models, free of look-ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd

from quant_assets.factors.screening import rank_ic_table


def next_day_labels(adjusted: pd.DataFrame) -> pd.Series:
    """Label of (t, symbol): the adjusted close-to-close return of the symbol's next stored day.

    It is NaN on the last stored day, so a frame read up to day D never labels D: labels of
    t are only known at the close of t+1.
    """
    df = adjusted.sort_values(["symbol", "date"])
    label = df.groupby("symbol")["ret1"].shift(-1)
    return pd.Series(label.to_numpy(), index=pd.MultiIndex.from_frame(df[["date", "symbol"]]))


def cross_sectional_rank(values: pd.Series) -> pd.Series:
    """Per-date percentile rank centred on zero: the usual target of a stock-selection model,
    insensitive to the market's level and to outliers."""
    return values.groupby(level="date").rank(pct=True) - 0.5


def training_frame(
    features: pd.DataFrame, labels: pd.Series, day: pd.Timestamp
) -> tuple[pd.DataFrame, pd.Series]:
    """Rows strictly before `day` whose label is known, with the ranked label as target."""
    joined = features.join(labels.rename("label"), how="inner")
    joined = joined[joined.index.get_level_values("date") < day]
    joined = joined[np.isfinite(joined["label"])]
    target = cross_sectional_rank(joined["label"])
    return joined.drop(columns="label"), target


def daily_rank_ic(score: pd.Series, label: pd.Series) -> pd.Series:
    """Spearman correlation between score and label on each date (pairwise complete)."""
    return rank_ic_table(score.rename("score").to_frame(), label, min_names=2)["score"]
