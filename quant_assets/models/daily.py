"""The daily retraining window: the segments a model of day D learns from, and the figures
its promotion is decided on (pure logic under the model assets).

On day D the labels known are those of days up to D-2 (a label reads the two next closes).
The latest `valid_days` labelled days are the validation segment (its first part for early
stopping, the rest for the reported figures and the champion/challenger comparison), the
`train_days` before them the training segment, purged of the two days whose labels read
validation prices. D itself is the test day: scored by predictions, never learned from.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from quant_assets.models.base import ZooModel
from quant_assets.models.dataset import SegmentFrames
from quant_assets.models.metrics import daily_rank_ic
from quant_assets.models.segments import LABEL_HORIZON, Segments


def labelled_days_needed(min_train_days: int, valid_days: int) -> int:
    """Labelled days a first model needs: its training days, the two purged, validation."""
    return min_train_days + LABEL_HORIZON + valid_days


def daily_segments(
    labelled: pd.DatetimeIndex, day: pd.Timestamp, train_days: int, valid_days: int
) -> Segments:
    """Segments of day `day` over its labelled days (all before `day`): the last
    `valid_days` validate, up to `train_days` before them (plus the purged two) train."""
    labelled = labelled[labelled < day].sort_values()
    needed = valid_days + LABEL_HORIZON + 2
    if len(labelled) < needed:
        raise ValueError(f"{len(labelled)} labelled days before {day.date()}; need {needed}")
    valid = labelled[-valid_days:]
    train = labelled[:-valid_days][-(train_days + LABEL_HORIZON) :]
    return Segments((train[0], train[-1]), (valid[0], valid[-1]), (day, day))


def report_score(panel: pd.DataFrame, label: pd.Series, model: ZooModel | None) -> float:
    """Mean daily rank IC of `model` on `panel`'s rows against `label` (the report days of a
    window): the one number champion and challenger are compared on. NaN when the model
    cannot score these rows (a feature it needs is missing)."""
    if model is None:
        return float("nan")
    features = list(getattr(model, "feature_names_in_", panel.columns))
    if not set(features) <= set(panel.columns):
        return float("nan")
    scores = model.predict(panel[features])
    return float(np.nanmean(daily_rank_ic(scores, label.reindex(scores.index)).to_numpy()))


def report_rows(frames: SegmentFrames, panel: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """Every factor of `panel` on the report days (with a sequence model's look-back days)
    and the raw label of the report days: what a champion trained on another day's active
    set needs to be scored on the same rows as the challenger."""
    X, target = frames.report
    rows = panel.reindex(X.index)
    label = frames.raw_label.reindex(X.index).where(target.notna())
    return rows, label
