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
