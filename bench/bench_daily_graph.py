"""One trading day of the whole asset graph at 300, 1,000 and 5,000 stocks: each stage's time
and peak memory, the pre-market part and the whole day.

    .venv/bin/python bench/bench_daily_graph.py [--sizes 300 1000 5000] [--history 80] [--fresh]

For each number of stocks, in a data folder of its own (`.data/bench/graph-<n>`, kept between
runs; `--fresh` rebuilds it):

1. prepare (a child process, not timed in the results): the simulated market's history of
   `--history` trading days through the `history_load` job (daily bars, corporate actions,
   news, adjusted bars, labels, the daily, Alpha158 and news factor sets), so every window the
   day reads is full; then the day's landing files, as a vendor delivers them (the order book
   written in row groups of 250 stocks, a realistic 3 s snapshot interval). The
   microstructure set has no history (simulating 60 past days of order books at 5,000 stocks
   would take hours): the screening and the model read its one day.
2. the day: the `daily_pipeline` job for that partition in one Dagster run, in a fresh child
   process, as the daily schedule runs it; each step's wall time from Dagster's event log.
3. each step alone (a fresh child process per step, upstream tables already stored): its peak
   resident memory above the process's own after imports and resource set-up (getrusage
   ru_maxrss), i.e. what the stage adds.

Pre-market = the steps from the day's stored raw tables to the signals (everything but the
ingest of the landing files and the recommendations); the seed's timeline gives it 90
minutes (08:00 data preparation to 09:20 signals, plus the ten minutes to 09:30), and the
ratio of those 90 minutes to ours is printed. Memory scaling: per step, the exponent k in
memory ~ stocks^k between the smallest and the largest size (k <= 1: not faster than the
input, which grows with the number of stocks). Targets: pre-market < 60 s and whole day
< 5 min at 5,000 stocks on 2 cores. A plot of the stage times goes to the data folder.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DAY = "2024-06-03"
SEED_PRE_MARKET_S = 90 * 60
TARGET_PRE_MARKET_S = 60.0
TARGET_DAY_S = 300.0
INGEST_STEPS = {
    "universe",
    "raw_daily_bars",
    "raw_trades",
    "raw_order_book",
    "raw_news",
    "raw_corporate_actions",
}
AFTER_SIGNALS = {"recommendations"}
BOOK_CHUNK = 250


def _env(folder: Path, n: int) -> dict[str, str]:
    return {
        **os.environ,
        "QUANT_DATA_DIR": str(folder),
        "QUANT_SIM_SYMBOLS": str(n),
        "QUANT_SIM_SNAPSHOT_SECONDS": "3",
        "QUANT_PARTITIONS_START": "2023-01-03",
    }


def _resources(folder: Path):
    from resources import build_resources

    return {k: v for k, v in build_resources().items() if k != "llm"}


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------------------------------------
# children


def prepare(folder: Path, history: int) -> None:
    """Child: the history through `history_load`, then the day's landing files."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq
    from dagster import DagsterInstance, materialize

    from quant_assets.automation.jobs import history_load
    from quant_assets.calendar import previous_trading_day, trading_days
    from quant_assets.definitions import defs
    from quant_assets.market.sources.delivery import land, simulated_market
    from quant_assets.market.sources.landing import landing_path

    res = _resources(folder)
    res["mlflow_tracking"].setup()  # the store exists before the day's model is logged
    day = pd.Timestamp(DAY)
    days = trading_days(previous_trading_day(day, history), previous_trading_day(day))
    instance = DagsterInstance.ephemeral()
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    t0 = time.perf_counter()
    done = folder / "history.json"
    if done.exists() and json.loads(done.read_text()) == {"history": history, "day": DAY}:
        days = days[:0]  # stored by an earlier run that stopped before the day's files
    for i, d in enumerate(days.strftime("%Y-%m-%d"), 1):
        result = materialize(
            [*defs.assets, *defs.asset_checks],
            selection=history_load.selection,
            partition_key=d,
            resources=res,
            instance=instance,
            run_config=quiet,
        )
        assert result.success, d
        if i % 10 == 0 or i == len(days):
            print(f"    history {i}/{len(days)} {d} ({time.perf_counter() - t0:.0f} s)", flush=True)
    done.write_text(json.dumps({"history": history, "day": DAY}))
    market = res["market"]
    for kind in ("bars", "trades", "news", "corporate_actions"):
        land(market, kind, day)
    sim = simulated_market(market)
    symbols = sim.universe()["symbol"]
    path = landing_path(market.landing_dir, "order_book", day)
    tmp = path.with_name(f".{path.name}.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = None
    t1 = time.perf_counter()
    for start in range(0, len(symbols), BOOK_CHUNK):
        part = sim.order_book(day, symbols[start : start + BOOK_CHUNK])
        table = pa.Table.from_pandas(part, preserve_index=False)
        if writer is None:
            writer = pq.ParquetWriter(tmp, table.schema)
        writer.write_table(table)
        del part, table
    writer.close()
    tmp.rename(path)
    print(
        f"    prepared: history {time.perf_counter() - t0:.0f} s, "
        f"order book simulated in {time.perf_counter() - t1:.0f} s",
        flush=True,
    )
    (folder / "prepared.json").write_text(json.dumps({"history": history, "day": DAY}))


def run(folder: Path, step: str | None) -> None:
    """Child: the day's daily_pipeline run (all steps, or one step's assets), as JSON."""
    from dagster import AssetSelection, DagsterInstance, materialize

    from quant_assets.automation.jobs import daily_pipeline
    from quant_assets.definitions import defs

    res = _resources(folder)
    assets = [*defs.assets, *defs.asset_checks]
    if step is None:
        selection = daily_pipeline.selection
    else:
        keys = [k for a in defs.assets if a.node_def.name == step for k in a.keys]
        selection = AssetSelection.assets(*keys)
    instance = DagsterInstance.ephemeral()
    quiet = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
    base = _rss_mb()
    samples: list[tuple[float, float]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append((time.time(), _rss_mb()))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.perf_counter()
    result = materialize(
        assets,
        selection=selection,
        partition_key=DAY,
        resources=res,
        instance=instance,
        run_config=quiet,
        raise_on_error=False,
    )
    wall = time.perf_counter() - t0
    stop.set()
    sampler.join()
    steps: dict[str, list[float]] = {}
    for entry in instance.all_logs(result.run_id):
        ev = entry.dagster_event
        if ev is not None and ev.event_type_value in ("STEP_START", "STEP_SUCCESS", "STEP_FAILURE"):
            steps.setdefault(ev.step_key, []).append(entry.timestamp)
    timing = {}
    for key, stamps in steps.items():
        start, end = stamps[0], stamps[-1]
        during = [rss for t, rss in samples if start <= t <= end] or [0.0]
        before = [rss for t, rss in samples if t <= start] or [base]
        timing[key] = {"s": end - start, "rss_up_mb": max(during) - before[-1]}
    print(
        json.dumps(
            {
                "success": result.success,
                "wall_s": wall,
                "steps": timing,
                "order": list(steps),
                "base_mb": base,
                "peak_above_base_mb": _peak_mb() - base,
            }
        )
    )


# ---------------------------------------------------------------------------------------------
# parent


def _child(args: list[str], env: dict[str, str]) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, *args], env=env, capture_output=True, text=True, cwd=REPO
    )
    if done.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(n: int, history: int, fresh: bool, prepare_only: bool = False) -> dict:
    folder = REPO / ".data" / "bench" / f"graph-{n}"
    env = _env(folder, n)
    marker = folder / "prepared.json"
    if (
        fresh
        or not marker.exists()
        or json.loads(marker.read_text())
        != {
            "history": history,
            "day": DAY,
        }
    ):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        print(f"  {n} stocks: preparing {history} days of history and the day's files", flush=True)
        proc = subprocess.run(
            [sys.executable, __file__, "--prepare", str(folder), "--history", str(history)],
            env=env,
            cwd=REPO,
        )
        if proc.returncode != 0:
            raise SystemExit(f"prepare failed for {n} stocks")
    if prepare_only:
        return {}
    print(f"  {n} stocks: the day in one run", flush=True)
    day = _child(["--run", str(folder)], env)
    if not day["success"]:
        raise SystemExit(f"the day's run failed at {n} stocks")
    alone = {}
    for step in day["order"]:
        if step not in _asset_steps():
            continue  # an asset check's step runs with its asset; its memory is the day's
        print(f"  {n} stocks: {step} alone", flush=True)
        alone[step] = _child(["--run", str(folder), "--step", step], env)
    result = {"day": day, "alone": alone, "load": _load()}
    (folder / "results.json").write_text(json.dumps(result))
    return result


