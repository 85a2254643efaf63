"""Feature and label processing fitted on the training window only (Qlib's processors, with
Qlib's defaults so results compare).

Trees (Qlib's Alpha158 handler default): features as they are; the label per date z-scored.
Networks (Qlib's neural-network configs): a robust z-score of every feature with the median
and MAD of the training rows, clipped at 3, missing values filled with 0; the label ranked
per date. Per-date transforms of the label use one date's cross-section only, so they leak
nothing across dates; the feature statistics come from the training rows alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from quant_assets.models.base import Validation, Wrapper, ZooModel

MAD_TO_STD = 1.4826  # the MAD of a normal distribution times this is its standard deviation
CLIP = 3.0


def cs_zscore(label: pd.Series) -> pd.Series:
    """Per-date z-score (Qlib's CSZScoreNorm); a date with one name or no spread gives NaN."""
    by = label.groupby(level="date")
    return (label - by.transform("mean")) / by.transform("std")


def cs_rank(label: pd.Series) -> pd.Series:
    """Per-date percentile rank scaled to unit variance (Qlib's CSRankNorm: a uniform on
    [-0.5, 0.5] times 3.46 has standard deviation 1)."""
    return (label.groupby(level="date").rank(pct=True) - 0.5) * 3.46


LABEL_NORMS = {"zscore": cs_zscore, "rank": cs_rank, "none": lambda s: s}


@dataclass
class RobustZScore:
    """Median/MAD scaling fitted on training rows, clipped at +-3, NaN filled with 0 when
    `fill` (the networks cannot read NaN; trees can, and route it themselves)."""

    clip: float = CLIP
    fill: bool = True

    def fit(self, X: pd.DataFrame) -> RobustZScore:
        values = X.to_numpy(np.float64)
        with np.errstate(all="ignore"):
            self.median_ = np.nanmedian(values, axis=0)
            mad = np.nanmedian(np.abs(values - self.median_), axis=0) * MAD_TO_STD
        self.scale_ = np.where(np.isfinite(mad) & (mad > 1e-12), mad, 1.0)
        self.median_ = np.where(np.isfinite(self.median_), self.median_, 0.0)
        self.columns_ = list(X.columns)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        if list(X.columns) != self.columns_:
            raise ValueError("features differ from those the scaling was fitted on")
        values = (X.to_numpy(np.float32) - self.median_.astype(np.float32)) / self.scale_.astype(
            np.float32
        )
        values = np.clip(values, -self.clip, self.clip)
        if self.fill:
            values = np.nan_to_num(values, nan=0.0, posinf=self.clip, neginf=-self.clip)
        return pd.DataFrame(values, index=X.index, columns=X.columns)


class Processed(Wrapper):
    """A zoo model behind its feature scaling: fits the scaling on the training rows, then the
    model on scaled features, so every member of an ensemble reads the same raw panel."""

    def __init__(self, model: ZooModel, scaling: RobustZScore | None = None) -> None:
        self.model = model
        self.scaling = scaling

    def fit(self, X: pd.DataFrame, y: pd.Series, valid: Validation | None = None) -> Processed:
        if self.scaling is None:
            self.scaling_ = None
            self.model.fit(X, y, valid)
        else:
            rows = np.isfinite(y.to_numpy(np.float64))
            self.scaling_ = RobustZScore(self.scaling.clip, self.scaling.fill).fit(X[rows])
            scaled_valid = (self.scaling_.transform(valid[0]), valid[1]) if valid else None
            self.model.fit(self.scaling_.transform(X), y, scaled_valid)
        self._adopt_fitted()
        return self

    def predict(self, X: pd.DataFrame) -> pd.Series:
        """Scores from the columns the model was fitted on (an ensemble's members may read
        fewer than the panel it is given)."""
        X = X[list(self.feature_names_in_)]
        return self.model.predict(self.scaling_.transform(X) if self.scaling_ else X)
