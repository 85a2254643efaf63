"""The real `lgbm_model` asset materialised through Dagster into MLflow's real store, twice for
one day: what a researcher browsing MLflow finds. Its upstream tables come from a small
in-memory IO manager serving planted frames (the ClickHouse path is covered by the pipeline
tests); the model IO manager and MLflow are the real ones."""

import io

import mlflow
import numpy as np
import pandas as pd
import pytest
from dagster import ConfigurableIOManager, DagsterInstance, SourceAsset, materialize
from mlflow.entities import ViewType

from quant_assets.calendar import TRADING_DAYS, previous_trading_day
from quant_assets.models.assets import FACTOR_SETS, lgbm_model
from resources.mlflow_io import MLflowModelIOManager
from resources.mlflow_tracking import EXPERIMENT_KIND_TAG, MODEL_TRAINING, MLflowResource

DAY = "2024-06-03"
SYMBOLS = [f"{i:06d}.SZ" for i in range(40)]
COLUMNS = {  # factor set -> its factors
    "daily_factor_values": ["d1", "d2"],
    "alpha158_values": ["KMID", "KLEN"],
    "microstructure_values": ["m1"],
    "news_factor_values": ["n1"],
}
ACTIVE = ["KMID", "d1", "m1"]


def _factors(day: pd.Timestamp) -> pd.DataFrame:
    """Every factor of one day, seeded by the day (so a label can be planted on it)."""
    rng = np.random.default_rng(int(day.strftime("%Y%m%d")))
    names = [c for cols in COLUMNS.values() for c in cols]
    frame = pd.DataFrame(rng.normal(size=(len(SYMBOLS), len(names))), columns=names)
    return frame.assign(date=day, symbol=SYMBOLS)


class PlantedFrames(ConfigurableIOManager):
    """Serves the upstream tables for the partitions asked: factor sets, the day's active
    factors, and labels known on each day that follow d1 of their own day (two days back)."""

    def handle_output(self, context, obj) -> None:
        raise NotImplementedError("the planted tables are read only")

    def load_input(self, context) -> pd.DataFrame:
        name = context.asset_key.path[-1]
        days = pd.DatetimeIndex(context.asset_partition_keys)
        if name == "active_factors":
            return pd.DataFrame({"factor": ACTIVE})
        if name == "labels":
            rng = np.random.default_rng(0)
            parts = []
            for day in days:
                own = _factors(previous_trading_day(day, 2))
                label = 0.3 * own["d1"] + rng.normal(size=len(own))
                parts.append(pd.DataFrame({"date": day, "symbol": SYMBOLS, "label": label}))
            return pd.concat(parts, ignore_index=True)
        frames = pd.concat([_factors(day) for day in days], ignore_index=True)
        return frames[["date", "symbol", *COLUMNS[name]]]


SOURCES = [
    SourceAsset(name, partitions_def=TRADING_DAYS, io_manager_key="planted")
    for name in ["active_factors", "labels", *FACTOR_SETS]
]


pytestmark = pytest.mark.slow  # two real materialisations into MLflow


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The day trained twice (seeds 0 and 1), as a user rerunning a partition would."""
    root = tmp_path_factory.mktemp("mlflow")
    tracking = MLflowResource(
        tracking_uri=f"sqlite:///{root / 'mlflow.db'}",
        artifact_location=(root / "artifacts").as_uri(),
        experiment="lgbm-asset",
    )
    resources = {
        "planted": PlantedFrames(),
        "mlflow_model_io": MLflowModelIOManager(mlflow_tracking=tracking),
    }
    instance = DagsterInstance.ephemeral()
    results = [
        materialize(
            [lgbm_model, *SOURCES],
            partition_key=DAY,
            resources=resources,
            instance=instance,
            run_config={"ops": {"lgbm_model": {"config": {"seed": seed}}}},
        )
        for seed in (0, 1)
    ]
    assert all(r.success for r in results)
    experiment = tracking.setup()
    yield {"tracking": tracking, "results": results, "experiment": experiment}


def _live(trained) -> pd.DataFrame:
    trained["tracking"].setup()
    return mlflow.search_runs([trained["experiment"]])


def test_the_day_has_one_live_run_from_the_rerun(trained):
    live = _live(trained)
    first, second = trained["results"]
    assert len(live) == 1
    run = live.iloc[0]
    assert run["tags.dagster.run_id"] == second.run_id and run["params.random_state"] == "1"
    assert run["tags.dagster.partition"] == DAY and run["tags.model_family"] == "lgbm"
    deleted = mlflow.search_runs([trained["experiment"]], run_view_type=ViewType.DELETED_ONLY)
    assert deleted["tags.dagster.run_id"].tolist() == [first.run_id]
    assert deleted["tags.superseded_by"].tolist() == [run["run_id"]]


def test_the_model_is_named_by_family_and_day(trained):
    run = _live(trained).iloc[0]
    models = mlflow.search_logged_models([trained["experiment"]], output_format="list")
    assert [(m.name, m.source_run_id) for m in models] == [(f"lgbm-{DAY}", run["run_id"])]
    assert f"models:/{models[0].model_id}" == run["tags.model_uri"]
    info = mlflow.models.get_model_info(run["tags.model_uri"])
    assert sorted(c.name for c in info.signature.inputs) == ACTIVE


def test_the_run_has_train_and_valid_learning_curves(trained):
    run = _live(trained).iloc[0]
    client = mlflow.MlflowClient()
    best = int(run["metrics.best_iteration"])
    for name in ("train_l2", "valid_l2"):
        history = client.get_metric_history(run["run_id"], name)
        assert len(history) > 1, name
        assert [m.step for m in history] == list(range(1, len(history) + 1)), name
    valid = [m.value for m in client.get_metric_history(run["run_id"], "valid_l2")]
    assert int(np.argmin(valid)) + 1 == best


def test_the_run_has_the_feature_importance_table_and_plot(trained):
    run_id = _live(trained).iloc[0]["run_id"]
    client = mlflow.MlflowClient()
    paths = {a.path for a in client.list_artifacts(run_id)}
    assert {"feature_importance.csv", "feature_importance.png"} <= paths
    table = pd.read_csv(
        io.StringIO(mlflow.artifacts.load_text(f"runs:/{run_id}/feature_importance.csv"))
    )
    assert list(table.columns) == ["feature", "splits", "gain"]
    assert sorted(table["feature"]) == ACTIVE and table["feature"][0] == "d1"  # the planted one
    png = client.download_artifacts(run_id, "feature_importance.png")
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_the_experiment_opens_on_its_runs(trained):
    trained["tracking"].setup()
    tags = mlflow.get_experiment(trained["experiment"]).tags
    assert tags[EXPERIMENT_KIND_TAG] == MODEL_TRAINING
