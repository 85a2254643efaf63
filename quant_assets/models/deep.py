"""The network families of the zoo: a 1-D CNN, an LSTM and a Transformer over look-back windows.

Each reads, for a (date, symbol) row, the `window` trading rows of that symbol ending at that
date (`sequences.build_windows`), so `history_days` is `window - 1` and is a property of the
instance (it follows `window`, which the class attribute of `ZooModel` could not). Training
is PyTorch Lightning with the mean squared error; with a validation set, early stopping
watches the validation daily rank IC (or loss) and the best epoch's weights are kept.
"""

from __future__ import annotations

import copy
import logging
import math
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
from torch import nn

from quant_assets.factors.screening import rank_ic_table
from quant_assets.models.base import Validation, ZooModel, check_panel, target_rows
from quant_assets.models.networks import CNNNet, LSTMNet, SequenceRegressor, TransformerNet
from quant_assets.models.sequences import WindowDataset, Windows, build_windows, window_loader

log = logging.getLogger(__name__)

EpochCallback = Callable[[int, float], None]
PREDICT_BATCH = 4096
# Lightning's banners ("GPU available", tips) and hints that do not apply to in-memory batches.
_LIGHTNING_LOGGERS = ("pytorch_lightning", "lightning_fabric", "lightning")


def mean_rank_ic(score: np.ndarray, target: np.ndarray, index: pd.Index) -> float:
    """Mean over dates of the Spearman correlation between `score` and `target` within a date."""
    frame = pd.DataFrame({"score": score}, index=index)
    ic = rank_ic_table(frame, pd.Series(target, index=index), min_names=2)["score"]
    return float(ic.mean()) if ic.notna().any() else float("nan")


def predict_windows(
    net: nn.Module,
    windows: Windows,
    rows: np.ndarray,
    device: str = "cpu",
    column: tuple[int, np.ndarray] | None = None,
) -> np.ndarray:
    """The network's score for the panel rows `rows`; `column` = (feature, source rows) puts
    that feature's windows of other rows in place (for permutation importance)."""
    net.eval()
    values = torch.from_numpy(windows.values)
    out = np.empty(len(rows), dtype=np.float64)
    with torch.inference_mode():
        for start in range(0, len(rows), PREDICT_BATCH):
            at = rows[start : start + PREDICT_BATCH]
            x = values[torch.from_numpy(windows.index[at])]
            if column is not None:
                feature, source = column
                x[:, :, feature] = values[
                    torch.from_numpy(windows.index[source[start : start + PREDICT_BATCH]]), feature
                ]
            out[start : start + len(at)] = net(x.to(device)).double().cpu().numpy()
    return out


def resolve_device(device: str) -> str:
    """`"auto"` is the GPU when torch sees one, else the CPU; `"cpu"` and `"cuda"` are kept."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")
    return device


@contextmanager
def _threads(count: int | None) -> Iterator[None]:
    """Torch's intra-op threads set to `count` (None leaves them), restored on the way out."""
    previous = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextmanager
def _quiet_and_deterministic() -> Iterator[None]:
    """Lightning without its banners and hints, and torch's deterministic algorithms (warning
    instead of failing where an operation has none); both restored on the way out."""
    levels = {name: logging.getLogger(name).level for name in _LIGHTNING_LOGGERS}
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    cudnn = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    try:
        for name in _LIGHTNING_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=r"pytorch_lightning\.")
            warnings.filterwarnings("ignore", module=r"lightning_fabric\.")
            yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn


class _EpochTracker(pl.Callback):
    """After each epoch (Lightning validates before `on_train_epoch_end`): records the curves,
    keeps the best weights in memory, stops after `patience` epochs without improvement and
    calls the user's epoch callback, whose exceptions (Optuna's TrialPruned) propagate."""

    def __init__(
        self, model: SequenceModel, valid_target: np.ndarray | None, valid_index: pd.Index | None
    ):
        self.model = model
        self.valid_target = valid_target
        self.valid_index = valid_index
        self.curves: dict[str, list[float]] = {"train_loss": []}
        if valid_target is not None:
            self.curves.update(valid_loss=[], valid_rank_ic=[])
        self.best_epoch = 0
        self.best_score: float | None = None
        self.best_state: dict[str, torch.Tensor] | None = None

    def _improved(self, score: float) -> bool:
        if self.best_score is None or math.isnan(self.best_score):
            return True
        if math.isnan(score):
            return False
        return score > self.best_score if self.model.monitor == "ic" else score < self.best_score

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: SequenceRegressor) -> None:
        epoch = trainer.current_epoch + 1
        train_loss = pl_module.epoch_train_loss()
        self.curves["train_loss"].append(train_loss)
        line = f"{self.model.family} epoch {epoch}: train_loss {train_loss:.5f}"
        if self.valid_target is None:  # nothing to stop on: the last epoch is kept
            if self.model.progress:
                log.info(line)
            return
        pred = torch.cat(pl_module.valid_predictions).double().numpy()
        valid_loss = float(np.mean((pred - self.valid_target) ** 2))
        ic = mean_rank_ic(pred, self.valid_target, self.valid_index)
        self.curves["valid_loss"].append(valid_loss)
        self.curves["valid_rank_ic"].append(ic)
        score = ic if self.model.monitor == "ic" else valid_loss
        if self._improved(score):
            self.best_epoch, self.best_score = epoch, score
            self.best_state = copy.deepcopy(pl_module.net.state_dict())
        if self.model.progress:
            log.info(f"{line}, valid_loss {valid_loss:.5f}, valid_rank_ic {ic:.4f}")
        if self.model.epoch_callback is not None:
            self.model.epoch_callback(epoch, score)
        if epoch - self.best_epoch >= self.model.patience:
            trainer.should_stop = True


