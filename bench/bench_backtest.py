"""The backtest at scale: 10 years of daily bars over 5,000 stocks, a top-50 book.

    .venv/bin/python bench/bench_backtest.py [--stocks 5000] [--days 2520] [--runs 3]

1. Every A-share rule and cost (hysteresis, T+1, limits, suspensions, ST, listing age, lots,
   commission with its minimum, stamp duty by date, transfer fee, slippage, next-open fills):
   target under 5 s on 2 cores, the whole call from long bars and scores.
2. The same portfolio without the A-share rules (top 50 at equal weights rebalanced at each
   close, fees as one rate) next to vectorbt's `Portfolio.from_orders` (target percent, cash
   shared, sells first) in the same run: the two return series are compared, and vectorbt is
   timed on its own call alone and with its inputs built from the same long bars and scores.

The market is synthetic (a random walk per stock with limit hits, suspensions and ST names);
the scores are random. The best of `--runs` timings is printed (the first call of each side
is a warm-up: numba compiles or loads its cache). Not part of pytest.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from quant_assets.strategy import backtest  # noqa: E402
from quant_assets.strategy.costs import Costs  # noqa: E402

FEE = 0.0003


def synthetic_market(stocks: int, days: int, seed: int = 0) -> pd.DataFrame:
    """Long unadjusted bars in the landing file's columns, (date, symbol) sorted."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2015-01-05", periods=days)
    symbols = [f"{600000 + i:06d}.SH" if i % 2 == 0 else f"{i:06d}.SZ" for i in range(stocks)]
    ret = np.clip(rng.standard_t(4, size=(days, stocks)) * 0.015, -0.0999, 0.0999)
    suspended = rng.random((days, stocks)) < 0.005
    ret[suspended] = 0.0  # a suspended day prints the previous close
    close = np.maximum(np.round(20 * np.exp(np.cumsum(np.log1p(ret), axis=0)), 2), 0.5)
    preclose = np.vstack([close[:1], close[:-1]])
    gap = np.clip(rng.normal(0, 0.005, size=(days, stocks)), -0.09, 0.09)
    open_ = np.round(preclose * (1 + gap), 2)
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.005, (days, stocks))))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.005, (days, stocks))))
    volume = rng.integers(100_000, 5_000_000, size=(days, stocks)).astype(float)
    st = np.zeros((days, stocks), bool)
    st[:, rng.choice(stocks, stocks // 50, replace=False)] = True
    for a in (open_, high, low):
        a[suspended] = preclose[suspended]
    volume[suspended] = 0
    n = days * stocks
    bars = pd.DataFrame({
        "date": np.repeat(dates.to_numpy(), stocks),
        "symbol": pd.Categorical(np.tile(symbols, days)),
        "open": open_.ravel(), "high": np.round(high, 2).ravel(), "low": np.round(low, 2).ravel(),
        "close": close.ravel(), "preclose": preclose.ravel(), "volume": volume.ravel(),
        "amount": (volume * close).ravel(), "is_suspended": suspended.ravel(),
        "is_st": st.ravel(),
    })  # fmt: skip
    assert len(bars) == n
    return bars


def vectorbt_run(bars: pd.DataFrame, scores: pd.Series, top_n: int, prepared=None, fee=FEE):
    """vectorbt's from_orders on the same book; returns (portfolio returns, seconds of the
    input preparation, seconds of from_orders)."""
    import vectorbt as vbt

    t = time.perf_counter()
    if prepared is None:
        close = bars.pivot(index="date", columns="symbol", values="close")
        s = scores.unstack("symbol").reindex_like(close)
        nxt = close.shift(-1).notna()
        ranked = s.where(close.notna() & nxt).rank(axis=1, ascending=False, method="first")
        size = (
            (ranked <= top_n)
            .astype(float)
            .div((ranked <= top_n).sum(axis=1).replace(0, np.nan), axis=0)
        )
        size = size.where(close.notna())
        prepared = (close, size)
    close, size = prepared
    prep = time.perf_counter() - t
    t = time.perf_counter()
    pf = vbt.Portfolio.from_orders(
        close, size, size_type="targetpercent", group_by=True, cash_sharing=True,
        call_seq="auto", fees=fee, init_cash=10_000_000.0, freq="1D",
    )  # fmt: skip
    value = pf.value()
    run = time.perf_counter() - t
    return value.pct_change(), prep, run, prepared


def best_of(runs: int, fn):
    times, out = [], None
    for _ in range(runs):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stocks", type=int, default=5000)
    parser.add_argument("--days", type=int, default=2520)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--top", type=int, default=50)
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}; building {args.days} days x {args.stocks} stocks ...",
          flush=True)  # fmt: skip
    bars = synthetic_market(args.stocks, args.days)
    rng = np.random.default_rng(1)
    scores = pd.Series(rng.normal(size=len(bars)),
                       index=pd.MultiIndex.from_arrays([bars["date"], bars["symbol"]]))  # fmt: skip
    print(f"{len(bars):,} bar rows; warm-up ...", flush=True)
    backtest(scores.head(5000 * 30), bars.head(5000 * 30), top_n=args.top)
    backtest(scores.head(5000 * 30), bars.head(5000 * 30), top_n=args.top, rules=False,
             execution="close")  # fmt: skip

    t_rules, full = best_of(args.runs, lambda: backtest(scores, bars, top_n=args.top))
    s = full.summary
    print(f"\n1. every A-share rule and cost: {t_rules:.2f} s (target < 5 s): "
          f"{'met' if t_rules < 5 else 'NOT met'}")  # fmt: skip
    print(f"   {len(full.trades):,} trades, {len(full.unfilled):,} unfilled orders "
          f"({full.unfilled['reason'].value_counts().to_dict()}), fees {s['fees']:,.0f} CNY, "
          f"turnover {s['turnover']:.1%}/day, holding {s['holding_days']:.1f} days")  # fmt: skip

    plain = Costs(commission=FEE, min_commission=0.0, transfer_fee=0.0,
                  stamp_duty=(("1990-01-01", 0.0),), slippage=0.0)  # fmt: skip
    t_ours, ours = best_of(
        args.runs,
        lambda: backtest(scores, bars, top_n=args.top, rules=False, execution="close", costs=plain),
    )
    try:
        vectorbt_run(bars.head(5000 * 30), scores.head(5000 * 30), args.top)  # warm-up
        runs = []
        prepared = None
        for _ in range(args.runs):
            vret, prep, run, prepared = vectorbt_run(bars, scores, args.top, prepared)
            runs.append(run)
        _, prep, _, _ = vectorbt_run(bars, scores, args.top)
        t_vbt = min(runs)
    except ImportError:
        print("\n2. vectorbt is not installed (pip install vectorbt): comparison skipped")
        return
    r = ours.returns
    diff = (r - vret.reindex(r.index)).abs().max()
    print(f"\n2. without the A-share rules, top {args.top} equal weight, fee {FEE:.2%}:")
    print(f"   ours (from long bars and scores): {t_ours:.2f} s")
    print(f"   vectorbt from_orders alone: {t_vbt:.2f} s; with its inputs from the same long "
          f"bars and scores: {t_vbt + prep:.2f} s")  # fmt: skip
    print(f"   ratio: vectorbt / ours = {t_vbt / t_ours:.2f}x (from_orders alone), "
          f"{(t_vbt + prep) / t_ours:.2f}x (with inputs): "
          f"{'faster' if t_ours < t_vbt else 'NOT faster'}")  # fmt: skip
    print(
        f"   same portfolio: max |daily return difference| = {diff:.2e} with the fee (fees "
        "reduce what is bought in slightly different ways)"
    )
    free = backtest(scores, bars, top_n=args.top, rules=False, execution="close", costs=False)
    vfree, *_ = vectorbt_run(bars, scores, args.top, prepared, fee=0.0)
    diff0 = (free.returns - vfree.reindex(free.returns.index)).abs().max()
    print(f"   without fees: max |daily return difference| = {diff0:.2e}")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
