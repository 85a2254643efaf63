"""The performance report's plots, each a function from its data to PNG bytes."""

from __future__ import annotations

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import PercentFormatter

from quant_assets.plotting import set_margins, to_png

SIZE = (8, 3.2)
ROLLING_DAYS = 60


def _axes(title: str, size=SIZE, dates: bool = True):
    fig, ax = plt.subplots(figsize=size, dpi=100)
    ax.set_title(title, fontsize=11)
    ax.grid(alpha=0.3)
    if dates:  # short labels that never collide: 2024, Feb, Mar, ...
        locator = mdates.AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    return fig, ax


def cumulative_png(after: pd.Series, before: pd.Series, benchmark: pd.Series) -> bytes:
    """Growth of 1 after costs, before costs and of the equal-weighted universe."""
    fig, ax = _axes("Cumulative return: the paper book against the equal-weighted universe")
    for s, style in ((before, ":"), (after, "-"), (benchmark.reindex(after.index), "--")):
        ax.plot(s.index, (1 + s.fillna(0)).cumprod() - 1, style, label=s.name)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.legend(fontsize=8)
    set_margins(fig, bottom=0.6)
    return to_png(fig)


def drawdown_png(returns: pd.Series) -> bytes:
    wealth = (1 + returns.fillna(0)).cumprod()
    dd = wealth / np.maximum(wealth.cummax(), 1.0) - 1
    fig, ax = _axes("Drawdown after costs")
    ax.fill_between(dd.index, dd.to_numpy(), 0, color="tab:red", alpha=0.4)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    set_margins(fig, bottom=0.6)
    return to_png(fig)


def monthly_png(returns: pd.Series) -> bytes:
    """Compounded return of each month, years by months."""
    m = (1 + returns).groupby([returns.index.year, returns.index.month]).prod() - 1
    table = m.unstack().reindex(columns=range(1, 13))
    fig, ax = _axes(
        "Monthly returns after costs", size=(8, 0.9 + 0.45 * max(len(table), 1)), dates=False
    )
    lim = max(
        float(np.nanmax(np.abs(table.to_numpy()))) if table.notna().any().any() else 0.01, 0.01
    )
    ax.imshow(table.to_numpy(float), cmap="RdYlGn", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(range(12), ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep",
                              "Oct", "Nov", "Dec"], fontsize=8)  # fmt: skip
    ax.set_yticks(range(len(table)), [str(y) for y in table.index], fontsize=8)
    ax.grid(False)
    for (i, j), v in np.ndenumerate(table.to_numpy(float)):
        if np.isfinite(v):
            ax.text(j, i, f"{v:.1%}", ha="center", va="center", fontsize=7)
    set_margins(fig, left=0.6, bottom=0.35)
    return to_png(fig)


def rolling_sharpe_png(returns: pd.Series, days: int = ROLLING_DAYS) -> bytes:
    r = returns.rolling(days, min_periods=days)
    sharpe = r.mean() / r.std() * np.sqrt(252)
    fig, ax = _axes(f"Rolling Sharpe ratio ({days} trading days, annualised)")
    ax.plot(sharpe.index, sharpe.to_numpy())
    ax.axhline(0, color="black", lw=0.8)
    set_margins(fig, bottom=0.6)
    return to_png(fig)


def turnover_png(turnover: pd.Series) -> bytes:
    fig, ax = _axes("Daily turnover (one side, share of equity)")
    ax.bar(turnover.index, turnover.to_numpy(), width=1.0)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    set_margins(fig, bottom=0.6)
    return to_png(fig)


def exposure_png(exposure: pd.DataFrame) -> bytes:
    fig, ax = _axes("Exposure by industry (share of equity)", size=(8, 3.8))
    if not exposure.empty:
        top = exposure.mean().sort_values(ascending=False).index
        ax.stackplot(exposure.index, exposure[top].to_numpy().T, labels=list(top))
        ax.legend(fontsize=6, ncol=2, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    set_margins(fig, right=2.4, bottom=0.6)
    return to_png(fig)


def ic_png(ic: pd.Series, days: int = 20) -> bytes:
    fig, ax = _axes("The model's daily rank IC (bars) and its 20-day mean")
    ax.bar(ic.index, ic.to_numpy(), width=1.0, alpha=0.5)
    ax.plot(ic.index, ic.rolling(days, min_periods=5).mean().to_numpy(), color="black")
    ax.axhline(0, color="black", lw=0.8)
    set_margins(fig, bottom=0.6)
    return to_png(fig)


def quantile_png(quantiles: pd.Series) -> bytes:
    fig, ax = _axes(
        "Mean next-day return by score quintile (1 = lowest scores)", size=(6, 3), dates=False
    )
    ax.bar([str(q) for q in quantiles.index], quantiles.to_numpy() * 1e4)
    ax.set_ylabel("basis points")
    ax.axhline(0, color="black", lw=0.8)
    set_margins(fig)
    return to_png(fig)


def holdings_png(weights: pd.Series) -> bytes:
    """Today's positions by weight, labelled with the stocks' names."""
    w = weights.sort_values()
    fig, ax = _axes(
        "Positions after today's close", size=(6, 0.8 + 0.28 * max(len(w), 1)), dates=False
    )
    ax.barh(list(w.index), w.to_numpy())
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.tick_params(axis="y", labelsize=8)
    set_margins(fig, left=1.9, bottom=0.4)
    return to_png(fig)