class SequenceModel(ZooModel):
    """Common fitting of the sequence networks; subclasses build the network (`_network`).

    Hyperparameters: `window` trading days per input; `hidden_size`, `num_layers`, `dropout`
    of the network; `lr`, `weight_decay` of Adam; `batch_size`; at most `max_epochs`, stopping
    after `patience` epochs without a better validation `monitor` ("ic": mean daily rank IC,
    higher is better; "loss": validation MSE). `importance_rows` caps the rows permutation
    importance reads (it costs features x rows forward passes; 0 skips it). `device` is "auto", "cpu" or "cuda"; `num_threads` sets
    torch's CPU threads (None: torch's default, all cores); `progress` logs a line per epoch;
    `epoch_callback(epoch, monitored value)` runs after each validation epoch.
    """

    family = ""

    def __init__(
        self,
        window: int = 20,
        hidden_size: int = 32,
        num_layers: int = 2,
        dropout: float = 0.0,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        batch_size: int = 512,
        max_epochs: int = 20,
        patience: int = 5,
        monitor: str = "ic",
        importance_rows: int = 5000,
        seed: int = 0,
        device: str = "auto",
        num_threads: int | None = None,
        progress: bool = False,
        epoch_callback: EpochCallback | None = None,
    ) -> None:
        self.window = window
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.dropout = dropout
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.monitor = monitor
        self.importance_rows = importance_rows
        self.seed = seed
        self.device = device
        self.num_threads = num_threads
        self.progress = progress
        self.epoch_callback = epoch_callback

    @property
    def history_days(self) -> int:  # type: ignore[override]
        """Earlier trading days a row's window reads: the window length minus one."""
        return self.window - 1

    def _network(self, n_features: int) -> nn.Module:
        raise NotImplementedError

    def fit(self, X: pd.DataFrame, y: pd.Series, valid: Validation | None = None) -> SequenceModel:
        """Train on the rows of `X` with a finite `y` (the others are window context only),
        early-stopping on `valid` when given, and keep the best epoch's network."""
        if self.monitor not in ("ic", "loss"):
            raise ValueError(f"monitor must be 'ic' or 'loss', got {self.monitor!r}")
        check_panel(X, y)
        device = resolve_device(self.device)
        windows = build_windows(X, self.window)
        rows = np.flatnonzero(target_rows(y))
        if len(rows) == 0:
            raise ValueError("no row with a finite target to fit on")
        train = WindowDataset(windows, rows, y.to_numpy(np.float32)[rows])
        val_loader, valid_target, valid_index = None, None, None
        if valid is not None:
            check_panel(*valid)
            if not target_rows(valid[1]).any():
                valid = None  # nothing to validate on: fit as without a validation set
        if valid is not None:
            valid_windows = build_windows(valid[0], self.window)
            valid_rows = np.flatnonzero(target_rows(valid[1]))
            valid_target = valid[1].to_numpy(np.float64)[valid_rows]
            valid_index = valid[0].index[valid_rows]
            val_loader = window_loader(
                WindowDataset(valid_windows, valid_rows, valid_target), PREDICT_BATCH
            )
        with _quiet_and_deterministic(), _threads(self.num_threads):
            pl.seed_everything(self.seed, verbose=False)
            module = SequenceRegressor(self._network(X.shape[1]), self.lr, self.weight_decay)
            tracker = _EpochTracker(self, valid_target, valid_index)
            trainer = pl.Trainer(
                accelerator="gpu" if device == "cuda" else "cpu",
                devices=1,
                max_epochs=self.max_epochs,
                logger=False,
                enable_checkpointing=False,
                enable_progress_bar=False,
                enable_model_summary=False,
                num_sanity_val_steps=0,
                callbacks=[tracker],
            )
            trainer.fit(
                module,
                window_loader(train, self.batch_size, shuffle=True, seed=self.seed),
                val_loader,
            )
        net = module.net.cpu()
        if valid is not None and tracker.best_state is not None:
            net.load_state_dict(tracker.best_state)
            self.best_iteration_ = tracker.best_epoch
        else:
            self.best_iteration_ = len(tracker.curves["train_loss"])
        net.eval()
        self.network_ = net
        self.n_features_in_ = X.shape[1]
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.curves_ = tracker.curves
        with _threads(self.num_threads):
            if valid is not None:
                self.feature_importance_ = self._permutation_importance(
                    valid_windows, valid_rows, valid_target, valid_index, X.columns
                )
            else:
                self.feature_importance_ = self._permutation_importance(
                    windows, rows, y.to_numpy(np.float64)[rows], X.index[rows], X.columns
                )
        return self

    def _permutation_importance(
        self,
        windows: Windows,
        rows: np.ndarray,
        target: np.ndarray,
        index: pd.Index,
        columns: pd.Index,
    ) -> pd.Series:
        """Drop of the mean daily rank IC when one feature's whole window is swapped between
        rows at random (the other features and the target left in place), on at most
        `importance_rows` rows; NaN for every feature when `importance_rows` is 0."""
        importance = pd.Series(np.nan, index=columns, name="rank_ic_drop")
        if self.importance_rows <= 0:
            return importance
        rng = np.random.default_rng(self.seed)
        if len(rows) > self.importance_rows:
            keep = np.sort(rng.choice(len(rows), self.importance_rows, replace=False))
            rows, target, index = rows[keep], target[keep], index[keep]
        source = rows[rng.permutation(len(rows))]
        scores = {"base": predict_windows(self.network_, windows, rows)}
        for j in range(len(columns)):
            scores[j] = predict_windows(self.network_, windows, rows, column=(j, source))
        ic = rank_ic_table(pd.DataFrame(scores, index=index), pd.Series(target, index=index), 2)
        mean = ic.mean()
        importance[:] = (mean["base"] - mean.drop("base")).to_numpy()
        return importance

    def predict(self, X: pd.DataFrame) -> pd.Series:
        """A score for every row of `X`, each from its window within `X` (so `X` should hold
        `history_days` earlier days than the first row that matters)."""
        check_panel(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"expected {self.n_features_in_} features, got {X.shape[1]}")
        device = resolve_device(self.device)
        net = self.network_ if device == "cpu" else copy.deepcopy(self.network_).to(device)
        windows = build_windows(X, self.window)
        with _threads(self.num_threads):
            values = predict_windows(net, windows, np.arange(len(X)), device)
        return pd.Series(values, index=X.index, name="score")


