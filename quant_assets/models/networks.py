"""The sequence networks of the zoo and the one LightningModule that trains them.

Each network reads a batch of windows (batch, window, features), oldest day first, and returns
one score per window. The module minimises the mean squared error to the target; validation
predictions are kept on the module for the estimator to score (rank IC needs the dates).
"""

from __future__ import annotations

import math

import pytorch_lightning as pl
import torch
from torch import nn


class CNNNet(nn.Module):
    """Causal 1-D convolutions over time (dilation doubling per layer, so the last step sees
    2^layers days back), then the last step and the mean over time into a linear head.

    Causal padding keeps the last step's receptive field on the most recent days: a plain
    global pool would blur which days a pattern came from.
    """

    def __init__(
        self,
        n_features: int,
        hidden: int = 32,
        layers: int = 2,
        dropout: float = 0.0,
        kernel: int = 3,
    ):
        super().__init__()
        self.convs = nn.ModuleList()
        channels = n_features
        for i in range(layers):
            dilation = 2**i
            # padded on both sides, the first `time` outputs are the causal ones: output t
            # reads inputs t - (kernel - 1) * dilation .. t (cheaper than a separate pad)
            padding = (kernel - 1) * dilation
            self.convs.append(
                nn.Conv1d(channels, hidden, kernel, dilation=dilation, padding=padding)
            )
            channels = hidden
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(2 * hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time = x.shape[1]
        h = x.transpose(1, 2).contiguous()  # (batch, features, time)
        for conv in self.convs:
            h = self.dropout(torch.relu(conv(h)[:, :, :time]))
        pooled = torch.cat([h[:, :, -1], h.mean(dim=2)], dim=1)
        return self.head(pooled).squeeze(-1)


class LSTMNet(nn.Module):
    """An LSTM over the window; its last hidden state goes through a linear head."""

    def __init__(self, n_features: int, hidden: int = 32, layers: int = 2, dropout: float = 0.0):
        super().__init__()
        self.lstm = nn.LSTM(
            n_features,
            hidden,
            num_layers=layers,
            batch_first=True,
            dropout=dropout if layers > 1 else 0.0,
        )
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.lstm(x)
        return self.head(h[-1]).squeeze(-1)


def sinusoidal_encoding(length: int, dim: int) -> torch.Tensor:
    """The fixed sine/cosine position codes of "Attention is all you need", (length, dim)."""
    position = torch.arange(length, dtype=torch.float32)[:, None]
    rate = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    codes = torch.zeros(length, dim)
    codes[:, 0::2] = torch.sin(position * rate)
    codes[:, 1::2] = torch.cos(position * rate[: dim // 2])
    return codes


class TransformerNet(nn.Module):
    """A linear projection of each day, plus a position code, through a Transformer encoder;
    the last day's output (or the mean over days) goes through a linear head.

    Positions are counted from the window's end, so the most recent day always has the same
    code whatever the window length.
    """

    def __init__(
        self,
        n_features: int,
        window: int,
        hidden: int = 32,
        layers: int = 2,
        dropout: float = 0.0,
        heads: int = 2,
        positional: str = "learned",
        pooling: str = "last",
    ):
        super().__init__()
        if positional not in ("learned", "sinusoidal"):
            raise ValueError(f"positional must be 'learned' or 'sinusoidal', got {positional!r}")
        if pooling not in ("last", "mean"):
            raise ValueError(f"pooling must be 'last' or 'mean', got {pooling!r}")
        self.project = nn.Linear(n_features, hidden)
        if positional == "learned":
            self.position = nn.Parameter(0.02 * torch.randn(window, hidden))
        else:  # row i codes the i-th day before the window's last one, read from the end
            self.register_buffer("position", sinusoidal_encoding(window, hidden).flip(0))
        layer = nn.TransformerEncoderLayer(
            hidden, heads, dim_feedforward=2 * hidden, dropout=dropout, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.pooling = pooling
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoder(self.project(x) + self.position[-x.shape[1] :])
        pooled = h[:, -1] if self.pooling == "last" else h.mean(dim=1)
        return self.head(pooled).squeeze(-1)


class SequenceRegressor(pl.LightningModule):
    """Trains `net` by mean squared error with Adam; keeps the epoch's mean training loss and
    the validation predictions (in batch order) for the estimator's epoch callback."""

    def __init__(self, net: nn.Module, lr: float = 1e-3, weight_decay: float = 0.0):
        super().__init__()
        self.net = net
        self.lr = lr
        self.weight_decay = weight_decay
        self.valid_predictions: list[torch.Tensor] = []
        self._loss_sum = 0.0
        self._loss_rows = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int):
        x, y = batch
        loss = nn.functional.mse_loss(self(x), y)
        self._loss_sum += float(loss.detach()) * len(y)
        self._loss_rows += len(y)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self.valid_predictions.append(self(batch[0]).detach().cpu())

    def on_train_epoch_start(self) -> None:
        self._loss_sum, self._loss_rows = 0.0, 0

    def on_validation_epoch_start(self) -> None:
        self.valid_predictions = []

    def epoch_train_loss(self) -> float:
        """The mean squared error over the training rows of the epoch so far."""
        return self._loss_sum / max(self._loss_rows, 1)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
