"""Model stage: one training asset per family of the zoo (a factory), the ensemble of the
daily families, predictions from the champion, and the champion's live rank IC.

Each model of day D learns from the factors and labels known by D's close (see `daily`), is
logged to MLflow as a generic pyfunc and registered; the IO manager makes it the challenger
and promotes it to champion only if it beats the champion on the same recent validation days.
"""

import functools
from collections.abc import Iterator

import numpy as np
import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetsDefinition,
    Config,
    Failure,
    MetadataValue,
    Output,
    asset,
)
from pydantic import Field

from quant_assets.calendar import TRADING_DAYS
from quant_assets.day_range import by_day, pending_png
from quant_assets.factors.daily_set import DAILY_FACTORS
from quant_assets.factors.panel import factor_panel
from quant_assets.market.labels import labels_by_date
from quant_assets.models.daily import daily_segments, report_rows, report_score
from quant_assets.models.ensembles import WeightedAverage
from quant_assets.models.live import live_rank_ic
from quant_assets.models.plots import importance_png
from quant_assets.models.tables import LIVE_IC, PREDICTIONS
from quant_assets.models.walk_forward import fit_frames, prepare_frames
from quant_assets.models.zoo import FAMILIES, NETWORK_FAMILIES, make_processed
from quant_assets.plotting import draw
from quant_assets.wiring import RANGE_IN_RUNS, daily_table, partition_day, same_day, window
from resources.mlflow_io import CHAMPION_INPUT, MODEL_INPUT, ModelArtifact

# Trading days of factors and labels a model may train on (the config can use fewer).
TRAIN_WINDOW = 62
FACTOR_SETS = (
    "daily_factor_values",
    "alpha158_values",
    "microstructure_values",
    "news_factor_values",
    "ai_factor_values",
)
LABEL = "label"  # Qlib's Ref($close,-2)/Ref($close,-1)-1
# The families the daily run trains and the ensemble weighs; the networks are trained by the
# zoo_training job (their epochs cost more than a daily run should wait for).
DAILY_FAMILIES = ("lgbm", "xgb", "rf")
SCORER = "ensemble"  # the registered model whose champion scores the day
LIVE_IC_DAYS = 20
KINDS = {"lgbm": "lightgbm", "xgb": "xgboost", "rf": "scikitlearn", "cnn": "pytorch",
         "lstm": "pytorch", "transformer": "pytorch"}  # fmt: skip


class TrainConfig(Config):
    train_days: int = Field(default=40, description="labelled trading days to train on")
    valid_days: int = Field(
        default=16, description="latest labelled days that validate (early stopping, report)"
    )
    min_train_days: int = Field(default=10, description="fewer training days fail the step")
    dedup_limit: float = Field(
        default=0.95, description="of two factors correlating above this, keep the stronger"
    )
    promotion_margin: float = Field(
        default=0.0, description="rank IC by which a challenger must beat the champion"
    )
    n_trials: int = Field(default=0, description="Optuna trials before the fit (0: defaults)")
    tune_seconds: float = Field(default=120.0, description="time budget of the Optuna study")
    max_epochs: int = Field(default=20, description="networks: most epochs")
    seed: int = Field(default=0, description="the model's random seed")


def registered_name(family: str) -> str:
    """The model registry's name of a family's models."""
    return f"quant_{family}"


