"""Train/validation/test segments by date, purged so that no label reaches into the next one.

A label of day t is `Ref($close,-2)/Ref($close,-1)-1`: it is known only at the close of
t+2. So the last `horizon` (2) days of a segment have labels made of the next segment's
prices; they are dropped from the earlier segment (the purge), and a model fitted on train
has seen no price of the validation or test days.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd

LABEL_HORIZON = 2  # trading days after t that the default label reads


@dataclass(frozen=True)
class Segments:
    """Inclusive date ranges of the three segments (as given, before the purge)."""

    train: tuple[pd.Timestamp, pd.Timestamp]
    valid: tuple[pd.Timestamp, pd.Timestamp]
    test: tuple[pd.Timestamp, pd.Timestamp]

    @classmethod
    def from_dict(cls, segments: dict[str, tuple[object, object]]) -> Segments:
        """From `{"train": (start, end), "valid": ..., "test": ...}`; refuses overlaps."""
        missing = {"train", "valid", "test"} - set(segments)
        if missing:
            raise ValueError(f"segments need train, valid and test; missing {sorted(missing)}")
        pairs = {k: (pd.Timestamp(a), pd.Timestamp(b)) for k, (a, b) in segments.items()}
        seg = cls(pairs["train"], pairs["valid"], pairs["test"])
        for name, (a, b) in pairs.items():
            if a > b:
                raise ValueError(f"segment {name} starts after it ends: {a.date()} > {b.date()}")
        if not seg.train[1] < seg.valid[0] <= seg.valid[1] < seg.test[0]:
            raise ValueError("segments must be in the order train < valid < test without overlap")
        return seg

    def dates(self, calendar: pd.DatetimeIndex, name: str, horizon: int = LABEL_HORIZON):
        """The segment's days in `calendar`; train and valid lose their last `horizon` days
        (their labels read the next segment's prices), test keeps all."""
        start, end = getattr(self, name)
        days = calendar[(calendar >= start) & (calendar <= end)]
        return days[:-horizon] if name != "test" and horizon > 0 else days


def split_valid(
    valid_days: pd.DatetimeIndex, report_share: float, horizon: int = LABEL_HORIZON
) -> tuple[pd.DatetimeIndex, pd.DatetimeIndex]:
    """Validation days for early stopping (the earlier part) and for the reported validation
    figures (the later `report_share`), with a purge of `horizon` days between them, so a
    reported validation number is measured on days early stopping never saw."""
    if report_share <= 0:
        return valid_days, valid_days[:0]
    n_report = max(1, int(round(len(valid_days) * report_share)))
    stop = len(valid_days) - n_report - horizon
    if stop < 1:
        raise ValueError(f"validation of {len(valid_days)} days is too short to split")
    return valid_days[:stop], valid_days[-n_report:]


def default_segments(calendar: pd.DatetimeIndex, shares=(0.6, 0.2, 0.2)) -> Segments:
    """Train on the first 60 % of days, validate on the next 20 %, test on the rest."""
    n = len(calendar)
    a, b = int(n * shares[0]), int(n * (shares[0] + shares[1]))
    if a < 2 or b - a < 2 or n - b < 1:
        raise ValueError(f"{n} days are too few for train/valid/test segments")
    return Segments(
        (calendar[0], calendar[a - 1]), (calendar[a], calendar[b - 1]), (calendar[b], calendar[-1])
    )


def rolling_segments(
    calendar: pd.DatetimeIndex, train_days: int, valid_days: int, test_days: int
) -> Iterator[Segments]:
    """Walk-forward windows: train, valid, test of fixed lengths, moved by `test_days` until
    the calendar ends; each test segment follows its own validation and training window."""
    span = train_days + valid_days
    for start in range(0, len(calendar) - span - 1 + 1, test_days):
        test = calendar[start + span : start + span + test_days]
        if test.empty:
            return
        yield Segments(
            (calendar[start], calendar[start + train_days - 1]),
            (calendar[start + train_days], calendar[start + span - 1]),
            (test[0], test[-1]),
        )
