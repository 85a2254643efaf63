"""The daily LightGBM fit: a time-ordered split, a planted signal found out of sample, and a
noise target that is not."""

import numpy as np
import pandas as pd

from quant_assets.models.dataset import cross_sectional_rank
from quant_assets.models.lgbm import fit_lgbm


def _data(signal: float, seed: int = 0, n_dates: int = 40, n_symbols: int = 200):
    rng = np.random.default_rng(seed)
    idx = pd.MultiIndex.from_product(
        [pd.bdate_range("2024-01-01", periods=n_dates), [f"S{i}" for i in range(n_symbols)]],
        names=["date", "symbol"],
    )
    X = pd.DataFrame(rng.normal(size=(len(idx), 5)), index=idx, columns=list("abcde"))
    y = signal * X["a"] - signal * 0.5 * X["b"] + rng.normal(size=len(idx))
    return X, cross_sectional_rank(y)


def test_a_planted_signal_is_found_on_the_later_dates():
    X, y = _data(signal=0.5)
    fit = fit_lgbm(X, y, seed=1)
    assert fit.metrics["train_dates"] == 32  # the last 20% of the dates validate
    assert fit.metrics["valid_rows"] == 8 * 200
    assert fit.metrics["valid_rank_ic"] > 0.2
    assert fit.metrics["best_iteration"] > 10
    importance = pd.Series(fit.model.feature_importances_, index=X.columns)
    assert importance.idxmax() in {"a", "b"}


def test_noise_gives_no_out_of_sample_skill():
    X, y = _data(signal=0.0, seed=3)
    fit = fit_lgbm(X, y, seed=1)
    assert abs(fit.metrics["valid_rank_ic"]) < 0.05


def test_the_fit_is_reproducible_with_its_seed():
    X, y = _data(signal=0.3, seed=5)
    a = fit_lgbm(X, y, seed=7).model.predict(X.head(50))
    b = fit_lgbm(X, y, seed=7).model.predict(X.head(50))
    np.testing.assert_array_equal(a, b)


def test_learning_curves_show_train_and_valid_per_round_and_stop_where_valid_is_best():
    X, y = _data(signal=0.5)
    fit = fit_lgbm(X, y, seed=1)
    assert set(fit.curves) == {"train_l2", "valid_l2"}
    train, valid = np.array(fit.curves["train_l2"]), np.array(fit.curves["valid_l2"])
    best = int(fit.metrics["best_iteration"])
    # early stopping ran 30 rounds past the best one, judged on the valid rows only
    assert len(train) == len(valid) == best + 30
    assert int(np.argmin(valid)) + 1 == best
    # the train error keeps falling past the round where the valid error is lowest
    assert train[-1] < train[best - 1] < train[0] and valid[best - 1] < valid[0]


def test_feature_importance_has_splits_and_gain_largest_gain_first():
    X, y = _data(signal=0.5)
    fit = fit_lgbm(X, y, seed=1)
    table = fit.importance
    assert list(table.columns) == ["splits", "gain"] and table.index.name == "feature"
    assert sorted(table.index) == list("abcde")
    assert table["gain"].is_monotonic_decreasing and table.index[0] == "a"
    np.testing.assert_array_equal(
        table["splits"].reindex(X.columns), fit.model.feature_importances_
    )