class CNNModel(SequenceModel):
    """Causal dilated 1-D convolutions over the window (`kernel_size` days per layer)."""

    family = "cnn"

    def __init__(
        self,
        window: int = 20,
        hidden_size: int = 32,
        num_layers: int = 2,
        dropout: float = 0.0,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        batch_size: int = 512,
        max_epochs: int = 20,
        patience: int = 5,
        monitor: str = "ic",
        importance_rows: int = 5000,
        seed: int = 0,
        device: str = "auto",
        num_threads: int | None = None,
        progress: bool = False,
        epoch_callback: EpochCallback | None = None,
        kernel_size: int = 3,
    ) -> None:
        super().__init__(
            window, hidden_size, num_layers, dropout, lr, weight_decay, batch_size, max_epochs,
            patience, monitor, importance_rows, seed, device, num_threads, progress, epoch_callback,
        )  # fmt: skip
        self.kernel_size = kernel_size

    def _network(self, n_features: int) -> nn.Module:
        return CNNNet(n_features, self.hidden_size, self.num_layers, self.dropout, self.kernel_size)


class LSTMModel(SequenceModel):
    """An LSTM over the window; its last hidden state is scored by a linear head."""

    family = "lstm"

    def _network(self, n_features: int) -> nn.Module:
        return LSTMNet(n_features, self.hidden_size, self.num_layers, self.dropout)


class TransformerModel(SequenceModel):
    """A Transformer encoder over the window: `heads` attention heads, `positional` codes
    ("learned" or "sinusoidal"), the last day's or the mean output (`pooling`) scored."""

    family = "transformer"

    def __init__(
        self,
        window: int = 20,
        hidden_size: int = 32,
        num_layers: int = 2,
        dropout: float = 0.0,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        batch_size: int = 512,
        max_epochs: int = 20,
        patience: int = 5,
        monitor: str = "ic",
        importance_rows: int = 5000,
        seed: int = 0,
        device: str = "auto",
        num_threads: int | None = None,
        progress: bool = False,
        epoch_callback: EpochCallback | None = None,
        heads: int = 2,
        positional: str = "learned",
        pooling: str = "last",
    ) -> None:
        super().__init__(
            window, hidden_size, num_layers, dropout, lr, weight_decay, batch_size, max_epochs,
            patience, monitor, importance_rows, seed, device, num_threads, progress, epoch_callback,
        )  # fmt: skip
        self.heads = heads
        self.positional = positional
        self.pooling = pooling

    def _network(self, n_features: int) -> nn.Module:
        return TransformerNet(
            n_features,
            self.window,
            self.hidden_size,
            self.num_layers,
            self.dropout,
            self.heads,
            self.positional,
            self.pooling,
        )
