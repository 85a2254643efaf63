"""The zoo and its ensembles side by side, on the simulated market and on CSI300.

    .venv/bin/python bench/bench_zoo.py [--market sim|csi300|both] [--members lgbm,xgb,...]

Each family of the zoo is fitted once per market on Alpha158 (train, then early stopping on
the first part of valid), each in a process of its own, and scored on the rest of valid
(the "report" days early stopping never saw) and on test. The ensembles are built from those fitted members: the weighted
average, the regime ensemble and stacking (a non-negative ridge on the members' validation
scores) weigh them on the early-stopping days ("weights' days"); `--oof-stacking` adds the
classic stacking, its members refitted on purged out-of-fold training windows (the trees
only, by default: each network would cost three fits more). Besides the weights' days
themselves, where a fitted weighting shows only that it fits, each ensemble is scored there
cross-fitted (each fifth of those days with weights fitted on the other fifths, purged):
the honest validation figure next to the members' own on the same days. Printed per model:
valid and test IC, rank IC, rank ICIR and the mean daily top-50 excess return over the
equal-weight universe (before costs), fit seconds (and seconds per epoch for the networks),
the RSS rise of the fit; then whether each ensemble beats its best member on validation
(fitted, cross-fitted, report days) and on test.
Figures go to .data/bench/zoo_<market>.json, a bar chart to .data/bench/zoo_<market>.png.
Not part of pytest.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA_DIR = Path(os.environ.get("QUANT_DATA_DIR", REPO / ".data"))
OUT = DATA_DIR / "bench"

from quant_assets.models.dataset import forward_label  # noqa: E402
from quant_assets.models.ensembles import (  # noqa: E402
    RegimeEnsemble,
    Stacking,
    WeightedAverage,
    market_regime,
)
from quant_assets.models.metrics import score_report  # noqa: E402
from quant_assets.models.segments import Segments  # noqa: E402
from quant_assets.models.walk_forward import (  # noqa: E402
    feature_frame,
    fit_frames,
    prepare_frames,
)
from quant_assets.models.zoo import FAMILIES, NETWORK_FAMILIES, make_processed  # noqa: E402

CSI300_SEGMENTS = {"train": ("2021-01-01", "2022-12-31"), "valid": ("2023-01-01", "2023-12-31"),
                   "test": ("2024-01-01", "2024-12-31")}  # fmt: skip
TOP = 50


class RssPeak:
    """The process's RSS at entry and its peak while the block runs (sampled every 50 ms)."""

    def __enter__(self) -> RssPeak:
        self._proc = psutil.Process()
        self.start_mb = self.peak_mb = self._proc.memory_info().rss / 2**20
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(0.05):
            self.peak_mb = max(self.peak_mb, self._proc.memory_info().rss / 2**20)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def sim_bars(symbols: int = 300, days: int = 500) -> tuple[pd.DataFrame, Segments]:
    """Adjusted bars of the simulated market (its planted alphas) with 60/20/20 % segments."""
    from quant_assets.market.adjustment import backward_adjusted
    from quant_assets.market.sources.simulated import SimulatedMarket

    cache = DATA_DIR / "bench" / f"sim_bars_{symbols}x{days}.parquet"
    if cache.exists():
        bars = pd.read_parquet(cache)
    else:
        sim = SimulatedMarket(
            pd.bdate_range("2022-01-03", periods=days), n_symbols=symbols, seed=11
        )
        adjusted = backward_adjusted(sim.daily_bars())
        bars = adjusted[~adjusted["is_suspended"].astype(bool)].reset_index(drop=True)
        cache.parent.mkdir(parents=True, exist_ok=True)
        bars.to_parquet(cache)
    cal = pd.DatetimeIndex(sorted(bars["date"].unique()))
    a, b = int(len(cal) * 0.6), int(len(cal) * 0.8)
    seg = Segments((cal[60], cal[a - 1]), (cal[a], cal[b - 1]), (cal[b], cal[-1]))
    return bars, seg


