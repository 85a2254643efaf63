"""Evidence about candidate formulas, segment by segment: daily rank IC against the label,
its mean, ICIR and a Newey-West t-test, the factor's rank turnover, and how its values
correlate with the factors already in use.

A `Scorer` is built on the bars known at the end of validation only: the test segment is not
in the table it evaluates, so no number it gives can depend on a test-segment price.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from quant_assets.factors.engine import KEY_COLUMNS, evaluate_many
from quant_assets.factors.screening import rank_ic_table
from quant_assets.models.dataset import forward_label
from quant_assets.models.segments import LABEL_HORIZON, Segments

# Daily ICs of a persistent factor are autocorrelated (its ranks change slowly and labels of
# neighbouring days share prices), so the t-test uses Newey-West errors over this many lags.
HAC_LAGS = 5
STAT_COLUMNS = ["ic", "icir", "t_stat", "p_value", "n_days"]


def newey_west_t(x: np.ndarray, lags: int = HAC_LAGS) -> float:
    """The t-statistic of the mean of `x` (NaNs dropped) with Newey-West (Bartlett) errors."""
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    n = len(x)
    if n < 3:
        return float("nan")
    d = x - x.mean()
    var = d @ d / n
    for lag in range(1, min(lags, n - 1) + 1):
        var += 2 * (1 - lag / (lags + 1)) * (d[lag:] @ d[:-lag]) / n
    if var <= 0:
        return float("nan")
    return float(x.mean() / np.sqrt(var / n))


def ic_stats(daily: pd.DataFrame) -> pd.DataFrame:
    """Per column of daily ICs: mean `ic`, `icir` (mean / std), the Newey-West `t_stat`, its
    two-sided `p_value` and the number of days with an IC."""
    rows = {}
    for name, col in daily.items():
        x = col.dropna().to_numpy(np.float64)
        std = x.std(ddof=1) if len(x) > 1 else np.nan
        t = newey_west_t(x)
        rows[name] = {
            "ic": x.mean() if len(x) else np.nan,
            "icir": x.mean() / std if std and np.isfinite(std) and std > 0 else np.nan,
            "t_stat": t,
            "p_value": 2 * stats.norm.sf(abs(t)) if np.isfinite(t) else np.nan,
            "n_days": len(x),
        }
    return pd.DataFrame.from_dict(rows, orient="index", columns=STAT_COLUMNS)


def field_columns(bars: pd.DataFrame) -> list[str]:
    """The numeric columns of `bars` a formula may read (the keys and flags excluded)."""
    return [
        c
        for c in bars.columns
        if c not in KEY_COLUMNS
        and pd.api.types.is_numeric_dtype(bars[c])
        and not pd.api.types.is_bool_dtype(bars[c])
    ]


@dataclass(frozen=True)
class SegmentDays:
    """The labelled days of each segment: train and valid purged of the days whose labels
    read the next segment's prices (`Segments.dates`)."""

    train: pd.DatetimeIndex
    valid: pd.DatetimeIndex
    test: pd.DatetimeIndex

    @classmethod
    def of(cls, calendar: pd.DatetimeIndex, segments: Segments) -> SegmentDays:
        return cls(*(segments.dates(calendar, name) for name in ("train", "valid", "test")))


