"""Qlib's LightGBM on its Alpha158 handler, the reference of the walk-forward comparison.

    .venv-qlib/bin/python bench/qlib_lgbm.py BARS.parquet OUT.parquet \
        --segments '{"train": ["2021-01-01", "2022-12-31"], "valid": [...], "test": [...]}' \
        --params '{"learning_rate": 0.05, "num_boost_round": 1000, ...}' [--kernels 1]

Dumps the long bars table to Qlib's binary format (``dump_qlib_bin``, not timed), then runs
Qlib's own pipeline with no caches: the ``Alpha158`` handler over instruments "all" from the
train start to the test end (its default processors: learn ``DropnaLabel`` and
``CSZScoreNorm`` on the label, fitted on the train segment; no infer processors), a
``DatasetH`` with the segments, ``LGBModel(**params)`` fitted with its early stopping on the
valid segment, and its prediction of the test segment. ``--params`` holds LightGBM's own
parameter names plus ``num_boost_round`` and ``early_stopping_rounds`` (``LGBModel``'s).

``--features FEATURES.parquet`` skips the bars and Alpha158: the parquet (index (date,
symbol), float feature columns and a ``label`` column) goes to a ``DataHandlerLP`` through
Qlib's ``StaticDataLoader``, with the same learn processors, so only the fit is Qlib's.

Writes the test scores (index date, symbol; column ``score``) to OUT.parquet and prints one
JSON line: seconds of the handler (features and processing), of the fit (its CPU seconds,
and the part spent in Qlib's per-round MLflow metric logging) and of the prediction, the
peak RSS of the process and of its children, the RSS rise during the fit, the best
iteration, the processors and label Qlib applied and its timer log lines.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd

_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    """The current resident set size of this process, in MB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * _PAGE / 2**20


