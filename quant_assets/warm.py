"""Compile the numba kernels once, at install time, so that no run pays for it.

The kernels are compiled with `cache=True`: the machine code is written beside the sources
and reused by every later process. The first call in a fresh environment otherwise spends
about 11 s compiling (Alpha158 on 592k rows: 13 s on first use, 2 s after), inside whichever
run comes first. `make install` runs this module: the real stage functions on a small
simulated market, so every kernel is compiled for the argument types the runs use.

    python -m quant_assets.warm
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pyarrow as pa

from quant_assets.calendar import trading_days
from quant_assets.factors.alpha158 import BAR_COLUMNS, alpha158
from quant_assets.factors.daily_set import compute_daily_factors
from quant_assets.factors.microstructure import daily_microstructure
from quant_assets.factors.microstructure_prep import summarise_book
from quant_assets.factors.screening import rank_ic_table
from quant_assets.market.sources.landing import LANDING_KINDS
from quant_assets.market.sources.simulated import SimulatedMarket
from quant_assets.market.validation import validate
from quant_assets.strategy import backtest
from quant_assets.strategy.book import select


def _as_read(df: pd.DataFrame) -> pd.DataFrame:
    """`df` as the runs receive frames (from Arrow: numeric columns are read-only views, and
    numba compiles read-only arrays separately)."""
    index = list(df.index.names) if df.index.names[0] is not None else []
    frame = pa.Table.from_pandas(df.reset_index() if index else df, preserve_index=False)
    out = frame.to_pandas(split_blocks=True, self_destruct=True)
    return out.set_index(index) if index else out


def warm() -> float:
    """Run every numba-backed stage once on a small market; returns the seconds it took."""
    t0 = time.perf_counter()
    days = trading_days("2024-01-02", "2024-04-30")
    sim = SimulatedMarket(days, n_symbols=12, seed=3, snapshot_seconds=60)
    day = days[-1]
    universe = sim.universe()
    bars = sim.daily_bars()
    today = bars[bars["date"] == day]
    # the adjusted bars' shape (a vwap column); the prices' values do not matter here
    adjusted = bars.assign(vwap=(bars["amount"] / bars["volume"]).where(bars["volume"] > 0))
    for kind in LANDING_KINDS:  # the validation screens and order rules
        frame = sim.delivery(kind, day)
        if kind in ("trades", "order_book") and len(frame) > 3:  # two rows out of order
            frame = frame.iloc[[0, 2, 1, *range(3, len(frame))]].reset_index(drop=True)
        validate(
            kind,
            _as_read(frame),
            known_symbols=set(universe["symbol"]),
            trading_date=day,
            now=day + pd.Timedelta(days=1),
            bars_for_limits=today,
            trading_days=days,
            listings=universe.set_index("symbol")["list_date"],
        )
    for frame in (adjusted, _as_read(adjusted)):
        alpha158(frame[BAR_COLUMNS], start=day)  # one new day, as the daily asset asks
        alpha158(frame[BAR_COLUMNS].iloc[10:], start=days[-20])  # a panel with holes
        features = alpha158(frame[BAR_COLUMNS], start=days[-20])
        compute_daily_factors(frame, day)
    trades, book = sim.trades(day), sim.order_book(day)
    for t, b in ((trades, book), (_as_read(trades), _as_read(summarise_book(book)))):
        daily_microstructure(t, b, day)
    label = pd.Series(
        np.random.default_rng(0).normal(size=len(features)), index=features.index, name="label"
    )
    for x, y in ((features, label), (_as_read(features), _as_read(label.to_frame())["label"])):
        for columns in (x.iloc[:, :1], x.iloc[:, :5], x.iloc[:, :5].astype(float)):
            rank_ic_table(_as_read(columns), y, min_names=5)  # one column: C and F at once
            rank_ic_table(columns, y, min_names=5)
    score = label.rename("score")
    for frame in (bars, _as_read(bars)):  # the backtest's kernel, each way it is called
        backtest(score, frame, top_n=3, min_listed_days=0)
        backtest(score, frame, top_n=3, rules=False, costs=False, execution="close")
        actions = pd.DataFrame({"symbol": [universe["symbol"].iloc[0]], "ex_date": [days[-5]],
                                "cash_dividend": [0.1], "bonus_ratio": [0.0], "split_ratio": [1.0]})  # fmt: skip
        backtest(score, frame, top_n=3, execution="vwap", actions=actions)
    signals = pd.DataFrame(
        {"score": [1.0, 2.0], "buyable": True, "holdable": True}, index=["a", "b"]
    )
    select(signals, {"a": 100.0}, set(), top_n=1, n_drop=1)  # the paper book's selection
    return time.perf_counter() - t0


def main() -> None:
    print(f"numba kernels compiled and cached in {warm():.1f} s", flush=True)


if __name__ == "__main__":
    main()