def _panel(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The factor sets joined on the rows of the daily set: the symbols that traded (a
    suspended day has news factors but nothing to learn from or to score)."""
    panel, _ = factor_panel({name: frames[name] for name in FACTOR_SETS}, rows_of=FACTOR_SETS[0])
    return panel


MODEL_INS = {
    "active_factors": same_day(columns=["factor"]),
    **{name: window(TRAIN_WINDOW) for name in FACTOR_SETS},
    "labels": window(TRAIN_WINDOW, columns=["date", "symbol", LABEL]),
}
METRICS_FINITE = "Every training and validation metric is a finite number."


def _window_frames(context, config: TrainConfig, estimator, active_factors, labels, sets):
    """The day's segment frames for `estimator` over the active factors (deduplicated on the
    training rows), the full panel and the table of dropped factors."""
    day = partition_day(context)
    active = sorted(active_factors["factor"])
    if not active:
        context.log.warning("no active factors on the day; training on the daily factor set")
        active = sorted(DAILY_FACTORS)
    panel = _panel(sets)
    label = labels_by_date(labels, LABEL)
    labelled = pd.DatetimeIndex(label.dropna().index.get_level_values("date").unique())
    try:
        segments = daily_segments(labelled, day, config.train_days, config.valid_days)
    except ValueError as error:
        raise Failure(
            f"{error}: materialise the history (the history_load job) for earlier days first"
        ) from error
    frames, dropped, _ = prepare_frames(
        panel.reindex(columns=active),
        label,
        segments,
        estimator,
        dedup=config.dedup_limit,
        purge_valid=False,  # every validation label is known by the day
    )
    n_days = frames.train[1].dropna().index.get_level_values("date").nunique()
    if n_days < config.min_train_days:
        raise Failure(f"only {n_days} training days before {day.date()}")
    return frames, panel, dropped


def _artifact(
    family: str, fit, params: dict, panel: pd.DataFrame, dropped, config: TrainConfig
) -> tuple[ModelArtifact, dict]:
    """What the IO manager logs and registers (with the rule it promotes by: the rank IC on
    the report days, for challenger and champion alike), and the day's metadata."""
    importance = fit.model.feature_importance_.sort_values(ascending=False)
    plot = draw(importance_png, importance.rename("importance"))  # drawn meanwhile
    X = fit.frames.train[0]
    files = {
        "feature_importance.csv": importance.to_frame("importance").to_csv(),
        "feature_importance.png": plot,
    }
    if dropped is not None and len(dropped):
        files["dropped_factors.csv"] = dropped.to_csv(index=False)
    artifact = ModelArtifact(
        model=fit.model,
        flavor="pyfunc",
        family=family,
        features=fit.features,
        params={
            **params,
            "train_days": config.train_days,
            "valid_days": config.valid_days,
            "n_features": len(fit.features),
        },  # fmt: skip
        metrics=fit.metrics,
        input_example=X.head(5),
        curves=getattr(fit.model, "curves_", {}) or {},
        files=files,
        registered_name=registered_name(family),
        evaluate=functools.partial(report_score, *report_rows(fit.frames, panel)),
        promotion_margin=config.promotion_margin,
    )
    days = X.index.get_level_values("date")
    valid_days = fit.frames.days["valid"].append(fit.frames.days["report"])
    metadata = {
        "dagster/row_count": len(X),
        "feature_importance": MetadataValue.md(importance.head(25).to_frame().to_markdown()),
        "feature_importance_plot": pending_png(plot, "importance per feature"),
        "training_window": f"{days.min().date()}..{days.max().date()}",
        "validation_window": f"{valid_days.min().date()}..{valid_days.max().date()}",
        "dropped_factors": int(0 if dropped is None else len(dropped)),
        **{name: float(value) for name, value in fit.metrics.items()},
        "n_features": len(fit.features),
    }
    return artifact, metadata


