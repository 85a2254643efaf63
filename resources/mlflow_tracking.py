"""MLflow tracking: a local store under the data folder by default, a server when configured."""

from __future__ import annotations

import logging

from dagster import ConfigurableResource
from pydantic import Field

# The experiment tag MLflow's UI reads to choose its layout. Without it the UI guesses, and
# an experiment it guesses (or was once told) is GenAI opens on traces instead of the runs.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING = "custom_model_development"
GENAI_KINDS = frozenset({"genai_development", "genai_development_inferred"})

# MLflow announces at INFO, on stderr, that it creates or migrates a new local store's tables
# ("Creating initial MLflow database tables..."): nothing to act on in the demo's output.
logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)


class MLflowResource(ConfigurableResource):
    """Where runs, models and artifacts go. Artifacts may live on S3 (s3://bucket/prefix),
    with MLFLOW_S3_ENDPOINT_URL pointing at MinIO or any S3-compatible store."""

    tracking_uri: str = Field(description="sqlite:///<file>, file:<dir> or http(s)://server")
    artifact_location: str | None = Field(
        default=None, description="artifact root for new experiments (a folder or s3://...)"
    )
    experiment: str = Field(default="quant_daily", description="experiment of the daily runs")

    def setup(self) -> str:
        """Point the MLflow client at this store and return the experiment id (created once).

        The experiment is marked as model training, so the UI opens on its runs. An experiment
        that lacks the mark or carries a GenAI one gets it; another kind a user chose is kept.
        """
        import mlflow

        mlflow.set_tracking_uri(self.tracking_uri)
        exp = mlflow.get_experiment_by_name(self.experiment)
        if exp is None:
            try:
                return mlflow.create_experiment(
                    self.experiment,
                    artifact_location=self.artifact_location,
                    tags={EXPERIMENT_KIND_TAG: MODEL_TRAINING},
                )
            except mlflow.exceptions.MlflowException:
                # another process created it between our look-up and our create
                exp = mlflow.get_experiment_by_name(self.experiment)
                if exp is None:
                    raise
        kind = exp.tags.get(EXPERIMENT_KIND_TAG)
        if kind is None or kind in GENAI_KINDS:
            mlflow.MlflowClient().set_experiment_tag(
                exp.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING
            )
        return exp.experiment_id
