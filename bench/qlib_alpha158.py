"""Reference Alpha158 from Qlib's own expression engine (run with the Qlib venv's python).

    .venv-qlib/bin/python bench/qlib_alpha158.py BARS.parquet OUT.parquet [--kernels N]

Dumps the long bars table to Qlib's binary format in a temporary folder, computes Qlib's
Alpha158 features (``Alpha158DL.get_feature_config()``, Qlib's own formulas) with
``D.features`` and no expression/dataset caches, writes them (columns named as Qlib names
them) to OUT.parquet and prints one JSON line: seconds, peak RSS of this process and of
its worker processes (MB).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

FIELDS = ("open", "high", "low", "close", "volume", "vwap")


def dump_qlib_bin(bars: pd.DataFrame, root: Path) -> None:
    """Write calendars/day.txt, instruments/all.txt and features/<sym>/<field>.day.bin."""
    dates = pd.DatetimeIndex(sorted(bars["date"].unique()))
    (root / "calendars").mkdir(parents=True)
    (root / "instruments").mkdir()
    (root / "calendars" / "day.txt").write_text("\n".join(d.strftime("%Y-%m-%d") for d in dates))
    lines = []
    for sym, g in bars.groupby("symbol", sort=True):
        g = g.set_index("date").sort_index()
        first, last = g.index[0], g.index[-1]
        lines.append(f"{sym}\t{first:%Y-%m-%d}\t{last:%Y-%m-%d}")
        span = dates[(dates >= first) & (dates <= last)]
        g = g.reindex(span)
        folder = root / "features" / sym.lower()
        folder.mkdir(parents=True)
        start = float(dates.get_loc(first))
        for f in FIELDS:
            data = np.concatenate([[start], g[f].to_numpy(dtype=float)]).astype("<f4")
            data.tofile(folder / f"{f}.day.bin")
    (root / "instruments" / "all.txt").write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("bars")
    parser.add_argument("out")
    parser.add_argument("--kernels", type=int, default=1)
    args = parser.parse_args()

    import qlib
    from qlib.contrib.data.loader import Alpha158DL
    from qlib.data import D

    bars = pd.read_parquet(args.bars)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "qlib_data"
        dump_qlib_bin(bars, root)
        qlib.init(
            provider_uri=str(root),
            region="cn",
            expression_cache=None,
            dataset_cache=None,
            kernels=args.kernels,
            joblib_backend="multiprocessing",
        )
        fields, names = Alpha158DL.get_feature_config()
        t0 = time.perf_counter()
        df = D.features(D.instruments("all"), fields, freq="day")
        seconds = time.perf_counter() - t0
    df.columns = names
    df.index = df.index.set_names(["symbol", "date"])
    df = df.swaplevel().sort_index()
    df.to_parquet(args.out)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    peak_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    json.dump(
        {
            "seconds": seconds,
            "peak_rss_mb": peak,
            "peak_rss_children_mb": peak_children,
            "rows": len(df),
            "qlib": qlib.__version__,
            "pandas": pd.__version__,
            "numpy": np.__version__,
            "kernels": args.kernels,
        },
        sys.stdout,
    )
    print()


if __name__ == "__main__":
    main()
