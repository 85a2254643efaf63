"""LightGBM on Alpha158: our `walk_forward` against Qlib's LGBModel on its Alpha158 handler.

    .venv/bin/python bench/bench_walk_forward.py [--seeds 0 1 2] [--skip-qlib] [--kernels 1]
    .venv/bin/python bench/bench_walk_forward.py --rows750k [--rounds 100]

The default compares the two on the CSI300 set of ../shared/data (train 2021-2022, valid
2023, test 2024), both fed the very same backward-adjusted bars (`backward_adjusted`, cached
in the data folder) and the same LightGBM parameters (ours' effective LightGBM dict is
Qlib's `LGBModel(**params)`); early stopping on the whole valid segment on both sides. It
prints test IC, rank IC and their IRs against Ref($close,-2)/Ref($close,-1)-1 of the same
adjusted closes (per date, over the symbols both score), the mean daily Spearman
correlation of the two score sets, the timings of each part with the ratios (before the
fit: our features + processing against Qlib's handler; the whole run) and peak memory.

`--rows750k` times the LightGBM fit alone on one panel of 750,000 rows x 158 features (our
Alpha158 of 750 random-walk symbols x 1,000 days, the per-date z-scored forward return as
label), fed to both: ours through the zoo's `lgbm` model, Qlib's through its LGBModel on a
DatasetH over a StaticDataLoader; a fixed number of rounds (no validation, no early stop).

Each side runs in its own subprocess (Qlib in .venv-qlib), one after the other and once per
seed (figures: the mean over seeds; timings: each part's fastest run), so each peak RSS is
its own; ours runs warm (the numba kernels loaded first, that call reported
apart). Figures go to .data/bench/walk_forward.json. Not part of pytest.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
QLIB_PYTHON = REPO / ".venv-qlib" / "bin" / "python"
QLIB_SCRIPT = REPO / "bench" / "qlib_lgbm.py"
DATA_DIR = Path(os.environ.get("QUANT_DATA_DIR", REPO / ".data"))
OUT_JSON = DATA_DIR / "bench" / "walk_forward.json"
BAR_COLUMNS = ["date", "symbol", "open", "high", "low", "close", "volume", "vwap"]

SEGMENTS = {
    "train": ["2021-01-01", "2022-12-31"],
    "valid": ["2023-01-01", "2023-12-31"],
    "test": ["2024-01-01", "2024-12-31"],
}
# Parameters that learn on this data (Qlib's CSI300-tuned ones can stop at the first round),
# in LightGBM's names; both sides get LightGBM the same effective dict.
PARAMS: dict[str, object] = {
    "learning_rate": 0.05,
    "num_leaves": 64,
    "max_depth": 8,
    "min_data_in_leaf": 500,
    "colsample_bytree": 0.8,
    "subsample": 0.8,
    "lambda_l1": 1.0,
    "lambda_l2": 1.0,
    "num_boost_round": 1000,
    "early_stopping_rounds": 50,
    "num_threads": 2,
    "seed": 0,
}


def qlib_params(params: dict[str, object]) -> dict[str, object]:
    """Our LightGBM model's effective parameter dict (bagging frequency, determinism) plus the
    round counts, for Qlib's `LGBModel(**params)`."""
    sys.path.insert(0, str(REPO))
    from quant_assets.models.trees import LGBMModel

    model = LGBMModel(**params)
    # rows only sizes a default leaf; PARAMS give min_data_in_leaf
    takes_rows = "rows" in inspect.signature(model.booster_params).parameters
    effective = model.booster_params(**({"rows": 0} if takes_rows else {}))
    rounds = {k: params[k] for k in ("num_boost_round", "early_stopping_rounds") if k in params}
    return {**effective, **rounds}


