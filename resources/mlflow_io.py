"""The IO manager of trained models: an asset returns a `ModelArtifact`, MLflow stores it.

Writing logs one MLflow run per asset partition (params, metrics, the model with its
signature, tags naming the asset, the partition and the Dagster run); reading finds the newest
run of the upstream asset's partition and loads its model. So a model asset's body is logic
only, and the scoring asset reads the very model the training asset wrote for the day.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

import mlflow
import pandas as pd
from dagster import ConfigurableIOManager, Failure, InputContext, OutputContext
from mlflow.models import infer_signature

from resources.mlflow_tracking import MLflowResource

ASSET_TAG = "dagster.asset"
PARTITION_TAG = "dagster.partition"
RUN_TAG = "dagster.run_id"
MODEL_URI_TAG = "model_uri"


@dataclass
class ModelArtifact:
    """A fitted model and what to log with it. `flavor` names the MLflow flavor module
    (`lightgbm`, `sklearn`, `xgboost`, ...); `requirements` pins what loading it needs (given
    explicitly: MLflow's own inference imports and scans the environment, seconds per run)."""

    model: Any
    flavor: str
    features: list[str]
    params: dict[str, object] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    input_example: pd.DataFrame | None = None
    requirements: list[str] = field(default_factory=list)
    uri: str = ""


class MLflowModelIOManager(ConfigurableIOManager):
    """Stores `ModelArtifact`s as MLflow runs and loads them back by asset and partition."""

    mlflow_tracking: MLflowResource

    def handle_output(self, context: OutputContext, obj: ModelArtifact) -> None:
        asset = context.asset_key.to_user_string()
        partition = context.partition_key if context.has_partition_key else ""
        experiment = self.mlflow_tracking.setup()
        flavor = importlib.import_module(f"mlflow.{obj.flavor}")
        name = f"{asset}-{partition}" if partition else asset
        with mlflow.start_run(experiment_id=experiment, run_name=name) as run:
            mlflow.set_tags({ASSET_TAG: asset, PARTITION_TAG: partition, RUN_TAG: context.run_id})
            mlflow.log_params(obj.params)
            mlflow.log_metrics(obj.metrics)
            example = obj.input_example
            signature = (
                infer_signature(example, obj.model.predict(example))
                if example is not None
                else None
            )
            info = flavor.log_model(
                obj.model,
                name="model",
                signature=signature,
                input_example=example,
                pip_requirements=obj.requirements or None,
            )
            mlflow.set_tag(MODEL_URI_TAG, info.model_uri)
        context.add_output_metadata(
            {
                "mlflow_run_id": run.info.run_id,
                "model_uri": info.model_uri,
                "features": len(obj.features),
                **{k: float(v) for k, v in obj.metrics.items()},
            }
        )

    def load_input(self, context: InputContext) -> ModelArtifact:
        asset = context.asset_key.to_user_string()
        partition = context.asset_partition_key if context.has_asset_partitions else ""
        experiment = self.mlflow_tracking.setup()
        runs = mlflow.search_runs(
            [experiment],
            filter_string=f"tags.`{ASSET_TAG}` = '{asset}' and tags.`{PARTITION_TAG}` = '{partition}'",
            order_by=["start_time DESC"],
            max_results=1,
            output_format="list",
        )
        if not runs:
            raise Failure(
                f"no model of {asset} for {partition or 'the asset'} in MLflow: "
                f"materialize {asset} for {partition} first"
            )
        run = runs[0]
        uri = run.data.tags[MODEL_URI_TAG]
        model_info = mlflow.models.get_model_info(uri)
        flavor_name = next(f for f in model_info.flavors if f != "python_function")
        model = importlib.import_module(f"mlflow.{flavor_name}").load_model(uri)
        features = [c.name for c in model_info.signature.inputs] if model_info.signature else []
        return ModelArtifact(
            model=model,
            flavor=flavor_name,
            features=features,
            params=dict(run.data.params),
            metrics=dict(run.data.metrics),
            uri=uri,
        )
