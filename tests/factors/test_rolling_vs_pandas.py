"""Rolling operators against a straightforward per-symbol pandas groupby-rolling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import percentileofscore

from quant_assets.factors import evaluate_expression

W = 7


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(42)
    dates = pd.bdate_range("2022-01-03", periods=120)
    symbols = [f"S{i}" for i in range(6)]
    frame = pd.DataFrame(
        {"date": np.repeat(dates, len(symbols)), "symbol": np.tile(symbols, len(dates))}
    )
    n = len(frame)
    frame["close"] = rng.normal(size=n).round(1)  # rounding makes ties
    frame["volume"] = rng.normal(size=n)
    frame.loc[rng.random(n) < 0.1, "close"] = np.nan
    frame.loc[rng.random(n) < 0.1, "volume"] = np.nan
    for col in ("open", "high", "low", "vwap"):
        frame[col] = frame["close"]
    return frame.sort_values(["symbol", "date"]).reset_index(drop=True)


def by_symbol(frame, fn):
    out = frame.groupby("symbol", group_keys=False)[["date", "symbol", "close", "volume"]].apply(
        lambda g: pd.Series(fn(g).to_numpy(), index=pd.MultiIndex.from_frame(g[["date", "symbol"]]))
    )
    return out.sort_index()


def qlib_idx(arg):
    return lambda x: float(np.argmax(x) + 1) if arg == "max" else float(np.argmin(x) + 1)


def qlib_rank(x):
    if np.isnan(x[-1]):
        return np.nan
    x1 = x[~np.isnan(x)]
    return percentileofscore(x1, x1[-1]) / 100


def qlib_wma(x):
    w = np.arange(len(x)) + 1
    return np.nanmean(w / w.sum() * x)


def qlib_mad(x):
    x1 = x[~np.isnan(x)]
    return np.mean(np.abs(x1 - x1.mean()))


def reg(kind):
    def f(y):
        p = np.arange(1, W + 1, dtype=float)[-len(y) :] if len(y) < W else np.arange(1, W + 1.0)
        m = ~np.isnan(y)
        if m.sum() < 2:
            return np.nan
        slope, intercept = np.polyfit(p[m], y[m], 1)
        if kind == "slope":
            return slope
        if kind == "resi":
            return y[-1] - (slope * p[-1] + intercept)
        if np.std(y[m], ddof=1) <= 2e-5:
            return np.nan
        return np.corrcoef(p[m], y[m])[0, 1] ** 2

    return f


def roll(g):
    return g["close"].rolling(W, min_periods=1)


CASES = {
    f"Mean($close, {W})": lambda g: roll(g).mean(),
    f"Sum($close, {W})": lambda g: roll(g).sum(),
    f"Std($close, {W})": lambda g: roll(g).std(),
    f"Var($close, {W})": lambda g: roll(g).var(),
    f"Skew($close, {W})": lambda g: roll(g).skew(),
    f"Kurt($close, {W})": lambda g: roll(g).kurt(),
    f"Max($close, {W})": lambda g: roll(g).max(),
    f"Min($close, {W})": lambda g: roll(g).min(),
    f"Med($close, {W})": lambda g: roll(g).median(),
    f"Quantile($close, {W}, 0.8)": lambda g: roll(g).quantile(0.8),
    f"Count($close, {W})": lambda g: roll(g).count(),
    f"Rank($close, {W})": lambda g: roll(g).rank(pct=True),
    f"IdxMax($close, {W})": lambda g: roll(g).apply(qlib_idx("max"), raw=True),
    f"IdxMin($close, {W})": lambda g: roll(g).apply(qlib_idx("min"), raw=True),
    f"Mad($close, {W})": lambda g: roll(g).apply(qlib_mad, raw=True),
    f"WMA($close, {W})": lambda g: roll(g).apply(qlib_wma, raw=True),
    f"Slope($close, {W})": lambda g: roll(g).apply(reg("slope"), raw=True),
    f"Rsquare($close, {W})": lambda g: roll(g).apply(reg("rsquare"), raw=True),
    f"Resi($close, {W})": lambda g: roll(g).apply(reg("resi"), raw=True),
    f"EMA($close, {W})": lambda g: g["close"].ewm(span=W, min_periods=1).mean(),
    f"Ref($close, {W})": lambda g: g["close"].shift(W),
    f"Delta($close, {W})": lambda g: g["close"] - g["close"].shift(W),
    f"Cov($close, $volume, {W})": lambda g: roll(g).cov(g["volume"]),
    f"Corr($close, $volume, {W})": lambda g: roll(g).corr(g["volume"]),
}


@pytest.mark.parametrize("expr", list(CASES))
def test_matches_pandas(data, expr):
    ours = evaluate_expression(expr, data)
    ref = by_symbol(data, CASES[expr]).reindex(ours.index)
    np.testing.assert_array_equal(np.isnan(ours.to_numpy()), np.isnan(ref.to_numpy()), expr)
    np.testing.assert_allclose(ours.to_numpy(), ref.to_numpy(), rtol=1e-7, atol=1e-9)


def test_tail_evaluation_matches_full(bars):
    """``start`` evaluates only the needed history, and gives the same numbers."""
    exprs = ["Corr($close, Log($volume+1), 20)", "Rank(Mean($close, 5), 10)", "Ref($close, 7)",
             "EMA($close, 10)", "CSRank(Slope($close, 5))"]  # fmt: skip
    dates = sorted(bars.date.unique())
    for expr in exprs:
        full = evaluate_expression(expr, bars)
        tail = evaluate_expression(expr, bars, start=dates[-3])
        assert tail.index.get_level_values("date").min() == dates[-3]
        expected = full[full.index.get_level_values("date") >= dates[-3]]
        # EMA's infinite memory is cut where the weights fall below 1e-6
        np.testing.assert_allclose(tail.to_numpy(), expected.to_numpy(), rtol=1e-5, atol=1e-9)
