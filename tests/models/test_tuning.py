"""Optuna tuning: the trial and time budgets hold, a planted optimum is found, every trial is a
nested MLflow run under its parent, and a network-like model's poor trials are pruned."""

from __future__ import annotations

import time

import mlflow
import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from quant_assets.models.base import ZooModel
from quant_assets.models.trees import LGBMModel, leaf_size
from quant_assets.models.tuning import DEFAULT_SPACES, tune


def panel(n_dates: int = 40, n_symbols: int = 60, seed: int = 0):
    rng = np.random.default_rng(seed)
    idx = pd.MultiIndex.from_product(
        [pd.bdate_range("2024-01-01", periods=n_dates), [f"S{i:03d}" for i in range(n_symbols)]],
        names=["date", "symbol"],
    )
    X = pd.DataFrame(rng.normal(size=(len(idx), 3)), index=idx, columns=["a", "b", "c"])
    y = (X["a"] + X["b"] + rng.normal(size=len(idx))).rename("target")
    split = X.index.get_level_values("date") < idx.levels[0][28]
    return (X[split], y[split]), (X[~split], y[~split])


class Blend(ZooModel):
    """Scores a + `weight_b` * b, fitting nothing in `delay` seconds; with `epochs`, it
    spends them over its epochs and reports `weight_b` * epoch / epochs after each, like a
    network."""

    family = "blend"

    def __init__(
        self, weight_b: float = 0.0, delay: float = 0.0, epochs: int = 0, epoch_callback=None
    ) -> None:
        self.weight_b = weight_b
        self.delay = delay
        self.epochs = epochs
        self.epoch_callback = epoch_callback

    def fit(self, X, y, valid=None):
        time.sleep(0 if self.epochs else self.delay)
        for epoch in range(1, self.epochs + 1):
            time.sleep(self.delay / self.epochs)
            if self.epoch_callback is not None:
                self.epoch_callback(epoch, self.weight_b * epoch / self.epochs)
        self.feature_importance_ = pd.Series(1.0, index=X.columns)
        self.curves_, self.best_iteration_ = {}, max(self.epochs, 1)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    def predict(self, X):
        return (X["a"] + self.weight_b * X["b"]).rename("score")


SPACE = {"weight_b": FloatDistribution(0.0, 1.0)}


def test_lightgbm_tuning_keeps_to_the_trial_budget_and_returns_the_best_trial():
    train, valid = panel()
    fixed = {"num_boost_round": 30, "num_threads": 1, "early_stopping_rounds": 10}
    result = tune("lgbm", *train, valid, n_trials=4, timeout_s=120, seed=1, fixed_params=fixed)
    study = result.study
    assert len(study.trials) == 4 and len(result.trials) == 4
    assert result.best_params == study.best_params
    assert set(result.best_params) == set(DEFAULT_SPACES["lgbm"])  # fixed ones not searched
    assert result.best_value == max(t.value for t in study.trials)
    # the first trial is the family's defaults, so tuning never does worse on validation
    defaults = LGBMModel().get_params()
    # the leaf size left to the data is the one it resolves to on the training rows
    defaults["min_data_in_leaf"] = leaf_size(None, int(train[1].notna().sum()))
    assert study.trials[0].params == {k: defaults[k] for k in DEFAULT_SPACES["lgbm"]}
    assert result.best_value >= study.trials[0].value > 0.2
    assert {"number", "value", "state", "params_learning_rate"} <= set(result.trials.columns)


def test_a_planted_optimum_beats_the_defaults():
    train, valid = panel()
    result = tune(Blend, *train, valid, n_trials=12, timeout_s=60, seed=0, space=SPACE)
    default = result.study.trials[0]
    assert default.params == {"weight_b": 0.0}  # the default, enqueued first
    assert result.best_params["weight_b"] > 0.7
    assert result.best_value > default.value + 0.1


def test_the_time_budget_stops_the_search():
    train, valid = panel()
    t0 = time.monotonic()
    result = tune(
        Blend, *train, valid, n_trials=1000, timeout_s=1.0, seed=0, space=SPACE,
        fixed_params={"delay": 0.25},
    )  # fmt: skip
    elapsed = time.monotonic() - t0
    assert 2 <= len(result.study.trials) <= 6
    assert elapsed < 1.0 + 0.25 + 0.5  # at most the trial running when the time ran out
    # a network's trial still running when the time is up stops at its next epoch
    t0 = time.monotonic()
    result = tune(
        Blend, *train, valid, n_trials=1000, timeout_s=1.3, seed=0, space=SPACE,
        fixed_params={"delay": 1.0, "epochs": 20},
        pruner=optuna.pruners.NopPruner(),
    )  # fmt: skip
    elapsed = time.monotonic() - t0
    states = [t.state for t in result.study.trials]
    assert states == [TrialState.COMPLETE, TrialState.PRUNED]
    assert len(result.study.trials[1].intermediate_values) < 20
    assert elapsed < 1.7  # the second trial stopped near 1.35 s, not at its end (2 s)


def test_network_trials_are_pruned_on_their_epoch_scores():
    train, valid = panel()
    result = tune(
        Blend, *train, valid, n_trials=16, timeout_s=60, seed=0, space=SPACE,
        fixed_params={"epochs": 8},
    )  # fmt: skip
    trials = result.study.trials
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(pruned) >= 3 and len(complete) >= 3
    # a pruned trial was below the running median: lower than the best completed one
    assert max(t.params["weight_b"] for t in pruned) < result.best_params["weight_b"]
    assert all(len(t.intermediate_values) < 8 for t in pruned)
    assert all(len(t.intermediate_values) == 8 for t in complete)


def test_each_trial_is_a_nested_mlflow_run_under_the_parent(tmp_path):
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/mlflow.db")
    try:
        experiment = mlflow.create_experiment("tuning", artifact_location=tmp_path.as_uri())
        with mlflow.start_run(experiment_id=experiment) as parent:
            parent_id = parent.info.run_id
        train, valid = panel()
        result = tune(
            Blend, *train, valid, n_trials=3, timeout_s=60, seed=0, space=SPACE,
            mlflow_parent_run_id=parent_id, fixed_params={"epochs": 3},
        )  # fmt: skip
        runs = mlflow.search_runs(
            [experiment], filter_string=f"tags.mlflow.parentRunId = '{parent_id}'"
        )
        assert len(runs) == 3
        by_trial = runs.set_index(runs["tags.optuna_trial"].astype(int)).sort_index()
        values = [t.value for t in result.study.trials]
        assert by_trial["metrics.valid_rank_ic"].tolist() == pytest.approx(values)
        assert by_trial["params.weight_b"].astype(float).tolist() == pytest.approx(
            [t.params["weight_b"] for t in result.study.trials]
        )
        assert (by_trial["params.epochs"] == "3").all()
        assert (by_trial["status"] == "FINISHED").all()
        history = mlflow.MlflowClient().get_metric_history(
            by_trial["run_id"].iloc[1], "epoch_valid_score"
        )
        assert [m.step for m in history] == [1, 2, 3]
        assert mlflow.active_run() is None
    finally:
        mlflow.set_tracking_uri(previous)
