"""`make demo`: run the daily pipeline over the simulated market on the embedded stack.

Loads the history the daily pipeline's windows read (daily bars, corporate actions, news and
the factors and labels they give, for the warm-up days) in one run, then runs the whole daily
pipeline for the demo days in runs of QUANT_DEMO_DAYS_PER_RUN days (a backfill: each asset
computes the run's days in order, exactly as day-by-day runs would), in the persistent
instance under $DAGSTER_HOME (so the UI shows every run, and every partition's
materialisation and checks), and prints the last day's recommendations. Meanwhile a second
process plays the simulated vendor, landing the demo days' intraday files ahead of the runs.
"""

from __future__ import annotations

import multiprocessing
import sys
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from resources.settings import SettingsError, check_environment, data_dir, setting

if TYPE_CHECKING:
    from dagster import DagsterInstance, JobDefinition

# Dagster's console logger prints every event at DEBUG; the demo prints one line per run.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
# Every run of the demo carries this tag: a new demo replaces the data of the previous one, and
# once it has succeeded the previous demo's runs (and their event logs) are deleted.
DEMO_TAG = {"quant/demo": "true"}


@dataclass(frozen=True)
class DemoWindow:
    """The demo's trading days: the history loaded first, then the daily pipeline's days."""

    end: pd.Timestamp
    warmup: list[str]
    demo: list[str]


def demo_window() -> DemoWindow:
    """The days of QUANT_DEMO_END, QUANT_DEMO_DAYS and QUANT_DEMO_WARMUP_DAYS, checked against
    the trading-day partitions before any work: SettingsError (one line) for an end that is
    not a trading day or has no partition yet, or a window that starts before the first
    partition. The calendar is imported here, once the environment is known to be valid."""
    from quant_assets.calendar import (
        TRADING_DAYS,
        is_trading_day,
        previous_trading_day,
        trading_days,
    )

    end = pd.Timestamp(setting("QUANT_DEMO_END"))
    n_demo, n_warmup = setting("QUANT_DEMO_DAYS"), setting("QUANT_DEMO_WARMUP_DAYS")
    shown = f"QUANT_DEMO_END='{end.date()}'"
    first, last = TRADING_DAYS.get_first_partition_key(), TRADING_DAYS.get_last_partition_key()
    if not is_trading_day(end):
        raise SettingsError(
            f"{shown} is not a trading day (a {end.day_name()}); allowed: a trading day, "
            f"such as {previous_trading_day(end).date()} (the one before)"
        )
    if not TRADING_DAYS.has_partition_key(str(end.date())):
        raise SettingsError(
            f"{shown} has no trading-day partition; allowed: a trading day from {first} to {last}"
        )
    days = trading_days(first, end)
    if len(days) < n_demo + n_warmup:
        raise SettingsError(
            f"{shown} with QUANT_DEMO_DAYS={n_demo} and QUANT_DEMO_WARMUP_DAYS={n_warmup} needs "
            f"{n_demo + n_warmup} trading days from QUANT_PARTITIONS_START={first}, which has "
            f"{len(days)}; allowed: a later end, fewer days or an earlier QUANT_PARTITIONS_START"
        )
    keys = [d.strftime("%Y-%m-%d") for d in days[-(n_demo + n_warmup) :]]
    return DemoWindow(end=end, warmup=keys[:n_warmup], demo=keys[n_warmup:])


def prune_earlier_demos(instance: DagsterInstance, since: float) -> int:
    """Delete the finished runs of earlier demos (started before `since`, a timestamp): their
    partitions were all rewritten by this demo, so they only hold disk (their event logs, and
    their events in the index, which is then compacted). Returns how many."""
    from dagster import RunsFilter

    old = [
        record.dagster_run.run_id
        for record in instance.get_run_records(filters=RunsFilter(tags=DEMO_TAG))
        if record.dagster_run.is_finished
        and (record.start_time or record.create_timestamp.timestamp()) < since
    ]
    for run_id in old:
        instance.delete_run(run_id)
    compact = getattr(instance.event_log_storage, "compact_index", None)
    if old and compact is not None:  # the embedded event log: shrink its index file too
        compact()
    return len(old)


