"""MLflow tracking: a local store under the data folder by default, a server when configured."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field


class MLflowResource(ConfigurableResource):
    """Where runs, models and artifacts go. Artifacts may live on S3 (s3://bucket/prefix),
    with MLFLOW_S3_ENDPOINT_URL pointing at MinIO or any S3-compatible store."""

    tracking_uri: str = Field(description="sqlite:///<file>, file:<dir> or http(s)://server")
    artifact_location: str | None = Field(
        default=None, description="artifact root for new experiments (a folder or s3://...)"
    )
    experiment: str = Field(default="quant_daily", description="experiment of the daily runs")

    def setup(self) -> str:
        """Point the MLflow client at this store and return the experiment id (created once)."""
        import mlflow

        mlflow.set_tracking_uri(self.tracking_uri)
        exp = mlflow.get_experiment_by_name(self.experiment)
        if exp is not None:
            return exp.experiment_id
        return mlflow.create_experiment(self.experiment, artifact_location=self.artifact_location)
