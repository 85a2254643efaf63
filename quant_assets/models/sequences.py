"""Look-back windows of a panel for the sequence networks, without copying the panel per day.

The panel is stored once, as one contiguous float32 array of its rows sorted by (symbol,
date) with one all-zero row appended; a row's window is a row of int32 indices into it (the
row itself last, the same symbol's earlier rows before it). A batch is one gather,
`values[index[batch]]`, of shape (batch, window, features): memory is the panel once plus
`window` int32 indices per row, whatever the number of days.

A symbol's previous rows are its previous *trading* rows: a suspended day has no row, so a
window spans `window` days the stock traded, not `window` calendar sessions. This keeps every
step of a window a real observation; the days before a symbol's first row are padded with the
zero row (the median of robust-z-scored features).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler


@dataclass(frozen=True)
class Windows:
    """A panel's rows once (`values`, sorted by symbol then date, plus the zero row last) and
    the window of each row of the panel in the panel's own order (`index`, oldest day first)."""

    values: np.ndarray  # (rows + 1, features) float32
    index: np.ndarray  # (rows, window) int32 into `values`

    @property
    def pad_row(self) -> int:
        """The index of the all-zero row that pads a window before a symbol's first day."""
        return len(self.values) - 1

    def gather(self, rows: np.ndarray) -> np.ndarray:
        """The windows of panel rows `rows`, shape (len(rows), window, features)."""
        return self.values[self.index[rows]]


def build_windows(X: pd.DataFrame, window: int) -> Windows:
    """The windows of length `window` of every row of `X` (indexed by (date, symbol)); NaN and
    infinite features become 0, the value the callers' robust z-score fills them with."""
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    n = len(X)
    symbols = pd.factorize(X.index.get_level_values("symbol"))[0]
    dates = pd.factorize(X.index.get_level_values("date"), sort=True)[0]
    order = np.lexsort((dates, symbols))  # panel rows in (symbol, date) order
    values = np.zeros((n + 1, X.shape[1]), dtype=np.float32)
    np.take(X.to_numpy(dtype=np.float32), order, axis=0, out=values[:n])
    np.nan_to_num(values, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    # position of each sorted row's symbol's first row
    sorted_symbols = symbols[order]
    new_symbol = np.ones(n, dtype=bool)
    new_symbol[1:] = sorted_symbols[1:] != sorted_symbols[:-1]
    first = np.maximum.accumulate(np.where(new_symbol, np.arange(n), 0))
    position = np.arange(n)
    back = np.arange(window - 1, -1, -1)  # offsets of the window's days, oldest first
    source = position[:, None] - back[None, :]
    by_sorted = np.where(source >= first[:, None], source, n).astype(np.int32)
    index = np.empty_like(by_sorted)
    index[order] = by_sorted
    return Windows(values=values, index=index)


class WindowDataset(Dataset):
    """Panel rows `rows` of `windows` with their targets; indexed by a *list* of rows, it
    returns the whole batch in one gather (used with `batch_size=None` and a batch sampler)."""

    def __init__(self, windows: Windows, rows: np.ndarray, target: np.ndarray):
        self.values = torch.from_numpy(windows.values)  # shared with `windows`, not copied
        self.index = torch.from_numpy(windows.index[rows])
        self.target = torch.as_tensor(target, dtype=torch.float32)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, batch: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        at = torch.as_tensor(batch, dtype=torch.long)
        return self.values[self.index[at]], self.target[at]


def window_loader(
    dataset: WindowDataset, batch_size: int, shuffle: bool = False, seed: int = 0
) -> DataLoader:
    """Batches of `dataset` in the main process; shuffled by a generator of its own, so the
    order depends on `seed` alone."""
    if shuffle:
        generator = torch.Generator().manual_seed(seed)
        sampler = RandomSampler(range(len(dataset)), generator=generator)
    else:
        sampler = SequentialSampler(range(len(dataset)))
    return DataLoader(
        dataset, sampler=BatchSampler(sampler, batch_size, drop_last=False), batch_size=None
    )