# The kinds the history load ingests (the intraday ones only from the first daily day).
HISTORY_KINDS = ("bars", "corporate_actions", "news")
# What the simulated vendor delivers ahead of the daily runs (the heavy intraday files).
AHEAD_KINDS = ("order_book", "trades")


def _vendor_main(days: list[str]) -> int:
    """The simulated vendor's process (started by `_vendor`): the intraday landing files of the
    demo days, written while the pipeline works on earlier days, so both cores are busy. The
    files are what the pipeline's own delivery would write."""
    from quant_assets.market.sources.delivery import deliver_ahead
    from resources import market_resource

    return deliver_ahead(market_resource(), AHEAD_KINDS, days)


def _vendor(days: list[str]) -> multiprocessing.process.BaseProcess | None:
    """Start `_vendor_main` in a spawned process when the market is the simulated one."""
    if setting("QUANT_MARKET_SOURCE") != "simulated":
        return None
    process = multiprocessing.get_context("spawn").Process(
        target=_vendor_main, args=(days,), name="simulated-vendor", daemon=True
    )
    process.start()
    return process


@dataclass
class Progress:
    """Days done out of `total` across the demo's runs, for one line a run with an ETA."""

    total: int
    done: int = 0
    started: float = field(default_factory=time.monotonic)
    # label -> (days, seconds) of each run: what a day costs, per kind of run
    runs: dict[str, list[tuple[int, float]]] = field(default_factory=dict)

    def per_day(self, label: str) -> float | None:
        """Seconds a day in the runs of `label` (all of them together), None without any."""
        runs = self.runs.get(label, [])
        days = sum(d for d, _ in runs)
        return sum(s for _, s in runs) / days if days else None


def _run(
    job: JobDefinition,
    days: list[str],
    per_run: int,
    instance: DagsterInstance,
    label: str,
    progress: Progress | None = None,
    advances: bool = True,
) -> None:
    """`job` over `days` in runs of `per_run` days (a partition range each: every asset one
    step that computes the days in order), one progress line a run. With `progress`, the
    days count towards it (several jobs over one demo's days); without, towards `days`. A
    job that does not advance (a retraining of a day already counted) adds no days."""
    from dagster._core.storage.tags import (
        ASSET_PARTITION_RANGE_END_TAG,
        ASSET_PARTITION_RANGE_START_TAG,
    )

    progress = progress or Progress(total=len(days))
    for i in range(0, len(days), per_run):
        chunk = days[i : i + per_run]
        t0 = time.monotonic()
        range_tags = {
            ASSET_PARTITION_RANGE_START_TAG: chunk[0],
            ASSET_PARTITION_RANGE_END_TAG: chunk[-1],
        }
        result = job.execute_in_process(
            run_config=QUIET,
            instance=instance,
            tags={**DEMO_TAG, **range_tags},
            raise_on_error=False,
        )
        if not result.success:
            sys.exit(
                f"{job.name} failed for {chunk[0]}..{chunk[-1]}; see the run in the Dagster UI "
                "(make ui)"
            )
        progress.runs.setdefault(label, []).append((len(chunk), time.monotonic() - t0))
        progress.done += len(chunk) if advances else 0
        done, total = progress.done, progress.total
        elapsed = time.monotonic() - progress.started
        eta = elapsed / max(done, 1) * (total - done)
        span = chunk[0] if len(chunk) == 1 else f"{chunk[0]}..{chunk[-1]}"
        print(
            f"[{label:>7} {done:>3}/{total}] {span}  {time.monotonic() - t0:5.1f} s"
            f"   elapsed {elapsed:6.0f} s, about {eta:4.0f} s left",
            flush=True,
        )


