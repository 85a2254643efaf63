"""Hyperparameter search with Optuna: one study per model and window, maximising the
validation daily rank IC of a model fitted with each trial's parameters.

The sampler is TPE, seeded; networks are pruned by the median rule on their per-epoch
validation score (reported through the model's `epoch_callback`). The budget is a number of
trials and a number of seconds, whichever runs out first: Optuna starts no trial after the
time is up, and a network's trial still running then stops at its next epoch (once at least
one trial has completed). The first trial is the family's defaults, so the result is never
worse on validation than not tuning. Each trial can be logged as a nested MLflow run.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import mlflow
import numpy as np
import optuna
import pandas as pd
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import FrozenTrial, TrialState

from quant_assets.factors.screening import rank_ic_table
from quant_assets.models.base import Validation, ZooModel
from quant_assets.models.processing import Processed
from quant_assets.models.trees import LEAF_SIZES, leaf_size
from quant_assets.models.zoo import NETWORK_FAMILIES, family_class, make_processed

log = logging.getLogger(__name__)

SearchSpace = Mapping[str, BaseDistribution] | Callable[[optuna.Trial], dict[str, object]]
OBJECTIVE = "valid_rank_ic"

_NETWORK_SPACE: dict[str, BaseDistribution] = {
    "hidden_size": CategoricalDistribution([16, 32, 64]),
    "lr": FloatDistribution(1e-4, 1e-2, log=True),
    "dropout": FloatDistribution(0.0, 0.5),
}
DEFAULT_SPACES: dict[str, dict[str, BaseDistribution]] = {
    "lgbm": {
        "learning_rate": FloatDistribution(0.01, 0.2, log=True),
        "num_leaves": IntDistribution(16, 256, log=True),
        "min_data_in_leaf": IntDistribution(20, 1000, log=True),
        "colsample_bytree": FloatDistribution(0.5, 1.0),
        "subsample": FloatDistribution(0.5, 1.0),
        "lambda_l1": FloatDistribution(1e-3, 100.0, log=True),
        "lambda_l2": FloatDistribution(1e-3, 100.0, log=True),
    },
    "xgb": {
        "learning_rate": FloatDistribution(0.01, 0.2, log=True),
        "max_depth": IntDistribution(3, 10),
        "min_child_weight": FloatDistribution(1.0, 200.0, log=True),
        "colsample_bytree": FloatDistribution(0.5, 1.0),
        "subsample": FloatDistribution(0.5, 1.0),
        "reg_alpha": FloatDistribution(1e-3, 10.0, log=True),
        "reg_lambda": FloatDistribution(1e-3, 10.0, log=True),
    },
    "rf": {
        "n_estimators": IntDistribution(100, 400, step=50),
        "max_depth": IntDistribution(4, 16),
        "min_samples_leaf": IntDistribution(20, 500, log=True),
        "max_features": FloatDistribution(0.1, 0.6),
        "max_samples": FloatDistribution(0.1, 0.5),
    },
    **{name: _NETWORK_SPACE for name in NETWORK_FAMILIES},
}


@dataclass
class TuningResult:
    """The best trial's parameters (the searched ones; merge them over any fixed ones) and
    validation rank IC, every trial as a table, and the Optuna study itself."""

    best_params: dict[str, object]
    best_value: float
    trials: pd.DataFrame
    study: optuna.Study


def _suggest(trial: optuna.Trial, space: SearchSpace) -> dict[str, object]:
    """The trial's draw from `space` (a callable space draws for itself)."""
    if callable(space):
        return dict(space(trial))
    params: dict[str, object] = {}
    for name, dist in space.items():
        if isinstance(dist, FloatDistribution):
            params[name] = trial.suggest_float(
                name, dist.low, dist.high, log=dist.log, step=dist.step
            )
        elif isinstance(dist, IntDistribution):
            params[name] = trial.suggest_int(
                name, dist.low, dist.high, step=dist.step, log=dist.log
            )
        elif isinstance(dist, CategoricalDistribution):
            params[name] = trial.suggest_categorical(name, dist.choices)
        else:
            raise TypeError(f"unsupported distribution for {name}: {dist!r}")
    return params


