"""Model stage: a LightGBM model trained each day on a window of the active factors and the
labels known by the day's close, stored in MLflow, and the day's scores from it."""

import functools
import math
from collections.abc import Iterator

import lightgbm as lgb
import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
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
from quant_assets.models.dataset import training_frame
from quant_assets.models.lgbm import fit_lgbm
from quant_assets.models.plots import importance_png
from quant_assets.models.tables import PREDICTIONS
from quant_assets.plotting import draw
from quant_assets.wiring import RANGE_IN_RUNS, daily_table, partition_day, same_day, window
from resources.mlflow_io import MODEL_INPUT, ModelArtifact

# Trading days of factors and labels a model may train on (the config can use fewer).
TRAIN_WINDOW = 62
FACTOR_SETS = (
    "daily_factor_values",
    "alpha158_values",
    "microstructure_values",
    "news_factor_values",
)
LABEL = "label"  # Qlib's Ref($close,-2)/Ref($close,-1)-1


class TrainConfig(Config):
    train_days: int = Field(
        default=60, description=f"trading days of training data (at most {TRAIN_WINDOW})"
    )
    min_train_days: int = Field(default=15, description="fewer labelled days fail the step")
    seed: int = Field(default=0, description="LightGBM's random seed")


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


@asset(
    partitions_def=TRADING_DAYS,
    group_name="models",
    io_manager_key="mlflow_model_io",
    kinds={"lightgbm", "mlflow"},
    ins=MODEL_INS,
    backfill_policy=RANGE_IN_RUNS,
    check_specs=[
        AssetCheckSpec(
            "metrics_finite",
            asset="lgbm_model",
            blocking=True,
            description="Every training and validation metric is a finite number.",
        )
    ],
)
@functools.partial(by_day, ins=MODEL_INS, own="lgbm_model")  # a range: one model a day
def lgbm_model(
    context: AssetExecutionContext,
    config: TrainConfig,
    active_factors: pd.DataFrame,
    labels: pd.DataFrame,
    **factor_sets: pd.DataFrame,
) -> Iterator:
    """LightGBM on the day's active factors over the last `train_days` trading days with a
    known label (Qlib's, the return from the next close to the one after), logged to MLflow
    as `lgbm-<day>` with params, metrics, its signature, train/valid learning curves and the
    feature importance (table and plot)."""
    day = partition_day(context)
    if not 1 <= config.train_days <= TRAIN_WINDOW:
        raise ValueError(f"train_days must be within 1..{TRAIN_WINDOW}")
    active = sorted(active_factors["factor"])
    if not active:
        context.log.warning("no active factors on the day; training on the daily factor set")
        active = sorted(DAILY_FACTORS)
    panel = _panel(factor_sets)
    dates = panel.index.get_level_values("date").unique().sort_values()
    panel = panel[panel.index.get_level_values("date").isin(dates[-(config.train_days + 1) :])]
    X, y = training_frame(panel.reindex(columns=active), labels_by_date(labels, LABEL), day)
    n_dates = X.index.get_level_values("date").nunique()
    if n_dates < config.min_train_days:
        raise Failure(
            f"only {n_dates} labelled days before {day.date()} (need {config.min_train_days}); "
            "materialise the history (the history_load job) for earlier days first"
        )
    fit = fit_lgbm(X, y, seed=config.seed)
    context.log.info(f"trained on {n_dates} days, valid rank IC {fit.metrics['valid_rank_ic']:.4f}")
    importance_plot = draw(importance_png, fit.importance["gain"])  # drawn meanwhile
    sample = X.head(5).reset_index(drop=True)
    artifact = ModelArtifact(
        # The booster in LightGBM's own text format: portable, and logged without MLflow's
        # scikit-learn serialiser (whose first import alone costs seconds in every run).
        model=fit.model.booster_,
        flavor="lightgbm",
        family="lgbm",
        features=list(X.columns),
        params={**fit.params, "train_days": config.train_days, "n_features": X.shape[1]},
        metrics=fit.metrics,
        input_example=sample,
        requirements=[f"lightgbm=={lgb.__version__}"],
        curves=fit.curves,
        files={
            "feature_importance.csv": fit.importance.to_csv(),
            "feature_importance.png": importance_plot,
        },
    )
    yield Output(
        artifact,
        metadata={
            "dagster/row_count": len(X),
            "feature_importance": MetadataValue.md(fit.importance.to_markdown()),
            "feature_importance_plot": pending_png(importance_plot, "total gain per feature"),
            "training_window": f"{X.index.get_level_values('date').min().date()}.."
            f"{X.index.get_level_values('date').max().date()}",
            # plain numbers (valid_rank_ic, best_iteration, ...): the Plots tab draws them
            **{name: float(value) for name, value in fit.metrics.items()},
            "n_features": int(X.shape[1]),
            "n_train_days": int(n_dates),
        },
    )
    finite = all(math.isfinite(v) for v in fit.metrics.values())
    yield AssetCheckResult(passed=finite, metadata=fit.metrics)


@daily_table(
    PREDICTIONS,
    group="models",
    kinds=("lightgbm",),
    ins={
        "lgbm_model": AssetIn(dagster_type=MODEL_INPUT),
        **{name: same_day() for name in FACTOR_SETS},
    },
    check_specs=[
        AssetCheckSpec(
            "scores_complete",
            asset="predictions",
            blocking=True,
            description="Every symbol that traded on the day has a finite score.",
        )
    ],
)
def predictions(lgbm_model: ModelArtifact, **factor_sets: pd.DataFrame) -> Iterator:
    """Scores of every symbol that traded on the day, from that day's model."""
    features = _panel(factor_sets).reindex(columns=lgbm_model.features)
    scores = pd.Series(lgbm_model.model.predict(features), index=features.index, name="score")
    frame = scores.reset_index().assign(model_uri=lgbm_model.uri)
    missing = int(frame["score"].isna().sum())
    yield Output(
        frame,
        metadata={
            "model_uri": lgbm_model.uri,
            "symbols_scored": int(frame["score"].notna().sum()),
            "score_mean": float(frame["score"].mean()),
            "score_std": float(frame["score"].std()),
        },
    )
    yield AssetCheckResult(passed=len(frame) > 0 and missing == 0, metadata={"nan_scores": missing})
