"""The model stage's assets materialised through Dagster into MLflow's real store and registry:
a family model per day logged as a generic pyfunc and registered, the promotion rule both
ways with its numbers recorded, the ensemble of the day's family models, predictions from the
champion in force on each day (never a later one), and a corrupt champion refused by name.
Upstream tables come from a small IO manager serving planted frames (the ClickHouse path is
covered by the pipeline tests); the model IO manager, MLflow and its registry are real."""

import io
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from dagster import (
    ConfigurableIOManager,
    DagsterInstance,
    InMemoryIOManager,
    SourceAsset,
    materialize,
)
from mlflow.entities import ViewType

from quant_assets.calendar import TRADING_DAYS, previous_trading_day, trading_days
from quant_assets.models.assets import (
    FACTOR_SETS,
    ensemble_model,
    family_model,
    predictions,
)
from resources.mlflow_io import MLflowModelIOManager
from resources.mlflow_registry import CHALLENGER, CHAMPION, champion_as_of
from resources.mlflow_tracking import MLflowResource

DAYS = [d.strftime("%Y-%m-%d") for d in trading_days("2024-06-03", "2024-06-05")]
SYMBOLS = [f"{i:06d}.SZ" for i in range(40)]
COLUMNS = {  # factor set -> its factors
    "daily_factor_values": ["d1", "d2"],
    "alpha158_values": ["KMID", "KLEN"],
    "microstructure_values": ["m1"],
    "news_factor_values": ["n1"],
    "ai_factor_values": [],  # no AI factor mined yet
}
ACTIVE = ["KMID", "d1", "m1"]
TRAIN = {"train_days": 20, "valid_days": 8, "min_train_days": 5}
FAMILY_ASSETS = {f: family_model(f) for f in ("lgbm", "xgb", "rf")}

pytestmark = pytest.mark.slow  # real materialisations into MLflow


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
            parts = []
            for day in days:
                own = _factors(previous_trading_day(day, 2))
                noise = np.random.default_rng(int(day.strftime("%Y%m%d")) + 1)
                label = 0.3 * own["d1"] + noise.normal(size=len(own))
                parts.append(pd.DataFrame({"date": day, "symbol": SYMBOLS, "label": label}))
            return pd.concat(parts, ignore_index=True)
        frames = pd.concat([_factors(day) for day in days], ignore_index=True)
        return frames[["date", "symbol", *COLUMNS[name]]]


SOURCES = [
    SourceAsset(name, partitions_def=TRADING_DAYS, io_manager_key="planted")
    for name in ["active_factors", "labels", *FACTOR_SETS]
]
ALL = [*FAMILY_ASSETS.values(), ensemble_model, predictions, *SOURCES]


@pytest.fixture(scope="module")
def stage(tmp_path_factory):
    """Three days: day 1 trains everything (first champions), day 2 trains lgbm with a margin
    no model can clear (refused) and the rest as usual, day 3 everything again; lgbm of day 1
    is then rerun (a user rerunning a partition). Predictions of each day follow."""
    root = tmp_path_factory.mktemp("mlflow")
    tracking = MLflowResource(
        tracking_uri=f"sqlite:///{root / 'mlflow.db'}",
        artifact_location=(root / "artifacts").as_uri(),
        experiment="model-assets",
    )
    resources = {
        "planted": PlantedFrames(),
        "mlflow_model_io": MLflowModelIOManager(mlflow_tracking=tracking),
        "clickhouse_io": InMemoryIOManager(),
    }
    instance = DagsterInstance.ephemeral()

    def run(day, selection, margin=0.0, seed=0):
        config = {**TRAIN, "promotion_margin": margin, "seed": seed}
        names = {a.key.path[-1] for a in selection}
        ops = {n: {"config": config} for n in names if n.endswith("_model")}
        if "ensemble_model" in ops:
            ops["ensemble_model"] = {"config": TRAIN}
        return materialize(ALL, partition_key=day, resources=resources, instance=instance,
                           selection=selection, run_config={"ops": ops})  # fmt: skip

    models = [*FAMILY_ASSETS.values(), ensemble_model]
    results = {
        "day1": run(DAYS[0], models),
        "day2_refused": run(DAYS[1], [FAMILY_ASSETS["lgbm"]], margin=1.0),
        "day2_rest": run(DAYS[1], [FAMILY_ASSETS["xgb"], FAMILY_ASSETS["rf"], ensemble_model]),
        "day3": run(DAYS[2], models, margin=-1.0),
    }
    results["predictions"] = {day: run(day, [predictions]) for day in DAYS}
    assert all(r.success for r in results.values() if not isinstance(r, dict))
    tracking.setup()
    yield {"tracking": tracking, "results": results, "run": run, "root": root}


def _meta(result, asset: str) -> dict:
    mats = [e for e in result.get_asset_materialization_events()
            if e.asset_key.to_user_string() == asset]  # fmt: skip
    return {k: v.value for k, v in mats[-1].materialization.metadata.items()}


def _versions(name: str) -> dict[str, mlflow.entities.model_registry.ModelVersion]:
    client = mlflow.MlflowClient()
    return {str(mv.version): mv for mv in client.search_model_versions(f"name = '{name}'")}


