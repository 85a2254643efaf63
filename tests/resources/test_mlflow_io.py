"""The model IO manager through real Dagster materialisations and MLflow's real store: a model
asset's partition is logged as one run with its tags, params, metrics, learning curves and
files, under a model named after its family and day; a rerun replaces that run; the scoring
asset loads the newest model back."""

import io

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
import pytest
from dagster import AssetIn, Config, DagsterInstance, InMemoryIOManager, asset, materialize
from mlflow.entities import ViewType

from quant_assets.calendar import TRADING_DAYS
from quant_assets.models.trees import feature_importance, learning_curves
from resources.mlflow_io import MLflowModelIOManager, ModelArtifact
from resources.mlflow_tracking import EXPERIMENT_KIND_TAG, MODEL_TRAINING, MLflowResource

DAY = "2024-03-12"
X = pd.DataFrame(np.random.default_rng(0).normal(size=(200, 3)), columns=["f1", "f2", "f3"])
Y = X["f1"] * 2 + np.random.default_rng(1).normal(size=200) * 0.1
TREES = 20


class ToyConfig(Config):
    seed: int = -1  # -1: the day of the month
    broken_file: bool = False  # a file that cannot be written: the logging fails half-way


def _fit(seed: int) -> lgb.LGBMRegressor:
    model = lgb.LGBMRegressor(n_estimators=TREES, random_state=seed, subsample=0.7,
                              subsample_freq=1, verbose=-1)  # fmt: skip
    return model.fit(X, Y, eval_X=(X,), eval_y=(Y,), eval_names=["train"])


@asset(partitions_def=TRADING_DAYS, io_manager_key="model_io")
def toy_model(context, config: ToyConfig) -> ModelArtifact:
    seed = config.seed if config.seed >= 0 else int(context.partition_key[-2:])
    model = _fit(seed)
    importance = feature_importance(model.booster_)
    files: dict = {"feature_importance.csv": importance.to_csv(), "plots/empty.png": b"\x89PNG"}
    if config.broken_file:
        files["broken.txt"] = 123
    return ModelArtifact(
        model=model.booster_,
        flavor="lightgbm",
        family="lgbm",
        features=list(X.columns),
        params={"n_estimators": TREES, "seed": seed},
        metrics={"train_r2": float(model.score(X, Y))},
        input_example=X.head(3),
        requirements=[f"lightgbm=={lgb.__version__}"],
        curves=learning_curves(model.evals_result_),
        files=files,
    )


scored: dict[str, ModelArtifact] = {}


@asset(partitions_def=TRADING_DAYS, ins={"toy_model": AssetIn()}, io_manager_key="mem")
def toy_scores(context, toy_model: ModelArtifact) -> int:
    scored[context.partition_key] = toy_model
    return 0


@pytest.fixture
def resources(tmp_path):
    tracking = MLflowResource(
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
        artifact_location=(tmp_path / "artifacts").as_uri(),
        experiment="io-test",
    )
    scored.clear()
    return {"model_io": MLflowModelIOManager(mlflow_tracking=tracking), "mem": InMemoryIOManager()}


def _train(resources, instance, day=DAY, seed=-1, broken=False, raise_on_error=True):
    config = {"ops": {"toy_model": {"config": {"seed": seed, "broken_file": broken}}}}
    return materialize([toy_model], partition_key=day, resources=resources, instance=instance,
                       run_config=config, raise_on_error=raise_on_error)  # fmt: skip


def _score(resources, instance, day=DAY):
    assert materialize([toy_model, toy_scores], partition_key=day, resources=resources,
                       instance=instance, selection=[toy_scores.key]).success  # fmt: skip
    return scored[day]


def _runs(day, view=ViewType.ACTIVE_ONLY):
    return mlflow.search_runs(experiment_names=["io-test"], run_view_type=view,
                              filter_string=f"tags.`dagster.partition` = '{day}'")  # fmt: skip


def _models(day):
    exp = mlflow.get_experiment_by_name("io-test").experiment_id
    return mlflow.search_logged_models([exp], filter_string=f"name = 'lgbm-{day}'",
                                       output_format="list")  # fmt: skip


def test_a_model_partition_is_logged_and_loaded_back(resources):
    instance = DagsterInstance.ephemeral()
    for day in ("2024-03-11", DAY):
        assert _train(resources, instance, day).success
        _score(resources, instance, day)
    runs = mlflow.search_runs(experiment_names=["io-test"])
    assert len(runs) == 2
    mine = runs[runs["tags.dagster.partition"] == DAY].iloc[0]
    assert mine["tags.dagster.asset"] == "toy_model" and mine["params.seed"] == "12"
    assert mine["tags.model_family"] == "lgbm" and mine["tags.mlflow.runName"] == f"toy_model-{DAY}"
    assert mine["metrics.train_r2"] > 0.9
    loaded = scored[DAY]
    assert loaded.uri == mine["tags.model_uri"] and loaded.features == ["f1", "f2", "f3"]
    assert loaded.params["seed"] == "12" and loaded.flavor == "lightgbm" and loaded.family == "lgbm"
    np.testing.assert_allclose(loaded.model.predict(X), _fit(12).predict(X))


