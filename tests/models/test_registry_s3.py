"""MLflow's artifacts on S3: with a bucket set in the environment, a zoo model is logged,
registered, promoted and loaded back as champion from a real S3 server (moto's, on loopback,
standing in for MinIO), its files are objects in the bucket, and nothing lands in the local
artifact folder."""

from __future__ import annotations

import os
import socket

import boto3
import mlflow
import numpy as np
import pandas as pd
import pytest
from moto.server import ThreadedMotoServer

from resources import build_resources
from resources import mlflow_registry as registry
from resources.mlflow_pyfunc import log_zoo_model, unwrap
from resources.mlflow_tracking import MLflowResource
from resources.settings import SettingsError, check_environment
from tests.models.test_registry import RidgeZoo

BUCKET = "quant-models"
PREFIX = "mlflow"
FEATURES = ["f1", "f2"]
INDEX = pd.MultiIndex.from_product(
    [pd.bdate_range("2024-03-01", periods=5), [f"{i:06d}.SH" for i in range(6)]],
    names=["date", "symbol"],
)
X = pd.DataFrame(np.random.default_rng(3).normal(size=(30, 2)), index=INDEX, columns=FEATURES)
Y = X["f1"] - X["f2"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def s3(monkeypatch, tmp_path):
    """A moto S3 server on a free loopback port with an empty bucket, and the environment
    MLflow and boto3 read (fake credentials; no profile or credentials file of the machine)."""
    endpoint_port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=endpoint_port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{endpoint_port}"
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    client = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket=BUCKET)
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    yield client
    mlflow.set_tracking_uri(previous)  # MLflow mirrors its URI in the environment; None unsets
    server.stop()


def test_a_bucket_setting_is_checked():
    check_environment({"QUANT_MLFLOW_S3_BUCKET": "quant-models/mlflow/daily"})
    with pytest.raises(SettingsError, match=r"^QUANT_MLFLOW_S3_BUCKET='s3://Models' is not"):
        check_environment({"QUANT_MLFLOW_S3_BUCKET": "s3://Models"})
    with pytest.raises(ValueError, match="not an S3 bucket name"):
        MLflowResource(tracking_uri="sqlite://", s3_bucket="a").artifact_root()


def test_the_champion_lives_in_the_bucket(s3, monkeypatch, tmp_path):
    data = tmp_path / "data"
    monkeypatch.setenv("QUANT_DATA_DIR", str(data))
    monkeypatch.setenv("QUANT_MLFLOW_S3_BUCKET", f"{BUCKET}/{PREFIX}")
    # the defaults, whatever an earlier test's MLflowResource.setup() left in the environment
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("QUANT_MLFLOW_ARTIFACTS", raising=False)
    monkeypatch.chdir(tmp_path)
    # the resource as the code location builds it from the settings, config resolved
    tracking = build_resources()["mlflow_tracking"].process_config_and_initialize()
    location = f"s3://{BUCKET}/{PREFIX}/{tracking.experiment}"
    assert tracking.artifact_root() == location
    experiment = tracking.setup()
    assert mlflow.get_experiment(experiment).artifact_location == location
    assert tracking.tracking_uri == f"sqlite:///{data / 'mlflow' / 'mlflow.db'}"

    name = "zoo-s3"
    versions = []
    for alpha in (0.1, 10.0):
        with mlflow.start_run(experiment_id=experiment):
            info = log_zoo_model(
                RidgeZoo(alpha).fit(X, Y),
                name="ridge",
                features=FEATURES,
                input_example=X.head(8),
                metrics={"rank_ic": 0.05},
            )
        versions.append(registry.register(info.model_uri, name, {"family": "ridge"}))
    first, second = versions
    registry.apply_decision(name, first, registry.decide_promotion(0.05, None, margin=0.01))
    registry.set_challenger(name, second)
    registry.apply_decision(name, second, registry.decide_promotion(0.08, 0.05, margin=0.01))
    assert registry.current_champion(name) == second

    champion = registry.load_champion(name)
    expected = unwrap(champion).model.predict(X)
    assert unwrap(champion).model.alpha == 10.0
    pd.testing.assert_series_equal(champion.predict(X)["score"], expected)

    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/{tracking.experiment}/")
    keys = {item["Key"] for item in listed.get("Contents", [])}
    root = mlflow.MlflowClient().get_model_version_download_uri(name, second)
    assert root.startswith(f"{location}/")
    pickle = f"{root.removeprefix(f's3://{BUCKET}/')}/python_model.pkl"
    assert pickle in keys
    assert sum(key.endswith("/python_model.pkl") for key in keys) == 2
    assert not (data / "mlflow" / "artifacts").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["data"]  # nothing in the working folder
    assert [p.name for p in (data / "mlflow").iterdir()] == ["mlflow.db"]