class Scorer:
    """Formulas evaluated on `bars` (long, adjusted, ending where `segments`' validation ends),
    scored on the train and valid days; `reference` formulas (the factors in use) are
    evaluated once, and `add_reference` adds an admitted one."""

    def __init__(
        self,
        bars: pd.DataFrame,
        segments: Segments,
        reference: dict[str, str],
        min_names: int = 10,
    ) -> None:
        if pd.Timestamp(bars["date"].max()) > segments.valid[1]:
            raise ValueError("the scorer reads bars up to the end of validation only")
        self.bars = bars.sort_values(["date", "symbol"], kind="stable").reset_index(drop=True)
        self.fields = field_columns(self.bars)
        calendar = pd.DatetimeIndex(self.bars["date"].unique()).sort_values()
        self.days = SegmentDays.of(calendar, segments)
        if len(self.days.train) < 20 or len(self.days.valid) < 20:
            raise ValueError(
                f"segments leave {len(self.days.train)} train and {len(self.days.valid)} valid "
                "days; at least 20 of each are needed"
            )
        self.min_names = min_names
        self.label = forward_label(self.bars)
        self.reference = pd.DataFrame(index=self._train_index(self.label.index))
        dates = self.reference.index.get_level_values("date")
        self._starts = np.flatnonzero(np.r_[True, dates[1:] != dates[:-1], True])
        self._ref_z = np.empty((len(self.reference), 0))
        for name, formula in reference.items():
            self.add_reference(name, self.values([formula])[formula])

    def _rows(self, index: pd.Index, days: pd.DatetimeIndex) -> np.ndarray:
        return np.asarray(index.get_level_values("date").isin(days))

    def _train_index(self, index: pd.Index) -> pd.Index:
        return index[self._rows(index, self.days.train)]

    def values(self, formulas: list[str]) -> pd.DataFrame:
        """Values of checked formulas on every known (date, symbol) row, one column each."""
        if not formulas:
            return pd.DataFrame(index=self.label.index)
        frame = evaluate_many(list(formulas), self.bars, names=list(formulas))
        return frame.replace([np.inf, -np.inf], np.nan)

    def daily_ic(self, values: pd.DataFrame, segment: str) -> pd.DataFrame:
        """Daily rank IC of each column on the segment's labelled days ("train" or "valid")."""
        days = getattr(self.days, segment)
        part = values[self._rows(values.index, days)]
        return rank_ic_table(part, self.label, min_names=self.min_names)

    def segment_stats(self, values: pd.DataFrame, segment: str) -> pd.DataFrame:
        return ic_stats(self.daily_ic(values, segment))

    def _z(self, values: pd.DataFrame) -> np.ndarray:
        """Each column's ranks within each train date, standardised to mean 0 and unit sum of
        squares (0 where missing): the mean over dates of z_a . z_b is then the mean daily
        rank correlation of a and b (pairwise complete when neither misses a value)."""
        part = values.reindex(self.reference.index)
        ranks = part.groupby(level="date").rank()
        by = ranks.groupby(level="date")
        centred = ranks - by.transform("mean")
        norm = np.sqrt((centred**2).groupby(level="date").transform("sum"))
        return (centred / norm).replace([np.inf, -np.inf], np.nan).fillna(0.0).to_numpy()

    def _date_means(self, products: np.ndarray) -> np.ndarray:
        """Per column, the mean over train dates of the per-date sums of `products`."""
        sums = np.add.reduceat(products, self._starts[:-1], axis=0)
        return sums.mean(axis=0)

    def correlations(self, values: pd.DataFrame, among: list[str] | None = None) -> pd.DataFrame:
        """Mean daily rank correlation on the train days of each column (rows) with each
        reference factor (columns; only those named in `among` when given): the comparison
        of values, not strings."""
        names = list(self.reference.columns) if among is None else list(among)
        out = pd.DataFrame(index=values.columns, columns=names, dtype=np.float64)
        if not names or values.shape[1] == 0:
            return out
        z = self._z(values)
        for name in names:
            ref = self._ref_z[:, self.reference.columns.get_loc(name)][:, None]
            out[name] = self._date_means(z * ref)
        return out

    def pairwise(self, values: pd.DataFrame) -> pd.DataFrame:
        """Mean daily rank correlation on the train days of every pair of columns."""
        z = self._z(values)
        out = np.column_stack([self._date_means(z * z[:, [i]]) for i in range(z.shape[1])])
        return pd.DataFrame(out, index=values.columns, columns=values.columns)

    def add_reference(self, name: str, values: pd.Series) -> None:
        self.reference[name] = values.reindex(self.reference.index).to_numpy()
        self._ref_z = np.column_stack([self._ref_z, self._z(self.reference[[name]])])

    def turnover(self, values: pd.DataFrame) -> pd.Series:
        """1 - the mean day-to-day rank correlation of each factor over the train days: 0 for a
        factor whose ranking never changes, about 1 for one redrawn every day."""
        part = values[self._rows(values.index, self.days.train)]
        out = {}
        for name, col in part.items():
            wide = col.unstack("symbol").rank(axis=1)
            autocorr = wide.T.corrwith(wide.shift(1).T).mean()
            out[name] = 1.0 - float(autocorr) if np.isfinite(autocorr) else np.nan
        return pd.Series(out, name="turnover").reindex(values.columns)


def test_stats(
    bars: pd.DataFrame, segments: Segments, formulas: dict[str, str], min_names: int = 10
) -> pd.DataFrame:
    """The test-segment IC figures of chosen formulas, on the full bars: read once, after the
    choice, and never fed back."""
    if not formulas:
        return pd.DataFrame(columns=["formula", *STAT_COLUMNS])
    calendar = pd.DatetimeIndex(pd.unique(bars["date"])).sort_values()
    test_days = segments.dates(calendar, "test", LABEL_HORIZON)
    # A test row needs its look-back; evaluate from the first date and keep the test rows.
    values = evaluate_many(list(formulas.values()), bars, names=list(formulas))
    values = values[np.asarray(values.index.get_level_values("date").isin(test_days))]
    label = forward_label(bars)
    out = ic_stats(rank_ic_table(values.replace([np.inf, -np.inf], np.nan), label, min_names))
    out.insert(0, "formula", pd.Series(formulas))
    return out
