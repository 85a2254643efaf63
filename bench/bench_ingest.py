"""Order-book ingest speed and memory: validation + insert vs a plain `client.insert_df`.

    .venv/bin/python bench/bench_ingest.py [--sizes 30 300 3000] [--repeat 3]

What it measures, per number of stocks (a simulated day of 10-level snapshots every 3 s,
about 4,600 snapshots per stock, so 300 stocks are ~1.4 million rows):

- read: `read_landing_file` of the day's Parquet landing file (what a real ingest does first;
  reported separately, not part of `total`).
- validate: `validate("order_book", ...)` with the universe and the day's bars (price limits),
  i.e. what `ingest_file` does after reading the file.
- insert: `clean_rows` + `replace_partition` into RAW_ORDER_BOOK (the partition supplies
  `date`, as in the IO manager; staging table, Arrow batches read in place by chDB's
  `Python()` table function on two clients, REPLACE PARTITION) + the (empty) quarantine
  partition, in a fresh chDB folder.
- peer: a plain `client.insert_df` of the same 42-column frame, no validation, into a
  MergeTree table with the same column types, codecs and sort key (no `date`, no partition),
  in the same process.

total = validate + insert; rows/s = rows / total; ratio = ours rows/s / peer rows/s (= median
peer s / median total s); best = fastest peer / fastest total; pairs = median over the runs of
peer s / total s of the same run (each pair runs back to back, so a drift in the machine's speed
weighs on both); cpu ratio is the same on process CPU time (chDB's threads included: ours
spreads over two cores, so it is lower).
Targets (300 stocks): total < 5 s and ratio >= 3.

Each size runs in two subprocesses: one generates the day with `SimulatedMarket` and writes
the landing files (its time is reported as `gen s` and excluded), the other reads and ingests
them, so that its peak RSS (getrusage ru_maxrss) is the ingest's own: `peak ours` is taken
before the peer's first run and `peak all` at the end. Ours and the peer alternate, with a
garbage-collector pass before each timed section: a full pass after insert_df has built its
objects costs ~0.5 s, and without it our validation paid for the peer's garbage. Times are the
median of `--repeat` runs (3,000 stocks, ~14 million rows: one run by default). All wall clock
on a shared machine: the load average is printed with the table.

Where the time went (300 stocks = 1.38 M rows, 2 cores):
- validate(): 0.55 s -> 0.15 s (0.11 s on the simulator's own frame). The book and limit
  rules were ~25 numpy passes over 40 columns; a one-pass numba screen (`screen_kernels`) now
  picks the rows that may break one and the same rules run on those only. The session,
  trading-day and future checks are one numba pass too (0.045 s -> 0.01 s), and the screen
  reads each symbol's limit prices through its code instead of full-length limit arrays.
  Duplicates and ordering take a per-symbol monotone check first (a sorted vendor file
  settles both in 5 ms). Its temporaries go on ordinary pages (`quant_assets.memory`): with
  numpy's huge-page advice it took 0.20-0.30 s, as the host had 2 MB pages to hand or not.
- read (not in total): 1.5 s -> 0.25-0.5 s, the landing reader no longer copies the frame.
- insert: 1.66 s -> 0.46 s. (1) Arrow columns typed exactly like the table's (date32,
  timestamp[ms, tz], dictionary for LowCardinality, uint32, non-nullable): ClickHouse reads
  them in 0.09 s instead of 0.42 s of conversions. (2) chDB's `Python()` table function reads
  the batch in place: no file written. (3) Intraday codecs LZ4 / T64 / DoubleDelta+LZ4 instead
  of Gorilla/T64/DoubleDelta + ZSTD: one INSERT of the day 1.05 s -> 0.53 s, data 10% larger.
  (4) Two clients load the batches side by side (ClickHouse writes one part on one core).
  (5) Each batch goes in through a RecordBatchReader with max_block_size = its rows, so
  ClickHouse takes it as one block: a bare batch arrives in chunks of at most 131,072 rows
  that the INSERT copies back together, a quarter of its CPU time (0.55 s -> 0.46 s).
- The peer uses the same table, so (3) made it faster too: 2.8 s -> 2.0 s. Of its 2.0 s,
  ~1.4 s is clickhouse-connect's conversion of the frame to Native in Python.
- What is left: ClickHouse's sort, LZ4 and file writes (~0.7 CPU-seconds for the day, LZ4 on
  the price columns the largest part) and the batch conversion (~0.1); validation runs before
  the write. Storing prices as integer ticks (T64 instead of LZ4) took 0.075 s off the write
  but the float-to-tick conversion cost as much, so prices stay Float64.
- The peer's time moves with the machine (1.94-3.21 s within one run), ours much less (medians
  0.60-0.63 s): the ratio of medians ranged 3.3x-4.6x over eight runs on a quiet host;
  against the peer's fastest single run (1.94 s) it is 3.2x.
- Peak RSS (ours): the landing frame (~0.45 GB per 300 stocks, read through Arrow one column
  at a time and no longer copied) plus at most three Arrow batches: 0.7 / 1.8 / 7.1 GB at
  30 / 300 / 3,000 stocks (10.6 GB at 3,000 with pd.read_parquet).
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DAY = "2024-03-08"
TARGET_TOTAL_S = 5.0
TARGET_RATIO = 3.0


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def generate(n_stocks: int, folder: Path) -> None:
    """Child 1: simulate the day and write the landing file, the day's bars and the universe."""
    import pandas as pd

    from quant_assets.calendar import trading_days
    from quant_assets.market.sources.landing import write_landing_file
    from quant_assets.market.sources.simulated import SimulatedMarket

    t0 = time.perf_counter()
    days = trading_days(pd.Timestamp(DAY) - pd.Timedelta(days=10), pd.Timestamp(DAY))
    market = SimulatedMarket(days, n_symbols=n_stocks, seed=7)
    book = market.order_book(days[-1])
    gen_s = time.perf_counter() - t0
    write_landing_file(book, folder, "order_book", days[-1])
    market.daily_bars(days[-1], days[-1]).to_parquet(folder / "bars.parquet", index=False)
    market.universe()[["symbol"]].to_parquet(folder / "universe.parquet", index=False)
    print(json.dumps({"gen_s": gen_s, "rows": len(book)}))


