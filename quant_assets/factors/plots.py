"""Plots of a FactorReport (matplotlib, Agg backend): figures in, PNG bytes out.

Only drawing happens here; every number comes from ``evaluation.factor_report``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from quant_assets.plotting import png_markdown, set_margins, to_png

from .evaluation import FactorReport, factor_report


def plot_ic(report: FactorReport, period: int | None = None, window: int = 22) -> Figure:
    """Daily rank IC of one period (default: the shortest) with its rolling mean."""
    period = period if period is not None else min(report.rank_ic.columns)
    ic = report.rank_ic[period]
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.bar(ic.index, ic.to_numpy(), width=1.0, color="steelblue", alpha=0.5, label="rank IC")
    ax.plot(ic.index, ic.rolling(window, min_periods=1).mean(), color="darkred",
            label=f"{window}-day mean")  # fmt: skip
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_title(f"Rank IC, {period}-period forward return (mean {ic.mean():.4f})")
    ax.legend(loc="upper left")
    set_margins(fig)
    return fig


def plot_quantile_returns(report: FactorReport) -> Figure:
    """Mean forward return by quantile, one bar group per period, in basis points."""
    table = report.quantile_returns * 1e4
    fig, ax = plt.subplots(figsize=(8, 4))
    n = len(table.columns)
    width = 0.8 / max(n, 1)
    for i, period in enumerate(table.columns):
        ax.bar(table.index + (i - (n - 1) / 2) * width, table[period], width=width,
               label=f"{period}-period")  # fmt: skip
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xlabel("quantile")
    ax.set_ylabel("mean forward return (bp)")
    ax.set_xticks(list(table.index))
    ax.legend()
    set_margins(fig, left=0.9, top=0.2)
    return fig


def plot_cumulative_spread(report: FactorReport) -> Figure:
    """Compounded top-minus-bottom quantile return of the shortest period."""
    cum = report.cumulative_spread
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.plot(cum.index, cum.to_numpy(), color="darkgreen")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_title("Cumulative top-minus-bottom return")
    set_margins(fig)
    return fig


def report_pngs(report: FactorReport) -> dict[str, bytes]:
    """The three standard plots as {name: PNG bytes}."""
    return {
        "ic": to_png(plot_ic(report)),
        "quantile_returns": to_png(plot_quantile_returns(report)),
        "cumulative_spread": to_png(plot_cumulative_spread(report)),
    }


def write_report_plots(
    factors: dict[str, pd.Series], prices: pd.DataFrame, folder: Path, periods=(1, 5)
) -> str:
    """The report (`factor_report`, five quantiles) of each named factor drawn as its three
    plots, written to `folder` as `<factor>_<plot>.png` and returned as one markdown text (a
    titled image each) for an asset's metadata. Run in the drawing process
    (`quant_assets.plotting.draw`), where the reports are computed too."""
    folder.mkdir(parents=True, exist_ok=True)
    shown = []
    for name, factor in factors.items():
        report = factor_report(factor, prices, periods=periods, quantiles=5)
        for plot, png in report_pngs(report).items():
            (folder / f"{name}_{plot}.png").write_bytes(png)
            shown.append(png_markdown(png, f"{name}: {plot}"))
    return "\n\n".join(shown) or "no factors"