def _asset_steps() -> set[str]:
    """The steps that materialise assets (a partitioned check cannot run alone)."""
    from quant_assets.definitions import defs

    return {a.node_def.name for a in defs.assets}


def _pre_market(step: str) -> bool:
    return step not in INGEST_STEPS and step not in AFTER_SIGNALS


def report(results: dict[int, dict]) -> None:
    sizes = sorted(results)
    order = results[sizes[-1]]["day"]["order"]
    print(f"\nOne trading day ({DAY}) of the whole graph, 2 cores, load {_load()}")
    head = "| step | " + " | ".join(f"{n} s | {n} MB" for n in sizes) + " | mem ~ stocks^k |"
    print(head)
    print("|" + "---|" * (2 * len(sizes) + 2))
    for step in order:
        cells = []
        mems = []
        for n in sizes:
            s = results[n]["day"]["steps"].get(step, {}).get("s", float("nan"))
            alone = results[n]["alone"].get(step)
            mb = (
                alone["peak_above_base_mb"]
                if alone
                else results[n]["day"]["steps"].get(step, {}).get("rss_up_mb", float("nan"))
            )
            mems.append(mb)
            cells += [f"{s:.2f}", f"{mb:.0f}"]
        k = _exponent(sizes[0], sizes[-1], mems[0], mems[-1])
        mark = "" if _pre_market(step) else " (ingest)" if step in INGEST_STEPS else " (after)"
        print(f"| {step}{mark} | " + " | ".join(cells) + f" | {k} |")
    print()
    for n in sizes:
        day = results[n]["day"]
        pre = sum(v["s"] for k, v in day["steps"].items() if _pre_market(k))
        ingest = sum(v["s"] for k, v in day["steps"].items() if k in INGEST_STEPS)
        print(
            f"{n:>5} stocks: pre-market {pre:6.1f} s (target < {TARGET_PRE_MARKET_S:.0f} s "
            f"at 5,000: {'met' if pre < TARGET_PRE_MARKET_S else 'missed'}; the seed's "
            f"90 minutes / ours = {SEED_PRE_MARKET_S / pre:,.0f}x), ingest {ingest:5.1f} s, "
            f"whole day {day['wall_s']:6.1f} s (target < {TARGET_DAY_S:.0f} s: "
            f"{'met' if day['wall_s'] < TARGET_DAY_S else 'missed'}), "
            f"largest step peak {max(a['peak_above_base_mb'] for a in results[n]['alone'].values()):,.0f} MB"
        )
    _plot(results, order)