def _peer_table(database: str) -> str:
    """RAW_ORDER_BOOK's 42 contract columns (no `date`), same types, codecs and sort key."""
    from quant_assets.market.contract.tables import RAW_ORDER_BOOK

    cols = ",\n  ".join(f"`{c}` {t}" for c, t in RAW_ORDER_BOOK.columns.items() if c != "date")
    return (
        f"CREATE TABLE {database}.peer_order_book (\n  {cols}\n) ENGINE = MergeTree "
        f"ORDER BY ({', '.join(RAW_ORDER_BOOK.order_by)})"
    )


def measure(folder: Path, repeat: int) -> None:
    """Child 2: `repeat` times, read, validate and insert the landing file, then the peer."""
    import pandas as pd

    from quant_assets.market.contract.columns import ORDER_BOOK
    from quant_assets.market.contract.tables import QUARANTINE, RAW_ORDER_BOOK
    from quant_assets.market.sources.landing import landing_path, read_landing_file
    from quant_assets.market.validation import validate
    from quant_assets.market.validation.ingest import clean_rows, quarantine_rows
    from resources.clickhouse import ClickHouseResource

    day = pd.Timestamp(DAY)
    path = landing_path(folder, "order_book", day)
    bars = pd.read_parquet(folder / "bars.parquet")
    known = set(pd.read_parquet(folder / "universe.parquet")["symbol"])
    ch = ClickHouseResource(dsn=f"chdb://{folder / 'chdb'}")
    runs: dict[str, list[float]] = {k: [] for k in ("read", "validate", "insert", "peer")}
    cpu: dict[str, list[float]] = {"ours": [], "peer": []}  # process CPU s, chDB threads included
    peak_ours = 0.0
    with ch.client() as client:
        db = ch.database
        # Ours and the peer alternate, so that whatever drifts during the run (the machine's
        # load, the process's memory) weighs on both alike.
        for _ in range(repeat):
            client.command(f"DROP TABLE IF EXISTS {db}.{RAW_ORDER_BOOK.name}")
            gc.collect()  # neither side pays for the other's garbage (a full pass is ~0.5 s)
            t0 = time.perf_counter()
            raw = read_landing_file(path, "order_book")
            t1, c1 = time.perf_counter(), time.process_time()
            result = validate(
                "order_book", raw, known_symbols=known, trading_date=day, bars_for_limits=bars
            )
            t2 = time.perf_counter()
            clean = clean_rows(result)  # `date` comes from the partition, as in the IO manager
            ch.replace_partition(client, RAW_ORDER_BOOK, clean, day)
            quarantined = quarantine_rows(result, day)
            ch.replace_partition(client, QUARANTINE, quarantined, day, kind="order_book")
            t3, c3 = time.perf_counter(), time.process_time()
            cpu["ours"].append(c3 - c1)
            runs["read"].append(t1 - t0)
            runs["validate"].append(t2 - t1)
            runs["insert"].append(t3 - t2)
            del result, clean
            stored = client.query(f"SELECT count() FROM {db}.{RAW_ORDER_BOOK.name}").result_rows
            if not runs["peer"]:  # the high-water mark before the peer's first run
                peak_ours = peak_mb()

            frame = raw[ORDER_BOOK]
            client.command(f"DROP TABLE IF EXISTS {db}.peer_order_book")
            client.command(_peer_table(db))
            gc.collect()
            t0, c0 = time.perf_counter(), time.process_time()
            client.insert_df(f"{db}.peer_order_book", frame)
            runs["peer"].append(time.perf_counter() - t0)
            cpu["peer"].append(time.process_time() - c0)
            del frame
        stored = stored[0][0]
        peer_rows = client.query(f"SELECT count() FROM {db}.peer_order_book").result_rows[0][0]
    print(
        json.dumps(
            {
                "rows": len(raw),
                "stored": int(stored),
                "peer_rows": int(peer_rows),
                "quarantined": int(len(quarantined)),
                "runs": runs,
                "cpu": cpu,
                "peak_ours_mb": peak_ours,
                "peak_all_mb": peak_mb(),
            }
        )
    )


