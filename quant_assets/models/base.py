"""The one interface of the model zoo: scikit-learn style, on panels indexed by (date, symbol).

Every family (trees and networks alike) takes its hyperparameters in the constructor and keeps
what it learned in attributes with a trailing underscore after `fit`. The inputs are the
processed feature panel `X` (float columns, index (date, symbol) sorted by date then symbol)
and the target `y` aligned to `X`; a NaN target marks a row that is context only (a sequence
model's look-back days) and is never fitted on or scored against.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

Validation = tuple[pd.DataFrame, pd.Series]


class ZooModel(BaseEstimator):
    """Base of the zoo's families. Subclasses implement `_fit` and `_predict` on arrays.

    After `fit`: `feature_names_in_` (the columns), `feature_importance_` (a Series per
    feature: gain for trees, permutation importance for networks), `curves_` (per-iteration
    metrics such as `train_l2`, `valid_l2`, logged as MLflow steps) and `best_iteration_`
    (the boosting round or epoch early stopping kept; the last one without a validation set).
    `history_days` is how many earlier trading days a row's prediction reads (0 for trees,
    the window length minus one for sequence networks): callers include those days in `X`.
    """

    family: ClassVar[str] = ""
    history_days: ClassVar[int] = 0

    def fit(self, X: pd.DataFrame, y: pd.Series, valid: Validation | None = None) -> ZooModel:
        """Learn from the rows of `X` whose `y` is finite; `valid` (features and target of
        later dates) drives early stopping and nothing else."""
        raise NotImplementedError

    def predict(self, X: pd.DataFrame) -> pd.Series:
        """A score for every row of `X` (higher = expected to outperform), named `score`."""
        raise NotImplementedError


class Wrapper(ZooModel):
    """A zoo model around another (`model`): it has the inner model's family and look-back,
    and after `fit` shows the inner model's learned importance, curves and iterations."""

    model: ZooModel
    FITTED = ("feature_importance_", "curves_", "best_iteration_", "feature_names_in_")

    @property
    def family(self) -> str:  # type: ignore[override]
        return self.model.family

    @property
    def history_days(self) -> int:  # type: ignore[override]
        return self.model.history_days

    def _adopt_fitted(self) -> None:
        """Show the inner model's learned attributes as this model's own."""
        for name in self.FITTED:
            setattr(self, name, getattr(self.model, name))


def target_rows(y: pd.Series) -> np.ndarray:
    """Boolean mask of the rows with a finite target (the rows a model learns from)."""
    return np.isfinite(y.to_numpy(dtype=np.float64))


def check_panel(X: pd.DataFrame, y: pd.Series | None = None) -> None:
    """Refuse a panel a model cannot read: a wrong index, or a target not aligned to it."""
    if list(X.index.names) != ["date", "symbol"]:
        raise ValueError(f"features must be indexed by (date, symbol), got {X.index.names}")
    if y is not None and not y.index.equals(X.index):
        raise ValueError("the target must be aligned to the features (same index, same order)")