def _exponent(n0: int, n1: int, m0: float, m1: float) -> str:
    if n1 == n0 or m0 <= 0 or m1 <= 0 or math.isnan(m0) or math.isnan(m1):
        return "-"
    return f"{math.log(m1 / m0) / math.log(n1 / n0):.2f}"


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _plot(results: dict[int, dict], order: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(results)
    fig, ax = plt.subplots(figsize=(10, 5))
    bottom = [0.0] * len(sizes)
    for step in order:
        values = [results[n]["day"]["steps"].get(step, {}).get("s", 0.0) for n in sizes]
        ax.bar([str(n) for n in sizes], values, bottom=bottom, label=step)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_xlabel("stocks")
    ax.set_ylabel("seconds (one Dagster run of the day)")
    ax.set_title("One trading day of the asset graph, by step")
    ax.legend(fontsize=6, ncol=2, loc="upper left")
    fig.tight_layout()
    out = REPO / ".data" / "bench" / "daily_graph.png"
    fig.savefig(out, dpi=110)
    print(f"\nplot: {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[300, 1000, 5000])
    parser.add_argument("--history", type=int, default=80)
    parser.add_argument("--fresh", action="store_true")
    parser.add_argument(
        "--prepare-only",
        action="store_true",
        help="build the data folders and stop (the preparation is long at 5,000 stocks and "
        "need not run on a quiet machine; the measured runs do)",
    )
    parser.add_argument(
        "--report", action="store_true", help="print the figures of the last runs again"
    )
    parser.add_argument("--prepare", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--run", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--step", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.prepare:
        prepare(args.prepare, args.history)
        return
    if args.run:
        run(args.run, args.step)
        return
    if args.report:
        folders = {n: REPO / ".data" / "bench" / f"graph-{n}" / "results.json" for n in args.sizes}
        report({n: json.loads(f.read_text()) for n, f in folders.items() if f.exists()})
        return
    results = {n: measure(n, args.history, args.fresh, args.prepare_only) for n in args.sizes}
    if args.prepare_only:
        return
    report(results)


if __name__ == "__main__":
    main()