def peak_mb() -> float:
    """Peak RSS of this process so far, in MB."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def warm_numba() -> float:
    """Load (or compile) the numba kernels once on small bars; the seconds it took."""
    from bench_alpha158 import make_bars

    from quant_assets.factors import alpha158

    t0 = time.perf_counter()
    alpha158(make_bars(5, 80))
    return time.perf_counter() - t0


def watch_fit(cls: type) -> dict[str, float]:
    """Wrap `cls.fit` so each call records its CPU seconds, the RSS on entry and the RSS peak."""
    from qlib_lgbm import RssPeak

    seen: dict[str, float] = {}
    fit = cls.fit

    def watched(self, *args, **kwargs):
        cpu = time.process_time()
        with RssPeak() as rss:
            out = fit(self, *args, **kwargs)
        seen.update(fit_cpu_seconds=time.process_time() - cpu, fit_rss_start_mb=rss.start_mb,
                    fit_rss_peak_mb=rss.peak_mb,
                    rounds=len(next(iter(self.curves_.values()), [])))  # fmt: skip
        return out

    cls.fit = watched
    return seen


def child_ours(bars_path: str, out_path: str, seed: int) -> None:
    """Child process: our walk_forward on the bars parquet; scores to OUT, one JSON line."""
    sys.path.insert(0, str(REPO))
    from quant_assets.models import walk_forward
    from quant_assets.models.trees import LGBMModel

    warmup = warm_numba()
    fit_rss = watch_fit(LGBMModel)
    bars = pd.read_parquet(bars_path)
    base = peak_mb()
    t0 = time.perf_counter()
    out = walk_forward(bars, model="lgbm", features="alpha158", segments=SEGMENTS,
                       report_share=0, **{**PARAMS, "seed": seed})  # fmt: skip
    seconds = time.perf_counter() - t0
    out[["score"]].to_parquet(out_path)
    print(json.dumps({"timings": out.attrs["timings"], "seconds": seconds,
                      "best_iteration": out.attrs["metrics"].get("best_iteration"),
                      "peak_rss_mb": peak_mb(), "peak_before_mb": base, **fit_rss,
                      "warmup_seconds": warmup, "test_rows": len(out),
                      "features": len(out.attrs["features"])}))  # fmt: skip


def child_fit(panel_path: str, rounds: int) -> None:
    """Child process: our zoo's LightGBM fit alone on a ready panel (features + label)."""
    sys.path.insert(0, str(REPO))
    from quant_assets.models.trees import LGBMModel
    from quant_assets.models.zoo import make_processed

    fit_rss = watch_fit(LGBMModel)
    panel = pd.read_parquet(panel_path)
    X, y = panel.drop(columns="label"), panel["label"]
    del panel
    model = make_processed("lgbm", **{**PARAMS, "num_boost_round": rounds})
    t0 = time.perf_counter()
    model.fit(X, y)
    seconds = time.perf_counter() - t0
    print(json.dumps({"fit_seconds": seconds, "rounds": len(model.curves_["train_l2"]),
                      "rows": int(np.isfinite(y.to_numpy()).sum()), "features": X.shape[1],
                      "peak_rss_mb": peak_mb(), **fit_rss}))  # fmt: skip


def child(args: list[str]) -> dict:
    """Run a child process, return the JSON of its last stdout line."""
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_qlib(bars_path: Path, out_path: Path, segments: dict, params: dict, kernels: int,
             features: Path | None = None) -> dict:  # fmt: skip
    """Qlib's side in .venv-qlib (bench/qlib_lgbm.py)."""
    args = [str(QLIB_PYTHON), str(QLIB_SCRIPT), str(bars_path), str(out_path),
            "--segments", json.dumps(segments), "--params", json.dumps(params),
            "--kernels", str(kernels)]  # fmt: skip
    return child(args + (["--features", str(features)] if features else []))