def family_model(family: str) -> AssetsDefinition:
    """The training asset of one family of the zoo, `<family>_model`."""
    name = f"{family}_model"

    @asset(
        name=name,
        partitions_def=TRADING_DAYS,
        group_name="models",
        io_manager_key="mlflow_model_io",
        kinds={KINDS[family], "mlflow"},
        ins=MODEL_INS,
        backfill_policy=RANGE_IN_RUNS,
        description=f"{family} trained on the day's window of active factors and known labels, "
        f"logged to MLflow, registered as {registered_name(family)} and promoted to champion "
        "when it beats the champion on the same validation days.",
        check_specs=[
            AssetCheckSpec("metrics_finite", asset=name, blocking=True, description=METRICS_FINITE)
        ],  # fmt: skip
    )
    @functools.partial(by_day, ins=MODEL_INS, own=name)
    def train(
        context: AssetExecutionContext,
        config: TrainConfig,
        active_factors: pd.DataFrame,
        labels: pd.DataFrame,
        **factor_sets: pd.DataFrame,
    ) -> Iterator:
        params: dict[str, object] = {"seed": config.seed}
        if family in NETWORK_FAMILIES:
            params["max_epochs"] = config.max_epochs
        estimator = make_processed(family, **params)
        frames, panel, dropped = _window_frames(
            context, config, estimator, active_factors, labels, factor_sets
        )
        fit = fit_frames(
            estimator, frames, tune_family=family, params=params,
            n_trials=config.n_trials, tune_seconds=config.tune_seconds,
        )  # fmt: skip
        context.log.info(f"{family}: valid rank IC {fit.metrics['valid_rank_ic']:.4f}")
        own = {**fit.model.model.get_params(deep=False), **fit.best_params}
        artifact, metadata = _artifact(family, fit, own, panel, dropped, config)
        yield Output(artifact, metadata=metadata)
        finite = all(np.isfinite(v) for v in fit.metrics.values())
        yield AssetCheckResult(passed=finite, metadata=fit.metrics)

    return train


FAMILY_MODELS = [family_model(family) for family in FAMILIES]

ENSEMBLE_INS = {
    **MODEL_INS,
    **{f"{f}_model": AssetIn(dagster_type=MODEL_INPUT) for f in DAILY_FAMILIES},
}


@asset(
    partitions_def=TRADING_DAYS,
    group_name="models",
    io_manager_key="mlflow_model_io",
    kinds={"mlflow"},
    ins=ENSEMBLE_INS,
    backfill_policy=RANGE_IN_RUNS,
    check_specs=[
        AssetCheckSpec(
            "metrics_finite", asset="ensemble_model", blocking=True, description=METRICS_FINITE
        )
    ],  # fmt: skip
)
@functools.partial(by_day, ins=ENSEMBLE_INS, own="ensemble_model")
def ensemble_model(
    context: AssetExecutionContext,
    config: TrainConfig,
    active_factors: pd.DataFrame,
    labels: pd.DataFrame,
    **inputs: object,
) -> Iterator:
    """The day's family models weighted by their validation rank IC (never by later days),
    with a probability calibrated on validation and the members' agreement as confidence;
    registered as quant_ensemble, promoted like any model."""
    members = {f: inputs.pop(f"{f}_model").model.model for f in DAILY_FAMILIES}
    estimator = WeightedAverage(members, prefit=True)
    frames, panel, dropped = _window_frames(
        context, config, estimator, active_factors, labels, inputs
    )
    fit = fit_frames(estimator, frames)
    params = {"members": ",".join(members), "kind": "weighted_average",
              **{f"weight_{k}": float(v) for k, v in fit.model.weights_.items()}}  # fmt: skip
    artifact, metadata = _artifact("ensemble", fit, params, panel, dropped, config)
    metadata["weights"] = MetadataValue.md(fit.model.weights_.to_frame("weight").to_markdown())
    yield Output(artifact, metadata=metadata)
    yield AssetCheckResult(passed=all(np.isfinite(v) for v in fit.metrics.values()))


