"""Alpha158 speed and memory: our engine vs Qlib's expression engine, plus the one-day path.

    .venv/bin/python bench/bench_alpha158.py [--symbols 300] [--days 2500] [--skip-qlib]

Each engine runs in its own subprocess so its peak RSS (getrusage) is its own. Qlib runs
in the separate venv .venv-qlib (pyqlib 0.9.7) with no expression/dataset cache and one
kernel; only its D.features call is timed (the binary dump is not). Ours is timed warm, after
a first call on small data that loads the numba kernels from the on-disk cache (or compiles
them, ~1 min, after a kernel changed); that cold first call is reported separately. Both are
wall-clock times on whatever else the machine runs: compare the two in the same run.
Not part of pytest.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
QLIB_PYTHON = REPO / ".venv-qlib" / "bin" / "python"


def make_bars(n_symbols: int, n_days: int, seed: int = 0) -> pd.DataFrame:
    """Random-walk daily bars, float32-representable like Qlib's storage."""
    rng = np.random.default_rng(seed)
    shape = (n_days, n_symbols)
    close = 10 * np.exp(np.cumsum(rng.normal(0, 0.02, shape), axis=0))
    open_ = close * np.exp(rng.normal(0, 0.01, shape))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, 0.01, shape)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, 0.01, shape)))
    volume = np.round(rng.lognormal(12, 0.5, shape))
    cols = {"open": open_, "high": high, "low": low, "close": close, "volume": volume,
            "vwap": (high + low + close) / 3}  # fmt: skip
    frame = pd.DataFrame(
        {
            "date": np.repeat(pd.bdate_range("2010-01-04", periods=n_days), n_symbols),
            "symbol": np.tile([f"S{i:05d}" for i in range(n_symbols)], n_days),
            **{k: v.ravel().astype(np.float32).astype(np.float64) for k, v in cols.items()},
        }
    )
    return frame


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_ours(bars_path: str, mode: str) -> None:
    """Child process: time our alpha158 on the parquet file, print one JSON line."""
    sys.path.insert(0, str(REPO))
    from quant_assets.factors import alpha158

    t0 = time.perf_counter()
    alpha158(make_bars(5, 80))  # numba warm-up (compiles or loads cached kernels)
    warmup = time.perf_counter() - t0
    bars = pd.read_parquet(bars_path)
    base = peak_mb()
    start = bars["date"].max() if mode == "last-day" else None
    t0 = time.perf_counter()
    out = alpha158(bars, start=start)
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_mb(), "peak_before_mb": base,
                      "warmup_seconds": warmup,
                      "rows": len(out), "input_rows": len(bars)}))  # fmt: skip


def child(args: list[str]) -> dict:
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--symbols", type=int, default=300)
    parser.add_argument("--days", type=int, default=2500)
    parser.add_argument("--day-symbols", type=int, default=5000)
    parser.add_argument("--day-history", type=int, default=250)
    parser.add_argument("--skip-qlib", action="store_true")
    parser.add_argument("--child", nargs=2, metavar=("BARS", "MODE"))
    args = parser.parse_args()
    if args.child:
        run_ours(*args.child)
        return

    with tempfile.TemporaryDirectory() as tmp:
        full = Path(tmp) / "bars.parquet"
        bars = make_bars(args.symbols, args.days)
        bars.to_parquet(full)
        print(f"Alpha158 on {args.symbols} symbols x {args.days} days = {len(bars):,} rows")
        ours = child([sys.executable, __file__, "--child", str(full), "full"])
        print(f"  ours : {ours['seconds']:7.2f} s   peak RSS {ours['peak_rss_mb']:7.0f} MB   "
              f"(warm; the first call in the process took {ours['warmup_seconds']:.2f} s "
              "on 5 x 80 bars: loading or compiling the numba kernels)")  # fmt: skip
        if args.skip_qlib or not QLIB_PYTHON.exists():
            print(
                f"  qlib : skipped ({'--skip-qlib' if args.skip_qlib else 'no ' + str(QLIB_PYTHON)})"
            )
        else:
            out = Path(tmp) / "qlib.parquet"
            ql = child([str(QLIB_PYTHON), str(REPO / "bench" / "qlib_alpha158.py"), str(full),
                        str(out)])  # fmt: skip
            ql_peak = max(ql["peak_rss_mb"], ql["peak_rss_children_mb"])
            print(f"  qlib : {ql['seconds']:7.2f} s   peak RSS {ql_peak:7.0f} MB "
                  f"(qlib {ql['qlib']}, pandas {ql['pandas']}, kernels={ql['kernels']})")  # fmt: skip
            print(f"  speed-up {ql['seconds'] / ours['seconds']:.1f}x (target >= 20x); "
                  f"memory ratio ours/qlib {ours['peak_rss_mb'] / ql_peak:.2f} (target <= 1)")  # fmt: skip

        day = Path(tmp) / "day.parquet"
        make_bars(args.day_symbols, args.day_history, seed=1).to_parquet(day)
        last = child([sys.executable, __file__, "--child", str(day), "last-day"])
        print(f"One new day for {args.day_symbols} symbols (history {args.day_history} days "
              f"given, {last['input_rows']:,} rows): {last['seconds']:.2f} s "
              f"(target < 3 s), peak RSS {last['peak_rss_mb']:.0f} MB, {last['rows']} rows out")  # fmt: skip


if __name__ == "__main__":
    main()