def adjusted_csi300() -> pd.DataFrame | None:
    """The CSI300 bars backward-adjusted (cached in the data folder), or None when absent."""
    sys.path.insert(0, str(REPO))
    from quant_assets.market.adjustment import backward_adjusted
    from quant_assets.market.sources.real_data import CSI300_BARS, data_path, load_csi300_bars

    try:
        source = data_path(CSI300_BARS)
    except FileNotFoundError as exc:
        print(f"{exc}: nothing to compare, skipping.")
        return None
    cache = DATA_DIR / "bench" / "csi300_adjusted.parquet"
    if cache.exists() and cache.stat().st_mtime > source.stat().st_mtime:
        return pd.read_parquet(cache)
    print("Adjusting the CSI300 bars (backward, from preclose; once, about a minute)...")
    bars = backward_adjusted(load_csi300_bars(source))[BAR_COLUMNS]
    cache.parent.mkdir(parents=True, exist_ok=True)
    bars.to_parquet(cache)
    return bars


def forward_return(bars: pd.DataFrame) -> pd.Series:
    """Ref($close,-2)/Ref($close,-1)-1 on the trading calendar, long (date, symbol)."""
    close = bars.pivot(index="date", columns="symbol", values="close").sort_index()
    label = (close.shift(-2) / close.shift(-1) - 1).stack()
    return label.rename_axis(["date", "symbol"]).rename("label")


def daily_corr(a: pd.Series, b: pd.Series, rank: bool) -> pd.Series:
    """Per-date Pearson (or Spearman, `rank`) correlation of two aligned series."""
    both = pd.DataFrame({"a": a, "b": b}).dropna()
    if rank:
        both = both.groupby(level="date").rank()
    d = both - both.groupby(level="date").transform("mean")
    g = (d["a"] * d["b"]).groupby(level="date").sum()
    n = np.sqrt(
        (d["a"] ** 2).groupby(level="date").sum() * (d["b"] ** 2).groupby(level="date").sum()
    )
    return (g / n).replace([np.inf, -np.inf], np.nan).dropna()


def ic_figures(score: pd.Series, label: pd.Series) -> dict[str, float]:
    """Mean daily IC and rank IC with their IRs (mean over standard deviation)."""
    ic, ric = daily_corr(score, label, False), daily_corr(score, label, True)
    return {"ic": ic.mean(), "icir": ic.mean() / ic.std(), "rank_ic": ric.mean(),
            "rank_icir": ric.mean() / ric.std(), "dates": len(ric)}  # fmt: skip


def qlib_log_seconds(log: list[str], name: str) -> float:
    """Seconds of a Qlib timer line ("Time cost: 31.5s | Loading data Done")."""
    for line in log:
        m = re.search(r"Time cost: ([\d.]+)s \| " + re.escape(name) + " Done", line)
        if m:
            return float(m.group(1))
    return float("nan")


def save(key: str, figures: dict) -> None:
    """Merge one section into the JSON file of figures."""
    OUT_JSON.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(OUT_JSON.read_text()) if OUT_JSON.exists() else {}
    data[key] = figures
    OUT_JSON.write_text(json.dumps(data, indent=2, default=float))
    print(f"Figures written to {OUT_JSON} ({key})")


def _ours_figures(run: dict) -> dict[str, float]:
    """Seconds and memory of one run of ours."""
    t = run["timings"]
    return {**t, "before_fit": t["features"] + t["processing"],
            "whole": sum(t[k] for k in ("features", "processing", "fit", "predict")),
            "fit_cpu": run["fit_cpu_seconds"], "rounds": run["rounds"],
            "fit_ms_per_round": 1000 * t["fit"] / run["rounds"], "peak_rss_mb": run["peak_rss_mb"],
            "fit_rss_rise_mb": run["fit_rss_peak_mb"] - run["fit_rss_start_mb"]}  # fmt: skip


def _qlib_figures(run: dict) -> dict[str, float]:
    """Seconds and memory of one run of Qlib; its fit without the MLflow metric logging."""
    fit = run["fit_seconds"] - run["fit_log_metrics_seconds"]
    return {"features": qlib_log_seconds(run["log"], "Loading data"),
            "processing": qlib_log_seconds(run["log"], "fit & process data"),
            "before_fit": run["handler_seconds"], "fit": fit, "fit_cpu": run["fit_cpu_seconds"],
            "rounds": run["rounds"], "fit_ms_per_round": 1000 * fit / run["rounds"],
            "fit_metric_logging": run["fit_log_metrics_seconds"],
            "predict": run["predict_seconds"],
            "whole": run["handler_seconds"] + fit + run["predict_seconds"],
            "peak_rss_mb": max(run["peak_rss_mb"], run["peak_rss_children_mb"]),
            "fit_rss_rise_mb": run["fit_rss_peak_mb"] - run["fit_rss_start_mb"]}  # fmt: skip


