"""Model stage: a LightGBM model trained each day on a rolling window, and its predictions."""

import math

import mlflow
import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from quant_assets.calendar import TRADING_DAYS, previous_trading_day
from quant_assets.factors.assets import active_factors, factor_values
from quant_assets.factors.daily_set import DAILY_FACTORS
from quant_assets.factors.queries import read_factor_panel
from quant_assets.market.queries import adjusted_bars, read_daily_bars
from quant_assets.models.dataset import next_day_labels, training_frame
from quant_assets.models.lgbm import fit_lgbm
from quant_assets.models.tables import PREDICTIONS
from quant_assets.models.tracking import find_daily_model, log_daily_model
from resources.clickhouse import ClickHouseResource
from resources.mlflow_tracking import MLflowResource


class TrainConfig(Config):
    train_days: int = 60
    min_train_days: int = 15
    seed: int = 0


@asset(
    partitions_def=TRADING_DAYS,
    group_name="models",
    deps=[factor_values, active_factors],
    check_specs=[AssetCheckSpec("metrics_finite", asset="lgbm_model", blocking=True)],
)
def lgbm_model(
    context: AssetExecutionContext,
    config: TrainConfig,
    clickhouse: ClickHouseResource,
    mlflow_tracking: MLflowResource,
) -> MaterializeResult:
    """LightGBM trained on the last `train_days` trading days of factors and known labels,
    logged to MLflow with params, metrics and its signature."""
    day = pd.Timestamp(context.partition_key)
    start = previous_trading_day(day, config.train_days + 1)
    with clickhouse.client() as client:
        active = clickhouse.query_df(
            client,
            "SELECT factor FROM {db}.factor_screening WHERE date = %(d)s AND active",
            {"d": day.date()},
        )["factor"].tolist()
        if not active:
            context.log.warning("no active factors on the day; training on the daily factor set")
            active = list(DAILY_FACTORS)
        active = sorted(active)
        features = read_factor_panel(clickhouse, client, start, day, factors=active)
        bars = read_daily_bars(clickhouse, client, start, day)
    features = features.reindex(columns=active)
    if features.empty or bars.empty:
        raise Failure(f"no factors or bars stored between {start.date()} and {day.date()}")
    X, y = training_frame(features, next_day_labels(adjusted_bars(bars)), day)
    n_dates = X.index.get_level_values("date").nunique()
    if n_dates < config.min_train_days:
        raise Failure(
            f"only {n_dates} labelled days before {day.date()} (need {config.min_train_days}); "
            "materialise raw_daily_bars and factor_values for earlier days first"
        )
    fit = fit_lgbm(X, y, seed=config.seed)
    experiment_id = mlflow_tracking.setup()
    run_id, model_uri = log_daily_model(
        experiment_id,
        context.partition_key,
        fit,
        X,
        {"train_days": config.train_days, "n_features": X.shape[1]},
    )
    context.log.info(f"trained on {n_dates} days, valid rank IC {fit.metrics['valid_rank_ic']:.4f}")
    importance = pd.Series(fit.model.feature_importances_, index=X.columns).sort_values()
    finite = all(math.isfinite(v) for v in fit.metrics.values())
    return MaterializeResult(
        metadata={
            "mlflow_run_id": run_id,
            "model_uri": model_uri,
            **{k: float(v) for k, v in fit.metrics.items()},
            "feature_importance": MetadataValue.md(
                importance[::-1].to_frame("splits").to_markdown()
            ),
        },
        check_results=[AssetCheckResult(passed=finite, metadata=fit.metrics)],
    )


@asset(
    partitions_def=TRADING_DAYS,
    group_name="models",
    deps=[lgbm_model, factor_values],
    check_specs=[AssetCheckSpec("scores_complete", asset="predictions", blocking=True)],
)
def predictions(
    context: AssetExecutionContext,
    clickhouse: ClickHouseResource,
    mlflow_tracking: MLflowResource,
) -> MaterializeResult:
    """Scores of every symbol with factors on the day, from that day's model."""
    day = pd.Timestamp(context.partition_key)
    model_uri = find_daily_model(mlflow_tracking.setup(), context.partition_key)
    model = mlflow.lightgbm.load_model(model_uri)
    with clickhouse.client() as client:
        names = list(model.feature_name_)
        features = read_factor_panel(clickhouse, client, day, day, factors=names)
        features = features.reindex(columns=names)
        scores = pd.Series(model.predict(features), index=features.index, name="score")
        frame = scores.reset_index().assign(model_uri=model_uri)
        rows = clickhouse.replace_partition(client, PREDICTIONS, frame, day)
    missing = int(frame["score"].isna().sum())
    return MaterializeResult(
        metadata={"rows": rows, "model_uri": model_uri, "score_std": float(frame["score"].std())},
        check_results=[
            AssetCheckResult(passed=rows > 0 and missing == 0, metadata={"nan_scores": missing})
        ],
    )
