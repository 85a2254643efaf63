"""The O(1)-per-step kernels against direct O(N) reference kernels (``reference_kernels.py``
here; the package's ``roll_moment`` for variance), and the symbol-chunked threaded evaluation
against the single-chunk one."""

from __future__ import annotations

import numpy as np
import pytest

from quant_assets.factors import evaluate_many
from quant_assets.factors import kernels as K
from quant_assets.factors import kernels_online as KO
from tests.factors import reference_kernels as R


@pytest.fixture(scope="module")
def panel():
    """Long random walks (drift would show), far from zero (cancellation would show), with
    NaN gaps, a constant stretch, a flat zero stretch and ties."""
    rng = np.random.default_rng(3)
    x = 1000 + np.cumsum(rng.normal(0, 0.5, (6, 3000)), axis=1)
    x[0, 100:140] = np.nan
    x[1, ::7] = np.nan
    x[2, 500:600] = 1000.25
    x[3, 200:300] = 0.0
    x[4] = np.round(x[4] / 2)  # many ties
    x[5, :50] = np.nan  # late start
    return x


WINDOWS = [1, 2, 5, 20, 60]


def close(a, b):
    # Running sums lose a little when the level jumps far from the shift (here 1000 after a
    # stretch of zeros) until the next recomputation; still far inside float32 precision.
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("n", WINDOWS)
def test_var_std(panel, n):
    for kind in (0, 1):
        close(KO.roll_var(panel, n, kind), K.roll_moment(panel, n, kind))


@pytest.mark.parametrize("n", WINDOWS)
def test_pair(panel, n):
    y = np.log(np.abs(np.roll(panel, 3, axis=1)) + 1)
    y[2, 700:800] = 3.0
    for kind in (0, 1):
        close(KO.roll_pair(panel, y, n, kind), R.roll_pair(panel, y, n, kind))


@pytest.mark.parametrize("n", WINDOWS)
def test_regression(panel, n):
    x = panel.copy()
    x[1, 1000] = np.inf  # an infinity is a value for Qlib's regressions
    out = KO.roll_reg(x, n, np.array([0.0, 1.0, 2.0]))
    for j in range(3):
        close(out[j], R.roll_reg(x, n, j))


@pytest.mark.parametrize("n", WINDOWS)
def test_extremes_and_sorted(panel, n):
    first = np.array([0, 0, 0, 0, 0, 50])
    hi = KO.roll_extreme(panel, n, True, first, np.array([0.0, 1.0]))
    lo = KO.roll_extreme(panel, n, False, first, np.array([0.0, 1.0]))
    for j, (a, b) in enumerate(((hi[0], 0), (lo[0], 1), (hi[1], 2), (lo[1], 3))):
        close(a, R.roll_extreme(panel, n, b, first))
        assert j < 4
    srt = KO.roll_sorted(panel, n, np.array([0.2, 0.8, -1.0]))
    close(srt[0], R.roll_sorted(panel, n, 0, 0.2))
    close(srt[1], R.roll_sorted(panel, n, 0, 0.8))
    close(srt[2], R.roll_sorted(panel, n, 1, 0.0))


def test_threaded_chunks_match_one_chunk(synth):
    bars = synth(n_symbols=9, n_days=200, seed=5)
    exprs = ["Max($high, 5)", "IdxMax($high, 5)", "Quantile($close, 10, 0.8)",
             "Rank($close, 10)", "Rsquare($close, 20)", "Resi($close, 20)/$close",
             "Corr($close, Log($volume+1), 10)", "Std($volume, 30)", "Mean($close > $open, 5)"]  # fmt: skip
    one = evaluate_many(exprs, bars, threads=1)
    three = evaluate_many(exprs, bars, threads=3)
    np.testing.assert_array_equal(one.to_numpy(), three.to_numpy())
    assert one.index.equals(three.index)
