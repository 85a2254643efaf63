"""The mining run as MLflow runs to log (the IO manager logs them): a parent run for the day
with the run's totals, the admitted set and its test figures, and a nested run per round with
its tokens, cost, time, decisions and every candidate as a CSV."""

from __future__ import annotations

import pandas as pd

from quant_assets.ai_factors.mining import MiningResult
from resources.tracked_tables import RunLog

ROUND_METRICS = ("hypotheses", "candidates", "invalid", "duplicates", "valid_tests", "admitted",
                 "calls", "prompt_tokens", "completion_tokens", "cost_usd", "seconds")  # fmt: skip


def round_runs(day: str, result: MiningResult) -> list[RunLog]:
    """One run per round: what it cost and decided, its candidates as a CSV."""
    runs = []
    for row in result.rounds.to_dict(orient="records"):
        candidates = result.candidates[result.candidates["round"] == row["round"]]
        texts = {"candidates.csv": candidates.to_csv(index=False)}
        if row["errors"] or row["note"]:
            texts["round_notes.txt"] = f"{row['note']}\n{row['errors']}"
        runs.append(
            RunLog(
                name=f"ai_factor_mining-{day} round {row['round']}",
                tags={"stage": "ai_factors", "partition": day, "generator": row["generator"]},
                params={"round": row["round"], "generator": row["generator"]},
                metrics={k: float(row[k]) for k in ROUND_METRICS},
                texts=texts,
            )
        )
    return runs


def mining_run(day: str, params: dict[str, object], result: MiningResult) -> RunLog:
    """The day's parent run: the settings, the run's totals and the admitted set with its
    test figures (reported after selection)."""
    rounds: pd.DataFrame = result.rounds
    return RunLog(
        name=f"ai_factor_mining-{day}",
        tags={
            "stage": "ai_factors",
            "partition": day,
            "generator": result.generator,
            "fallback": result.fallback or "none",
        },
        params=params,
        metrics={
            "admitted": float(len(result.admitted)),
            "candidates": float(len(result.candidates)),
            "valid_tests": float(rounds["valid_tests"].sum()),
            "prompt_tokens": float(rounds["prompt_tokens"].sum()),
            "completion_tokens": float(rounds["completion_tokens"].sum()),
            "cost_usd": float(rounds["cost_usd"].sum()),
            "seconds": float(rounds["seconds"].sum()),
        },
        texts={
            "admitted.csv": result.admitted.to_csv(index=False),
            "admitted_test_figures.csv": result.test.to_csv(),
        },
    )