def csi300_bars() -> tuple[pd.DataFrame, Segments] | None:
    """CSI300 from ../shared/data, backward adjusted (cached), suspended days left out."""
    from quant_assets.market.adjustment import backward_adjusted
    from quant_assets.market.sources.real_data import load_csi300_bars

    cache = DATA_DIR / "bench" / "csi300_adjusted.parquet"
    if cache.exists():
        adjusted = pd.read_parquet(cache)
    else:
        try:
            raw = load_csi300_bars()
        except FileNotFoundError as error:
            print(f"CSI300 skipped: {error}")
            return None
        adjusted = backward_adjusted(raw)
        cache.parent.mkdir(parents=True, exist_ok=True)
        adjusted.to_parquet(cache)
    bars = adjusted[~adjusted["is_suspended"].astype(bool)].reset_index(drop=True)
    return bars, Segments.from_dict(CSI300_SEGMENTS)


def figures(model, frames, which: str) -> dict[str, float]:
    """score_report of the model on the report days ("valid"), the early-stopping days the
    ensembles' weights come from ("weights"; "cross" for an ensemble's cross-fitted scores
    there), or the test days."""
    if which == "cross":
        scores = model.cross_fitted(*frames.valid)
        return score_report(scores, frames.raw_label.reindex(scores.index), TOP)
    X, target = {"valid": frames.report, "weights": frames.valid}.get(which, frames.test)
    own = target.notna() if which != "test" else X.index.get_level_values("date") >= frames.days[
        "test"][0]  # fmt: skip
    scores = model.predict(X)[np.asarray(own)]
    return score_report(scores, frames.raw_label.reindex(scores.index), TOP)


def run_market(name: str, bars: pd.DataFrame, seg: Segments, members: list[str],
               stack_members: list[str] | None, reuse: bool = False) -> dict:  # fmt: skip
    print(f"\n== {name}: {bars['symbol'].nunique()} symbols, {bars['date'].nunique()} days; "
          f"train {seg.train[0].date()}..{seg.train[1].date()}, valid "
          f"{seg.valid[0].date()}..{seg.valid[1].date()}, test {seg.test[0].date()}..{seg.test[1].date()}")  # fmt: skip
    t0 = time.perf_counter()
    panel = feature_frame(bars, "alpha158")
    label = forward_label(bars)
    print(f"features {time.perf_counter() - t0:.1f} s: {panel.shape}")
    results: dict[str, dict] = {}
    fitted = {}
    saved = OUT / f"zoo_members_{name}.pkl"
    if reuse and saved.exists():  # the members of an earlier run, to rerun the ensembles alone
        results, fitted = pickle.loads(saved.read_bytes())
        print(f"members and their figures from {saved}")
        for family in fitted:
            _line(family, results[family])
    for family in [m for m in members if m not in fitted]:
        # each family in a process of its own: its RSS figure is its own, and no family
        # inherits the state another left (in one process, the Transformer fitted after the
        # LSTM ran about 10x slower per epoch on one machine, not yet explained)
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "fit.pkl"
            subprocess.run(
                [sys.executable, __file__, "--child", name, family, str(out)], check=True
            )
            results[family], fitted[family] = pickle.loads(out.read_bytes())
        _line(family, results[family])
    saved.write_bytes(pickle.dumps((results, fitted)))
    regime = market_regime(bars)
    ensembles = {
        "average": WeightedAverage(dict(fitted), prefit=True),
        "regime": RegimeEnsemble(dict(fitted), regime=regime, prefit=True),
        "stacking": Stacking(dict(fitted), source="valid", prefit=True),
    }
    if stack_members:
        ensembles["stacking_oof"] = Stacking({f: make_processed(f, seed=0) for f in stack_members})
    for kind, ensemble in ensembles.items():
        frames, _, _ = prepare_frames(panel, label, seg, ensemble)
        with RssPeak() as rss:
            t = time.perf_counter()
            fit = fit_frames(ensemble, frames)
            seconds = time.perf_counter() - t
        chosen = stack_members if kind == "stacking_oof" else list(fitted)
        best_member = max(chosen, key=lambda m: results[m]["valid"]["rank_ic"])
        best_fitted = max(chosen, key=lambda m: results[m]["weights_days"]["rank_ic"])
        results[kind] = {
            "weights_days": figures(fit.model, frames, "weights"),
            "cross_fitted": figures(fit.model, frames, "cross"),
            "valid": figures(fit.model, frames, "valid"),
            "test": figures(fit.model, frames, "test"),
            "fit_seconds": seconds,
            "fit_rss_rise_mb": rss.peak_mb - rss.start_mb,
            "members": chosen,
            "weights": {
                k: float(v) for k, v in getattr(fit.model, "weights_", pd.Series()).items()
            },
            "best_member": best_member,
            "best_member_weights_days": best_fitted,
        }
        r = results[kind]
        r["beats_best_member_valid"] = (
            r["valid"]["rank_ic"] > results[best_member]["valid"]["rank_ic"]
        )
        r["beats_best_member_test"] = r["test"]["rank_ic"] > results[best_member]["test"]["rank_ic"]
        best_there = results[best_fitted]["weights_days"]["rank_ic"]
        r["beats_best_member_weights_days"] = r["weights_days"]["rank_ic"] > best_there
        r["beats_best_member_cross_fitted"] = r["cross_fitted"]["rank_ic"] > best_there
        _line(kind, r)
    return results


