"""MLflow tracking: a local store under the data folder by default, a server when configured;
artifacts in a local folder by default, in an S3 bucket (AWS or MinIO) when one is configured."""

from __future__ import annotations

import functools
import logging

from dagster import ConfigurableResource
from pydantic import Field

from resources.settings import S3_BUCKET

# The experiment tag MLflow's UI reads to choose its layout. Without it the UI guesses, and
# an experiment it guesses (or was once told) is GenAI opens on traces instead of the runs.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING = "custom_model_development"
GENAI_KINDS = frozenset({"genai_development", "genai_development_inferred"})

# MLflow announces at INFO, on stderr, that it creates or migrates a new local store's tables
# ("Creating initial MLflow database tables..."): nothing to act on in the demo's output.
logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
log = logging.getLogger(__name__)


class MLflowResource(ConfigurableResource):
    """Where runs, models and artifacts go. Artifacts may live on S3: `s3_bucket` puts a new
    experiment's at `s3://<bucket>[/<prefix>]/<experiment>` (`artifact_location` may name an
    `s3://` root too). boto3 reads the endpoint (`MLFLOW_S3_ENDPOINT_URL`: MinIO or any
    S3-compatible store, addressed by path; AWS when unset) and the credentials (`AWS_*`) from
    the environment, so they never pass through Dagster's config."""

    tracking_uri: str = Field(description="sqlite:///<file>, file:<dir> or http(s)://server")
    artifact_location: str | None = Field(
        default=None, description="artifact root for new experiments (a folder or s3://...)"
    )
    s3_bucket: str | None = Field(
        default=None,
        description="`bucket` or `bucket/prefix` of the artifacts on S3 (wins over "
        "artifact_location)",
    )
    experiment: str = Field(default="quant_daily", description="experiment of the daily runs")

    def artifact_root(self) -> str | None:
        """The artifact location a new experiment gets: on S3 when a bucket is set, else
        `artifact_location` (None: MLflow's default)."""
        if not self.s3_bucket:
            return self.artifact_location
        bucket = self.s3_bucket.strip().rstrip("/")
        if not S3_BUCKET.fullmatch(bucket):
            raise ValueError(
                f"s3_bucket {self.s3_bucket!r} is not an S3 bucket name (3-63 lowercase "
                "letters, digits, dots, hyphens), optionally followed by /prefix"
            )
        return f"s3://{bucket}/{self.experiment}"

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
                    artifact_location=self.artifact_root(),
                    tags={EXPERIMENT_KIND_TAG: MODEL_TRAINING},
                )
            except mlflow.exceptions.MlflowException:
                # another process created it between our look-up and our create
                exp = mlflow.get_experiment_by_name(self.experiment)
                if exp is None:
                    raise
        _warn_if_elsewhere(exp.name, exp.artifact_location, self.artifact_root())
        kind = exp.tags.get(EXPERIMENT_KIND_TAG)
        if kind is None or kind in GENAI_KINDS:
            mlflow.MlflowClient().set_experiment_tag(
                exp.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING
            )
        return exp.experiment_id


@functools.cache  # once per process and location, not at every model logged
def _warn_if_elsewhere(experiment: str, actual: str, configured: str | None) -> None:
    """Warn when an existing experiment keeps its artifacts on another kind of store than the
    one configured: MLflow fixes an experiment's artifact location when it creates it, so
    setting a bucket later moves nothing (a new experiment name starts on the bucket)."""
    if configured is None:
        return
    on_s3, wanted_s3 = actual.startswith("s3://"), configured.startswith("s3://")
    if on_s3 != wanted_s3:
        log.warning(
            "MLflow experiment %r keeps its artifacts at %s, not at the configured %s: an "
            "experiment's artifact location is fixed when it is created; use a new experiment "
            "name to store on the configured location",
            experiment,
            actual,
            configured,
        )
