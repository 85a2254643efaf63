"""The daily HTML report: today's recommendations and the realised track record, with a plot."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from quant_assets.plotting import set_margins, to_png


def equity_curve_png(perf: pd.DataFrame) -> bytes:
    """PNG of the compounded portfolio and universe curves."""
    fig, ax = plt.subplots(figsize=(8, 3.5), dpi=100)
    (1 + perf).cumprod().plot(ax=ax)
    ax.set_title("Realised returns of the daily top-N, bought at the next open (before costs)")
    ax.set_ylabel("growth of 1")
    ax.grid(alpha=0.3)
    set_margins(fig, bottom=0.8)  # pandas' date axis: days above months
    return to_png(fig)


def render_daily_report(
    day: str,
    for_day: str,
    recommendations: pd.DataFrame,
    perf: pd.DataFrame,
    summary: dict,
    plot: bytes | None = None,
) -> str:
    """A self-contained HTML page; the track record's plot (`equity_curve_png(perf)`, drawn
    here unless given) is embedded."""
    parts = [
        f"<html><head><meta charset='utf-8'><title>Recommendations {html.escape(for_day)}</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}</style></head><body>",
        f"<h1>Recommendations for {html.escape(for_day)}</h1>",
        f"<p>Signals computed after the close of {html.escape(day)}.</p>",
        recommendations.to_html(index=False, float_format=lambda v: f"{v:.4f}"),
    ]
    if len(perf) >= 2:
        png = base64.b64encode(plot or equity_curve_png(perf)).decode()
        stats = pd.Series(summary, name="value").to_frame()
        parts += [
            f"<h2>Track record ({len(perf)} days)</h2>",
            f"<img src='data:image/png;base64,{png}'/>",
            stats.to_html(float_format=lambda v: f"{v:.4f}"),
        ]
    parts.append("</body></html>")
    return "\n".join(parts)


def write_daily_report(
    path: Path,
    day: str,
    for_day: str,
    recommendations: pd.DataFrame,
    perf: pd.DataFrame,
    summary: dict,
) -> bytes | None:
    """Write the day's report to `path` and return its track-record plot (None before the
    second realised day). Run in the drawing process (`quant_assets.plotting.draw`)."""
    png = equity_curve_png(perf) if len(perf) >= 2 else None
    path.parent.mkdir(parents=True, exist_ok=True)
    page = render_daily_report(day, for_day, recommendations, perf, summary, png)
    path.write_text(page, encoding="utf-8")
    return png
