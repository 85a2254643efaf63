"""One MLflow model for every family of the zoo: a fitted `ZooModel` with its feature
processing and feature list, logged as a pyfunc that scores a panel of (date, symbol) rows.

Scoring, serving and the registry then need no per-family code: `load_zoo_model(uri)` gives a
model whose `predict` takes the features plus `date` and `symbol` (as columns or as the
index) and returns `score`, with `probability` and `confidence` when the model provides them.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable, Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Protocol

import cloudpickle
import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.models.model import ModelInfo
from mlflow.types import ColSpec, DataType, Schema

INDEX = ["date", "symbol"]
SCORE = "score"
# Module roots whose objects a model may hold -> the distribution that loading it needs.
PACKAGES = {
    "torch": "torch",
    "lightgbm": "lightgbm",
    "xgboost": "xgboost",
    "catboost": "catboost",
    "pytorch_lightning": "pytorch-lightning",
    "lightning": "lightning",
    "scipy": "scipy",
}
# What every zoo model needs: the pyfunc machinery, the panel and ZooModel's BaseEstimator.
BASE_PACKAGES = ["mlflow", "cloudpickle", "numpy", "pandas", "scikit-learn"]
SCAN_DEPTH = 6  # attribute levels searched for the libraries a model holds objects of
SCAN_ITEMS = 200  # items of one container searched (a long list holds one kind of thing)


class _Quiet(logging.Filter):
    """Drops two lines MLflow logs at every pyfunc logged: the advice to log code instead of
    a pickled object (this module pickles on purpose) and the note that it checks the example."""

    LINES = ("Passing a Python object as `python_model`", "Validating input example against")

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.LINES)


logging.getLogger("mlflow.pyfunc").addFilter(_Quiet())


class Processing(Protocol):
    """Feature processing fitted with the model (e.g. winsorise, rank, standardise)."""

    def transform(self, X: pd.DataFrame) -> pd.DataFrame: ...


class ZooPyfunc(mlflow.pyfunc.PythonModel):
    """A fitted zoo model, its feature processing (or None) and its features, as a pyfunc.

    `predict` reads the features of a panel, applies the processing, and calls the model's
    `predict_frame` when it has one (ensembles: `score`, `probability`, `confidence`), else
    `predict` (`score`). Pickled with cloudpickle as pyfunc does; objects holding torch tensors
    go through `torch.save`, so that loading maps every tensor to the CPU.
    """

    def __init__(self, model: Any, features: list[str], processing: Processing | None = None):
        self.model = model
        self.features = list(features)
        self.processing = processing

    def __getstate__(self) -> dict[str, Any]:
        state = {"features": self.features}
        parts = (self.model, self.processing)
        if "torch" in _module_roots(parts):
            import torch

            buffer = io.BytesIO()
            torch.save(parts, buffer, pickle_module=cloudpickle)
            return state | {"torch_parts": buffer.getvalue()}
        return state | {"model": self.model, "processing": self.processing}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.features = state["features"]
        if "torch_parts" in state:
            import torch

            self.model, self.processing = torch.load(
                io.BytesIO(state["torch_parts"]), map_location="cpu", weights_only=False
            )
        else:
            self.model, self.processing = state["model"], state["processing"]

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        """Scores of the rows of `model_input`, in its row order and in its form: indexed by
        (date, symbol) when it was, else with `date` and `symbol` columns (and its index)."""
        indexed = list(model_input.index.names) == INDEX
        panel = model_input if indexed else model_input.set_index(INDEX)
        X = panel[self.features].astype(np.float64)
        if not X.index.is_unique:
            raise ValueError("the panel holds duplicate (date, symbol) rows")
        # the zoo reads panels sorted by date then symbol (sequence models need the order)
        ordered = X.sort_index() if not X.index.is_monotonic_increasing else X
        if self.processing is not None:
            ordered = self.processing.transform(ordered)
        if hasattr(self.model, "predict_frame"):
            out = pd.DataFrame(self.model.predict_frame(ordered))
        else:
            out = self.model.predict(ordered).rename(SCORE).to_frame()
        out = out.reindex(X.index)
        return out if indexed else out.reset_index().set_axis(model_input.index)


def _panel_example(example: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """The input example as columns (an index is not kept in a logged example)."""
    frame = example.reset_index() if list(example.index.names) == INDEX else example
    frame = frame[[*INDEX, *features]].reset_index(drop=True)
    return frame.astype({name: np.float64 for name in features})


def _signature(example: pd.DataFrame, output: pd.DataFrame, features: list[str]) -> ModelSignature:
    """Features required as doubles; `date` and `symbol` optional, as they may come as the
    index instead (MLflow's schema check keeps the index and drops nothing it declares)."""
    inputs = Schema(
        [ColSpec(DataType.datetime, "date", required=False)]
        + [ColSpec(DataType.string, "symbol", required=False)]
        + [ColSpec(DataType.double, name) for name in features]
    )
    outputs = mlflow.models.infer_signature(example, output).outputs
    return ModelSignature(inputs=inputs, outputs=outputs)


def _module_roots(obj: Any, depth: int = SCAN_DEPTH, seen: set[int] | None = None) -> set[str]:
    """The top-level modules of the classes (and their bases) of `obj` and of what it holds
    (attributes, container items), a few levels deep."""
    seen = set() if seen is None else seen
    if depth < 0 or id(obj) in seen or isinstance(obj, (str, bytes, int, float, np.ndarray)):
        return set()
    seen.add(id(obj))
    # the bases count: a network subclassing torch.nn.Module holds tensors
    roots = {cls.__module__.split(".")[0] for cls in type(obj).__mro__}
    children: Iterable[Any]
    if isinstance(obj, Mapping):
        children = obj.values()
    elif isinstance(obj, (list, tuple, set, frozenset)):
        children = obj
    else:
        children = getattr(obj, "__dict__", {}).values()
    for i, child in enumerate(children):
        if i >= SCAN_ITEMS:
            break
        roots |= _module_roots(child, depth - 1, seen)
    return roots


def requirements_of(*objects: Any) -> list[str]:
    """Pinned pip requirements for loading `objects` in a pyfunc: the base set plus the
    libraries (torch, lightgbm, ...) whose objects they hold, found by looking, not by
    MLflow's inference (which imports the model in a subprocess, seconds per log)."""
    roots = _module_roots(objects)
    names = BASE_PACKAGES + sorted({PACKAGES[r] for r in roots if r in PACKAGES})
    pinned = []
    for name in dict.fromkeys(names):
        try:
            # without a local label (2.13.0+cpu): PyPI has no such build, any 2.13.0 loads it
            pinned.append(f"{name}=={version(name).split('+')[0]}")
        except PackageNotFoundError:
            pinned.append(name)
    return pinned


def log_zoo_model(
    model: Any,
    *,
    name: str,
    features: list[str],
    processing: Processing | None = None,
    input_example: pd.DataFrame,
    params: Mapping[str, object] | None = None,
    metrics: Mapping[str, float] | None = None,
    registered_model_name: str | None = None,
) -> ModelInfo:
    """Log a fitted zoo model (with its processing) as a pyfunc named `name`, with its
    signature, input example and pinned requirements, in the active run (or a run of its own).

    `input_example` holds the features and (date, symbol), as columns or as the index; params
    go to the run, metrics to the run and the logged model.
    """
    wrapper = ZooPyfunc(model, features, processing)
    example = _panel_example(input_example, features)
    signature = _signature(example, wrapper.predict(None, example), features)
    own_run = mlflow.active_run() is None
    if own_run:
        mlflow.start_run(run_name=name)
    try:
        if params:
            mlflow.log_params(dict(params))
        info = mlflow.pyfunc.log_model(
            name=name,
            python_model=wrapper,
            signature=signature,
            input_example=example,
            pip_requirements=requirements_of(model, processing),
            registered_model_name=registered_model_name,
        )
        if metrics:
            mlflow.log_metrics({k: float(v) for k, v in metrics.items()}, model_id=info.model_id)
    except BaseException:
        if own_run:
            mlflow.end_run("FAILED")
        raise
    if own_run:
        mlflow.end_run()
    return info


def load_zoo_model(uri: str) -> mlflow.pyfunc.PyFuncModel:
    """The pyfunc logged by `log_zoo_model` at `uri` (`models:/...`, `runs:/...`, a path)."""
    return mlflow.pyfunc.load_model(uri)


def unwrap(pyfunc: mlflow.pyfunc.PyFuncModel) -> ZooPyfunc:
    """The `ZooPyfunc` inside a loaded pyfunc (its model, processing and features)."""
    return pyfunc.unwrap_python_model()


__all__ = [
    "ZooPyfunc",
    "load_zoo_model",
    "log_zoo_model",
    "requirements_of",
    "unwrap",
]
