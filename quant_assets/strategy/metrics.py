"""Performance statistics of a daily return series, with empyrical's definitions (252 days/year)."""

from __future__ import annotations

import numpy as np
import pandas as pd

PERIODS_PER_YEAR = 252


def max_drawdown(returns: pd.Series) -> float:
    """Largest peak-to-trough fall of the compounded curve, counting the start (1.0) as a peak."""
    wealth = np.concatenate([[1.0], np.cumprod(1.0 + returns.to_numpy(dtype=float))])
    peak = np.maximum.accumulate(wealth)
    return float(np.min(wealth / peak - 1.0))


def performance_summary(
    returns: pd.Series,
    benchmark: pd.Series | None = None,
    *,
    positions: pd.DataFrame | None = None,
    trades: pd.DataFrame | None = None,
    turnover: pd.Series | None = None,
    industries: pd.Series | None = None,
) -> dict[str, float]:
    """Annual return (compounded), volatility, Sharpe, Sortino, max drawdown and Calmar; with a
    benchmark also the excess annual return (mean daily excess x 252, as Qlib reports it) and the
    information ratio (mean over std of daily excess returns, annualised by sqrt(252)).

    With a book's `positions` and `trades` (as `backtest` returns them) also what a PM reads
    of its trading (`trading_figures`)."""
    r = returns.dropna().astype(float)
    n = len(r)
    if n < 2:
        raise ValueError(f"need at least two returns, got {n}")
    ann = PERIODS_PER_YEAR
    annual_return = float(np.prod(1.0 + r) ** (ann / n) - 1.0)
    std = float(r.std(ddof=1))
    downside = float(np.sqrt(np.mean(np.minimum(r, 0.0) ** 2)) * np.sqrt(ann))
    mdd = max_drawdown(r)
    out = {
        "annual_return": annual_return,
        "annual_volatility": std * np.sqrt(ann),
        "sharpe": float(r.mean() / std * np.sqrt(ann)) if std > 0 else np.nan,
        "sortino": float(r.mean() * ann / downside) if downside > 0 else np.inf,
        "max_drawdown": mdd,
        "calmar": float(annual_return / abs(mdd)) if mdd < 0 else np.nan,
    }
    if benchmark is not None:
        excess = (r - benchmark.reindex(r.index).astype(float)).dropna()
        ex_std = float(excess.std(ddof=1))
        out["excess_annual_return"] = float(excess.mean() * ann)
        out["information_ratio"] = (
            float(excess.mean() / ex_std * np.sqrt(ann)) if ex_std > 0 else np.nan
        )
    if positions is not None and trades is not None:
        out.update(trading_figures(positions, trades, turnover, industries))
    return out


def holding_spells(positions: pd.DataFrame, days: pd.DatetimeIndex | None = None) -> pd.DataFrame:
    """Each unbroken stretch of `days` (default: the positions' dates) a symbol was held:
    symbol, first and last day's position in `days`, start, end, length, and whether it was
    still open on the last day."""
    if days is None:
        days = pd.DatetimeIndex(sorted(positions["date"].unique()))
    p = positions[["date", "symbol"]].sort_values(["symbol", "date"])
    k = days.get_indexer(p["date"])
    sym = p["symbol"].to_numpy()
    new = np.ones(len(p), bool)
    new[1:] = (sym[1:] != sym[:-1]) | (k[1:] != k[:-1] + 1)
    g = pd.DataFrame({"symbol": sym, "k": k, "spell": np.cumsum(new)}).groupby("spell")
    out = g.agg(symbol=("symbol", "first"), first=("k", "min"), last=("k", "max"))
    out["days"] = out["last"] - out["first"] + 1
    out["open"] = out["last"] == len(days) - 1
    out["start"], out["end"] = days[out["first"]], days[out["last"]]
    return out.reset_index(drop=True)


def spell_pnl(spells: pd.DataFrame, trades: pd.DataFrame, days: pd.DatetimeIndex) -> pd.Series:
    """Net cash of each holding spell's trades (sells in, buys and fees out), by spell. A trade
    on day k belongs to its symbol's spell held from `first` <= k to `last` + 1 (the day of the
    sale that ended it)."""
    fees = trades[["commission", "stamp_duty", "transfer_fee"]].sum(axis=1)
    flows = pd.DataFrame({
        "symbol": trades["symbol"].astype(str).to_numpy(),
        "k": days.get_indexer(trades["date"]),
        "cash": np.where(trades["side"] == "sell", 1.0, -1.0) * trades["value"] - fees,
    }).sort_values("k")  # fmt: skip
    sp = spells.assign(spell=np.arange(len(spells)), symbol=spells["symbol"].astype(str))
    m = pd.merge_asof(flows, sp.sort_values("first")[["symbol", "first", "last", "spell"]],
                      left_on="k", right_on="first", by="symbol")  # fmt: skip
    m = m[m["k"] <= m["last"] + 1]
    return m.groupby("spell")["cash"].sum()


def trading_figures(
    positions: pd.DataFrame,
    trades: pd.DataFrame,
    turnover: pd.Series | None = None,
    industries: pd.Series | None = None,
) -> dict[str, float]:
    """Mean daily turnover (one side: traded value over twice the equity), the hit rate (share
    of closed holdings whose sales brought more than their buys and fees cost; dividends paid in
    cash are not counted), the average holding period in trading days, the mean number of
    names, the total fees, and with `industries` (by symbol) the mean weight per industry
    (`exposure_<industry>`)."""
    out: dict[str, float] = {}
    if turnover is not None and len(turnover):
        out["turnover"] = float(turnover.mean())
    out["fees"] = float(trades[["commission", "stamp_duty", "transfer_fee"]].to_numpy().sum())
    if len(positions):
        days = pd.DatetimeIndex(np.union1d(positions["date"].to_numpy(), trades["date"].to_numpy()))
        spells = holding_spells(positions, days)
        out["holding_days"] = float(spells["days"].mean())
        out["names_held"] = float(positions.groupby("date").size().mean())
        pnl = spell_pnl(spells, trades, days).reindex(np.flatnonzero(~spells["open"]))
        out["hit_rate"] = float((pnl > 0).mean()) if pnl.notna().any() else np.nan
    if industries is not None and len(positions):
        ind = positions["symbol"].map(industries).fillna("unknown")
        daily = positions.assign(industry=ind).groupby(["date", "industry"])["weight"].sum()
        mean = daily.unstack(fill_value=0.0).mean()
        out.update({f"exposure_{k}": float(v) for k, v in mean.items()})
    return out
