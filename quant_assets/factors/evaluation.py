"""Factor evaluation with alphalens' definitions: forward returns, IC, quantiles, turnover.

Pure functions over DataFrames; ``factor_report`` composes them. Definitions follow
alphalens(-reloaded) so numbers compare one to one:
- forward return over N periods: ``prices.ffill().pct_change(N).shift(-N)`` on the price
  index, taken at the factor dates (``compute_forward_returns``);
- outliers: a forward return more than ``filter_zscore`` (default 20) standard deviations
  (ddof=1) from its mean is set to NaN, the mean and std being taken per symbol over the
  factor dates, per period (``compute_forward_returns``' filter; see ``filter_outliers``);
- rows with a non-finite factor or any missing forward return are dropped
  (``get_clean_factor``);
- quantiles: ``pd.qcut(factor, quantiles, labels=False) + 1`` per date (``quantize_factor``);
- rank IC: Spearman per date (alphalens' "IC"); we add Pearson IC as ``ic``;
- quantile returns: mean per (quantile, date), then mean over dates, demeaned per date by
  default (``mean_return_by_quantile``); turnover: share of names new to a quantile vs
  ``period`` rows earlier (``quantile_turnover``).
Deliberate differences: the top-minus-bottom spread is the plain difference (alphalens-reloaded's
``compute_mean_returns_spread`` halves it); where qcut of the values fails on a date because of tied bin edges,
we qcut the ranks (method="first") instead of dropping the date.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats


def forward_returns(prices: pd.DataFrame, periods=(1, 5, 10)) -> dict[int, pd.DataFrame]:
    """{N: wide date x symbol forward return price[t+N]/price[t]-1 on the price index}."""
    filled = prices.ffill()
    return {p: filled.pct_change(periods=p).shift(-p) for p in sorted(periods)}


def filter_outliers(returns: pd.DataFrame, filter_zscore: float | None = 20.0) -> pd.DataFrame:
    """``returns`` (wide date x symbol) with values more than ``filter_zscore`` standard
    deviations from their mean set to NaN; mean and std (ddof=1, NaNs skipped) are per symbol
    (column), over the dates (rows) given. alphalens' ``compute_forward_returns`` filter, which
    it applies to each period's forward returns at the factor dates. ``None``: no filter.

    The statistics use the whole window, so the filter looks ahead; and with n dates no value
    can be more than (n - 1) / sqrt(n) standard deviations out, so the default 20 can only
    fire on symbols with at least 402 forward returns."""
    if filter_zscore is None:
        return returns
    outlier = (returns - returns.mean()).abs() > filter_zscore * returns.std()
    return returns.mask(outlier)


def clean_factor_data(
    factor: pd.Series,
    prices: pd.DataFrame,
    periods=(1, 5, 10),
    quantiles: int = 5,
    filter_zscore: float | None = 20.0,
) -> pd.DataFrame:
    """alphalens' ``get_clean_factor_and_forward_returns`` table: one row per (date, asset)
    with columns ``factor``, one forward-return column per period and ``factor_quantile``.

    Forward returns are outlier-filtered (``filter_outliers``) over the dates of ``factor``'s
    index found in ``prices`` (including dates whose factor values are all NaN, as alphalens
    does), before rows with a missing forward return for any period are dropped."""
    factor = factor.rename("factor")
    factor.index = factor.index.set_names(["date", "asset"])
    factor_dates = pd.Index(factor.index.get_level_values("date").unique())
    factor_dates = prices.index[prices.index.isin(factor_dates)]
    factor = factor[np.isfinite(factor.astype(float))]
    fwd = forward_returns(prices, periods)
    dates = factor.index.get_level_values("date")
    assets = factor.index.get_level_values("asset")
    data = pd.DataFrame({"factor": factor.to_numpy(dtype=float)}, index=factor.index)
    rows = factor_dates.get_indexer(dates)
    cols = prices.columns.get_indexer(assets)
    ok = (rows >= 0) & (cols >= 0)
    for p, table in fwd.items():
        table = filter_outliers(table.loc[factor_dates], filter_zscore)
        values = np.full(len(data), np.nan)
        values[ok] = table.to_numpy(dtype=float)[rows[ok], cols[ok]]
        data[p] = values
    data = data.dropna().sort_index()
    data["factor_quantile"] = quantize(data["factor"], quantiles)
    return data.dropna()


def quantize(factor: pd.Series, quantiles: int = 5) -> pd.Series:
    """Quantile 1..q per date: ``pd.qcut`` of the values (ranks if tied edges)."""
    out = np.full(len(factor), np.nan)
    if len(factor) == 0:
        return pd.Series(out, index=factor.index, name="factor_quantile")
    values = factor.to_numpy(dtype=float)
    codes, _ = pd.factorize(factor.index.get_level_values("date"))
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    for idx in np.split(order, bounds):
        x = values[idx]
        try:
            out[idx] = pd.qcut(x, quantiles, labels=False) + 1
        except ValueError:
            ranks = pd.Series(x).rank(method="first").to_numpy()
            out[idx] = pd.qcut(ranks, quantiles, labels=False) + 1
    return pd.Series(out, index=factor.index, name="factor_quantile")


def by_date_corr(a: pd.Series, b: pd.Series) -> pd.Series:
    """Pearson correlation of a and b within each date."""
    g = a.index.get_level_values("date")
    da = a - a.groupby(g).transform("mean")
    db = b - b.groupby(g).transform("mean")
    num = (da * db).groupby(g).sum()
    den = np.sqrt((da * da).groupby(g).sum() * (db * db).groupby(g).sum())
    with np.errstate(all="ignore"):
        return (num / den).where(den > 0)


def information_coefficient(data: pd.DataFrame, periods, rank: bool = True) -> pd.DataFrame:
    """IC per date (rows) and period (columns); Spearman if ``rank`` else Pearson."""
    g = data.index.get_level_values("date")
    f = data["factor"].groupby(g).rank() if rank else data["factor"]
    out = {}
    for p in periods:
        r = data[p].groupby(g).rank() if rank else data[p]
        out[p] = by_date_corr(f, r)
    frame = pd.DataFrame(out)
    frame.index.name = "date"
    return frame


def ic_summary(ic: pd.DataFrame, rank_ic: pd.DataFrame) -> pd.DataFrame:
    """Per period: mean, std (ddof=1), ICIR = mean/std, t-stat and p-value of mean = 0."""
    rows = {}
    for label, table in (("IC", ic), ("Rank IC", rank_ic)):
        clean = {p: table[p].dropna() for p in table.columns}
        rows[f"{label} Mean"] = {p: s.mean() for p, s in clean.items()}
        rows[f"{label} Std"] = {p: s.std() for p, s in clean.items()}
        rows[f"{label} ICIR"] = {p: s.mean() / s.std() for p, s in clean.items()}
        tests = {p: stats.ttest_1samp(s, 0) for p, s in clean.items()}
        rows[f"{label} t-stat"] = {p: t.statistic for p, t in tests.items()}
        rows[f"{label} p-value"] = {p: t.pvalue for p, t in tests.items()}
    return pd.DataFrame(rows).T


def demean_by_date(data: pd.DataFrame, periods) -> pd.DataFrame:
    """Forward returns minus their cross-sectional mean on each date."""
    out = data.copy()
    g = data.index.get_level_values("date")
    cols = list(periods)
    out[cols] = data[cols] - data[cols].groupby(g).transform("mean")
    return out


def quantile_returns_by_date(data: pd.DataFrame, periods, demeaned: bool = True) -> pd.DataFrame:
    """Mean forward return per (quantile, date) (alphalens ``by_date=True``)."""
    if demeaned:
        data = demean_by_date(data, periods)
    g = [data["factor_quantile"].astype(int), data.index.get_level_values("date")]
    return data.groupby(g)[list(periods)].mean()


def mean_quantile_returns(by_date: pd.DataFrame) -> pd.DataFrame:
    """Mean over dates of the per-date quantile means: quantile x period."""
    return by_date.groupby(level="factor_quantile").mean()


def top_minus_bottom(by_date: pd.DataFrame) -> pd.DataFrame:
    """Per date: top quantile mean return minus bottom quantile's (date x period)."""
    q = by_date.index.get_level_values("factor_quantile")
    top = by_date[q == q.max()].droplevel("factor_quantile")
    bottom = by_date[q == q.min()].droplevel("factor_quantile")
    return top.sub(bottom)