def fit_family(market: str, family: str, out: Path) -> None:
    """Fit one family on `market` and pickle its figures and the fitted model to `out`."""
    bars, seg = sim_bars() if market == "sim" else csi300_bars()
    panel = feature_frame(bars, "alpha158")
    label = forward_label(bars)
    deep = family in NETWORK_FAMILIES
    estimator = make_processed(family, seed=0, **({"progress": True} if deep else {}))
    frames, _, _ = prepare_frames(panel, label, seg, estimator)
    with RssPeak() as rss:
        t = time.perf_counter()
        fit = fit_frames(estimator, frames)
        seconds = time.perf_counter() - t
    epochs = len(next(iter(fit.model.curves_.values()), [])) if deep else 0
    result = {
        "weights_days": figures(fit.model, frames, "weights"),
        "valid": figures(fit.model, frames, "valid"),
        "test": figures(fit.model, frames, "test"),
        "fit_seconds": seconds,
        "epochs": epochs,
        "seconds_per_epoch": seconds / epochs if epochs else None,
        "best_iteration": fit.metrics["best_iteration"],
        "fit_rss_rise_mb": rss.peak_mb - rss.start_mb,
        "train_rows": int(frames.train[1].notna().sum()),
    }
    out.write_bytes(pickle.dumps((result, fit.model)))


def _line(name: str, r: dict) -> None:
    v, t = r["valid"], r["test"]
    epoch = f" ({r['seconds_per_epoch']:.1f} s/epoch)" if r.get("seconds_per_epoch") else ""
    print(f"{name:12s} valid rank IC {v['rank_ic']:+.4f} | test IC {t['ic']:+.4f} rank IC "
          f"{t['rank_ic']:+.4f} rank ICIR {t['rank_icir']:+.3f} top{TOP} {t[f'top{TOP}_excess'] * 1e4:+.1f} bp/day"
          f" | fit {r['fit_seconds']:.1f} s{epoch}, +{r['fit_rss_rise_mb']:.0f} MB", flush=True)  # fmt: skip


