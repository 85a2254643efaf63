"""A small real store for the API's tests: a chDB folder holding the tables the API reads for two
trading days, written with the pipeline's own table specs and shaped as its stages write them;
an MLflow registry with a champion and a challenger; a Dagster instance with runs and a check
evaluation. `api_config` points an `ApiConfig` at all of it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    DagsterInstance,
    Definitions,
    asset,
    asset_check,
    define_asset_job,
)

from quant_assets.ai_factors.tables import AI_FACTORS
from quant_assets.api.config import ApiConfig
from quant_assets.factors.tables import ACTIVE_FACTORS, FACTOR_SCREENING
from quant_assets.reports.tables import PERFORMANCE, RECOMMENDATIONS
from quant_assets.strategy.tables import PAPER_BOOK
from resources.clickhouse import ClickHouseResource, TableSpec

DAYS = ("2024-06-03", "2024-06-04")
NEXT = {"2024-06-03": "2024-06-04", "2024-06-04": "2024-06-05"}
STOCKS = [
    ("600000.SH", "浦发银行", "Banks"),
    ("600036.SH", "招商银行", "Banks"),
    ("000001.SZ", "平安银行", "Banks"),
    ("600519.SH", "贵州茅台", "Food & beverage"),
    ("000858.SZ", "五粮液", "Food & beverage"),
    ("300750.SZ", "宁德时代", "Electrical equipment"),
    ("688981.SH", "中芯国际", "Semiconductors"),
    ("830799.BJ", "艾融软件", "Software"),
]
DATABASE = "quant_api_test"


def recommendations(day: str, shift: int = 0) -> pd.DataFrame:
    """The day's recommendations as `quant_assets.reports.recommendations.build` returns them;
    `shift` rotates the ranking (a republished day differs)."""
    rng = np.random.default_rng(int(day[-2:]) + shift)
    order = np.roll(np.arange(len(STOCKS)), shift)
    stocks = [STOCKS[i] for i in order]
    n = len(stocks)
    score = np.sort(rng.normal(0, 1, n))[::-1]
    weight = np.where(np.arange(n) < 6, 0.95 / 6, 0.0)
    return pd.DataFrame(
        {
            "date": pd.Timestamp(day),
            "for_date": pd.Timestamp(NEXT[day]),
            "rank": np.arange(1, n + 1, dtype="uint32"),
            "symbol": [s for s, _, _ in stocks],
            "name": [m for _, m, _ in stocks],
            "industry": [i for _, _, i in stocks],
            "close": rng.uniform(8, 1800, n).round(2),
            "score": score,
            "probability": 1 / (1 + np.exp(-score)),
            "confidence": rng.uniform(0.3, 0.9, n),
            "weight": weight,
            "shares": (rng.integers(1, 60, n) * 100).astype("uint64"),
            "action": ["buy"] * 3 + ["hold"] * 3 + ["sell"] * 2,
            "reason": ["entered the top-N"] * 3 + ["held: still in the top-N"] * 3
            + ["left the top-N"] * 2,
            "risk_note": [""] * (n - 1) + ["industry Banks above its cap"],
            "status": "trade",
        }
    )  # fmt: skip


def paper_book(day: str, equity: float, peak: float) -> pd.DataFrame:
    """The ledger rows of a day as `quant_assets.strategy.ledger.to_ledger` writes them:
    positions, cash, equity (price = the peak), a fill with fees, the status."""
    held = STOCKS[:3]
    values = [300_000.0, 250_000.0, 150_000.0]
    rows = [
        {"kind": "position", "symbol": s, "shares": v / 10, "price": 10.0, "value": v,
         "weight": v / equity}
        for (s, _, _), v in zip(held, values, strict=True)
    ] + [
        {"kind": "cash", "value": equity - sum(values)},
        {"kind": "equity", "value": equity, "price": peak},
        {"kind": "fill", "symbol": held[0][0], "side": "buy", "shares": 1000.0, "price": 10.0,
         "value": 10_000.0, "commission": 5.0, "stamp_duty": 0.0, "transfer_fee": 0.1,
         "reason": "entered the top-N"},
        {"kind": "status", "reason": "trade"},
    ]  # fmt: skip
    frame = pd.DataFrame(rows).reindex(columns=[c for c in PAPER_BOOK.columns if c != "date"])
    for col in ("symbol", "side", "reason"):
        frame[col] = frame[col].fillna("").astype(str)
    num = ["shares", "price", "value", "weight", "commission", "stamp_duty", "transfer_fee"]
    frame[num] = frame[num].astype(float).fillna(np.nan)
    frame.insert(0, "date", pd.Timestamp(day))
    return frame


def factors(day: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Active factors, the screening rows and the admitted AI factors of a day."""
    ts = pd.Timestamp(day)
    ic = 0.04 if day == DAYS[0] else 0.05
    active = pd.DataFrame(
        {
            "date": ts,
            "factor": ["KMID", "ROC5", "order_imbalance", "ai_3f9c2a1b"],
            "factor_set": ["alpha158", "alpha158", "micro", "ai"],
            "rank_ic_mean": [ic, -0.032, 0.055, 0.036],
            "t_stat": [3.1, -2.6, 4.2, 2.9],
        }
    )
    screening = pd.concat(
        [
            active.assign(rank_ic_std=0.1, p_value=0.01, n_days=np.uint32(60), active=True),
            pd.DataFrame({"date": [ts], "factor": ["VSUMD60"], "factor_set": ["alpha158"],
                          "rank_ic_mean": [0.001], "t_stat": [0.1], "rank_ic_std": [0.1],
                          "p_value": [0.9], "n_days": [np.uint32(60)], "active": [False]}),
        ],
        ignore_index=True,
    )  # fmt: skip
    screening["icir"] = screening["rank_ic_mean"] / screening["rank_ic_std"]
    ai = pd.DataFrame(
        {
            "date": [ts],
            "name": ["ai_3f9c2a1b"],
            "formula": ["Rank(Ref($close, 1) / $close) * Std($volume, 5)"],
            "origin": ["offline"],
            "hypothesis": ["short-term reversal is stronger on busy days"],
            **{c: [0.03] for c in ("train_ic", "valid_ic", "valid_p", "tests", "test_ic")},
        }
    )
    return active, screening, ai