def quantile_turnover(quantile: pd.Series, q: int, period: int = 1) -> pd.Series:
    """Share of a quantile's names on each date that were not in it ``period`` dates before
    (NaN when either date has no names in it). Membership as a dates x assets matrix: one
    comparison of the matrix with itself shifted, instead of a set per date."""
    dates = quantile.index.get_level_values("date")
    all_dates = pd.Index(dates.unique()).sort_values()
    member = (
        (quantile == q)
        .groupby(level=["date", "asset"])
        .any()
        .unstack("asset", fill_value=False)
        .reindex(all_dates, fill_value=False)
        .to_numpy(dtype=bool)
    )
    before = np.zeros_like(member)
    if period < len(member):
        before[period:] = member[:-period] if period else member
    count = member.sum(axis=1)
    new = (member & ~before).sum(axis=1)
    had = before.sum(axis=1)
    valid = (count > 0) & (had > 0) & (np.arange(len(member)) >= period)
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(valid, new / count, np.nan)
    return pd.Series(values, index=all_dates, name=q)


def turnover_table(data: pd.DataFrame, periods) -> pd.DataFrame:
    """Quantile turnover for every period and quantile: date x (period, quantile)."""
    quantile = data["factor_quantile"].astype(int)
    qs = sorted(quantile.unique())
    cols = {(p, q): quantile_turnover(quantile, q, p) for p in periods for q in qs}
    frame = pd.DataFrame(cols)
    frame.columns = pd.MultiIndex.from_tuples(frame.columns, names=["period", "quantile"])
    return frame