def _inside(dist: BaseDistribution, value: object) -> bool:
    if isinstance(dist, CategoricalDistribution):
        return value in dist.choices
    if isinstance(dist, FloatDistribution | IntDistribution) and isinstance(value, int | float):
        return dist.low <= value <= dist.high
    return False


def _mean_rank_ic(model: ZooModel, valid: Validation, min_names: int) -> float:
    """Mean over validation dates of the Spearman IC of the model's score with the target."""
    X_valid, y_valid = valid
    score = model.predict(X_valid).to_frame("score")
    ic = rank_ic_table(score, y_valid, min_names=min_names)["score"]
    if ic.notna().any():
        return float(ic.mean())
    log.warning("no validation date with an IC (constant scores or too few names): counted 0")
    return 0.0


def _model_factory(
    family: str | Callable[..., ZooModel],
) -> tuple[str, Callable[..., ZooModel], dict[str, object]]:
    """A name for logs, a constructor from parameters, and the model's default parameters."""
    if isinstance(family, str):
        defaults = family_class(family)().get_params(deep=False)
        return family, lambda **p: make_processed(family, **p), defaults
    made = family()
    inner = made.model if isinstance(made, Processed) else made
    return getattr(family, "__name__", type(inner).__name__), family, inner.get_params(deep=False)


