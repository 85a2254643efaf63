"""The model IO manager through real Dagster materialisations and MLflow's real store: a model
asset's partition is logged as a run with its tags, params and metrics, and the scoring asset
loads that very model back."""

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
import pytest
from dagster import AssetIn, DagsterInstance, asset, materialize

from quant_assets.calendar import TRADING_DAYS
from resources.mlflow_io import MLflowModelIOManager, ModelArtifact
from resources.mlflow_tracking import MLflowResource

DAY = "2024-03-12"
X = pd.DataFrame(np.random.default_rng(0).normal(size=(200, 3)), columns=["f1", "f2", "f3"])
Y = X["f1"] * 2 + np.random.default_rng(1).normal(size=200) * 0.1


@asset(partitions_def=TRADING_DAYS, io_manager_key="model_io")
def toy_model(context) -> ModelArtifact:
    seed = int(context.partition_key[-2:])
    model = lgb.LGBMRegressor(n_estimators=20, random_state=seed, verbose=-1).fit(X, Y)
    return ModelArtifact(
        model=model,
        flavor="lightgbm",
        features=list(X.columns),
        params={"n_estimators": 20, "seed": seed},
        metrics={"train_r2": float(model.score(X, Y))},
        input_example=X.head(3),
        requirements=[f"lightgbm=={lgb.__version__}"],
    )


scored: dict[str, object] = {}


@asset(partitions_def=TRADING_DAYS, ins={"toy_model": AssetIn()}, io_manager_key="mem")
def toy_scores(context, toy_model: ModelArtifact) -> int:
    scored[context.partition_key] = toy_model
    return 0


@pytest.fixture
def resources(tmp_path):
    from dagster import InMemoryIOManager

    tracking = MLflowResource(
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
        artifact_location=(tmp_path / "artifacts").as_uri(),
        experiment="io-test",
    )
    scored.clear()
    return {"model_io": MLflowModelIOManager(mlflow_tracking=tracking), "mem": InMemoryIOManager()}


def test_a_model_partition_is_logged_and_loaded_back(resources):
    instance = DagsterInstance.ephemeral()
    for day in ("2024-03-11", DAY):
        assert materialize([toy_model, toy_scores], partition_key=day, resources=resources,
                           instance=instance).success  # fmt: skip
    runs = mlflow.search_runs(experiment_names=["io-test"])
    assert len(runs) == 2
    mine = runs[runs["tags.dagster.partition"] == DAY].iloc[0]
    assert mine["tags.dagster.asset"] == "toy_model" and mine["params.seed"] == "12"
    assert mine["metrics.train_r2"] > 0.9
    loaded = scored[DAY]
    assert loaded.uri == mine["tags.model_uri"] and loaded.features == ["f1", "f2", "f3"]
    assert loaded.params["seed"] == "12" and loaded.flavor == "lightgbm"
    expected = lgb.LGBMRegressor(n_estimators=20, random_state=12, verbose=-1).fit(X, Y)
    np.testing.assert_allclose(loaded.model.predict(X), expected.predict(X))


def test_a_rerun_logs_a_new_run_and_the_newest_is_read(resources):
    instance = DagsterInstance.ephemeral()
    for _ in range(2):
        assert materialize([toy_model], partition_key=DAY, resources=resources,
                           instance=instance).success  # fmt: skip
    runs = mlflow.search_runs(experiment_names=["io-test"], order_by=["start_time DESC"])
    assert materialize([toy_model, toy_scores], partition_key=DAY, resources=resources,
                       instance=instance, selection=[toy_scores.key]).success  # fmt: skip
    assert scored[DAY].uri == runs.iloc[0]["tags.model_uri"]


def test_scoring_without_a_trained_model_fails_with_what_to_do(resources):
    result = materialize([toy_model, toy_scores], partition_key=DAY, resources=resources,
                         selection=[toy_scores.key], raise_on_error=False)  # fmt: skip
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.to_string()
    assert f"no model of toy_model for {DAY} in MLflow: materialize toy_model for {DAY}" in message