def ic_decay(factor: pd.Series, prices: pd.DataFrame, horizons: int = 10) -> pd.DataFrame:
    """Mean IC and rank IC of the factor against the one-period return h-1 periods ahead,
    for h = 1..horizons: how quickly the signal fades."""
    one = prices.ffill().pct_change(1)
    f = factor.rename("factor")
    f.index = f.index.set_names(["date", "asset"])
    f = f[np.isfinite(f.astype(float))]
    rows = prices.index.get_indexer(f.index.get_level_values("date"))
    cols = prices.columns.get_indexer(f.index.get_level_values("asset"))
    ok = (rows >= 0) & (cols >= 0)
    table = one.to_numpy(dtype=float)
    out = {}
    for h in range(1, horizons + 1):
        r = np.full(len(f), np.nan)
        target = rows + h
        valid = ok & (target < len(prices.index))
        r[valid] = table[target[valid], cols[valid]]
        d = pd.DataFrame({"factor": f.to_numpy(dtype=float), h: r}, index=f.index).dropna()
        out[h] = {
            "IC": information_coefficient(d, [h], rank=False)[h].mean(),
            "Rank IC": information_coefficient(d, [h], rank=True)[h].mean(),
        }
    frame = pd.DataFrame(out).T
    frame.index.name = "horizon"
    return frame


@dataclass
class FactorReport:
    """Everything ``factor_report`` computes; plotting lives in ``plots.py``. The statistics
    no plot needs (Pearson IC, the summary, turnover, IC decay) are computed on first use:
    the screening draws the plots of its strongest factors every day and reads none of them."""

    data: pd.DataFrame = field(repr=False)
    rank_ic: pd.DataFrame
    quantile_returns: pd.DataFrame
    quantile_returns_by_date: pd.DataFrame = field(repr=False)
    spread: pd.DataFrame = field(repr=False)
    factor: pd.Series = field(repr=False)
    prices: pd.DataFrame = field(repr=False)
    periods: tuple[int, ...] = (1, 5, 10)

    @functools.cached_property
    def ic(self) -> pd.DataFrame:
        """Pearson IC per date and period."""
        return information_coefficient(self.data, self.periods, rank=False)

    @functools.cached_property
    def summary(self) -> pd.DataFrame:
        """Mean, std, ICIR, t-stat and p-value of the IC and the rank IC, per period."""
        return ic_summary(self.ic, self.rank_ic)

    @functools.cached_property
    def turnover(self) -> pd.DataFrame:
        """Quantile turnover: date x (period, quantile)."""
        return turnover_table(self.data, self.periods)

    @functools.cached_property
    def ic_decay(self) -> pd.DataFrame:
        """Mean IC and rank IC against the return h-1 periods ahead, h = 1..max period."""
        return ic_decay(self.factor, self.prices, horizons=max(self.periods))

    @property
    def cumulative_spread(self) -> pd.Series:
        """Compounded top-minus-bottom return of the shortest period (1 by default)."""
        p = min(self.spread.columns)
        return (1 + self.spread[p].fillna(0)).cumprod() - 1

    @property
    def mean_turnover(self) -> pd.DataFrame:
        """Mean quantile turnover: quantile x period."""
        return self.turnover.mean().unstack("period")


def factor_report(
    factor: pd.Series,
    prices: pd.DataFrame,
    periods=(1, 5, 10),
    quantiles: int = 5,
    demeaned: bool = True,
    filter_zscore: float | None = 20.0,
) -> FactorReport:
    """Evaluate a factor (Series on (date, symbol)) against wide close ``prices``.

    ``filter_zscore``: as alphalens' ``get_clean_factor_and_forward_returns``, each period's
    forward returns more than ``filter_zscore`` standard deviations (ddof=1) from their mean,
    mean and std taken per symbol over the factor dates, are set to NaN, and rows with any
    missing forward return are then dropped before IC, quantile returns and turnover. It
    catches bad prints (a price off by 1000x) once a symbol has enough dates: with n dates no
    return is more than (n - 1) / sqrt(n) std out, so 20 needs at least 402 dates. The statistics
    use the whole window (look-ahead). ``None`` disables it. ``ic_decay`` is not filtered.

    Columns named by period are integers (alphalens labels them '1D', '5D', ...)."""
    periods = tuple(sorted(int(p) for p in periods))
    data = clean_factor_data(factor, prices, periods, quantiles, filter_zscore=filter_zscore)
    by_date = quantile_returns_by_date(data, periods, demeaned=demeaned)
    return FactorReport(
        data=data,
        rank_ic=information_coefficient(data, periods, rank=True),
        quantile_returns=mean_quantile_returns(by_date),
        quantile_returns_by_date=by_date,
        spread=top_minus_bottom(by_date),
        factor=factor,
        prices=prices,
        periods=periods,
    )
