"""`make demo`: run the daily pipeline over the simulated market on the embedded stack.

Loads the history the daily pipeline's windows read (daily bars, corporate actions, news and
the factors and labels they give, for the warm-up days), then runs the whole daily pipeline for
the demo days, one Dagster run per trading day in the persistent instance under $DAGSTER_HOME
(so the UI shows every run, materialisation and check), and prints the last day's
recommendations.
"""

from __future__ import annotations

import os
import sys
import time

import pandas as pd
from dagster import DagsterInstance

from quant_assets.calendar import previous_trading_day, trading_days
from quant_assets.definitions import defs
from resources.settings import data_dir

DEMO_END = os.environ.get("QUANT_DEMO_END", "2024-06-28")
DEMO_DAYS = int(os.environ.get("QUANT_DEMO_DAYS", "60"))
WARMUP_DAYS = int(os.environ.get("QUANT_DEMO_WARMUP_DAYS", "50"))
# Dagster's console logger prints every event at DEBUG; the demo prints one line per run.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _run(job_name: str, days: list[str], instance: DagsterInstance, label: str) -> None:
    job = defs.resolve_job_def(job_name)
    started = time.monotonic()
    for i, day in enumerate(days, 1):
        t0 = time.monotonic()
        result = job.execute_in_process(
            run_config=QUIET, partition_key=day, instance=instance, raise_on_error=False
        )
        if not result.success:
            sys.exit(f"{job_name} failed for {day}; see the run in the Dagster UI (make ui)")
        elapsed = time.monotonic() - started
        eta = elapsed / i * (len(days) - i)
        print(
            f"[{label} {i:>3}/{len(days)}] {day}  {time.monotonic() - t0:5.1f} s"
            f"   elapsed {elapsed:6.0f} s, about {eta:4.0f} s left",
            flush=True,
        )


def main() -> None:
    end = pd.Timestamp(DEMO_END)
    first_demo = previous_trading_day(end, DEMO_DAYS - 1)
    first_warmup = previous_trading_day(first_demo, WARMUP_DAYS)
    warmup = [d.strftime("%Y-%m-%d") for d in trading_days(first_warmup, first_demo)[:-1]]
    demo = [d.strftime("%Y-%m-%d") for d in trading_days(first_demo, end)]
    instance = DagsterInstance.get()
    print(
        f"History load: {len(warmup)} trading days {warmup[0]} .. {warmup[-1]} "
        "(daily bars, corporate actions, news, their factors and labels)",
        flush=True,
    )
    _run("history_load", warmup, instance, "history")
    print(f"Daily pipeline: {len(demo)} trading days {demo[0]} .. {demo[-1]}", flush=True)
    _run("daily_pipeline", demo, instance, "daily")

    resources = defs.resources
    ch = resources["clickhouse"]
    with ch.client() as client:
        recs = ch.query_df(
            client,
            "SELECT rank, symbol, name, industry, close, score FROM {db}.recommendations "
            "WHERE date = %(d)s ORDER BY rank",
            {"d": end.date()},
        )
        counts = ch.query_df(
            client,
            "SELECT table, sum(rows) AS rows FROM system.parts "
            "WHERE database = %(db)s AND active GROUP BY table ORDER BY table",
            {"db": ch.database},
        )
    print()
    print(f"Top {len(recs)} recommendations after the close of {end.date()} (to buy next open)")
    print(recs.to_markdown(index=False, floatfmt=".4f"))
    print()
    print("Rows per table:")
    print(counts.to_markdown(index=False))
    root = data_dir()
    print()
    print(f"Report:     {root / 'reports' / (end.strftime('%Y-%m-%d') + '.html')}")
    print("Dagster UI: make ui        then open http://127.0.0.1:3000")
    print("MLflow UI:  make mlflow-ui then open http://127.0.0.1:5000")


if __name__ == "__main__":
    main()