def _completed(study: optuna.Study) -> list[FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def tune(
    family: str | Callable[..., ZooModel],
    X: pd.DataFrame,
    y: pd.Series,
    valid: Validation,
    *,
    n_trials: int = 20,
    timeout_s: float = 600.0,
    seed: int = 0,
    space: SearchSpace | None = None,
    mlflow_parent_run_id: str | None = None,
    experiment_id: str | None = None,
    fixed_params: Mapping[str, object] | None = None,
    include_defaults: bool = True,
    pruner: optuna.pruners.BasePruner | None = None,
    min_names: int = 10,
) -> TuningResult:
    """Search the hyperparameters of `family` (a zoo name, or a callable taking parameters
    and returning a ZooModel) on `X`, `y`, scored by the mean daily rank IC on `valid`.

    `space` maps parameter names to Optuna distributions (or draws itself from a trial);
    by default the family's `DEFAULT_SPACES` entry. `fixed_params` are passed to every trial
    and left out of the search; the model's `seed` is `seed` unless fixed. A model taking
    `epoch_callback` is pruned (`pruner`, by default the median rule from the 4th trial and
    the 3rd epoch). With `mlflow_parent_run_id`, each trial is a nested run (its params, the
    objective, a network's per-epoch score) in `experiment_id` (default: the parent's).
    """
    if valid is None:
        raise ValueError("tuning scores trials on validation rows: pass valid")
    name, build, defaults = _model_factory(family)
    if space is None:
        if not isinstance(family, str) or family not in DEFAULT_SPACES:
            raise ValueError(f"no default search space for {name}: pass space=")
        space = DEFAULT_SPACES[family]
    fixed = dict(fixed_params or {})
    if not callable(space):
        space = {k: v for k, v in space.items() if k not in fixed}
    prunable = "epoch_callback" in defaults
    if pruner is None:
        pruner = (
            optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=3)
            if prunable
            else optuna.pruners.NopPruner()
        )
    if mlflow_parent_run_id and experiment_id is None:
        experiment_id = mlflow.MlflowClient().get_run(mlflow_parent_run_id).info.experiment_id

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(
            direction="maximize",
            sampler=optuna.samplers.TPESampler(seed=seed),
            pruner=pruner,
            study_name=f"{name}-tuning",
        )
        if include_defaults and not callable(space):
            # a leaf size left to the data (None) is the size it resolves to on these rows
            rows = int(np.isfinite(y.to_numpy(np.float64)).sum())
            resolved = {
                k: leaf_size(v, rows) if k in LEAF_SIZES else v for k, v in defaults.items()
            }
            start = {k: resolved[k] for k, d in space.items() if _inside(d, resolved.get(k))}
            if start:
                study.enqueue_trial(start)
        deadline = time.monotonic() + timeout_s

        def objective(trial: optuna.Trial) -> float:
            params = _suggest(trial, space)
            kwargs = {**fixed, **params}
            if "seed" in defaults and "seed" not in kwargs:
                kwargs["seed"] = seed
            run_id = None
            if mlflow_parent_run_id:
                run = mlflow.start_run(
                    run_name=f"{name} trial {trial.number}",
                    experiment_id=experiment_id,
                    parent_run_id=mlflow_parent_run_id,
                    nested=True,
                    tags={"optuna_trial": str(trial.number)},
                )
                run_id = run.info.run_id
                mlflow.log_params(kwargs)
            if prunable:
                loss = kwargs.get("monitor", defaults.get("monitor")) == "loss"

                def on_epoch(epoch: int, score: float) -> None:
                    value = -score if loss else score  # the study maximises
                    if math.isfinite(value):
                        trial.report(value, epoch)
                        if run_id:
                            mlflow.log_metric("epoch_valid_score", value, step=epoch)
                    if trial.should_prune():
                        raise optuna.TrialPruned(f"pruned at epoch {epoch}")
                    if time.monotonic() > deadline and _completed(study):
                        raise optuna.TrialPruned(f"time budget spent at epoch {epoch}")

                kwargs["epoch_callback"] = on_epoch
            status = "FAILED"
            t0 = time.perf_counter()
            try:
                model = build(**kwargs)
                model.fit(X, y, valid)
                value = _mean_rank_ic(model, valid, min_names)
                if run_id:
                    mlflow.log_metric(OBJECTIVE, value)
                    mlflow.set_tag("optuna_state", "COMPLETE")
                status = "FINISHED"
                return value
            except optuna.TrialPruned:
                if run_id:
                    mlflow.set_tag("optuna_state", "PRUNED")
                status = "FINISHED"
                raise
            finally:
                if run_id:
                    mlflow.log_metric("duration_s", time.perf_counter() - t0)
                    mlflow.end_run(status)

        def progress(study: optuna.Study, trial: FrozenTrial) -> None:
            done = _completed(study)
            best = max(done, key=lambda t: t.value) if done else None
            if trial.state == TrialState.COMPLETE:
                outcome = f"{OBJECTIVE} {trial.value:.4f}"
            else:  # a pruned trial's value is its last epoch score, not the objective
                outcome = (
                    f"{trial.state.name.lower()} after {len(trial.intermediate_values)} epochs"
                )
            log.info(
                "%s tuning trial %d (%d/%d): %s (best %s at trial %s), %.1f s",
                name,
                trial.number,
                trial.number + 1,
                n_trials,
                outcome,
                "-" if best is None else f"{best.value:.4f}",
                "-" if best is None else best.number,
                trial.duration.total_seconds() if trial.duration else float("nan"),
            )

        study.optimize(objective, n_trials=n_trials, timeout=timeout_s, callbacks=[progress])
    finally:
        optuna.logging.set_verbosity(verbosity)
    if not _completed(study):
        raise RuntimeError(f"no {name} tuning trial completed within the budget")
    trials = study.trials_dataframe(attrs=("number", "value", "state", "duration", "params"))
    # Optuna gives a pruned trial its last epoch score as value: keep the column the objective
    trials.loc[trials["state"] != TrialState.COMPLETE.name, "value"] = np.nan
    return TuningResult(
        best_params=dict(study.best_params),
        best_value=float(study.best_value),
        trials=trials,
        study=study,
    )
