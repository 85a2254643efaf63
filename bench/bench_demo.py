"""`make demo` as a new user runs it: wall time, CPU use and disk after each of N demos.

    .venv/bin/python bench/bench_demo.py                      # two demos in a fresh folder
    .venv/bin/python bench/bench_demo.py --ref <commit>       # the same for another commit
    .venv/bin/python bench/bench_demo.py --data-dir D --runs 1  # one more demo on folder D

Each demo is `make demo` under /usr/bin/time in its own process (the install is not redone); the
figures printed are the wall time, the CPU share (100% = one core busy), peak memory, and the
size of every folder of the data directory after the demo: the second demo runs on the same
data and should leave the folders within a few percent of the first (no litter). With --ref
the commit is checked out in a temporary git worktree that shares this checkout's .venv, so
before and after run on the same machine in the same session.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def folder_mb(path: Path) -> float:
    total = sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())
    return total / 1e6


def one_demo(tree: Path, data: Path) -> dict[str, str]:
    # the caller's QUANT_* settings apply (e.g. QUANT_DEMO_DAYS); the Makefile sets DAGSTER_HOME
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_")}
    env["QUANT_DATA_DIR"] = str(data)
    out = subprocess.run(
        ["/usr/bin/time", "-v", "make", "-s", "-o", ".venv/.installed", "demo"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"make demo failed in {tree}:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}")
    fields = dict(re.findall(r"^\s*(.+?): (.+)$", out.stderr, re.M))
    picks = out.stdout[out.stdout.find("Top ") :].split("\n\n")[0]
    return {
        "wall": fields["Elapsed (wall clock) time (h:mm:ss or m:ss)"],
        "cpu": fields["Percent of CPU this job got"],
        "peak_mb": f"{int(fields['Maximum resident set size (kbytes)']) / 1024:.0f}",
        "picks": picks,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ref", help="a commit to measure instead of this checkout")
    parser.add_argument("--data-dir", type=Path, help="data folder (default: a fresh one)")
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    tree, cleanup = REPO, None
    if args.ref:
        cleanup = Path(tempfile.mkdtemp(prefix="demo-ref-"))
        tree = cleanup / "tree"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(tree), args.ref], cwd=REPO, check=True
        )
        (tree / ".venv").symlink_to(REPO / ".venv")
    data = args.data_dir or Path(tempfile.mkdtemp(prefix="demo-data-"))
    try:
        for i in range(1, args.runs + 1):
            figures = one_demo(tree, data)
            sizes = {p.name: folder_mb(p) for p in sorted(data.iterdir()) if p.is_dir()}
            print(
                f"demo {i} ({args.ref or 'this checkout'}): wall {figures['wall']}, "
                f"CPU {figures['cpu']}, peak {figures['peak_mb']} MB",
                flush=True,
            )
            print("  disk MB: " + ", ".join(f"{k} {v:.0f}" for k, v in sizes.items()))
            print("  " + figures["picks"].replace("\n", "\n  "))
    finally:
        if cleanup:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, check=False
            )
            shutil.rmtree(cleanup, ignore_errors=True)


if __name__ == "__main__":
    main()
