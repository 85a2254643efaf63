"""Integration: materialise the daily pipeline for a few partitions on the real embedded engines."""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest
from dagster import AssetCheckSeverity, DagsterInstance, materialize

from quant_assets.automation.jobs import history_load
from quant_assets.calendar import next_trading_day, trading_days
from quant_assets.definitions import defs
from quant_assets.factors.daily_set import DAILY_FACTORS
from quant_assets.storage import ClickHouseTableIOManager
from resources import ClickHouseResource, MarketDataResource, MLflowResource

pytestmark = pytest.mark.slow

WARMUP = trading_days("2024-02-26", "2024-04-10")  # 32 days of market data and factors
DAYS = ["2024-04-11", "2024-04-12"]
RUN_CONFIG = {
    "ops": {
        "lgbm_model": {"config": {"min_train_days": 10, "train_days": 40}},
        "factor_evaluation": {"config": {"window_days": 30, "min_days": 15}},
    }
}
ALL_ASSETS = [*defs.assets, *defs.asset_checks]


def _materialize(selection, day, resources, instance):
    return materialize(
        ALL_ASSETS,
        selection=selection,
        partition_key=day,
        resources=resources,
        instance=instance,
        run_config=RUN_CONFIG if selection is None else None,
    )


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    root = tmp_path_factory.mktemp("stack")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QUANT_DATA_DIR", str(root))
        (root / "mlflow").mkdir()
        resources = {
            "clickhouse": ClickHouseResource(dsn=f"chdb://{root / 'ch'}", database="quant"),
            "mlflow_tracking": MLflowResource(
                tracking_uri=f"sqlite:///{root / 'mlflow' / 'mlflow.db'}",
                artifact_location=(root / "mlflow" / "artifacts").as_uri(),
                experiment="it",
            ),
            "market": MarketDataResource(
                n_symbols=40, seed=3, sim_end="2024-12-31", landing_dir=str(root / "landing")
            ),
        }
        resources["clickhouse_io"] = ClickHouseTableIOManager(clickhouse=resources["clickhouse"])
        instance = DagsterInstance.ephemeral()
        history = history_load.selection
        for day in WARMUP.strftime("%Y-%m-%d"):
            assert _materialize(history, day, resources, instance).success
        results = {day: _materialize(None, day, resources, instance) for day in DAYS}
        yield {"root": root, "resources": resources, "instance": instance, "results": results}


def _count(resources, table: str, day: str | None = None) -> int:
    ch = resources["clickhouse"]
    where = f" WHERE date = '{day}'" if day else ""
    with ch.client() as client:
        return int(ch.query_df(client, f"SELECT count() AS n FROM {{db}}.{table}{where}")["n"][0])


def test_every_run_succeeds_and_every_check_passes(pipeline):
    for day, result in pipeline["results"].items():
        assert result.success, day
        evaluations = result.get_asset_check_evaluations()
        assert len(evaluations) >= 20
        failed = [
            (e.asset_key.to_user_string(), e.check_name, e.severity, dict(e.metadata))
            for e in evaluations
            if not e.passed
        ]
        errors = [f for f in failed if f[2] == AssetCheckSeverity.ERROR]
        assert errors == [], (day, errors)
        # The only warnings: Alpha158's 60-day windows (ROC60) with 32 days of history.
        for asset, _, _, metadata in failed:
            assert asset == "alpha158_values", (day, failed)
            assert metadata.get("short_history", metadata.get("worst_coverage")) is not None


def test_tables_hold_one_day_per_partition(pipeline):
    res = pipeline["resources"]
    market = res["market"].simulated()
    for day in DAYS:
        listed = market.universe().query("list_date <= @pd.Timestamp(@day)")
        bars = market.daily_bars(day, day)
        traded = int((~bars["is_suspended"]).sum())
        assert _count(res, "universe_daily", day) == len(listed)
        assert _count(res, "raw_daily_bars", day) == len(bars)
        assert _count(res, "factor_values", day) >= traded * (len(DAILY_FACTORS) + 158)
        assert _count(res, "predictions", day) == traded
        assert _count(res, "signals", day) == 10
        assert _count(res, "recommendations", day) == 10


def test_model_is_logged_with_params_metrics_and_signature(pipeline):
    res = pipeline["resources"]
    res["mlflow_tracking"].setup()
    runs = mlflow.search_runs(
        experiment_names=["it"], filter_string="tags.partition = '2024-04-12'"
    )
    assert len(runs) == 1
    run = runs.iloc[0]
    assert run["params.train_days"] == "40"
    assert run["metrics.train_dates"] >= 10
    assert -1 <= run["metrics.valid_rank_ic"] <= 1
    model_info = mlflow.models.get_model_info(run["tags.model_uri"])
    inputs = sorted(c.name for c in model_info.signature.inputs)
    ch = res["clickhouse"]
    with ch.client() as client:
        active = ch.query_df(
            client,
            "SELECT factor FROM {db}.factor_screening WHERE date = '2024-04-12' AND active",
        )["factor"]
    # The model trains on the day's active factor set (the daily set when none passes).
    assert inputs == (sorted(active) if len(active) else sorted(DAILY_FACTORS))
    assert run["params.n_features"] == str(len(inputs))


def test_recommendations_are_tradable_and_for_the_next_day(pipeline):
    res = pipeline["resources"]
    ch = res["clickhouse"]
    day = DAYS[-1]
    with ch.client() as client:
        recs = ch.query_df(client, f"SELECT * FROM {{db}}.recommendations WHERE date = '{day}'")
        bars = ch.query_df(client, f"SELECT * FROM {{db}}.raw_daily_bars WHERE date = '{day}'")
    assert (pd.to_datetime(recs["for_date"]) == next_trading_day(day)).all()
    assert recs["rank"].tolist() == sorted(recs["rank"]) and recs["weight"].sum() == pytest.approx(
        1
    )
    held = bars.set_index("symbol").loc[recs["symbol"]]
    assert not held["is_suspended"].any() and not held["is_st"].any()
    assert recs["name"].str.len().gt(0).all()
    metadata = (
        pipeline["results"][day].asset_materializations_for_node("recommendations")[0].metadata
    )
    assert recs["symbol"].iloc[0] in metadata["recommendations"].value
    assert (pipeline["root"] / "reports" / f"{day}.html").read_text().count("<tr") >= 11


def test_rerunning_a_partition_leaves_the_same_rows(pipeline):
    res = pipeline["resources"]
    tables = [
        "universe_daily",
        "raw_daily_bars",
        "factor_values",
        "predictions",
        "signals",
        "recommendations",
    ]
    before = {t: _count(res, t) for t in tables}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QUANT_DATA_DIR", str(pipeline["root"]))
        assert _materialize(None, DAYS[0], res, pipeline["instance"]).success
    assert {t: _count(res, t) for t in tables} == before
