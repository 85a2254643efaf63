"""Hand-computed values for every operator, with Qlib's edge-case semantics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quant_assets.factors import evaluate_expression

NAN = np.nan
X = [1.0, 2.0, NAN, 4.0, 3.0]  # one NaN inside the windows


def ev(expr, bars):
    return evaluate_expression(expr, bars).to_numpy()


def assert_values(got, want):
    np.testing.assert_allclose(got, np.asarray(want, dtype=float), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    ("expr", "want"),
    [
        # rolling with min_periods=1 (Qlib): partial windows at the start, NaNs skipped
        ("Mean($close, 3)", [1, 1.5, 1.5, 3, 3.5]),
        ("Sum($close, 3)", [1, 3, 3, 6, 7]),
        ("Count($close, 3)", [1, 2, 2, 2, 2]),
        ("Std($close, 3)", [NAN, 0.5**0.5, 0.5**0.5, 2**0.5, 0.5**0.5]),
        ("Var($close, 3)", [NAN, 0.5, 0.5, 2, 0.5]),
        ("Max($close, 3)", [1, 2, 2, 4, 4]),
        ("Min($close, 3)", [1, 1, 1, 2, 3]),
        ("Med($close, 3)", [1, 1.5, 1.5, 3, 3.5]),
        ("Quantile($close, 3, 0.8)", [1, 1.8, 1.8, 3.6, 3.8]),
        ("Rank($close, 3)", [1, 1, NAN, 1, 0.5]),
        ("Mad($close, 3)", [0, 0.5, 0.5, 1, 0.5]),
        ("Prod($close, 3)", [1, 2, 2, 8, 12]),
        # Qlib: numpy argmax picks the first NaN when the window holds one
        ("IdxMax($close, 3)", [1, 2, 3, 2, 1]),
        ("IdxMin($close, 3)", [1, 1, 3, 2, 1]),
        # Ref counts rows of the calendar: the value before a NaN day is not skipped over
        ("Ref($close, 1)", [NAN, 1, 2, NAN, 4]),
        ("Delta($close, 1)", [NAN, 1, NAN, NAN, -1]),
        ("Ref($close, 0)", X),
        # a window longer than the history gives the expanding value, as in Qlib
        ("Mean($close, 50)", [1, 1.5, 1.5, 7 / 3, 2.5]),
        (
            "Std($close, 50)",
            [NAN, 0.5**0.5, 0.5**0.5, np.std([1, 2, 4], ddof=1), np.std([1, 2, 4, 3], ddof=1)],
        ),
        ("Ref($close, 50)", [NAN] * 5),
        # element-wise: comparisons with NaN are false (0), as numpy/Qlib
        ("$close > 1.5", [0, 1, 0, 1, 1]),
        ("$close <= 2", [1, 1, 0, 0, 0]),
        ("$close != 2", [1, 0, 1, 1, 1]),
        ("($close > 1) & ($close < 4)", [0, 1, 0, 0, 1]),
        ("($close < 2) | ($close > 3)", [1, 0, 0, 1, 0]),
        ("If($close > 2, $close, -$close)", [-1, -2, NAN, 4, 3]),
        ("Greater($close, 2.5)", [2.5, 2.5, NAN, 4, 3]),
        ("Less($close, 2.5)", [1, 2, NAN, 2.5, 2.5]),
        ("Abs(2 - $close)", [1, 0, NAN, 2, 1]),
        ("Sign($close - 2)", [-1, 0, NAN, 1, 1]),
        ("Log($close)", np.log(X)),
        ("Power($close, 2)", [1, 4, NAN, 16, 9]),
        ("SignedPower($close - 2, 2)", [-1, 0, NAN, 4, 1]),
        ("-$close * 2 + 1", [-1, -3, NAN, -7, -5]),
        ("$close / ($close - 1)", [np.inf, 2, NAN, 4 / 3, 1.5]),
        ("Not($close > 2)", [1, 1, 1, 0, 0]),
    ],
)
def test_single_series(single, expr, want):
    assert_values(ev(expr, single(X)), want)


@pytest.mark.parametrize(
    ("expr", "want"),
    [
        ("IdxMax($close, 3)", [1, 1, 1, 3, 2]),  # 1-based from the window start, first max
        ("IdxMin($close, 3)", [1, 2, 2, 1, 1]),
        ("Rank($close, 3)", [1, 0.5, 2 / 3, 1, 5 / 6]),  # ties: average rank / count
    ],
)
def test_extremes_and_rank_ties(single, expr, want):
    assert_values(ev(expr, single([3.0, 1.0, 2.0, 5.0, 5.0])), want)


def test_regression_operators(single):
    bars = single([1.0, 2.0, 4.0, 7.0])
    assert_values(ev("Slope($close, 3)", bars), [NAN, 1, 1.5, 2.5])
    assert_values(ev("Resi($close, 3)", bars)[3:], [7 - (13 / 3 + 2.5)])
    assert_values(ev("Rsquare($close, 3)", bars)[2:], [1.5**2 * 2 / (14 / 3), 25 / (2 * 114 / 9)])
    # a NaN current value: Slope uses the rest of the window, Resi is NaN (as Qlib)
    gap = single([1.0, 2.0, 4.0, NAN])
    assert_values(ev("Slope($close, 3)", gap)[3:], [2.0])
    assert np.isnan(ev("Resi($close, 3)", gap)[3])
    # a flat window: Rsquare is masked (std <= 2e-5, as Qlib); slope 0
    flat = single([5.0, 5.0, 5.0])
    assert np.isnan(ev("Rsquare($close, 3)", flat)[2])
    assert ev("Slope($close, 3)", flat)[2] == 0


def test_weighted_means(single):
    bars = single([1.0, 2.0, 4.0])
    assert_values(ev("EMA($close, 3)", bars), [1, 5 / 3, 3])  # span 3: alpha 0.5, adjust=True
    assert_values(ev("EMA($close, 0.5)", bars), [1, 5 / 3, 3])  # alpha given directly
    # Qlib's WMA divides the weighted sum by the count once more (np.nanmean(w * x))
    assert_values(ev("WMA($close, 3)", bars)[2:], [(1 + 4 + 12) / 6 / 3])
    assert_values(ev("DecayLinear($close, 3)", bars)[2:], [(1 + 4 + 12) / 6])
    # EMA carries the last value through a NaN day (pandas ewm)
    gap = single([1.0, NAN, 3.0])
    assert_values(ev("EMA($close, 3)", gap), [1, 1, (3 + 0.25) / 1.25])


def test_moments(single):
    bars = single([2.0, 2.0, 2.0, 5.0])
    assert_values(ev("Skew($close, 3)", bars), [NAN, NAN, NAN, 3**0.5])
    assert_values(ev("Kurt($close, 4)", bars), [NAN, NAN, NAN, 4.0])
    assert ev("Std($close, 3)", bars)[2] == 0.0  # constant window: exactly 0


def test_pair_rolling(single):
    bars = single([1.0, 2.0, 3.0, 4.0])
    bars["volume"] = [2.0, 4.0, 6.0, 9.0]
    assert_values(ev("Cov($close, $volume, 3)", bars), [NAN, 1, 2, 2.5])
    corr = ev("Corr($close, $volume, 3)", bars)
    assert_values(corr[1:], [1, 1, 5 / np.sqrt(2 * 114 / 9)])
    bars.loc[1, "volume"] = NAN  # pairwise-complete dates only
    assert_values(ev("Cov($close, $volume, 3)", bars), [NAN, NAN, 4, 1.5])
    flat = single([1.0, 2.0, 3.0])
    flat["volume"] = 7.0
    assert np.isnan(ev("Corr($close, $volume, 3)", flat)).all()  # std 0: NaN, as Qlib


def cross_section():
    return pd.DataFrame(
        {
            "date": pd.Timestamp("2021-01-04"),
            "symbol": ["A", "B", "C", "D"],
            "close": [3.0, 1.0, NAN, 3.0],
            "open": [3.0, 1.0, 5.0, -4.0],
            "industry": ["bank", "bank", "tech", "tech"],
        }
    )


def test_cross_sectional():
    bars = cross_section()
    assert_values(ev("CSRank($close)", bars), [2.5 / 3, 1 / 3, NAN, 2.5 / 3])
    z = (3 - 7 / 3) / np.std([3, 1, 3], ddof=1)
    assert_values(
        ev("CSZScore($close)", bars), [z, (1 - 7 / 3) / np.std([3, 1, 3], ddof=1), NAN, z]
    )
    assert_values(ev("CSNeutralize($close, $industry)", bars), [1, -1, NAN, 0])
    assert_values(ev("CSNeutralize($open, $industry)", bars), [1, -1, 4.5, -4.5])
    assert_values(ev("Scale($open)", bars), [3 / 13, 1 / 13, 5 / 13, -4 / 13])
    assert_values(ev("Scale($open, 2)", bars), [6 / 13, 2 / 13, 10 / 13, -8 / 13])
    lo, hi = np.quantile([3, 1, 5, -4], [0.25, 0.75])
    assert_values(ev("CSWinsorize($open, 0.25)", bars), np.clip([3, 1, 5, -4], lo, hi))


def test_suspended_day_and_missing_row(bars):
    """A NaN row (suspension) and an absent row both count as calendar days for Ref."""
    out = evaluate_expression("Ref($close, 1)", bars)
    s0 = out.xs("S000", level="symbol")
    closes = bars[bars.symbol == "S000"].set_index("date")["close"]
    dates = closes.index
    assert np.isnan(s0[dates[51]]) and np.isnan(s0[dates[53]])  # days after suspended days
    assert s0[dates[54]] == closes[dates[53]]
    s1 = out.xs("S001", level="symbol")
    all_dates = pd.Index(sorted(bars.date.unique()))
    assert all_dates[80] not in s1.index  # absent rows stay absent in the output
    assert np.isnan(s1[all_dates[82]])  # the day after the gap has no previous close
    assert len(out) == len(bars)


def test_output_index_and_order(bars):
    shuffled = bars.sample(frac=1.0, random_state=1)
    a = evaluate_expression("Mean($close, 5) / $close", bars)
    b = evaluate_expression("Mean($close, 5) / $close", shuffled)
    assert a.index.names == ["date", "symbol"]
    assert a.index.is_monotonic_increasing
    pd.testing.assert_series_equal(a, b)


def test_duplicate_rows_rejected(single):
    bars = single([1.0, 2.0])
    with pytest.raises(ValueError, match="duplicate"):
        evaluate_expression("$close", pd.concat([bars, bars]))


def test_infinities_follow_pandas(single):
    """pandas rolling aggregations and rolling.apply (hence Qlib) treat +-inf as missing;
    Count keeps them."""
    bars = single([1.0, np.inf, 3.0, -np.inf, 5.0])
    assert_values(ev("Sum($close, 3)", bars), [1, 1, 4, 3, 8])
    assert_values(ev("Max($close, 3)", bars), [1, 1, 3, 3, 5])
    assert_values(ev("Count($close, 3)", bars), [1, 2, 3, 3, 3])
    assert_values(ev("IdxMax($close, 3)", bars), [1, 2, 2, 1, 2])
    assert_values(ev("Rank($close, 3)", bars), [1, NAN, 1, NAN, 1])


def test_listing_span(synth):
    """Before a symbol's first row there is no data (Qlib has no rows), not NaN data:
    comparisons there do not count as 0 and IdxMax windows start at the listing."""
    bars = synth(n_symbols=4, n_days=130)
    late = bars[bars.symbol == "S002"]
    first = late.date.min()
    cnt = evaluate_expression("Mean($close > Ref($close, 1), 10)", bars).xs("S002", level=1)
    assert cnt.iloc[0] == 0.0  # Ref is NaN on the first day: the comparison is false
    assert cnt.index[0] == first
    imax = evaluate_expression("IdxMax($high, 10)", bars).xs("S002", level=1)
    assert imax.iloc[0] == 1.0  # a one-day window, not "first NaN" of the pre-listing days
