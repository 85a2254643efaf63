"""factor_report against alphalens(-reloaded) on the same inputs, plus the plots."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from quant_assets.factors import factor_report
from quant_assets.factors.plots import report_pngs

PERIODS = (1, 5, 10)


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.default_rng(3)
    dates = pd.bdate_range("2021-01-04", periods=160)
    symbols = [f"S{i:02d}" for i in range(40)]
    rets = rng.normal(0, 0.02, (len(dates), len(symbols)))
    prices = pd.DataFrame(100 * np.exp(np.cumsum(rets, axis=0)), index=dates, columns=symbols)
    prices.iloc[30:33, 2] = np.nan  # suspension: alphalens forward-fills prices
    # a factor that knows a little of the next day's return, with gaps
    signal = np.roll(rets, -1, axis=0) + rng.normal(0, 0.04, rets.shape)
    factor = pd.DataFrame(signal, index=dates, columns=symbols).stack()
    factor.index = factor.index.set_names(["date", "symbol"])
    factor = factor[rng.random(len(factor)) > 0.05]
    return factor, prices


@pytest.fixture(scope="module")
def alphalens_data(inputs):
    al = pytest.importorskip("alphalens", reason="alphalens-reloaded is not installed")
    factor, prices = inputs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = al.utils.get_clean_factor_and_forward_returns(
            factor, prices, periods=PERIODS, quantiles=5, max_loss=1.0
        )
    return al, data


def _period_columns(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.rename(columns=lambda c: int(str(c).rstrip("D")))


def test_clean_data_and_quantiles_match(inputs, alphalens_data):
    _, data = alphalens_data
    report = factor_report(*inputs, periods=PERIODS)
    ours = report.data
    assert len(ours) == len(data)
    np.testing.assert_array_equal(ours["factor_quantile"].to_numpy(), data["factor_quantile"])
    for p in PERIODS:
        np.testing.assert_allclose(ours[p].to_numpy(), data[f"{p}D"].to_numpy(), rtol=1e-12)


def test_ic_matches(inputs, alphalens_data):
    al, data = alphalens_data
    report = factor_report(*inputs, periods=PERIODS)
    ic = _period_columns(al.performance.factor_information_coefficient(data))
    pd.testing.assert_frame_equal(
        report.rank_ic, ic, check_freq=False, check_names=False, atol=1e-12, rtol=1e-9
    )
    table = al.plotting.plot_information_table(ic, return_df=True)
    summary = report.summary
    for ours, theirs in (("Rank IC Mean", "IC Mean"), ("Rank IC Std", "IC Std."),
                         ("Rank IC ICIR", "Risk-Adjusted IC"), ("Rank IC t-stat", "t-stat(IC)"),
                         ("Rank IC p-value", "p-value(IC)")):  # fmt: skip
        np.testing.assert_allclose(summary.loc[ours].to_numpy(float), table[theirs].to_numpy(float),
                                   rtol=1e-9)  # fmt: skip
    assert summary.loc["Rank IC Mean", 1] > 0.1  # the planted signal is found
    # Pearson IC: per date np.corrcoef
    d0 = report.data.xs(report.data.index[0][0], level="date")
    assert report.ic.iloc[0][1] == pytest.approx(np.corrcoef(d0["factor"], d0[1])[0, 1])


def test_quantile_returns_and_turnover_match(inputs, alphalens_data):
    al, data = alphalens_data
    report = factor_report(*inputs, periods=PERIODS)
    mean_ret, _ = al.performance.mean_return_by_quantile(data, by_date=False, demeaned=True)
    np.testing.assert_allclose(report.quantile_returns.to_numpy(), mean_ret.to_numpy(), rtol=1e-9)
    by_date, _ = al.performance.mean_return_by_quantile(data, by_date=True, demeaned=True)
    spread, _ = al.performance.compute_mean_returns_spread(by_date, 5, 1)
    # alphalens-reloaded halves the spread (a $1-gross long/short book); ours is top - bottom
    np.testing.assert_allclose(report.spread.to_numpy(), 2 * spread.to_numpy(), rtol=1e-9)
    for p in PERIODS:
        for q in (1, 5):
            theirs = al.performance.quantile_turnover(data["factor_quantile"], q, period=p)
            ours = report.turnover[(p, q)]
            np.testing.assert_allclose(ours.to_numpy(), theirs.to_numpy(), rtol=1e-12)


def test_report_shape_and_plots(inputs):
    report = factor_report(*inputs, periods=PERIODS)
    assert list(report.ic.columns) == list(PERIODS)
    assert list(report.quantile_returns.index) == [1, 2, 3, 4, 5]
    assert report.quantile_returns.loc[5, 1] > report.quantile_returns.loc[1, 1]
    assert list(report.ic_decay.index) == list(range(1, 11))
    assert report.ic_decay.loc[1, "Rank IC"] > abs(report.ic_decay.loc[5, "Rank IC"])
    assert report.mean_turnover.shape == (5, 3)
    pngs = report_pngs(report)
    assert set(pngs) == {"ic", "quantile_returns", "cumulative_spread"}
    assert all(png.startswith(b"\x89PNG") for png in pngs.values())


def test_quantize_of_nothing_is_nothing():
    from quant_assets.factors.evaluation import quantize

    empty = pd.Series(
        [], dtype=float, index=pd.MultiIndex.from_arrays([[], []], names=["date", "asset"])
    )
    assert quantize(empty).empty


# --- alphalens' outlier filter (filter_zscore) -------------------------------------------------

WARMUP, BAD_DAY, BAD_SYMBOL = 350, 390, "S005"
SMALL_DAY, SMALL_SYMBOL = 400, "S017"


@pytest.fixture(scope="module")
def bad_print(synth_module):
    """40 symbols x 420 days of closes (the shared synthetic bars, with their suspensions,
    missing rows and late listing) where the vendor sent one close 1000x too high and another
    1.5x too high, and a factor with a little of the next day's (clean) return that is NaN
    for its first 350 dates (a long-window factor's warm-up) and valid for the last 70.

    alphalens' mean and std are per symbol over the dates of the factor's index, NaN factor
    values included, and with n dates no return is more than (n - 1) / sqrt(n) std from the
    mean: the default 20 needs at least 402 dates, so counting only the 70 valid ones (or
    taking the statistics per date across the 40 symbols) could never filter anything."""
    bars = synth_module(n_symbols=40, n_days=420, seed=11)
    prices = bars.pivot(index="date", columns="symbol", values="close")
    rng = np.random.default_rng(11)
    signal = prices.ffill().pct_change().shift(-1) + rng.normal(0, 0.04, prices.shape)
    signal.iloc[:WARMUP] = np.nan
    factor = signal.stack(future_stack=True)
    factor.index = factor.index.set_names(["date", "symbol"])
    keep = rng.random(len(factor)) > 0.05
    for day, symbol in ((BAD_DAY, BAD_SYMBOL), (SMALL_DAY, SMALL_SYMBOL)):
        for p in PERIODS:
            keep[factor.index.get_loc((prices.index[day - p], symbol))] = True
    factor = factor[keep]
    prices = prices.copy()
    prices.iloc[BAD_DAY, prices.columns.get_loc(BAD_SYMBOL)] *= 1000.0
    prices.iloc[SMALL_DAY, prices.columns.get_loc(SMALL_SYMBOL)] *= 1.5
    return factor, prices


@pytest.fixture(scope="module")
def filter_runs(bad_print):
    """factor_report and alphalens' cleaned table for each threshold the tests use."""
    al = pytest.importorskip("alphalens", reason="alphalens-reloaded is not installed")
    runs = {}
    for z in (20, None, 5, 25):
        kwargs = {} if z == 20 else {"filter_zscore": z}  # 20: both libraries' default
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = al.utils.get_clean_factor_and_forward_returns(
                *bad_print, periods=PERIODS, quantiles=5, max_loss=1.0, **kwargs
            )
        runs[z] = factor_report(*bad_print, periods=PERIODS, **kwargs), data
    return al, runs


def _rows_into(prices, day, symbol):
    """The (date, symbol) rows whose forward return ends on ``day``, one per period."""
    return [(prices.index[day - p], symbol) for p in PERIODS]


def _assert_matches_alphalens(report, al, data):
    """Same cleaned rows, returns and quantiles; rank IC, Pearson IC, mean quantile returns."""
    assert report.data.index.equals(data.index.set_names(["date", "symbol"]))
    for p in PERIODS:
        np.testing.assert_allclose(report.data[p], data[f"{p}D"], rtol=1e-12)
    np.testing.assert_array_equal(report.data["factor_quantile"], data["factor_quantile"])
    rank_ic = _period_columns(al.performance.factor_information_coefficient(data))
    pd.testing.assert_frame_equal(
        report.rank_ic, rank_ic, check_freq=False, check_names=False, atol=1e-12, rtol=1e-9
    )
    # alphalens' IC is Spearman only: Pearson per date on alphalens' own cleaned table
    by_date = data.groupby(level="date")
    for p in PERIODS:
        ic = by_date.apply(lambda d, c=f"{p}D": np.corrcoef(d["factor"], d[c])[0, 1])
        np.testing.assert_allclose(report.ic[p], ic, atol=1e-12, rtol=1e-9)
    mean_ret, _ = al.performance.mean_return_by_quantile(data, by_date=False, demeaned=True)
    np.testing.assert_allclose(report.quantile_returns.to_numpy(), mean_ret.to_numpy(), rtol=1e-9)


def test_default_filter_drops_bad_print_as_alphalens(bad_print, filter_runs):
    al, runs = filter_runs
    report, data = runs[20]
    _assert_matches_alphalens(report, al, data)
    prices = bad_print[1]
    # the forward return into the 1000x print (+999, ~21 std out over the symbol's ~410
    # dates) is gone for every period, and with it the whole row; the 1.5x print stays
    assert not any(r in report.data.index for r in _rows_into(prices, BAD_DAY, BAD_SYMBOL))
    assert all(r in report.data.index for r in _rows_into(prices, SMALL_DAY, SMALL_SYMBOL))
    assert report.data[list(PERIODS)].max().max() < 1.0


def test_unfiltered_matches_alphalens_and_outlier_moves_numbers(bad_print, filter_runs):
    al, runs = filter_runs
    report, data = runs[None]
    _assert_matches_alphalens(report, al, data)
    filtered = runs[20][0]
    bad_rows = _rows_into(bad_print[1], BAD_DAY, BAD_SYMBOL)
    assert list(report.data.index.difference(filtered.data.index)) == sorted(bad_rows)
    # a +999 return among ~60 dates moves its quantile's mean return by ~999/8/60 ~ 2 (the
    # filtered means are ~1e-3) and the Pearson IC of its date
    for row, p in zip(bad_rows, PERIODS, strict=True):
        q = int(report.data.loc[row, "factor_quantile"])
        assert report.quantile_returns.loc[q, p] - filtered.quantile_returns.loc[q, p] > 1.0
        assert report.ic.loc[row[0], p] != pytest.approx(filtered.ic.loc[row[0], p], abs=1e-3)
    assert filtered.quantile_returns.abs().max().max() < 0.02


def test_custom_threshold_is_honoured(bad_print, filter_runs):
    al, runs = filter_runs
    prices = bad_print[1]
    strict, data = runs[5]
    _assert_matches_alphalens(strict, al, data)
    # at 5 std the returns into the 1.5x print (~8-14 std out) go too
    default = runs[20][0].data.index
    assert strict.data.index.difference(default).empty
    assert not any(r in strict.data.index for r in _rows_into(prices, SMALL_DAY, SMALL_SYMBOL))
    # 25 is out of reach with ~410 dates: nothing is filtered, as without the filter
    loose, data = runs[25]
    _assert_matches_alphalens(loose, al, data)
    assert loose.data.index.equals(runs[None][0].data.index)


def test_filter_outliers_uses_sample_std_per_symbol():
    from quant_assets.factors.evaluation import filter_outliers

    # A's valid values 0, 0, 0, 0, 10 (the NaN is skipped, not a zero) have mean 2 and sample
    # std sqrt(20): the 10 is 1.79 std out (2.0 with the population std); B's largest is 1.34.
    # Per date (two values) nothing is ever more than 0.71 std out.
    returns = pd.DataFrame({"A": [0.0, 0.0, 0.0, 0.0, 10.0, np.nan], "B": [1.0, 2, 3, 4, 5, 6]})
    assert np.isnan(filter_outliers(returns, 1.75).loc[4, "A"])
    kept = filter_outliers(returns, 1.85)
    pd.testing.assert_frame_equal(kept, returns)
    pd.testing.assert_frame_equal(filter_outliers(returns, None), returns)
