"""Integration: a market that delivers daily bars and corporate actions only (most vendors)
runs the history load and the whole daily pipeline; the stages that need trades, order books
or news are skipped with the reason in their metadata, never failed and never filled with
zeros, and the models and the strategy use what exists."""

from __future__ import annotations

import pytest
from dagster import AssetCheckSeverity, AssetKey, DagsterInstance, materialize

from quant_assets.automation.jobs import daily_pipeline, history_load
from quant_assets.calendar import trading_days
from quant_assets.definitions import defs
from quant_assets.factors.tables import MICROSTRUCTURE_VALUES, NEWS_FACTOR_VALUES
from resources import ClickHouseResource, MarketDataResource, MLflowResource, stack_resources

pytestmark = pytest.mark.slow

WARMUP = trading_days("2024-02-26", "2024-04-10")
DAY = "2024-04-11"
KINDS = "bars,corporate_actions"
RUN_CONFIG = {
    "ops": {
        "lgbm_model": {"config": {"min_train_days": 10, "train_days": 40}},
        "factor_screening": {"config": {"window_days": 30, "min_days": 15}},
    }
}
ALL_ASSETS = [*defs.assets, *defs.asset_checks]
SKIPPED = {
    "raw_trades": "trades",
    "raw_order_book": "order_book",
    "raw_news": "news",
    "microstructure_values": "trades, order_book",
    "news_analysis": "news",
    "news_factor_values": "news",
}


@pytest.fixture(scope="module")
def bars_only(tmp_path_factory):
    root = tmp_path_factory.mktemp("bars_only")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QUANT_DATA_DIR", str(root))
        (root / "mlflow").mkdir()
        resources = stack_resources(
            ClickHouseResource(dsn=f"chdb://{root / 'ch'}", database="quant"),
            MLflowResource(
                tracking_uri=f"sqlite:///{root / 'mlflow' / 'mlflow.db'}",
                artifact_location=(root / "mlflow" / "artifacts").as_uri(),
                experiment="bars_only",
            ),
            MarketDataResource(
                n_symbols=40,
                seed=5,
                sim_end="2024-12-31",
                landing_dir=str(root / "landing"),
                kinds=KINDS,
            ),
        )
        instance = DagsterInstance.ephemeral()

        def run(job, day: str, run_config=None):
            return materialize(ALL_ASSETS, selection=job.selection, partition_key=day,
                               resources=resources, instance=instance, run_config=run_config,
                               raise_on_error=False)  # fmt: skip

        for day in WARMUP.strftime("%Y-%m-%d"):
            assert run(history_load, day).success, day
        daily = run(daily_pipeline, DAY, RUN_CONFIG)
        yield {"root": root, "resources": resources, "result": daily}


def _metadata(result, asset: str) -> dict:
    """The metadata of `asset`'s one materialisation in the run (a node may have several)."""
    (event,) = [
        e.materialization
        for e in result.get_asset_materialization_events()
        if e.asset_key == AssetKey(asset)
    ]
    return {k: getattr(v, "value", v) for k, v in event.metadata.items()}


def _count(resources, table: str) -> int:
    ch = resources["clickhouse"]
    with ch.client() as client:
        sql = f"SELECT count() AS n FROM {{db}}.{table} WHERE date = '{DAY}'"
        return int(ch.query_df(client, sql)["n"][0])


def test_the_daily_pipeline_succeeds_without_a_failed_blocking_check(bars_only):
    result = bars_only["result"]
    assert result.success
    errors = [
        (e.asset_key.to_user_string(), e.check_name)
        for e in result.get_asset_check_evaluations()
        if not e.passed and e.severity == AssetCheckSeverity.ERROR
    ]
    assert errors == []


def test_stages_without_their_inputs_are_skipped_saying_why(bars_only):
    result = bars_only["result"]
    for asset, absent in SKIPPED.items():
        reason = _metadata(result, asset)["skipped"]
        assert reason.startswith(f"this market delivers no {absent} ("), asset
        assert KINDS.replace(",", ", ") in reason, asset
        assert _count(bars_only["resources"], asset) == 0, asset
    # their checks pass, each carrying the same reason
    for evaluation in result.get_asset_check_evaluations():
        if evaluation.asset_key.to_user_string() in SKIPPED:
            assert evaluation.passed and "skipped" in evaluation.metadata
    # nothing was asked of the landing zone for the kinds the market does not deliver
    landing = bars_only["root"] / "landing"
    assert not any((landing / kind).exists() for kind in ("trades", "order_book", "news"))
    assert (landing / "bars" / f"{DAY}.parquet").exists()


def test_models_and_strategy_use_what_exists(bars_only):
    res, result = bars_only["resources"], bars_only["result"]
    assert _metadata(result, "raw_daily_bars")["delivered"] is True
    traded = _count(res, "daily_factor_values")
    assert traded > 30
    assert _count(res, "predictions") == traded
    assert _count(res, "recommendations") >= 10
    ch = res["clickhouse"]
    with ch.client() as client:
        active = ch.query_df(
            client, f"SELECT factor FROM {{db}}.active_factors WHERE date = '{DAY}'"
        )
    # no factor of a skipped set can be admitted: they have no values
    skipped_sets = {*MICROSTRUCTURE_VALUES.columns, *NEWS_FACTOR_VALUES.columns} - {
        "date",
        "symbol",
    }
    assert len(active) and not set(active["factor"]) & skipped_sets


def test_the_report_says_which_inputs_the_day_had(bars_only):
    page = (bars_only["root"] / "reports" / f"{DAY}.html").read_text(encoding="utf-8")
    assert "Inputs of the day: bars, corporate actions." in page
    assert "news: news analysis, news factors" in page