class RssPeak:
    """Samples this process's RSS every few milliseconds inside a ``with`` block; ``start_mb``
    and ``peak_mb`` then hold the RSS on entry and the highest RSS seen."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.start_mb = self.peak_mb = 0.0
        self._stop = threading.Event()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak_mb = max(self.peak_mb, rss_mb())

    def __enter__(self) -> RssPeak:
        self.start_mb = self.peak_mb = rss_mb()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, rss_mb())


class _Lines(logging.Handler):
    """Keeps the messages of a logger (Qlib's timer and data lines)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name}: {record.getMessage()}")


def _describe(processors: list) -> list[str]:
    """Class names and the field group of Qlib processor objects."""
    out = []
    for p in processors:
        group = getattr(p, "fields_group", None)
        out.append(p.__class__.__name__ + (f"(fields_group={group})" if group else ""))
    return out


def _static_handler(features_path: str, segments: dict):
    """A DataHandlerLP over a ready panel (StaticDataLoader), with Alpha158's learn processors."""
    from qlib.contrib.data.handler import _DEFAULT_LEARN_PROCESSORS, check_transform_proc
    from qlib.data.dataset.handler import DataHandlerLP

    panel = pd.read_parquet(features_path)
    panel.index = panel.index.set_names(["datetime", "instrument"])
    names = [c for c in panel.columns if c != "label"]
    panel.columns = pd.MultiIndex.from_tuples(
        [("label", "LABEL0") if c == "label" else ("feature", c) for c in panel.columns]
    )
    panel = panel[[("feature", c) for c in names] + [("label", "LABEL0")]]
    learn = check_transform_proc(
        _DEFAULT_LEARN_PROCESSORS, segments["train"][0], segments["train"][1]
    )
    return DataHandlerLP(
        start_time=segments["train"][0],
        end_time=segments["test"][1],
        data_loader={"class": "StaticDataLoader", "kwargs": {"config": panel}},
        infer_processors=[],
        learn_processors=learn,
        process_type=DataHandlerLP.PTYPE_A,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("bars", help="bars parquet (ignored with --features)")
    parser.add_argument("out")
    parser.add_argument("--segments", required=True)
    parser.add_argument("--params", required=True)
    parser.add_argument("--kernels", type=int, default=1)
    parser.add_argument("--features", help="a ready feature panel with a label column")
    args = parser.parse_args()
    segments = {k: tuple(v) for k, v in json.loads(args.segments).items()}
    params = json.loads(args.params)

    # Qlib's default tracking store (a folder); newer MLflow refuses it unless told.
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    import qlib
    from qlib.contrib.data.handler import Alpha158
    from qlib.contrib.model.gbdt import LGBModel
    from qlib.data.dataset import DatasetH
    from qlib.workflow import R

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "qlib_data"
        symbols: dict[str, str] = {}
        if args.features:
            root.mkdir()
        else:
            from qlib_alpha158 import dump_qlib_bin

            bars = pd.read_parquet(args.bars)
            symbols = {s.lower(): s for s in bars["symbol"].unique()}
            dump_qlib_bin(bars, root)
            del bars
        qlib.init(
            provider_uri=str(root),
            region="cn",
            expression_cache=None,
            dataset_cache=None,
            kernels=args.kernels,
            joblib_backend="multiprocessing",
            exp_manager={
                "class": "MLflowExpManager",
                "module_path": "qlib.workflow.expm",
                "kwargs": {"uri": f"file:{tmp}/mlruns", "default_exp_name": "bench"},
            },
        )
        captured = _Lines()
        for name in ("qlib.timer", "qlib.DataHandlerLP", "qlib.data"):
            logging.getLogger(name).addHandler(captured)

        t0 = time.perf_counter()
        if args.features:
            handler = _static_handler(args.features, segments)
            label = "label column of the panel"
        else:
            handler = Alpha158(
                instruments="all",
                start_time=segments["train"][0],
                end_time=segments["test"][1],
                fit_start_time=segments["train"][0],
                fit_end_time=segments["train"][1],
            )
            label = handler.get_label_config()[0][0]
        handler_seconds = time.perf_counter() - t0
        dataset = DatasetH(handler, segments=segments)

        logged = [0.0]
        log_metrics = R.log_metrics

        def timed_log_metrics(*a, **k):
            t = time.perf_counter()
            log_metrics(*a, **k)
            logged[0] += time.perf_counter() - t

        R.log_metrics = timed_log_metrics
        model = LGBModel(**params)
        evals: dict = {}
        t0, cpu0 = time.perf_counter(), time.process_time()
        with RssPeak() as fit_rss:
            model.fit(dataset, verbose_eval=100, evals_result=evals)
        fit_seconds, fit_cpu = time.perf_counter() - t0, time.process_time() - cpu0

        t0 = time.perf_counter()
        pred = model.predict(dataset, segment="test")
        predict_seconds = time.perf_counter() - t0
        learn_rows = len(dataset.prepare("train", col_set="label", data_key="learn"))
        n_features = dataset.prepare("test", col_set="feature", data_key="infer").shape[1]
        R.end_exp()  # while its folder exists

    scores = pred.rename("score").to_frame()
    scores.index = scores.index.set_names(["date", "symbol"])
    if symbols:
        level = scores.index.get_level_values("symbol")
        scores.index = pd.MultiIndex.from_arrays(
            [scores.index.get_level_values("date"), [symbols.get(s.lower(), s) for s in level]],
            names=["date", "symbol"],
        )
    scores.sort_index().to_parquet(args.out)
    usage = resource.getrusage
    print(
        json.dumps(
            {
                "handler_seconds": handler_seconds,
                "fit_seconds": fit_seconds,
                "fit_log_metrics_seconds": logged[0],
                "fit_cpu_seconds": fit_cpu,
                "predict_seconds": predict_seconds,
                "peak_rss_mb": usage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "peak_rss_children_mb": usage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
                "fit_rss_start_mb": fit_rss.start_mb,
                "fit_rss_peak_mb": fit_rss.peak_mb,
                "best_iteration": int(model.model.best_iteration),
                "rounds": len(evals["train"]["l2"]),
                "train_rows": learn_rows,
                "features": int(n_features),
                "test_rows": len(scores),
                "learn_processors": _describe(handler.learn_processors),
                "infer_processors": _describe(handler.infer_processors),
                "process_type": handler.process_type,
                "label": label,
                "lgb_params": model.params,
                "log": captured.lines,
                "qlib": qlib.__version__,
                "kernels": args.kernels,
            }
        ),
        file=sys.stdout,
    )


if __name__ == "__main__":
    main()
