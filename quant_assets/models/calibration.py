"""Scores turned into probabilities: the chance that a name ends its date in the top quintile
of the realised target, by isotonic regression fitted on validation rows only.

A model's score ranks names but says nothing of how likely a pick is to pay off; isotonic
regression maps the score to the observed top-quintile frequency while keeping the order
(a higher score never gets a lower probability), with no shape assumed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression

from quant_assets.models.base import Validation, Wrapper, ZooModel
from quant_assets.models.dataset import top_quintile

TOP_SHARE = 0.2


class Calibrator:
    """Isotonic map from score to P(target in its date's top `share`), clipped to [0, 1]."""

    def __init__(self, share: float = TOP_SHARE) -> None:
        self.share = share

    def fit(self, scores: pd.Series, target: pd.Series) -> Calibrator:
        """Fit on the rows where both the score and the target are finite (the validation
        rows; a context row has no target and is left out)."""
        label = top_quintile(target.reindex(scores.index), self.share)
        s = scores.to_numpy(np.float64)
        t = label.to_numpy(np.float64)
        rows = np.isfinite(s) & np.isfinite(t)
        if not rows.any():
            raise ValueError("no row with both a finite score and a finite target to calibrate")
        self.isotonic_ = IsotonicRegression(
            y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip"
        ).fit(s[rows], t[rows])
        self.base_rate_ = float(t[rows].mean())
        self.n_rows_ = int(rows.sum())
        return self

    def predict(self, scores: pd.Series | np.ndarray) -> np.ndarray:
        """Probabilities for `scores` (NaN where the score is NaN)."""
        s = np.asarray(scores, dtype=np.float64)
        out = np.full(s.shape, np.nan)
        finite = np.isfinite(s)
        out[finite] = np.clip(self.isotonic_.predict(s[finite]), 0.0, 1.0)
        return out


def calibrate(
    scores_valid: pd.Series, target_valid: pd.Series, share: float = TOP_SHARE
) -> Calibrator:
    """A `Calibrator` fitted on validation scores and their realised target."""
    return Calibrator(share).fit(scores_valid, target_valid)


class Calibrated(Wrapper):
    """A single zoo model that also gives a probability: the model is fitted as usual and the
    calibrator on its validation scores, so `predict_frame` matches the ensembles' columns
    (`confidence` is NaN: one model has no members to agree)."""

    def __init__(self, model: ZooModel, share: float = TOP_SHARE) -> None:
        self.model = model
        self.share = share

    def fit(self, X: pd.DataFrame, y: pd.Series, valid: Validation | None = None) -> Calibrated:
        """Fit the model (valid for its early stopping), then the calibrator on `valid`."""
        if valid is None:
            raise ValueError("calibration needs validation rows (valid=(X_valid, y_valid))")
        self.model.fit(X, y, valid)
        self._adopt_fitted()
        self.calibrator_ = calibrate(self.model.predict(valid[0]), valid[1], self.share)
        return self

    def predict(self, X: pd.DataFrame) -> pd.Series:
        return self.model.predict(X)

    def predict_frame(self, X: pd.DataFrame) -> pd.DataFrame:
        """Columns `score`, `probability` (calibrated) and `confidence` (NaN)."""
        score = self.predict(X)
        return pd.DataFrame(
            {"score": score, "probability": self.calibrator_.predict(score), "confidence": np.nan},
            index=X.index,
        )
