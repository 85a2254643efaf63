"""MLflow logging and lookup of the daily models."""

from __future__ import annotations

import lightgbm as lgb
import mlflow
import pandas as pd
from mlflow.models import infer_signature

from quant_assets.models.lgbm import FitResult

MODEL_TAG = "lgbm_daily"


def log_daily_model(
    experiment_id: str, day: str, fit: FitResult, X: pd.DataFrame, extra_params: dict
) -> tuple[str, str]:
    """Log params, metrics and the model with its signature; returns (run_id, model_uri)."""
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"{MODEL_TAG}-{day}") as run:
        mlflow.set_tags({"model": MODEL_TAG, "partition": day})
        mlflow.log_params({**fit.params, **extra_params})
        mlflow.log_metrics(fit.metrics)
        sample = X.head(5).reset_index(drop=True)
        info = mlflow.lightgbm.log_model(
            fit.model,
            name="model",
            signature=infer_signature(sample, fit.model.predict(sample)),
            input_example=sample,
            # Explicit requirements: MLflow's inference of them imports and scans the
            # environment, which costs seconds per run.
            pip_requirements=[f"lightgbm=={lgb.__version__}"],
        )
        mlflow.set_tag("model_uri", info.model_uri)
    return run.info.run_id, info.model_uri


def find_daily_model(experiment_id: str, day: str) -> str:
    """Model URI of the newest model trained for `day`."""
    runs = mlflow.search_runs(
        [experiment_id],
        filter_string=f"tags.model = '{MODEL_TAG}' and tags.partition = '{day}'",
        order_by=["start_time DESC"],
        max_results=1,
    )
    if runs.empty:
        raise LookupError(f"no {MODEL_TAG} model was trained for {day}; materialise lgbm_model")
    return str(runs["tags.model_uri"].iloc[0])
