"""LightGBM ranker-by-regression on cross-sectional ranks, with a time-ordered validation split."""

from __future__ import annotations

from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import pandas as pd

from quant_assets.models.metrics import daily_rank_ic


@dataclass
class FitResult:
    """The fitted model, its summary metrics and params, its learning curves (metric name ->
    one value per boosting round, e.g. `train_l2`, `valid_l2`) and its feature importance."""

    model: lgb.LGBMRegressor
    metrics: dict[str, float]
    params: dict[str, object]
    curves: dict[str, list[float]] = field(default_factory=dict)
    importance: pd.DataFrame = field(default_factory=pd.DataFrame)


def learning_curves(evals_result: dict[str, dict[str, list[float]]]) -> dict[str, list[float]]:
    """LightGBM's `evals_result_` ({set: {metric: values}}) flattened to `{set}_{metric}`."""
    return {
        f"{dataset}_{metric}": [float(v) for v in values]
        for dataset, by_metric in evals_result.items()
        for metric, values in by_metric.items()
    }


def feature_importance(booster: lgb.Booster) -> pd.DataFrame:
    """Splits and total gain per feature, largest gain first: splits say how often a feature
    is used, gain how much it improved the fit (the better guide to what the model learned)."""
    names = booster.feature_name()
    table = pd.DataFrame(
        {
            "splits": booster.feature_importance("split").astype(int),
            "gain": booster.feature_importance("gain"),
        },
        index=pd.Index(names, name="feature"),
    )
    return table.sort_values(["gain", "splits"], ascending=False)


def fit_lgbm(
    X: pd.DataFrame, y: pd.Series, *, valid_share: float = 0.2, seed: int = 0, **overrides
) -> FitResult:
    """Fit on the earlier dates, early-stop and score on the latest `valid_share` of dates.

    The split is by date, never at random: rows of one day are correlated, and a random split
    would leak each day's market move into validation. The training rows are evaluated too
    (from LightGBM's running scores, nearly free) so the curves show train against valid;
    early stopping watches the validation rows only.
    """
    dates = X.index.get_level_values("date")
    unique = np.sort(dates.unique())
    n_valid = max(1, int(round(len(unique) * valid_share)))
    if len(unique) - n_valid < 2:
        raise ValueError(f"need at least {n_valid + 2} dates of training data, got {len(unique)}")
    cut = unique[-n_valid]
    train, valid = dates < cut, dates >= cut
    params: dict[str, object] = dict(
        n_estimators=300,
        learning_rate=0.05,
        num_leaves=15,
        min_child_samples=50,
        subsample=0.8,
        subsample_freq=1,
        colsample_bytree=0.8,
        reg_lambda=1.0,
        random_state=seed,
        n_jobs=2,
        verbose=-1,
    )
    params.update(overrides)
    model = lgb.LGBMRegressor(**params)
    X_train, y_train = X[train], y[train]
    model.fit(
        X_train,
        y_train,
        # the very training objects: LightGBM then reuses the training Dataset as "train"
        eval_X=(X_train, X[valid]),
        eval_y=(y_train, y[valid]),
        eval_names=["train", "valid"],
        callbacks=[lgb.early_stopping(30, verbose=False)],
    )
    valid_ic = daily_rank_ic(pd.Series(model.predict(X[valid]), index=X.index[valid]), y[valid])
    metrics = {
        "train_rows": float(train.sum()),
        "valid_rows": float(valid.sum()),
        "train_dates": float(len(unique) - n_valid),
        "best_iteration": float(model.best_iteration_ or params["n_estimators"]),
        "valid_rank_ic": float(valid_ic.mean()),
        "valid_rank_icir": float(valid_ic.mean() / valid_ic.std()) if len(valid_ic) > 1 else 0.0,
    }
    return FitResult(
        model=model,
        metrics=metrics,
        params=params,
        curves=learning_curves(model.evals_result_),
        importance=feature_importance(model.booster_),
    )