def run_daily(
    days: list[str], per_run: int, retrain_every: int, instance: DagsterInstance
) -> Progress:
    """The daily pipeline over `days`. Retraining every day, it is one job in runs of
    `per_run` days. Retraining every `retrain_every` days, the first day runs the whole
    pipeline (its models become the first champion); each following block of days is scored
    by the champion in force (`daily_scoring`), and the models are retrained on the block's
    last close (`model_retraining`, as the 16:00 schedule does) for the next block. A model
    never sees a label after the day it was trained on."""
    from quant_assets.definitions import defs

    daily = defs.resolve_job_def("daily_pipeline")
    progress = Progress(total=len(days))
    if retrain_every <= 1:
        _run(daily, days, per_run, instance, "daily", progress)
        return progress
    _run(daily, days[:1], 1, instance, "daily", progress)
    for i in range(1, len(days), retrain_every):
        block = days[i : i + retrain_every]
        _run(defs.resolve_job_def("daily_scoring"), block, per_run, instance, "scored", progress)
        if i + retrain_every < len(days):  # the last block's retraining would serve no day
            _run(defs.resolve_job_def("model_retraining"), block[-1:], 1, instance, "retrain",
                 progress, advances=False)  # fmt: skip
    return progress


def main(window: DemoWindow) -> Progress:
    """Load the history, run the daily pipeline over the demo days, print the last day's
    picks; returns what the daily runs took."""
    from dagster import DagsterInstance

    from quant_assets import plotting
    from quant_assets.definitions import defs
    from resources import market_resource

    end, warmup, demo = window.end, window.warmup, window.demo
    instance = DagsterInstance.get()
    started = time.time()
    vendor = _vendor(demo)
    kinds = market_resource().delivered()
    print(
        f"History load: {len(warmup)} trading days {warmup[0]} .. {warmup[-1]} "
        f"(of {', '.join(k.replace('_', ' ') for k in kinds if k in HISTORY_KINDS)}: their factors and labels)",
        flush=True,
    )
    # one run, one step per asset for all the days (a single-run backfill)
    _run(defs.resolve_job_def("history_load"), warmup, len(warmup), instance, "history")
    print(f"Daily pipeline: {len(demo)} trading days {demo[0]} .. {demo[-1]}", flush=True)
    plotting.start_drawing()  # the daily runs draw; history runs do not
    progress = run_daily(
        demo, setting("QUANT_DEMO_DAYS_PER_RUN"), setting("QUANT_DEMO_RETRAIN_DAYS"), instance
    )

    if vendor is not None:
        vendor.join()
        if vendor.exitcode:  # its traceback is above; the runs landed the files themselves
            print(f"The simulated vendor process failed (exit code {vendor.exitcode})")
    pruned = prune_earlier_demos(instance, started)
    if pruned:
        print(f"Deleted the {pruned} runs of the previous demo (this one rewrote their days)")
    # closes the event log's kept connections: SQLite folds each run file's write-ahead log
    # into it and deletes the log (left open at exit, a few MB a run would stay on disk)
    instance.dispose()

    resources = defs.resources
    ch = resources["clickhouse"]
    with ch.client() as client:
        recs = ch.query_df(
            client,
            "SELECT symbol, name, industry, action, weight, shares, close, score, probability, "
            "reason, status FROM {db}.recommendations WHERE date = %(d)s "
            "ORDER BY weight DESC, rank",
            {"d": end.date()},
        )
        # every table, empty ones included (a quarantine with no rows is news too)
        counts = ch.query_df(
            client,
            "SELECT t.name AS table, sum(p.rows) AS rows FROM system.tables AS t "
            "LEFT JOIN (SELECT table, rows FROM system.parts WHERE database = %(db)s "
            "AND active) AS p ON p.table = t.name WHERE t.database = %(db)s "
            "GROUP BY t.name ORDER BY t.name",
            {"db": ch.database},
        )
    print()
    status = recs["status"].iloc[0] if len(recs) else "no trade"
    print(f"The paper book after the close of {end.date()}: orders for the next open ({status})")
    print(recs.drop(columns="status").to_markdown(index=False, floatfmt=".4f"))
    print()
    print("Rows per table:")
    print(counts.to_markdown(index=False))
    root = data_dir()
    print()
    print(f"Report:     {root / 'reports' / (end.strftime('%Y-%m-%d') + '.html')}")
    print("Dagster UI: make ui        then open http://127.0.0.1:3000")
    print("MLflow UI:  make mlflow-ui then open http://127.0.0.1:5000")
    return progress


def cli() -> int:
    """`python -m quant_assets.demo`: the settings are checked before anything is loaded or
    run; a bad one prints `error: <one line>` and exits with status 2."""
    try:
        check_environment()
        window = demo_window()
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    main(window)
    return 0


if __name__ == "__main__":
    sys.exit(cli())