def test_the_model_is_named_by_family_and_day_with_curves_and_files(resources):
    instance = DagsterInstance.ephemeral()
    assert _train(resources, instance).success
    (model,) = _models(DAY)
    run_id = _runs(DAY).iloc[0]["run_id"]
    assert model.source_run_id == run_id and model.tags["dagster.partition"] == DAY
    assert {m.key: m.value for m in model.metrics} == {"train_r2": pytest.approx(
        _fit(12).score(X, Y))}  # fmt: skip
    client = mlflow.MlflowClient()
    history = client.get_metric_history(run_id, "train_l2")
    assert [m.step for m in history] == list(range(1, TREES + 1))
    expected = _fit(12).evals_result_["train"]["l2"]
    np.testing.assert_allclose([m.value for m in history], expected)
    assert history[-1].value < history[0].value  # a learning curve, not a constant
    paths = {a.path for a in client.list_artifacts(run_id)} | {
        a.path for a in client.list_artifacts(run_id, "plots")
    }
    assert {"feature_importance.csv", "plots/empty.png"} <= paths
    table = pd.read_csv(
        io.StringIO(mlflow.artifacts.load_text(f"runs:/{run_id}/feature_importance.csv"))
    )
    assert list(table.columns) == ["feature", "splits", "gain"] and table["feature"][0] == "f1"
    exp = mlflow.get_experiment_by_name("io-test")
    assert exp.tags[EXPERIMENT_KIND_TAG] == MODEL_TRAINING


def test_a_rerun_replaces_the_partitions_run_and_the_newest_is_read(resources):
    instance = DagsterInstance.ephemeral()
    assert _train(resources, instance, "2024-03-11").success
    first = _train(resources, instance, seed=1)
    assert first.success
    assert _score(resources, instance).params["seed"] == "1"
    second = _train(resources, instance, seed=2)
    assert second.success
    live = _runs(DAY)
    assert len(live) == 1 and live.iloc[0]["tags.dagster.run_id"] == second.run_id
    assert len(_models(DAY)) == 1
    deleted = _runs(DAY, ViewType.DELETED_ONLY)
    assert len(deleted) == 1
    old = deleted.iloc[0]
    assert old["tags.dagster.run_id"] == first.run_id and old["params.seed"] == "1"
    assert old["tags.superseded_by"] == live.iloc[0]["run_id"]
    (meta,) = [m.metadata for m in second.asset_materializations_for_node("toy_model")]
    assert meta["replaced_runs"].value == old["run_id"]
    # the other day keeps its run, and the scoring asset reads the newest model
    assert len(_runs("2024-03-11")) == 1
    loaded = _score(resources, instance)
    assert loaded.uri == live.iloc[0]["tags.model_uri"] and loaded.params["seed"] == "2"
    np.testing.assert_allclose(loaded.model.predict(X), _fit(2).predict(X))


def test_a_registered_model_survives_a_rerun(resources):
    instance = DagsterInstance.ephemeral()
    assert _train(resources, instance, seed=1).success
    first = _runs(DAY).iloc[0]
    version = mlflow.register_model(first["tags.model_uri"], "toy")
    assert _train(resources, instance, seed=2).success
    live = _runs(DAY).set_index("run_id")
    assert len(live) == 2 and live.loc[first["run_id"], "tags.superseded_by"] in live.index
    assert _score(resources, instance).params["seed"] == "2"
    loaded = mlflow.lightgbm.load_model(f"models:/toy/{version.version}")
    np.testing.assert_allclose(loaded.predict(X), _fit(1).predict(X))


def test_a_rerun_that_fails_to_log_leaves_the_previous_model(resources):
    instance = DagsterInstance.ephemeral()
    assert _train(resources, instance, seed=1).success
    before = _runs(DAY)
    failed = _train(resources, instance, seed=2, broken=True, raise_on_error=False)
    assert not failed.success
    assert _runs(DAY)["run_id"].tolist() == before["run_id"].tolist()
    model_id = before.iloc[0]["tags.model_uri"].removeprefix("models:/")
    assert [m.model_id for m in _models(DAY)] == [model_id]
    assert _score(resources, instance).params["seed"] == "1"


def test_scoring_without_a_trained_model_fails_with_what_to_do(resources):
    result = materialize([toy_model, toy_scores], partition_key=DAY, resources=resources,
                         selection=[toy_scores.key], raise_on_error=False)  # fmt: skip
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.to_string()
    assert f"no model of toy_model for {DAY} in MLflow: materialize toy_model for {DAY}" in message


def test_the_experiment_is_marked_as_model_training(tmp_path):
    """New experiments get the mark; one without it or marked GenAI is fixed when found; an
    ML kind a user chose in the UI is kept."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.create_experiment("bare")
    mlflow.create_experiment("genai", tags={EXPERIMENT_KIND_TAG: "genai_development"})
    mlflow.create_experiment("chosen", tags={EXPERIMENT_KIND_TAG: "regression"})
    for name, kind in [("new", MODEL_TRAINING), ("bare", MODEL_TRAINING),
                       ("genai", MODEL_TRAINING), ("chosen", "regression")]:  # fmt: skip
        experiment_id = MLflowResource(tracking_uri=uri, experiment=name).setup()
        assert mlflow.get_experiment(experiment_id).tags[EXPERIMENT_KIND_TAG] == kind, name


def test_a_rerun_also_retires_a_run_logged_before_runs_had_a_family(resources):
    """Stores filled by earlier versions (runs tagged by asset and partition only) get tidied
    the first time each day is rerun."""
    experiment = resources["model_io"].mlflow_tracking.setup()
    with mlflow.start_run(experiment_id=experiment, tags={
            "dagster.asset": "toy_model", "dagster.partition": DAY}) as legacy:  # fmt: skip
        mlflow.log_param("seed", "old")
    assert _train(resources, DagsterInstance.ephemeral()).success
    live = _runs(DAY)
    assert len(live) == 1 and live.iloc[0]["run_id"] != legacy.info.run_id
    assert _runs(DAY, ViewType.DELETED_ONLY)["run_id"].tolist() == [legacy.info.run_id]