def performance(day: str) -> pd.DataFrame:
    figures = {"total_return": 0.034, "sharpe": 1.2, "max_drawdown": -0.052}
    if day == DAYS[1]:
        figures = {k: v * 1.1 for k, v in figures.items()}
    return pd.DataFrame(
        {"date": pd.Timestamp(day), "figure": list(figures), "value": list(figures.values())}
    )


def day_tables(day: str) -> list[tuple[TableSpec, pd.DataFrame]]:
    equity, peak = (1_000_000.0, 1_000_000.0) if day == DAYS[0] else (990_000.0, 1_000_000.0)
    active, screening, ai = factors(day)
    tables = [
        (RECOMMENDATIONS, recommendations(day)),
        (PAPER_BOOK, paper_book(day, equity, peak)),
        (ACTIVE_FACTORS, active),
        (FACTOR_SCREENING, screening),
        (PERFORMANCE, performance(day)),
    ]
    return tables + ([(AI_FACTORS, ai)] if day == DAYS[0] else [])


def write_store(dsn: str) -> None:
    """Both days of every table, each day as the IO manager publishes it (one partition)."""
    resource = ClickHouseResource(dsn=dsn, database=DATABASE)
    with resource.client() as client:
        for day in DAYS:
            for spec, frame in day_tables(day):
                resource.replace_partition(client, spec, frame[list(spec.columns)], day)


def register_models(tracking_uri: str) -> None:
    """Two versions of `lgbm`: 1 the champion, 2 the challenger, each with its run's metric."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    experiment = client.create_experiment("api-test")
    client.create_registered_model("lgbm")
    for version, ic in ((1, 0.051), (2, 0.047)):
        run = client.create_run(experiment)
        client.log_metric(run.info.run_id, "valid_rank_ic", ic)
        client.set_terminated(run.info.run_id)
        client.create_model_version(
            "lgbm", f"{run.info.artifact_uri}/model", run.info.run_id, tags={"day": DAYS[0]}
        )
        alias = "champion" if version == 1 else "challenger"
        client.set_registered_model_alias("lgbm", alias, str(version))


@asset
def prices() -> int:
    return 1


@asset_check(asset=prices)
def prices_positive() -> AssetCheckResult:
    return AssetCheckResult(passed=True)


@asset_check(asset=prices)
def prices_fresh() -> AssetCheckResult:
    return AssetCheckResult(passed=False, severity=AssetCheckSeverity.WARN)


@asset
def broken() -> int:
    raise RuntimeError("planted failure")


def record_runs(dagster_home: Path) -> None:
    """A successful run with a passing and a failing check, and a failed run of another job,
    executed for real in the Dagster instance at `dagster_home`."""
    defs = Definitions(
        assets=[prices, broken],
        asset_checks=[prices_positive, prices_fresh],
        jobs=[
            define_asset_job("daily_pipeline", selection=["prices"]),
            define_asset_job("backup_job", selection=["broken"]),
        ],
    )
    dagster_home.mkdir(parents=True, exist_ok=True)
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        defs.resolve_job_def("daily_pipeline").execute_in_process(instance=instance)
        defs.resolve_job_def("backup_job").execute_in_process(
            instance=instance, raise_on_error=False
        )


@dataclass(frozen=True)
class Built:
    """Where the built store lives."""

    dsn: str
    mlflow_uri: str
    dagster_home: Path
    reports: Path


def build(root: Path) -> Built:
    """Everything under `root`, plus a report page for the second day."""
    dsn = f"chdb://{root / 'clickhouse'}"
    write_store(dsn)
    (root / "mlflow").mkdir()
    uri = f"sqlite:///{root / 'mlflow' / 'mlflow.db'}"
    register_models(uri)
    record_runs(root / "dagster_home")
    reports = root / "reports"
    reports.mkdir()
    (reports / f"{DAYS[1]}.html").write_text("<html><body><h1>Performance</h1></body></html>")
    return Built(dsn, uri, root / "dagster_home", reports)


def api_config(built: Built, **overrides: object) -> ApiConfig:
    """An ApiConfig on the built store (the cache and limiter in process unless overridden)."""
    kwargs: dict[str, object] = {
        "clickhouse_dsn": built.dsn,
        "database": DATABASE,
        "mlflow_tracking_uri": built.mlflow_uri,
        "dagster_home": built.dagster_home,
        "reports_dir": built.reports,
        "token_secret": "test-secret-" + "x" * 32,
        "key_pepper": "pepper",
        "audit_flush_s": 0.2,
        "store_wait_s": 20.0,
    }
    return ApiConfig(**{**kwargs, **overrides})