@daily_table(
    PREDICTIONS,
    group="models",
    kinds=("mlflow",),
    ins={
        "ensemble_model": AssetIn(
            dagster_type=MODEL_INPUT, metadata={CHAMPION_INPUT: registered_name(SCORER)}
        ),
        **{name: same_day() for name in FACTOR_SETS},
    },
    check_specs=[
        AssetCheckSpec(
            "champion_exists",
            asset="predictions",
            blocking=True,
            description="A champion of the scorer was in force on the day.",
        ),
        AssetCheckSpec(
            "covers_universe",
            asset="predictions",
            blocking=True,
            description="Every symbol that traded on the day has a finite score.",
        ),
        AssetCheckSpec(
            "probabilities_in_unit_interval",
            asset="predictions",
            blocking=True,
            description="Every probability and confidence lies in [0, 1].",
        ),
    ],  # fmt: skip
)
def predictions(ensemble_model: ModelArtifact, **factor_sets: pd.DataFrame) -> Iterator:
    """Score, probability and confidence of every symbol that traded on the day, from the
    champion of the scorer in force on the day (a backfill never uses a later champion)."""
    panel = _panel(factor_sets)
    scorer = ensemble_model.model  # the registered ZooPyfunc: features, processing, model
    if getattr(scorer.model, "history_days", 0):
        raise Failure(
            f"{ensemble_model.uri} reads {scorer.model.history_days} earlier days per row; "
            "predictions read one day: make the scorer a model without look-back"
        )
    frame = scorer.predict(None, panel.reindex(columns=scorer.features))
    frame = frame.reset_index().assign(
        model_uri=ensemble_model.uri, model_version=ensemble_model.version
    )
    for column in ("probability", "confidence"):
        if column not in frame:
            frame[column] = np.nan
    scored = frame["score"].notna() & np.isfinite(frame["score"])
    yield Output(
        frame,
        metadata={
            "model_uri": ensemble_model.uri,
            "champion_version": ensemble_model.version,
            "symbols_scored": int(scored.sum()),
            "score_mean": float(frame["score"].mean()),
            "score_std": float(frame["score"].std()),
        },
    )
    yield AssetCheckResult(
        check_name="champion_exists",
        passed=bool(ensemble_model.version),
        metadata={"model_uri": ensemble_model.uri, "version": ensemble_model.version},
    )
    yield AssetCheckResult(
        check_name="covers_universe",
        passed=len(frame) == len(panel) > 0 and bool(scored.all()),
        metadata={"symbols": len(panel), "scored": int(scored.sum())},
    )
    unit = frame[["probability", "confidence"]].stack()
    yield AssetCheckResult(
        check_name="probabilities_in_unit_interval",
        passed=bool(unit.between(0, 1).all()),
        metadata={"outside": int((~unit.between(0, 1)).sum()), "missing": int(unit.isna().sum())},
    )


class LiveICConfig(Config):
    threshold: float = Field(
        default=0.0, description="a mean live rank IC below this warns (the drift signal)"
    )


@daily_table(
    LIVE_IC,
    group="models",
    ins={
        "predictions": window(LIVE_IC_DAYS + 2, columns=["date", "symbol", "score", "model_uri"]),
        "labels": window(LIVE_IC_DAYS, columns=["date", "symbol", LABEL]),
    },
    check_specs=[
        AssetCheckSpec(
            "champion_live_rank_ic",
            asset="champion_live_ic",
            blocking=False,
            description=f"The champion's mean rank IC over the last {LIVE_IC_DAYS} "
            "days with a known label is above the threshold (model drift).",
        ),
    ],  # fmt: skip
)
def champion_live_ic(
    config: LiveICConfig, predictions: pd.DataFrame, labels: pd.DataFrame
) -> Iterator:
    """How the scores of the last days ranked the labels they became known with: the rank IC
    of each scored day whose label is known by this day, and its mean over the window."""
    table = live_rank_ic(predictions, labels_by_date(labels, LABEL), LIVE_IC_DAYS)
    mean = float(table["rank_ic"].mean()) if len(table) else float("nan")
    yield Output(table, metadata={"mean_rank_ic": mean, "days": len(table)})
    yield AssetCheckResult(
        passed=bool(np.isfinite(mean) and mean >= config.threshold) or not len(table),
        severity=AssetCheckSeverity.WARN,
        metadata={"mean_rank_ic": mean, "threshold": config.threshold, "days": len(table)},
    )