def table(results: dict) -> str:
    """A markdown table of the figures, LightGBM first, with the ensembles' verdicts."""
    rows = ["| model | weights' days rank IC | cross-fitted there | valid rank IC | test IC | test "
            f"rank IC | test rank ICIR | test top-{TOP} excess (bp/day) | fit (s) | s/epoch |",
            "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, r in results.items():
        v, t = r["valid"], r["test"]
        per = f"{r['seconds_per_epoch']:.1f}" if r.get("seconds_per_epoch") else ""
        w = r["weights_days"]["rank_ic"]
        c = f"{r['cross_fitted']['rank_ic']:+.4f}" if "cross_fitted" in r else ""
        rows.append(f"| {name} | {w:+.4f} | {c} | {v['rank_ic']:+.4f} | {t['ic']:+.4f} | "
                    f"{t['rank_ic']:+.4f} | {t['rank_icir']:+.3f} | {t[f'top{TOP}_excess'] * 1e4:+.1f} | "
                    f"{r['fit_seconds']:.1f} | {per} |")  # fmt: skip
    for kind in ("average", "stacking", "regime", "stacking_oof"):
        if kind in results:
            r = results[kind]
            rows.append(f"\n{kind}: on the weights' days beats its best member there "
                        f"({r['best_member_weights_days']}): fitted {r['beats_best_member_weights_days']}, "
                        f"cross-fitted {r['beats_best_member_cross_fitted']}; on the report days beats "
                        f"{r['best_member']}: {r['beats_best_member_valid']}; on test: "
                        f"{r['beats_best_member_test']}")  # fmt: skip
    return "\n".join(rows)


def plot(results: dict, path: Path, title: str) -> None:
    """Rank IC per model: on the weights' days (fitted; for an ensemble also cross-fitted),
    the report days and test."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    series = {
        "weights' days (ensembles: fitted)": [results[n]["weights_days"]["rank_ic"] for n in names],
        "weights' days, cross-fitted": [
            results[n]["cross_fitted"]["rank_ic"] if "cross_fitted" in results[n] else np.nan
            for n in names
        ],
        "report days": [results[n]["valid"]["rank_ic"] for n in names],
        "test": [results[n]["test"]["rank_ic"] for n in names],
    }
    x = np.arange(len(names))
    width = 0.2
    fig, ax = plt.subplots(figsize=(11, 4.5))
    for k, (label, values) in enumerate(series.items()):
        ax.bar(x + (k - 1.5) * width, values, width, label=label)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(x, names, rotation=30)
    ax.set_ylabel("mean daily rank IC")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--market", choices=["sim", "csi300", "both"], default="both")
    parser.add_argument("--members", default=",".join(FAMILIES))
    parser.add_argument(
        "--oof-stacking",
        action="store_true",
        help="add the classic stacking on out-of-fold training scores",
    )
    parser.add_argument(
        "--stack-members", default="lgbm,xgb,rf", help="members of the out-of-fold stacking"
    )
    parser.add_argument(
        "--reuse-members",
        action="store_true",
        help="take the fitted members of the last run (saved in the output folder)",
    )
    parser.add_argument(
        "--child", nargs=3, metavar=("MARKET", "FAMILY", "OUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.child:
        fit_family(args.child[0], args.child[1], Path(args.child[2]))
        return
    members = args.members.split(",")
    stack = args.stack_members.split(",") if args.oof_stacking else None
    OUT.mkdir(parents=True, exist_ok=True)
    markets = []
    if args.market in ("sim", "both"):
        markets.append(("sim", *sim_bars()))
    if args.market in ("csi300", "both"):
        loaded = csi300_bars()
        if loaded is not None:
            markets.append(("csi300", *loaded))
    for name, bars, seg in markets:
        results = run_market(name, bars, seg, members, stack, args.reuse_members)
        print("\n" + table(results))
        (OUT / f"zoo_{name}.json").write_text(json.dumps(results, indent=1, default=str))
        plot(results, OUT / f"zoo_{name}.png", f"Zoo and ensembles on {name}: rank IC")
        print(f"figures: {OUT / f'zoo_{name}.json'}, plot: {OUT / f'zoo_{name}.png'}")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
