"""A small real store for the dashboard's browser test: a chDB folder with the tables the API
reads (written through the pipeline's own table specs), an MLflow registry with a champion and
a challenger, and a Dagster instance with one successful and one failed run.

Values are made up but shaped as the pipeline writes them; the Chinese names exercise the
page's CJK font.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from quant_assets.ai_factors.tables import AI_FACTORS
from quant_assets.factors.tables import ACTIVE_FACTORS, FACTOR_SCREENING
from quant_assets.reports.tables import PERFORMANCE, RECOMMENDATIONS
from quant_assets.strategy.tables import PAPER_BOOK
from resources.clickhouse import ClickHouseResource

DAY, FOR_DAY = "2024-03-01", "2024-03-04"
NAMES = [
    ("600519.SH", "贵州茅台", "Food & beverage"),
    ("000858.SZ", "五粮液", "Food & beverage"),
    ("600036.SH", "招商银行", "Banks"),
    ("601318.SH", "中国平安", "Insurance"),
    ("300750.SZ", "宁德时代", "Electrical equipment"),
    ("688981.SH", "中芯国际", "Semiconductors"),
    ("000333.SZ", "美的集团", "Household appliances"),
    ("600276.SH", "恒瑞医药", "Pharmaceuticals"),
]
PNL_DAYS = 30


@dataclass(frozen=True)
class SmallStore:
    """What was written, for the test's assertions."""

    recommendations: pd.DataFrame
    pnl_days: int
    factors: list[str]
    model_name: str


def _recommendations() -> pd.DataFrame:
    rng = np.random.default_rng(16)
    n = len(NAMES)
    score = np.sort(rng.normal(0, 1, n))[::-1]
    weight = rng.uniform(0.05, 0.15, n)
    return pd.DataFrame(
        {
            "date": pd.Timestamp(DAY).date(),
            "for_date": pd.Timestamp(FOR_DAY).date(),
            "rank": np.arange(1, n + 1, dtype="uint32"),
            "symbol": [s for s, _, _ in NAMES],
            "name": [m for _, m, _ in NAMES],
            "industry": [i for _, _, i in NAMES],
            "close": rng.uniform(8, 1800, n).round(2),
            "score": score,
            "probability": 1 / (1 + np.exp(-score)),
            "confidence": rng.uniform(0.3, 0.9, n),
            "weight": weight / weight.sum() * 0.95,
            # not in rank order, so sorting by shares visibly reorders the table
            "shares": (rng.integers(1, 60, n) * 100).astype("uint64"),
            "action": ["buy", "buy", "hold", "hold", "buy", "hold", "buy", "hold"],
            "reason": "top decile of the ensemble score",
            "risk_note": "",
            "status": "ok",
        }
    )


def _paper_book() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    days = pd.bdate_range(end=DAY, periods=PNL_DAYS)
    equity = 1_000_000 * np.cumprod(1 + rng.normal(0.001, 0.012, PNL_DAYS))
    rows = []
    for day, value in zip(days, equity, strict=True):
        for kind, v in (("equity", value), ("cash", value * 0.05)):
            rows.append(
                {
                    "date": day.date(),
                    "kind": kind,
                    "symbol": "",
                    "side": "",
                    "shares": 0.0,
                    "price": 0.0,
                    "value": float(v),
                    "weight": 0.0,
                    "commission": 0.0,
                    "stamp_duty": 0.0,
                    "transfer_fee": 0.0,
                    "reason": "",
                }  # fmt: skip
            )
    frame = pd.DataFrame(rows)
    # the running peak of equity, as the paper book stores it in `price` of the equity rows
    eq = frame["kind"] == "equity"
    frame.loc[eq, "price"] = frame.loc[eq, "value"].cummax()
    return frame


def _factors() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    day = pd.Timestamp(DAY).date()
    active = pd.DataFrame(
        {
            "date": day,
            "factor": ["KMID", "ROC5", "obi_close", "ai_rev_vol"],
            "factor_set": ["alpha158", "alpha158", "micro", "ai"],
            "rank_ic_mean": [0.041, -0.032, 0.055, 0.036],
            "t_stat": [3.1, -2.6, 4.2, 2.9],
        }
    )
    screening = active.assign(rank_ic_std=0.1, icir=active["rank_ic_mean"] / 0.1,
                              p_value=0.01, n_days=np.uint32(60), active=True)  # fmt: skip
    screening = screening[list(FACTOR_SCREENING.columns)]
    ai = pd.DataFrame(
        {
            "date": [day],
            "name": ["ai_rev_vol"],
            "formula": ["-Rank(Ref($close,1)/$close) * Std($volume,5)"],
            "origin": ["llm"],
            "hypothesis": ["short-term reversal is stronger on busy days"],
            **{c: [0.03] for c in ("train_ic", "valid_ic", "valid_p", "tests", "test_ic")},
        }
    )
    return active, screening, ai


def write_tables(dsn: str, database: str) -> SmallStore:
    """The API's tables in the ClickHouse at `dsn` (a chDB folder in the test)."""
    resource = ClickHouseResource(dsn=dsn, database=database)
    recs = _recommendations()
    active, screening, ai = _factors()
    performance = pd.DataFrame(
        {
            "date": pd.Timestamp(DAY).date(),
            "figure": ["total_return", "max_drawdown", "turnover", "hit_rate", "fees"],
            "value": [0.034, -0.052, 0.11, 0.56, 1834.5],
        }
    )
    with resource.client() as client:
        for spec, frame in (
            (RECOMMENDATIONS, recs),
            (PAPER_BOOK, _paper_book()),
            (PERFORMANCE, performance),
            (ACTIVE_FACTORS, active),
            (FACTOR_SCREENING, screening),
            (AI_FACTORS, ai),
        ):
            resource.ensure_table(client, spec)
            resource.insert(client, f"{database}.{spec.name}", frame[list(spec.columns)])
    return SmallStore(recs, PNL_DAYS, list(active["factor"]), "ensemble")


def register_models(tracking_uri: str, name: str = "ensemble") -> None:
    """Two versions of `name` with a validation metric each: 1 the champion, 2 the challenger."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    experiment = client.create_experiment("dashboard-test")
    client.create_registered_model(name)
    for version, ic in ((1, 0.051), (2, 0.047)):
        run = client.create_run(experiment)
        client.log_metric(run.info.run_id, "valid_rank_ic", ic)
        client.set_terminated(run.info.run_id)
        client.create_model_version(name, f"{run.info.artifact_uri}/model", run.info.run_id)
        client.set_registered_model_alias(name, "champion" if version == 1 else "challenger",
                                          str(version))  # fmt: skip


def record_runs(dagster_home: Path) -> None:
    """One successful and one failed run in the Dagster instance at `dagster_home`."""
    from dagster import DagsterInstance, DagsterRun, DagsterRunStatus

    dagster_home.mkdir(parents=True, exist_ok=True)
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        for job, status in (("daily_pipeline", DagsterRunStatus.SUCCESS),
                            ("backup", DagsterRunStatus.FAILURE)):  # fmt: skip
            instance.add_run(
                DagsterRun(job_name=job, status=status, tags={"dagster/partition": DAY})
            )