def child(args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_size(n_stocks: int, repeat: int, tmp: Path) -> dict:
    folder = tmp / f"stocks_{n_stocks}"
    folder.mkdir()
    try:
        gen = child(["--generate", str(n_stocks), str(folder)])
        out = child(["--measure", str(folder), str(repeat)])
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in out["runs"].items()}
    total = med["validate"] + med["insert"]
    totals = [v + i for v, i in zip(out["runs"]["validate"], out["runs"]["insert"], strict=True)]
    rows = out["rows"]
    if out["stored"] != rows - out["quarantined"] or out["peer_rows"] != rows:
        raise RuntimeError(f"row counts differ: {out}")
    return {
        "stocks": n_stocks,
        "rows": rows,
        "gen": gen["gen_s"],
        **med,
        "total": total,
        "rate": rows / total,
        "peer_rate": rows / med["peer"],
        "ratio": med["peer"] / total,
        "best_ratio": min(out["runs"]["peer"]) / min(totals),
        "pair_ratio": statistics.median(
            p / t for p, t in zip(out["runs"]["peer"], totals, strict=True)
        ),
        "cpu_ratio": statistics.median(out["cpu"]["peer"]) / statistics.median(out["cpu"]["ours"]),
        "peak_ours": out["peak_ours_mb"],
        "peak_all": out["peak_all_mb"],
        "runs": out["runs"],
        "load": loadavg(),
    }


HEADER = (
    f"{'stocks':>6} {'rows':>11} {'gen s':>6} {'read s':>6} {'valid s':>7} {'insert s':>8} "
    f"{'total s':>7} {'rows/s':>9} {'peer s':>7} {'peer r/s':>9} {'ratio':>5} {'best':>5} "
    f"{'cpu ratio':>9} "
    f"{'peak ours':>9} {'peak all':>9}  load after"
)


def row(r: dict) -> str:
    return (
        f"{r['stocks']:>6} {r['rows']:>11,} {r['gen']:>6.1f} {r['read']:>6.2f} "
        f"{r['validate']:>7.2f} {r['insert']:>8.2f} {r['total']:>7.2f} {r['rate']:>9,.0f} "
        f"{r['peer']:>7.2f} {r['peer_rate']:>9,.0f} {r['ratio']:>5.1f} {r['best_ratio']:>5.1f} "
        f"{r['pair_ratio']:>5.1f} "
        f"{r['cpu_ratio']:>9.1f} "
        f"{r['peak_ours']:>7.0f}MB {r['peak_all']:>7.0f}MB  {r['load']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[30, 300, 3000])
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs per size (sizes over 1,000 stocks: 1)"
    )
    parser.add_argument("--generate", nargs=2, metavar=("STOCKS", "FOLDER"), help=argparse.SUPPRESS)
    parser.add_argument("--measure", nargs=2, metavar=("FOLDER", "REPEAT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        generate(int(args.generate[0]), Path(args.generate[1]))
        return
    if args.measure:
        measure(Path(args.measure[0]), int(args.measure[1]))
        return

    print(f"Order-book ingest, one simulated day, snapshots every 3 s; load before: {loadavg()}")
    print("(times: median of the runs; total = validate + insert; read reported separately)")
    print(HEADER)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        for n in args.sizes:
            r = run_size(n, args.repeat if n <= 1000 else 1, Path(tmp))
            results.append(r)
            print(row(r), flush=True)
    for r in results:
        runs = ", ".join(f"{k} " + "/".join(f"{x:.2f}" for x in v) for k, v in r["runs"].items())
        print(f"  {r['stocks']} stocks, every run (s): {runs}")
    if len(results) > 1:
        first = results[0]
        for r in results[1:]:
            k = r["rows"] / first["rows"]
            print(
                f"  {first['stocks']} -> {r['stocks']} stocks: rows x{k:.0f}, "
                f"total time x{r['total'] / first['total']:.1f}, "
                f"rows/s x{r['rate'] / first['rate']:.2f}, "
                f"peak RSS (ours) x{r['peak_ours'] / first['peak_ours']:.1f}"
            )
    for r in results:
        if r["stocks"] == 300:
            ok_t, ok_r = r["total"] < TARGET_TOTAL_S, r["ratio"] >= TARGET_RATIO
            print(
                f"300 stocks: total {r['total']:.2f} s < {TARGET_TOTAL_S:.0f} s: "
                f"{'PASS' if ok_t else 'FAIL'}; ratio {r['ratio']:.1f} >= {TARGET_RATIO:.0f}: "
                f"{'PASS' if ok_r else 'FAIL'}"
            )


if __name__ == "__main__":
    main()
