"""The code location: every stage's assets with descriptions, groups and kinds, checks with
descriptions, true lineage (no asset reads a table around Dagster), and a clean
`dagster definitions validate`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from quant_assets.definitions import defs

ROOT = Path(__file__).resolve().parents[1]


def _graph():
    return defs.resolve_asset_graph()


def test_every_stage_is_in_the_graph_with_its_group():
    groups = {k.to_user_string(): _graph().get(k).group_name for k in _graph().get_all_asset_keys()}
    assert groups == {
        **dict.fromkeys(
            [
                "universe",
                "raw_daily_bars",
                "raw_trades",
                "raw_order_book",
                "raw_news",
                "raw_corporate_actions",
                "minute_bars",
                "adjustment_factors",
                "adjusted_bars",
                "news_items",
                "labels",
            ],
            "market",
        ),
        **dict.fromkeys(
            [
                f"{k}_quarantine"
                for k in ("bars", "trades", "order_book", "news", "corporate_actions")
            ],
            "quarantine",
        ),
        **dict.fromkeys(
            [
                "daily_factor_values",
                "alpha158_values",
                "microstructure_values",
                "news_analysis",
                "news_factor_values",
                "ai_factor_values",
                "factor_screening",
                "active_factors",
            ],
            "factors",
        ),
        **dict.fromkeys(["market_context", "ai_factor_mining", "ai_factors"], "ai_factors"),
        **dict.fromkeys(
            [f"{f}_model" for f in ("lgbm", "xgb", "rf", "cnn", "lstm", "transformer")]
            + ["ensemble_model", "predictions", "champion_live_ic"],
            "models",
        ),
        "signals": "strategy",
        "paper_book": "strategy",
        "orders": "strategy",
        "recommendations": "reports",
        "performance": "reports",
        "performance_report": "reports",
    }


def test_every_asset_and_check_says_what_it_is():
    for key in _graph().get_all_asset_keys():
        node = _graph().get(key)
        name = key.to_user_string()
        assert node.description and len(node.description) > 20, name
        assert node.kinds, name
        assert node.partitions_def is not None, name
    checks = list(_graph().asset_check_keys)
    # 25 before issue 11; then one each for the five quarantines, minute_bars (a second),
    # adjusted_bars, news_items, labels and factor_screening; issue 12: one per family and
    # the ensemble (7 models, one had it), two more on predictions, the live rank IC; issue 13:
    # the paper book, orders, performance and its report; issue 14: the news analysis, the
    # market context, the mining, the admitted set and its values
    assert len(checks) == 35 + 6 + 2 + 1 + 4 + 5
    for check in checks:
        assert _graph().get_check_spec(check).description, check


def test_every_asset_that_writes_data_has_a_check():
    """Each asset's page shows at least one check: none is written unchecked."""
    checked = {c.asset_key for c in _graph().asset_check_keys}
    unchecked = sorted(
        k.to_user_string() for k in _graph().get_all_asset_keys() if k not in checked
    )
    assert unchecked == []


def test_lineage_is_the_data_flow():
    """What each asset reads is declared: the upstream assets of the main stages."""

    def parents(name: str) -> set[str]:
        node = _graph().get(
            next(k for k in _graph().get_all_asset_keys() if k.to_user_string() == name)
        )
        return {k.to_user_string() for k in node.parent_keys}

    assert parents("adjustment_factors") == {
        "raw_daily_bars",
        "raw_corporate_actions",
        "adjustment_factors",
    }
    assert parents("adjusted_bars") == {"raw_daily_bars", "adjustment_factors"}
    assert parents("labels") == {"adjusted_bars"}
    assert parents("alpha158_values") == {"adjusted_bars"}
    assert parents("news_analysis") == {"news_items", "universe"}
    assert parents("news_factor_values") == {"news_items", "news_analysis", "universe"}
    assert parents("ai_factor_mining") == {
        "adjusted_bars", "news_factor_values", "news_items", "market_context"}  # fmt: skip
    assert parents("ai_factor_values") == {
        "ai_factor_mining", "adjusted_bars", "news_factor_values"}  # fmt: skip
    assert parents("factor_screening") == {
        "daily_factor_values",
        "alpha158_values",
        "microstructure_values",
        "news_factor_values",
        "ai_factor_values",
        "labels",
        "adjusted_bars",
    }
    assert parents("lgbm_model") == {
        "active_factors",
        "daily_factor_values",
        "alpha158_values",
        "microstructure_values",
        "news_factor_values",
        "ai_factor_values",
        "labels",
    }
    assert parents("ensemble_model") == parents("lgbm_model") | {
        "lgbm_model",
        "xgb_model",
        "rf_model",
    }
    assert parents("predictions") == {
        "ensemble_model",
        "daily_factor_values",
        "alpha158_values",
        "microstructure_values",
        "news_factor_values",
        "ai_factor_values",
    }
    assert parents("champion_live_ic") == {"predictions", "labels"}
    assert parents("signals") == {"predictions", "raw_daily_bars", "universe"}
    assert parents("paper_book") == {"paper_book", "signals", "raw_daily_bars", "adjusted_bars",
                                     "raw_corporate_actions", "universe"}  # fmt: skip
    assert parents("orders") == {"paper_book"}
    assert parents("recommendations") == {"paper_book", "signals", "universe"}
    assert parents("performance") == {"paper_book", "recommendations", "raw_daily_bars",
                                      "predictions", "labels", "universe"}  # fmt: skip
    assert parents("performance_report") == {"performance"}


def test_no_asset_or_check_opens_a_database_client():
    """Only the IO managers touch ClickHouse and MLflow: no asset step asks for the clients."""
    for assets_def in defs.assets:
        used = set(assets_def.required_resource_keys)
        assert not used & {"clickhouse", "mlflow_tracking"}, (assets_def.keys, used)
    for check in defs.asset_checks:
        assert not set(check.required_resource_keys) & {"clickhouse", "mlflow_tracking"}


def test_jobs_schedule_sensor_and_resources_resolve():
    assert defs.resolve_job_def("history_load").name == "history_load"
    assert defs.resolve_sensor_def("landing_zone_sensor").job_name == "market_ingest"
    timeline = {s.name: s.job_name for s in defs.schedules if s.name.startswith("timeline_")}
    assert defs.resolve_schedule_def("backup_daily").job_name == "backup_job"
    assert timeline == {
        "timeline_data_preparation": "market_ingest",
        "timeline_factor_calculation": "factor_calculation",
        "timeline_model_inference": "model_inference",
        "timeline_signal_generation": "signal_generation",
        "timeline_performance_analysis": "performance_analysis",
        "timeline_report_generation": "report_generation",
        "timeline_model_retraining": "model_retraining",
    }
    for job in timeline.values():
        assert defs.resolve_job_def(job).partitions_def is not None
    assert {"clickhouse_io", "mlflow_model_io", "market", "notifications", "backup_store"} <= set(
        defs.resources
    )


@pytest.mark.slow  # the dagster CLI in a subprocess: about 8 s
def test_dagster_validates_the_code_location(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "QUANT_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Validation successful" in done.stdout + done.stderr
