"""The tree families behind the zoo's interface: a planted signal found out of sample, noise
not, reproducible seeds, curves that stop where validation is best, importance by gain."""

import numpy as np
import pandas as pd
import pytest

from quant_assets.models.processing import cs_zscore
from quant_assets.models.zoo import make_model, make_processed

FAMILIES = ["lgbm", "xgb", "rf"]
FAST = {"lgbm": {"min_data_in_leaf": 50}, "xgb": {"min_child_weight": 50.0},
        "rf": {"n_estimators": 60, "min_samples_leaf": 50}}  # fmt: skip


def _data(signal: float, seed: int = 0, n_dates: int = 40, n_symbols: int = 200):
    rng = np.random.default_rng(seed)
    idx = pd.MultiIndex.from_product(
        [pd.bdate_range("2024-01-01", periods=n_dates), [f"S{i}" for i in range(n_symbols)]],
        names=["date", "symbol"],
    )
    X = pd.DataFrame(rng.normal(size=(len(idx), 5)), index=idx, columns=list("abcde"))
    y = cs_zscore(signal * X["a"] - signal * 0.5 * X["b"] + rng.normal(size=len(idx)))
    dates = idx.get_level_values("date")
    train, valid, test = dates < dates[-12 * n_symbols], dates.isin(dates.unique()[-12:-6]), (
        dates >= dates.unique()[-6])  # fmt: skip
    return X, y, train, valid, test


def _ic(model, X, y, rows) -> float:
    score = model.predict(X[rows])
    return float(score.groupby(level="date").corr(y[rows], method="spearman").mean())


@pytest.mark.parametrize("family", FAMILIES)
def test_a_planted_signal_is_found_and_noise_is_not(family):
    X, y, train, valid, test = _data(signal=0.5)
    model = make_model(family, seed=1, **FAST[family]).fit(X[train], y[train], (X[valid], y[valid]))
    assert _ic(model, X, y, test) > 0.2
    assert model.feature_importance_.idxmax() in {"a", "b"}
    Xn, yn, train, valid, test = _data(signal=0.0, seed=3)
    noise = make_model(family, seed=1, **FAST[family]).fit(
        Xn[train], yn[train], (Xn[valid], yn[valid])
    )
    assert abs(_ic(noise, Xn, yn, test)) < 0.08


@pytest.mark.parametrize("family", FAMILIES)
def test_the_fit_is_reproducible_with_its_seed(family):
    X, y, train, valid, _ = _data(signal=0.3, seed=5)
    a = make_model(family, seed=7, **FAST[family]).fit(X[train], y[train], (X[valid], y[valid]))
    b = make_model(family, seed=7, **FAST[family]).fit(X[train], y[train], (X[valid], y[valid]))
    np.testing.assert_array_equal(a.predict(X.head(50)), b.predict(X.head(50)))


@pytest.mark.parametrize("family", ["lgbm", "xgb"])
def test_curves_show_train_and_valid_and_stop_where_valid_is_best(family):
    X, y, train, valid, _ = _data(signal=0.5)
    model = make_model(family, seed=1, early_stopping_rounds=30, **FAST[family])
    model.fit(X[train], y[train], (X[valid], y[valid]))
    (t_name, train_curve), (v_name, valid_curve) = sorted(model.curves_.items())
    assert t_name.startswith("train_") and v_name.startswith("valid_")
    train_curve, valid_curve = np.array(train_curve), np.array(valid_curve)
    best = model.best_iteration_
    assert len(valid_curve) == best + 30  # 30 rounds past the best one, judged on valid only
    assert int(np.argmin(valid_curve)) + 1 == best
    assert train_curve[-1] < train_curve[best - 1] < train_curve[0]


def test_rows_without_a_target_are_not_learned_from():
    X, y, train, valid, _ = _data(signal=0.5)
    masked = y.copy()
    masked[train & (X["c"] > 1)] = np.nan
    garbage = X.copy()
    garbage.loc[masked.isna(), "a"] = 1e6  # context rows: never fitted
    a = make_model("lgbm", seed=2, **FAST["lgbm"]).fit(X[train], masked[train])
    b = make_model("lgbm", seed=2, **FAST["lgbm"]).fit(garbage[train], masked[train])
    assert a.booster_.model_to_string() == b.booster_.model_to_string()


def test_networks_read_scaled_features_and_trees_raw_ones():
    X, y, train, _, _ = _data(signal=0.5)
    tree = make_processed("lgbm", **FAST["lgbm"])
    assert tree.scaling is None
    net = make_processed("lstm")
    assert net.scaling is not None and net.history_days == net.model.window - 1