def test_every_model_is_a_registered_pyfunc_with_its_signature(stage):
    client = mlflow.MlflowClient()
    for name in ("quant_lgbm", "quant_xgb", "quant_rf", "quant_ensemble"):
        versions = _versions(name)
        assert len(versions) == 3, name  # one a day
        assert {v.tags["day"] for v in versions.values()} == set(DAYS)
        info = mlflow.models.get_model_info(f"models:/{name}/1")
        assert set(info.flavors) == {"python_function"}
        inputs = {c.name for c in info.signature.inputs}
        assert set(ACTIVE) <= inputs and {"date", "symbol"} <= inputs
        run = client.get_run(versions["1"].run_id)
        assert "feature_importance.csv" in {a.path for a in client.list_artifacts(run.info.run_id)}


def test_the_first_model_becomes_champion_and_the_rule_is_recorded(stage):
    meta = _meta(stage["results"]["day1"], "lgbm_model")
    assert meta["promoted"] is True and meta["compared_with"] == "none"
    first = _versions("quant_lgbm")["1"]
    assert first.tags["promotion.decision"] == "promoted"
    assert first.tags["promotion.champion_score"] == "none"


def test_a_challenger_below_the_margin_is_refused_and_the_champion_stays(stage):
    meta = _meta(stage["results"]["day2_refused"], "lgbm_model")
    assert meta["promoted"] is False and meta["compared_with"] == "quant_lgbm/1"
    second = _versions("quant_lgbm")["2"]
    assert second.tags["promotion.decision"] == "refused"
    assert float(second.tags["promotion.margin"]) == 1.0
    champion_score = float(second.tags["promotion.champion_score"])
    assert float(second.tags["promotion.challenger_score"]) < champion_score + 1.0
    run = mlflow.MlflowClient().get_run(second.run_id)
    assert run.data.tags["promotion.decision"] == "refused"  # on the run too
    assert champion_as_of("quant_lgbm", DAYS[1]) == "1"


def test_a_challenger_above_the_margin_is_promoted(stage):
    meta = _meta(stage["results"]["day3"], "lgbm_model")
    assert meta["promoted"] is True and meta["compared_with"] == "quant_lgbm/1"
    model = mlflow.MlflowClient().get_registered_model("quant_lgbm")
    assert str(model.aliases[CHAMPION]) == "3" and CHALLENGER not in model.aliases


def test_the_ensemble_weighs_the_days_family_models(stage):
    meta = _meta(stage["results"]["day1"], "ensemble_model")
    assert "weights" in meta and meta["registered_model"] == "quant_ensemble"
    run = mlflow.MlflowClient().get_run(_versions("quant_ensemble")["1"].run_id)
    weights = {k: float(v) for k, v in run.data.params.items() if k.startswith("weight_")}
    assert set(weights) == {"weight_lgbm", "weight_xgb", "weight_rf"}
    assert sum(weights.values()) == pytest.approx(1.0)


def test_predictions_use_the_champion_in_force_on_each_day(stage):
    ensemble = _versions("quant_ensemble")
    for day, result in stage["results"]["predictions"].items():
        meta = _meta(result, "predictions")
        version = champion_as_of("quant_ensemble", day)
        assert meta["champion_version"] == version, day
        assert ensemble[version].tags["day"] <= day  # never a later day's model
        checks = {e.asset_check_key.name: e.passed for e in result.get_asset_check_evaluations()}
        assert checks == {"champion_exists": True, "covers_universe": True,
                          "probabilities_in_unit_interval": True}, day  # fmt: skip


def test_a_corrupt_champion_is_refused_by_name_and_stays_champion(stage):
    client = mlflow.MlflowClient()
    version = champion_as_of("quant_ensemble", DAYS[2])
    root = Path(client.get_model_version_download_uri("quant_ensemble", version).removeprefix(
        "file://"))  # fmt: skip
    pickled = next(p for p in root.rglob("*.pkl"))
    original = pickled.read_bytes()
    pickled.write_bytes(b"not a pickle")
    try:
        from resources import mlflow_io

        mlflow_io._LOADED.clear()  # this process loaded it before; a new process would not
        with pytest.raises(Exception, match="cannot be loaded") as error:
            stage["run"](DAYS[2], [predictions])
        assert pickled.name in str(error.value) or "corrupt" in str(error.value)
        model = client.get_registered_model("quant_ensemble")
        assert str(model.aliases[CHAMPION]) == version
    finally:
        pickled.write_bytes(original)


def test_the_importance_table_names_the_planted_factor_first(stage):
    run_id = _versions("quant_lgbm")["3"].run_id
    table = pd.read_csv(
        io.StringIO(mlflow.artifacts.load_text(f"runs:/{run_id}/feature_importance.csv"))
    )
    assert table.iloc[0, 0] == "d1"


def test_a_rerun_leaves_one_live_run_per_day(stage):
    stage["run"](DAYS[0], [FAMILY_ASSETS["lgbm"]], seed=1)
    exp = mlflow.get_experiment_by_name("model-assets").experiment_id
    live = mlflow.search_runs([exp], filter_string=f"tags.`dagster.partition` = '{DAYS[0]}' "
                              "and tags.`dagster.asset` = 'lgbm_model'")  # fmt: skip
    assert len(live) == 2  # the rerun, and the first run kept live: its model is registered
    replaced = live[live["tags.superseded_by"].notna()]
    assert len(replaced) == 1
    deleted = mlflow.search_runs([exp], run_view_type=ViewType.DELETED_ONLY)
    assert deleted.empty  # a registered model's run is never deleted