def _mean(rows: list[dict]) -> dict[str, float]:
    """Each key's mean over the runs."""
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def _fastest(rows: list[dict]) -> dict[str, float]:
    """Each key's lowest value over the runs (the fastest part, the smallest memory)."""
    return {k: float(np.min([r[k] for r in rows])) for k in rows[0]}


def csi300(args: argparse.Namespace) -> None:
    """The CSI300 comparison: figures of both sides, their agreement, time and memory."""
    bars = adjusted_csi300()
    if bars is None:
        return
    run_qlib_too = not args.skip_qlib and QLIB_PYTHON.exists()
    print(f"CSI300: {bars['symbol'].nunique()} symbols, {bars['date'].nunique()} days "
          f"({bars['date'].min():%Y-%m-%d} to {bars['date'].max():%Y-%m-%d}), "
          f"{len(bars):,} adjusted bars; segments {SEGMENTS}; seeds {args.seeds}; "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    ours: dict[int, dict] = {}
    ql: dict[int, dict] = {}
    scores: dict[tuple[str, int], pd.Series] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bars.parquet"
        bars.to_parquet(path)
        for seed in args.seeds:
            out = Path(tmp) / f"ours{seed}.parquet"
            ours[seed] = child([sys.executable, __file__, "--child-ours", str(path), str(out),
                                str(seed)])  # fmt: skip
            scores["ours", seed] = pd.read_parquet(out)["score"]
            if run_qlib_too:
                out = Path(tmp) / f"qlib{seed}.parquet"
                ql[seed] = run_qlib(path, out, SEGMENTS, qlib_params({**PARAMS, "seed": seed}),
                                    args.kernels)  # fmt: skip
                scores["qlib", seed] = pd.read_parquet(out)["score"]
    if not run_qlib_too:
        print(f"  qlib: skipped ({'--skip-qlib' if args.skip_qlib else 'no ' + str(QLIB_PYTHON)})")

    label = forward_return(bars)
    common = scores["ours", args.seeds[0]].index
    for s in scores.values():
        common = common.intersection(s.index)
    common = common[np.isfinite(label.reindex(common).to_numpy())]
    figs = {key: ic_figures(s.reindex(common), label.reindex(common)) for key, s in scores.items()}
    sides = ["ours", "qlib"] if run_qlib_too else ["ours"]
    per_side = {side: _mean([figs[side, seed] for seed in args.seeds]) for side in sides}
    times = {"ours": [_ours_figures(ours[s]) for s in args.seeds]}
    if run_qlib_too:
        times["qlib"] = [_qlib_figures(ql[s]) for s in args.seeds]
    fastest = {side: _fastest(rows) for side, rows in times.items()}

    def spearman(a: tuple[str, int], b: tuple[str, int]) -> float:
        """Mean daily Spearman correlation of two score sets on the common rows."""
        return float(daily_corr(scores[a].reindex(common), scores[b].reindex(common), True).mean())

    agreement = {}
    if run_qlib_too:
        agreement["ours_qlib"] = float(
            np.mean([spearman(("ours", s), ("qlib", s)) for s in args.seeds])
        )
    if len(args.seeds) > 1:
        s0, s1 = args.seeds[:2]
        agreement.update(ours_two_seeds=spearman(("ours", s0), ("ours", s1)))
        if run_qlib_too:
            agreement.update(qlib_two_seeds=spearman(("qlib", s0), ("qlib", s1)))

    result: dict[str, object] = {
        "params_lightgbm": qlib_params(PARAMS), "segments": SEGMENTS, "seeds": args.seeds,
        "rows_scored_with_label": len(common), "figures_mean_over_seeds": per_side,
        "figures_by_seed": {f"{side}_{seed}": figs[side, seed] for side, seed in figs},
        "score_rank_corr": agreement, "seconds_fastest": fastest, "runs": times,
        "best_iteration": {"ours": [ours[s]["best_iteration"] for s in args.seeds]},
        "ours_warmup_seconds": ours[args.seeds[0]]["warmup_seconds"],
        "load_average_end": os.getloadavg(),
    }  # fmt: skip
    names = [("test IC", "ic"), ("test ICIR", "icir"), ("test rank IC", "rank_ic"),
             ("test rank ICIR", "rank_icir")]  # fmt: skip
    mean_of = f" (mean of {len(args.seeds)} seeds)" if len(args.seeds) > 1 else ""
    print(f"\n{'':34s} {'ours':>10s} {'qlib':>10s} {'ratio':>8s}")
    for name, key in names:
        print(f"{name + mean_of:34s} " + " ".join(f"{per_side[s][key]:10.4f}" for s in sides))
    for key, value in agreement.items():
        print(f"{'daily Spearman ' + key:34s} {value:10.4f}")
    if run_qlib_too:
        q0 = ql[args.seeds[0]]
        result["best_iteration"]["qlib"] = [ql[s]["best_iteration"] for s in args.seeds]
        keep = ("learn_processors", "infer_processors", "process_type", "label", "log", "qlib",
                "kernels")  # fmt: skip
        result["qlib"] = {k: q0[k] for k in keep}
        o, q = fastest["ours"], fastest["qlib"]
        result.update(before_fit_speedup=q["before_fit"] / o["before_fit"],
                      whole_speedup=q["whole"] / o["whole"])  # fmt: skip
        print(f"{'best iterations':34s} {str(result['best_iteration']['ours']):>10s} "
              f"{str(result['best_iteration']['qlib']):>10s}")  # fmt: skip
        for name, key in [("features (s) / Qlib loading", "features"),
                          ("processing (s)", "processing"),
                          ("before fit (s) (target >= 10x)", "before_fit"), ("fit (s)", "fit"),
                          ("fit CPU (s)", "fit_cpu"), ("fit per round (ms)", "fit_ms_per_round"),
                          ("predict (s)", "predict"),
                          ("whole run (s) (target > 1x)", "whole"),
                          ("peak RSS (MB)", "peak_rss_mb"),
                          ("RSS rise during the fit (MB)", "fit_rss_rise_mb")]:  # fmt: skip
            print(f"{name:34s} {o[key]:10.2f} {q[key]:10.2f} {q[key] / o[key]:7.1f}x")
        print(f"Qlib {q0['qlib']} (kernels={q0['kernels']}): learn processors "
              f"{q0['learn_processors']}, infer processors {q0['infer_processors']}, label "
              f"{q0['label']}; its fit also spent {q['fit_metric_logging']:.2f} s logging metrics "
              "to MLflow (left out above).")  # fmt: skip
    else:
        o = fastest["ours"]
        print(f"{'before fit (s)':34s} {o['before_fit']:10.2f}")
        print(f"{'whole run (s)':34s} {o['whole']:10.2f}")
    print(f"Timings: the fastest of {len(args.seeds)} run(s) per side; ours warm (numba kernels "
          f"loaded in {result['ours_warmup_seconds']:.2f} s before). Load average at the end "
          f"{os.getloadavg()[0]:.1f}.")  # fmt: skip
    save("csi300", result)


def rows750k(args: argparse.Namespace) -> None:
    """LightGBM's fit alone on 750,000 rows x 158 features, ours and Qlib's."""
    sys.path.insert(0, str(REPO))
    from bench_alpha158 import make_bars

    from quant_assets.factors import alpha158

    n_symbols, n_days = 750, 1000
    bars = make_bars(n_symbols, n_days + 2, seed=7)
    panel = alpha158(bars)
    label = forward_return(bars)
    z = label.groupby(level="date").transform(lambda s: (s - s.mean()) / s.std())
    panel["label"] = z.reindex(panel.index).to_numpy()
    days = panel.index.get_level_values("date").unique().sort_values()
    segments = {"train": [str(days[0].date()), str(days[n_days - 1].date())],
                "test": [str(days[n_days].date()), str(days[-1].date())]}  # fmt: skip
    params = {**qlib_params(PARAMS), "num_boost_round": args.rounds}
    rows = int(np.isfinite(panel["label"].to_numpy()).sum())
    print(f"LightGBM fit on {rows:,} rows x {panel.shape[1] - 1} features "
          f"({n_symbols} random-walk symbols x {n_days} days, our Alpha158), "
          f"{args.rounds} rounds, {PARAMS['num_threads']} threads")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "panel.parquet"
        panel.to_parquet(path)
        del panel, bars
        ours = child([sys.executable, __file__, "--child-fit", str(path), str(args.rounds)])
        result: dict[str, object] = {"rows": ours["rows"], "features": ours["features"],
                                     "rounds": args.rounds, "params_lightgbm": params,
                                     "ours": ours}  # fmt: skip
        ql = None
        if not args.skip_qlib and QLIB_PYTHON.exists():
            ql = run_qlib(path, Path(tmp) / "qlib.parquet", segments, params, args.kernels,
                          features=path)  # fmt: skip
            result["qlib"] = {k: v for k, v in ql.items() if k != "log"}
    o_rise = ours["fit_rss_peak_mb"] - ours["fit_rss_start_mb"]
    print(f"  ours: fit {ours['fit_seconds']:.1f} s ({ours['fit_cpu_seconds']:.1f} s CPU, "
          f"{ours['rounds']} rounds), RSS rise during the fit {o_rise:.0f} MB, process peak "
          f"{ours['peak_rss_mb']:.0f} MB")  # fmt: skip
    if ql is not None:
        q_fit = ql["fit_seconds"] - ql["fit_log_metrics_seconds"]
        q_rise = ql["fit_rss_peak_mb"] - ql["fit_rss_start_mb"]
        q_peak = max(ql["peak_rss_mb"], ql["peak_rss_children_mb"])
        print(f"  qlib: fit {q_fit:.1f} s ({ql['fit_cpu_seconds']:.1f} s CPU, {ql['rounds']} "
              f"rounds; +{ql['fit_log_metrics_seconds']:.1f} s MLflow metric logging), RSS rise "
              f"during the fit {q_rise:.0f} MB, process peak {q_peak:.0f} MB (its handler holds "
              "the panel)")  # fmt: skip
        print(f"  qlib/ours: fit time {q_fit / ours['fit_seconds']:.2f}x, CPU "
              f"{ql['fit_cpu_seconds'] / ours['fit_cpu_seconds']:.2f}x; fit RSS rise ours/qlib "
              f"{o_rise / q_rise:.2f}; load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    save("rows750k", result)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-qlib", action="store_true")
    parser.add_argument("--kernels", type=int, default=1, help="Qlib's worker processes")
    parser.add_argument("--rows750k", action="store_true", help="the 750,000-row fit instead")
    parser.add_argument("--rounds", type=int, default=100, help="boosting rounds of --rows750k")
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[0],
        help="LightGBM seeds: one run of each side per seed (timings: fastest)",
    )
    parser.add_argument("--child-ours", nargs=3, metavar=("BARS", "OUT", "SEED"))
    parser.add_argument("--child-fit", nargs=2, metavar=("PANEL", "ROUNDS"))
    args = parser.parse_args()
    if args.child_ours:
        child_ours(args.child_ours[0], args.child_ours[1], int(args.child_ours[2]))
    elif args.child_fit:
        child_fit(args.child_fit[0], int(args.child_fit[1]))
    elif args.rows750k:
        rows750k(args)
    else:
        csi300(args)


if __name__ == "__main__":
    main()
