"""Integration: the history load and the daily pipeline materialised for a few partitions
through the code location's assets on the real embedded engines."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import mlflow
import pandas as pd
import pytest
from dagster import AssetCheckSeverity, DagsterInstance, build_schedule_context, materialize
from dagster._core.test_utils import freeze_time
from tick_resources import required_resources

from quant_assets.automation.jobs import (
    OFF_DAILY_MODELS,
    ai_factor_mining_job,
    daily_pipeline,
    history_load,
)
from quant_assets.calendar import next_trading_day, previous_trading_day, trading_days
from quant_assets.definitions import defs
from quant_assets.factors.daily_set import DAILY_FACTORS
from quant_assets.market.sources.delivery import simulated_market
from resources import ClickHouseResource
from tests.conftest import embedded_stack

pytestmark = pytest.mark.slow

WARMUP = trading_days("2024-02-26", "2024-04-10")  # 32 days of history
DAYS = ["2024-04-11", "2024-04-12"]
RUN_CONFIG = {
    "ops": {
        "lgbm_model": {"config": {"min_train_days": 10, "train_days": 40}},
        "factor_screening": {"config": {"window_days": 30, "min_days": 15}},
    }
}
ALL_ASSETS = [*defs.assets, *defs.asset_checks]
MINING_ASSETS = ai_factor_mining_job.selection
# Warnings the first daily days may give, and why: Alpha158's 60-day windows over 32 days of
# history; the news set is sparse by nature; the microstructure set starts on the first daily
# day, so the screening has nothing of it to admit yet.
EXPECTED_WARNINGS = {
    ("alpha158_values", "nan_share"),
    ("alpha158_values", "coverage"),
    ("news_factor_values", "coverage"),
    ("news_factor_values", "nan_share"),
    ("news_factor_values", "not_constant"),
}


def _materialize(selection, day, resources, instance):
    """The history's assets, or with `selection` None the daily pipeline's (as its job)."""
    return materialize(
        ALL_ASSETS,
        selection=selection or daily_pipeline.selection,
        partition_key=day,
        resources=resources,
        instance=instance,
        run_config=RUN_CONFIG if selection is None else None,
        raise_on_error=False,
    )


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    root = tmp_path_factory.mktemp("stack")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QUANT_DATA_DIR", str(root))
        clickhouse = ClickHouseResource(dsn=f"chdb://{root / 'ch'}", database="quant")
        resources = embedded_stack(root, clickhouse, "it", seed=3)
        # on disk: the timeline's schedules are evaluated against it (they need its reference)
        (root / "dagster_home").mkdir()
        instance = DagsterInstance.local_temp(str(root / "dagster_home"))
        for day in WARMUP.strftime("%Y-%m-%d"):
            assert _materialize(history_load.selection, day, resources, instance).success, day
        results = {day: _materialize(None, day, resources, instance) for day in DAYS}
        yield {"root": root, "resources": resources, "instance": instance, "results": results}


def _query(resources, sql: str) -> pd.DataFrame:
    ch = resources["clickhouse"]
    with ch.client() as client:
        return ch.query_df(client, sql)


def _count(resources, table: str, day: str | None = None) -> int:
    where = f" WHERE date = '{day}'" if day else ""
    return int(_query(resources, f"SELECT count() AS n FROM {{db}}.{table}{where}")["n"][0])


def _metadata(result, asset: str) -> dict:
    (event,) = result.asset_materializations_for_node(asset)
    return {k: getattr(v, "value", v) for k, v in event.metadata.items()}


def test_every_run_succeeds_and_only_the_expected_checks_warn(pipeline):
    graph = defs.resolve_asset_graph()
    # the zoo_training job's models and the ai_factor_mining_job's assets are not daily
    other_jobs = {*OFF_DAILY_MODELS, *(k.to_user_string() for k in MINING_ASSETS.resolve(graph))}
    for day, result in pipeline["results"].items():
        assert result.success, day
        evaluations = result.get_asset_check_evaluations()
        assert {(e.asset_key.to_user_string(), e.check_name) for e in evaluations} == {
            (k.asset_key.to_user_string(), k.name)
            for k in graph.asset_check_keys
            if k.asset_key.to_user_string() not in other_jobs
        }
        failed = {
            (e.asset_key.to_user_string(), e.check_name, e.severity)
            for e in evaluations
            if not e.passed
        }
        assert {f for f in failed if f[2] == AssetCheckSeverity.ERROR} == set(), day
        assert {f[:2] for f in failed} <= EXPECTED_WARNINGS, day


def test_tables_hold_one_day_per_partition(pipeline):
    res = pipeline["resources"]
    market = simulated_market(res["market"])
    for day in DAYS:
        listed = market.universe().query("list_date <= @pd.Timestamp(@day)")
        bars = market.daily_bars(day, day)
        traded = int((~bars["is_suspended"]).sum())
        assert _count(res, "universe", day) == len(listed)
        assert _count(res, "raw_daily_bars", day) == len(bars)
        assert _count(res, "adjusted_bars", day) == len(bars)
        assert _count(res, "labels", day) == len(bars)
        assert _count(res, "daily_factor_values", day) == traded
        assert _count(res, "alpha158_values", day) == traded
        assert _count(res, "predictions", day) == traded
        assert _count(res, "signals", day) == traded
        # the target's ten names, and on the second day the names it sells (at most n_drop)
        assert 10 <= _count(res, "recommendations", day) <= 12
        assert _count(res, "paper_book", day) > 10


def test_the_model_trains_on_the_active_set_with_labels_known_by_the_day(pipeline):
    res = pipeline["resources"]
    day = DAYS[-1]
    meta = _metadata(pipeline["results"][day], "lgbm_model")
    # Qlib's label of t is known at the close of t+2: the newest labelled day is two back
    first, _ = meta["training_window"].split("..")
    _, last = meta["validation_window"].split("..")
    assert pd.Timestamp(last) == previous_trading_day(day, 2)
    assert pd.Timestamp(first) >= previous_trading_day(day, 62)
    res["mlflow_tracking"].setup()
    runs = mlflow.search_runs(
        experiment_names=["it"],
        filter_string=f"tags.`dagster.partition` = '{day}' and tags.`dagster.asset` = 'lgbm_model'",
    )
    assert len(runs) == 1 and runs.iloc[0]["params.train_days"] == "40"
    info = mlflow.models.get_model_info(runs.iloc[0]["tags.model_uri"])
    inputs = {c.name for c in info.signature.inputs} - {"date", "symbol"}
    active = _query(res, f"SELECT factor FROM {{db}}.active_factors WHERE date = '{day}'")
    offered = set(active["factor"]) if len(active) else set(DAILY_FACTORS)
    # the active set less the near-copies dropped on the training window
    assert inputs <= offered and len(inputs) == len(offered) - meta["dropped_factors"]
    # the day's registered models: the families and their ensemble
    assert meta["registered_model"] == "quant_lgbm"
    ensemble = _metadata(pipeline["results"][day], "ensemble_model")
    # the scores come from the ensemble's champion in force on the day
    champion = _metadata(pipeline["results"][day], "predictions")["champion_version"]
    uris = _query(res, f"SELECT DISTINCT model_uri FROM {{db}}.predictions WHERE date = '{day}'")
    assert uris["model_uri"].tolist() == [f"models:/quant_ensemble/{champion}"]
    if ensemble["promoted"]:
        assert champion == ensemble["registered_version"]


def test_recommendations_are_tradable_and_for_the_next_day(pipeline):
    res = pipeline["resources"]
    day = DAYS[-1]
    recs = _query(res, f"SELECT * FROM {{db}}.recommendations WHERE date = '{day}' ORDER BY rank")
    bars = _query(res, f"SELECT * FROM {{db}}.raw_daily_bars WHERE date = '{day}'")
    assert (pd.to_datetime(recs["for_date"]) == next_trading_day(day)).all()
    assert (recs["status"] == "trade").all()
    held = recs[recs["weight"] > 0]
    assert len(held) == 10 and 0.5 < held["weight"].sum() <= 1 + 1e-9
    bought = bars.set_index("symbol").loc[recs.loc[recs["action"] == "buy", "symbol"]]
    assert not bought["is_suspended"].any() and not bought["is_st"].any()
    assert recs["name"].str.len().gt(0).all() and recs["reason"].str.len().gt(0).all()
    # yesterday's orders filled at today's open, at most as many shares as ordered
    fills = _query(res, f"SELECT * FROM {{db}}.paper_book WHERE date = '{day}' AND kind = 'fill'")
    ordered = _query(res, f"SELECT * FROM {{db}}.orders WHERE date = '{DAYS[0]}'")
    assert len(fills) and set(fills["symbol"]) <= set(ordered["symbol"])
    assert (fills.loc[fills["side"] == "buy", "shares"] % 100 == 0).all()
    assert (
        recs["symbol"].iloc[0]
        in _metadata(pipeline["results"][day], "recommendations")["recommendations"]
    )
    page = (pipeline["root"] / "reports" / f"{day}.html").read_text(encoding="utf-8")
    assert page.count("<tr") >= 11 and recs["name"].iloc[0] in page
    assert (pipeline["root"] / "reports" / "recommendations" / f"{day}.csv").exists()


def test_rerunning_a_partition_leaves_the_same_rows(pipeline):
    res = pipeline["resources"]
    tables = [
        "universe",
        "raw_daily_bars",
        "adjusted_bars",
        "labels",
        "alpha158_values",
        "factor_screening",
        "predictions",
        "signals",
        "paper_book",
        "orders",
        "recommendations",
        "performance",
    ]
    before = {t: _count(res, t) for t in tables}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QUANT_DATA_DIR", str(pipeline["root"]))
        assert _materialize(None, DAYS[0], res, pipeline["instance"]).success
    assert {t: _count(res, t) for t in tables} == before


def _tick(name: str, moment: datetime, instance: DagsterInstance):
    repo = defs.get_repository_def()
    with (
        freeze_time(moment),
        build_schedule_context(
            scheduled_execution_time=moment,
            repository_def=repo,
            resources=required_resources(repo, defs.resolve_schedule_def(name)),
            instance=instance,
        ) as context,
    ):
        return defs.resolve_schedule_def(name).evaluate_tick(context)


def _run_request(request, resources, instance):
    """A schedule's run request executed as the daemon would: its assets, its partition."""
    selected = {k.to_user_string() for k in request.asset_selection}
    config = {op: c for op, c in RUN_CONFIG["ops"].items() if op in selected}
    return materialize(
        ALL_ASSETS,
        selection=request.asset_selection,
        partition_key=request.partition_key,
        resources=resources,
        instance=instance,
        run_config={"ops": config} if config else None,
        tags=request.tags,
        raise_on_error=False,
    )


