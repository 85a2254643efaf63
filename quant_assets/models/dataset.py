"""One dataset for every model: features, labels, deduplication and segment frames, free of
look-ahead.

The label of day t is Qlib's `Ref($close,-2)/Ref($close,-1)-1` on each stock's trading
calendar (a day the stock did not trade is a gap, as in Qlib's binary data), so it is known
at the close of t+2. Processing statistics (feature scaling, factor correlations, factor
strength) come from the training rows only; the per-date label transforms use one date's
cross-section and cannot leak across dates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from quant_assets.factors.screening import rank_ic_table
from quant_assets.models.processing import LABEL_NORMS
from quant_assets.models.segments import LABEL_HORIZON, Segments, split_valid

BAR_COLUMNS = ("date", "symbol", "open", "high", "low", "close", "volume", "vwap")


def forward_label(bars: pd.DataFrame) -> pd.Series:
    """`Ref($close,-2)/Ref($close,-1)-1` indexed by (date, symbol) for every bar, on the
    union calendar of `bars` (a missing bar of the next two days leaves the label NaN)."""
    close = bars.pivot(index="date", columns="symbol", values="close").sort_index()
    label = close.shift(-2) / close.shift(-1) - 1
    long = label.stack(future_stack=True).rename("label")
    long.index = long.index.set_names(["date", "symbol"])
    index = pd.MultiIndex.from_frame(bars[["date", "symbol"]].drop_duplicates())
    return long.reindex(index).sort_index()


def top_quintile(label: pd.Series, share: float = 0.2) -> pd.Series:
    """1.0 where the label is in its date's top `share`, 0.0 elsewhere, NaN without label:
    the classification label behind the models' probability output."""
    pct = label.groupby(level="date").rank(pct=True, ascending=True)
    return (pct > 1 - share).astype(float).where(label.notna())


def deduplicate(
    X: pd.DataFrame, y: pd.Series, limit: float = 0.95, max_rows: int = 200_000, seed: int = 0
) -> tuple[list[str], pd.DataFrame]:
    """Of two factors whose values correlate above `limit` on these (training) rows, keep the
    stronger (higher |mean daily rank IC| with `y`). Correlation is Spearman-like: Pearson of
    per-date ranks pooled over up to `max_rows` sampled rows. Returns the kept columns in
    their original order and a table of the dropped ones (factor, kept_instead, corr,
    |IC| of each), so the choice is recorded rather than silent."""
    strength = rank_ic_table(X, y, min_names=2).mean().abs().fillna(0.0)
    rows = np.arange(len(X))
    if len(rows) > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(rows, max_rows, replace=False))
    ranked = X.iloc[rows].groupby(level="date").rank(pct=True)
    values = ranked.to_numpy(np.float64)
    values = values - np.nanmean(values, axis=0)
    values = np.nan_to_num(values / (np.nanstd(values, axis=0) + 1e-12))
    corr = values.T @ values / len(values)
    order = np.argsort(-strength.to_numpy(), kind="stable")
    kept: list[int] = []
    dropped = []
    for j in order:
        clash = [k for k in kept if abs(corr[j, k]) > limit]
        if clash:
            k = max(clash, key=lambda k: abs(corr[j, k]))
            dropped.append(
                (X.columns[j], X.columns[k], float(corr[j, k]), strength.iloc[j], strength.iloc[k])
            )
        else:
            kept.append(j)
    kept_set = set(kept)
    columns = [c for i, c in enumerate(X.columns) if i in kept_set]
    table = pd.DataFrame(
        dropped, columns=["factor", "kept_instead", "corr", "abs_ic", "abs_ic_kept"]
    )
    return columns, table


@dataclass
class SegmentFrames:
    """Features and targets of one walk-forward window, ready for `ZooModel.fit`.

    `train`, `valid` (early stopping), `report` (the validation figures, days early stopping
    did not see) and `test` are (X, target) pairs; X includes `history` earlier days with a
    NaN target when a sequence model needs them. `raw_label` holds the untransformed label of
    every row for scoring. Targets of train/valid/report are per-date normalised labels;
    the test target is the raw label (for evaluation only, never for fitting)."""

    train: tuple[pd.DataFrame, pd.Series]
    valid: tuple[pd.DataFrame, pd.Series]
    report: tuple[pd.DataFrame, pd.Series]
    test: tuple[pd.DataFrame, pd.Series]
    raw_label: pd.Series
    days: dict[str, pd.DatetimeIndex] = field(default_factory=dict)


def segment_frames(
    features: pd.DataFrame,
    label: pd.Series,
    segments: Segments,
    *,
    label_norm: str = "zscore",
    history: int = 0,
    report_share: float = 0.5,
    purge_valid: bool = True,
) -> SegmentFrames:
    """Cut the panel into purged segments (see `segments`), drop training rows without a
    label (Qlib's DropnaLabel) and normalise the label per date (Qlib's CSZScoreNorm for
    trees, CSRankNorm for networks). `history` earlier days are prepended to each segment
    as context rows with a NaN target. `purge_valid` False keeps validation's last days:
    right when the test segment is the day the labels are known on (the daily retraining),
    whose model may read every label known by then."""
    calendar = features.index.get_level_values("date").unique().sort_values()
    train_days = segments.dates(calendar, "train")
    valid_all = segments.dates(calendar, "valid", horizon=LABEL_HORIZON if purge_valid else 0)
    valid_days, report_days = split_valid(valid_all, report_share)
    test_days = segments.dates(calendar, "test")
    norm = LABEL_NORMS[label_norm]
    label = label.reindex(features.index)
    dates = features.index.get_level_values("date")

    def cut(days: pd.DatetimeIndex, fitted: bool) -> tuple[pd.DataFrame, pd.Series]:
        first = calendar.get_loc(days[0]) if len(days) else 0
        start = calendar[max(0, first - history)] if len(days) else None
        rows = (dates >= start) & (dates <= days[-1]) if len(days) else np.zeros(len(dates), bool)
        X, raw = features[rows], label[rows]
        own = X.index.get_level_values("date") >= days[0] if len(days) else np.zeros(0, bool)
        if fitted:
            if not history:  # DropnaLabel: no context rows to keep
                keep = raw.notna().to_numpy()
                X, raw, own = X[keep], raw[keep], own[keep]
            target = norm(raw.where(own))
        else:
            target = raw.where(own)
        return X, target.rename("target")

    report = cut(report_days, True) if len(report_days) else cut(valid_days, True)
    return SegmentFrames(
        train=cut(train_days, True),
        valid=cut(valid_days, True),
        report=report,
        test=cut(test_days, False),
        raw_label=label,
        days={"train": train_days, "valid": valid_days, "report": report_days, "test": test_days},
    )
