"""The mining run in MLflow: a parent run per mining day and a nested run per round, with
the round's tokens, cost, time and decisions, and every candidate as a CSV artifact."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import mlflow
import pandas as pd

from quant_assets.ai_factors.mining import MiningResult

ROUND_METRICS = ("hypotheses", "candidates", "invalid", "duplicates", "valid_tests", "admitted",
                 "calls", "prompt_tokens", "completion_tokens", "cost_usd", "seconds")  # fmt: skip


@contextmanager
def mining_run(
    experiment_id: str, day: str, params: dict[str, object]
) -> Iterator[Callable[[dict, pd.DataFrame], None]]:
    """Opens the day's parent run (tags `stage=ai_factors`, `partition`) and yields the
    `on_round` callback of `mine`, which logs each round as a nested run."""
    with mlflow.start_run(
        experiment_id=experiment_id,
        run_name=f"ai_factor_mining-{day}",
        tags={"stage": "ai_factors", "partition": day},
    ) as parent:
        mlflow.log_params(params)

        def on_round(row: dict, candidates: pd.DataFrame) -> None:
            with mlflow.start_run(
                experiment_id=experiment_id,
                run_name=f"ai_factor_mining-{day} round {row['round']}",
                parent_run_id=parent.info.run_id,
                nested=True,
                tags={"stage": "ai_factors", "partition": day, "generator": row["generator"]},
            ):
                mlflow.log_params({"round": row["round"], "generator": row["generator"]})
                mlflow.log_metrics({k: float(row[k]) for k in ROUND_METRICS})
                if row["errors"] or row["note"]:
                    mlflow.log_text(f"{row['note']}\n{row['errors']}", "round_notes.txt")
                mlflow.log_text(candidates.to_csv(index=False), "candidates.csv")

        yield on_round


def log_result(result: MiningResult) -> None:
    """The run's totals, the admitted set and its test figures (reported after selection)."""
    rounds = result.rounds
    mlflow.log_metrics(
        {
            "admitted": float(len(result.admitted)),
            "candidates": float(len(result.candidates)),
            "valid_tests": float(rounds["valid_tests"].sum()),
            "prompt_tokens": float(rounds["prompt_tokens"].sum()),
            "completion_tokens": float(rounds["completion_tokens"].sum()),
            "cost_usd": float(rounds["cost_usd"].sum()),
            "seconds": float(rounds["seconds"].sum()),
        }
    )
    mlflow.set_tags({"generator": result.generator, "fallback": result.fallback or "none"})
    mlflow.log_text(result.admitted.to_csv(index=False), "admitted.csv")
    mlflow.log_text(result.test.to_csv(), "admitted_test_figures.csv")