def test_the_timeline_runs_a_day_after_its_close_and_the_next_morning(pipeline):
    """The day after DAYS through the timeline's own ticks, each request executed: after the
    close the day's chain, the report and the retraining; the next morning only the scores of
    the new champion and the orders made from them."""
    res, instance = pipeline["resources"], pipeline["instance"]
    day = next_trading_day(DAYS[-1])
    sh = ZoneInfo("Asia/Shanghai")
    after_close = [("timeline_performance_analysis", 15, 0), ("timeline_report_generation", 15, 30),
                   ("timeline_model_retraining", 16, 0)]  # fmt: skip
    morning = next_trading_day(day)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QUANT_DATA_DIR", str(pipeline["root"]))
        for name, hour, minute in after_close:
            moment = datetime(day.year, day.month, day.day, hour, minute, tzinfo=sh)
            (request,) = _tick(name, moment, instance).run_requests
            assert request.partition_key == f"{day:%Y-%m-%d}"
            assert _run_request(request, res, instance).success, name
        asked = {}
        for name, hour, minute in [("timeline_data_preparation", 8, 0),
                                   ("timeline_factor_calculation", 8, 30),
                                   ("timeline_model_inference", 9, 0),
                                   ("timeline_signal_generation", 9, 20)]:  # fmt: skip
            moment = datetime(morning.year, morning.month, morning.day, hour, minute, tzinfo=sh)
            data = _tick(name, moment, instance)
            asked[name] = sorted(
                k.to_user_string() for r in data.run_requests for k in r.asset_selection
            )
            for request in data.run_requests:
                assert request.partition_key == f"{day:%Y-%m-%d}"
                assert _run_request(request, res, instance).success, name
    assert asked["timeline_data_preparation"] == asked["timeline_factor_calculation"] == []
    assert asked["timeline_model_inference"] == ["champion_live_ic", "predictions"]
    assert {"signals", "paper_book", "orders", "recommendations"} <= set(
        asked["timeline_signal_generation"]
    )
    assert _count(res, "recommendations", f"{day:%Y-%m-%d}") > 0
    assert _count(res, "performance", f"{day:%Y-%m-%d}") > 0
