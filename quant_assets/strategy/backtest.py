"""`backtest`: scores in; daily returns, positions, trades and a summary out (DESIGN.md section 6).

Usable from a notebook without Dagster. A score of day t is known after t's close, so its
orders fill at the next day's open or VWAP (`execution="open"|"vwap"`); `execution="close"`
fills at the close the score was computed from, the frictionless reference of the contract.

With `rules=True` the book follows the A-share rules of `execution.py` and selects with
hysteresis (TopkDropout, at most `n_drop` names replaced a day, default top_n // 10) among the
names it may buy on the day of the score: not suspended, not ST (`exclude_st`), listed at least
`min_listed_days`, not blacklisted. With `rules=False` it holds the `top_n` best names with a
bar on the score day and the next at equal weights, rebalanced every day, in fractional
shares. `costs=True` charges `Costs()`, a `Costs` charges its own rates, False nothing.
Left out: the no-limit first days of a new listing (excluded by `min_listed_days` anyway) and
the tax on dividends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from quant_assets.market.rules import ST_LIMIT_PCT
from quant_assets.strategy.costs import Costs
from quant_assets.strategy.engine import TRADE_REASONS, simulate
from quant_assets.strategy.execution import BLOCK_REASONS
from quant_assets.strategy.market_panel import MarketPanel, market_panel
from quant_assets.strategy.metrics import performance_summary

Execution = Literal["open", "vwap", "close"]


@dataclass(frozen=True)
class BacktestConfig:
    """Everything `backtest` takes besides its named arguments (`**config`)."""

    n_drop: int | None = None  # None: top_n // 10 with the rules; -1: rebalance daily
    exclude_st: bool = True
    min_listed_days: int = 60
    blacklist: tuple[str, ...] = ()
    initial_cash: float = 10_000_000.0
    actions: pd.DataFrame | None = None  # symbol, ex_date, cash_dividend, bonus_ratio, split_ratio
    boards: pd.Series | None = None  # by symbol; default from the code
    list_dates: pd.Series | None = None  # by symbol
    industries: pd.Series | None = None  # by symbol, for the exposure figures
    benchmark: pd.Series | None = None  # daily returns; default the equal-weight universe


@dataclass
class BacktestResult:
    """Daily `returns` (after `costs`), `equity` and `cash` (CNY), `positions`, `trades`, the
    orders that could not fill (`unfilled`), the `benchmark` and the `summary`."""

    returns: pd.Series
    equity: pd.Series
    cash: pd.Series
    turnover: pd.Series
    positions: pd.DataFrame
    trades: pd.DataFrame
    unfilled: pd.DataFrame
    benchmark: pd.Series
    summary: dict = field(default_factory=dict)


def _score_panel(scores: pd.Series | pd.DataFrame, panel: MarketPanel) -> np.ndarray:
    s = scores.iloc[:, 0] if isinstance(scores, pd.DataFrame) else scores
    if not isinstance(s.index, pd.MultiIndex) or s.index.nlevels != 2:
        raise ValueError("scores must be indexed by (date, symbol)")
    d, c = panel.locate(s.index)
    ok = (d >= 0) & (c >= 0)
    out = np.full(panel.shape, np.nan)
    out[d[ok], c[ok]] = s.to_numpy(dtype=float)[ok]
    return out


def backtest(
    scores: pd.Series | pd.DataFrame,
    bars: pd.DataFrame,
    top_n: int = 50,
    rules: bool = True,
    costs: bool | Costs = True,
    execution: Execution = "open",
    **config,
) -> BacktestResult:
    """Trade the `top_n` best-scored stocks of `bars` (unadjusted daily bars in the landing
    file's columns); see the module's docstring for the rules."""
    if execution not in ("open", "vwap", "close"):
        raise ValueError(f"execution must be 'open', 'vwap' or 'close', got {execution!r}")
    cfg = BacktestConfig(**config)
    panel = market_panel(bars)
    score = _score_panel(scores, panel)
    fee = costs if isinstance(costs, Costs) else Costs() if costs else Costs.free()
    has_bar, suspended, st = panel.has_bar, panel.suspended, panel.st
    active = has_bar & ~suspended
    if rules:
        holdable = ~(st & cfg.exclude_st) if cfg.exclude_st else np.ones(panel.shape, bool)
        if cfg.blacklist:
            holdable &= ~panel.symbols.isin(list(cfg.blacklist))[None, :]
        eligible = active & holdable & (panel.listed_days(cfg.list_dates) >= cfg.min_listed_days)
        tradable = active
        n_drop = max(1, top_n // 10) if cfg.n_drop is None else cfg.n_drop
    else:
        eligible = has_bar & np.vstack([has_bar[1:], np.zeros((1, panel.shape[1]), bool)])
        holdable = tradable = has_bar
        n_drop = -1
    close = panel.column("close")
    if execution == "open":
        price = low = high = panel.column("open")
    elif execution == "vwap":
        price, low, high = panel.vwap, panel.column("low"), panel.column("high")
    else:
        price = low = high = close
    pct, st_applies = panel.limit_pcts(cfg.boards)
    if cfg.actions is not None:
        growth, cash_per_share = panel.actions_arrays(cfg.actions)
    else:
        growth = cash_per_share = np.ones((1, 1))
    capacity = panel.shape[0] * (2 * top_n + 2 * max(n_drop, 0) + 4) + 1024
    while True:
        out = simulate(
            score, eligible, holdable, price, low, high, close, panel.column("preclose"),
            tradable, active, pct, st_applies, st, ST_LIMIT_PCT, cfg.actions is None, growth,
            cash_per_share, fee.stamp_rates(panel.dates), rules and cfg.actions is not None,
            top_n, n_drop, execution == "close", rules, rules, rules, fee.commission,
            fee.min_commission * 100.0, fee.transfer_fee, fee.slippage,
            cfg.initial_cash * 100.0, capacity,
        )  # fmt: skip
        equity, cash, traded, universe, tr_i, tr_f, n_tr, pos_i, pos_f, n_pos, un, n_un = out
        if max(n_tr, n_pos, n_un) <= capacity:
            break
        capacity = max(n_tr, n_pos, n_un)
    bench = pd.Series(universe, index=panel.dates) if cfg.benchmark is None else cfg.benchmark
    return _result(panel, score, cfg, equity, cash, traded, bench, tr_i[:n_tr], tr_f[:n_tr],
                   pos_i[:n_pos], pos_f[:n_pos], un[:n_un])  # fmt: skip


def _result(
    panel, score, cfg, equity, cash, traded, bench, tr_i, tr_f, pos_i, pos_f, un
) -> BacktestResult:
    dates, symbols = panel.dates, panel.symbols
    scored = np.flatnonzero(np.isfinite(score).any(axis=1))
    first = scored[0] if len(scored) else len(dates) - 1
    eq = pd.Series(equity / 100.0, index=dates, name="equity")
    returns = eq.pct_change().iloc[first + 1 :].rename("return")
    live = dates[first + 1 :]
    trades = pd.DataFrame(
        {
            "date": dates[tr_i[:, 0]],
            "symbol": symbols[tr_i[:, 1]],
            "side": np.where(tr_i[:, 2] > 0, "buy", "sell"),
            "shares": tr_f[:, 0],
            "price": tr_f[:, 1] / 100.0,
            "value": tr_f[:, 0] * tr_f[:, 1] / 100.0,
            "commission": tr_f[:, 2] / 100.0,
            "stamp_duty": tr_f[:, 3] / 100.0,
            "transfer_fee": tr_f[:, 4] / 100.0,
            "reason": pd.Series(tr_i[:, 3]).map(TRADE_REASONS).to_numpy(),
        }
    )
    positions = pd.DataFrame(
        {
            "date": dates[pos_i[:, 0]],
            "symbol": symbols[pos_i[:, 1]],
            "shares": pos_f[:, 0],
            "value": pos_f[:, 1] / 100.0,
        }
    )
    positions["weight"] = positions["value"] / eq.reindex(positions["date"]).to_numpy()
    unfilled = pd.DataFrame(
        {
            "date": dates[un[:, 0]],
            "symbol": symbols[un[:, 1]],
            "side": np.where(un[:, 2] > 0, "buy", "sell"),
            "reason": pd.Series(un[:, 3]).map(BLOCK_REASONS).to_numpy(),
        }
    )
    prev = eq.shift(1).reindex(live)
    turnover = (pd.Series(traded / 100.0, index=dates).reindex(live) / (2 * prev)).rename(
        "turnover"
    )
    bench = bench.reindex(live).rename("benchmark")
    summary = (
        performance_summary(
            returns,
            bench,
            positions=positions,
            trades=trades,
            turnover=turnover,
            industries=cfg.industries,
        )  # fmt: skip
        if len(returns) >= 2
        else {}
    )
    return BacktestResult(
        returns=returns,
        equity=eq.loc[live],
        cash=pd.Series(cash / 100.0, index=dates, name="cash").loc[live],
        turnover=turnover,
        positions=positions,
        trades=trades,
        unfilled=unfilled,
        benchmark=bench,
        summary=summary,
    )
