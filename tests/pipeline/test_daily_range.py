"""The daily pipeline over a partition range in one run (every asset one step for all the days,
as `make demo` runs it) stores what one run per day stores: every table compared row for row,
each day's model logged once in MLflow, and each day's metadata on its own partition."""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest
from dagster import DagsterEventType, DagsterInstance, materialize
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from quant_assets.automation.jobs import daily_pipeline, history_load
from resources import ClickHouseResource
from resources.mlflow_registry import champion_as_of
from tests.conftest import embedded_stack
from tests.pipeline.test_daily_pipeline import ALL_ASSETS, RUN_CONFIG
from tests.pipeline.test_daily_pipeline import WARMUP as HISTORY

pytestmark = pytest.mark.slow

WARMUP = list(HISTORY.strftime("%Y-%m-%d"))
DAYS = ["2024-04-11", "2024-04-12", "2024-04-15"]
# who wrote a row and when differ between the two ways by design
UNCOMPARED = {"stored_partitions", "publications"}


def _range(first: str, last: str) -> dict[str, str]:
    return {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last}


def _tables(resources) -> dict[str, pd.DataFrame]:
    ch = resources["clickhouse"]
    out = {}
    with ch.client() as client:
        names = ch.query_df(
            client, "SELECT name FROM system.tables WHERE database = %(db)s", {"db": ch.database}
        )["name"]
        for table in sorted(set(names) - UNCOMPARED):
            frame = ch.query_df(client, f"SELECT * FROM {{db}}.{table}")
            # the registered version of each day's model differs between the two runs
            if table == "predictions":
                frame = frame.drop(columns=["model_uri", "model_version"])
            if table == "champion_live_ic":
                frame = frame.drop(columns=["model_uri"])
            out[table] = frame.sort_values(list(frame.columns)).reset_index(drop=True)
    return out


def _model_metadata(result) -> dict[str, dict]:
    return {
        e.partition: e.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.asset_key.to_user_string() == "lgbm_model"
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("range")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QUANT_DATA_DIR", str(root))
        clickhouse = ClickHouseResource(dsn=f"chdb://{root / 'ch'}", database="quant")
        resources = embedded_stack(root, clickhouse, "range", seed=3)
        instance = DagsterInstance.ephemeral()
        assert materialize(
            ALL_ASSETS,
            selection=history_load.selection,
            resources=resources,
            instance=instance,
            tags=_range(WARMUP[0], WARMUP[-1]),
        ).success
        daily = {
            day: materialize(
                ALL_ASSETS,
                selection=daily_pipeline.selection,
                partition_key=day,
                resources=resources,
                instance=instance,
                run_config=RUN_CONFIG,
            )
            for day in DAYS
        }
        by_day = _tables(resources)
        in_one = materialize(
            ALL_ASSETS,
            selection=daily_pipeline.selection,
            resources=resources,
            instance=instance,
            run_config=RUN_CONFIG,
            tags=_range(DAYS[0], DAYS[-1]),
        )
        yield {
            "resources": resources,
            "daily": daily,
            "by_day": by_day,
            "in_one": in_one,
            "in_one_tables": _tables(resources),
            "tracking_uri": f"sqlite:///{root / 'mlflow' / 'mlflow.db'}",
        }


def test_a_range_run_stores_what_the_day_by_day_runs_store(runs):
    result = runs["in_one"]
    assert all(r.success for r in runs["daily"].values())
    assert result.success
    # one step per asset (and per separate check) for all the days
    steps = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_SUCCESS]
    assert len(steps) == len({e.step_key for e in steps})
    assert {e.partition for e in result.get_asset_materialization_events()} == set(DAYS)
    by_day, in_one = runs["by_day"], runs["in_one_tables"]
    assert set(in_one) == set(by_day)
    assert all(len(by_day[t]) for t in ("predictions", "signals", "recommendations"))
    for table, expected in by_day.items():
        pd.testing.assert_frame_equal(in_one[table], expected, obj=table)


def test_each_day_keeps_its_own_model_and_metadata(runs):
    ranged = _model_metadata(runs["in_one"])
    assert sorted(ranged) == DAYS
    # each partition shows its own day's run and figures, as after daily runs
    run_ids = {day: meta["mlflow_run_id"].value for day, meta in ranged.items()}
    assert len(set(run_ids.values())) == len(DAYS)
    for day in DAYS:
        (alone,) = _model_metadata(runs["daily"][day]).values()
        assert ranged[day]["valid_rank_ic"].value == alone["valid_rank_ic"].value
        assert ranged[day]["training_window"].value == alone["training_window"].value
        assert ranged[day]["replaced_runs"].value == alone["mlflow_run_id"].value

    # the rerun replaced each day's model: the range's run is the day's, and the run it
    # replaced is tagged so, kept live because its model is registered
    client = mlflow.MlflowClient(tracking_uri=runs["tracking_uri"])
    experiment = client.get_experiment_by_name("range")
    live = client.search_runs(
        [experiment.experiment_id], "tags.`dagster.asset` = 'lgbm_model'", max_results=100
    )
    current = {}
    for run in live:
        if "superseded_by" not in run.data.tags:
            current.setdefault(run.data.tags["dagster.partition"], []).append(run.info.run_id)
        else:
            assert run.data.tags["superseded_by"] == run_ids[run.data.tags["dagster.partition"]]
    assert current == {day: [run_ids[day]] for day in DAYS}


def test_a_ranges_predictions_use_each_days_champion(runs):
    ch = runs["resources"]["clickhouse"]
    with ch.client() as client:
        uris = ch.query_df(
            client, "SELECT DISTINCT toString(date) AS day, model_uri FROM {db}.predictions"
        )
    mlflow.set_tracking_uri(runs["tracking_uri"])
    expected = {day: f"models:/quant_ensemble/{champion_as_of('quant_ensemble', day)}"
                for day in DAYS}  # fmt: skip
    assert dict(zip(uris["day"], uris["model_uri"], strict=True)) == expected
    registry = mlflow.MlflowClient(tracking_uri=runs["tracking_uri"])
    for day, uri in expected.items():  # never a model of a later day
        version = registry.get_model_version("quant_ensemble", uri.rsplit("/", 1)[1])
        assert version.tags["day"] <= day
