"""The performance report: one self-contained HTML page for a portfolio manager.

Figures are named and formatted for people. A short history says so instead of annualising:
under `ANNUALISE_MIN_DAYS` trading days the page shows cumulative figures only. Results after
costs stand next to the same figures before costs. The plots are embedded (no file or network
needed to open the page).
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from quant_assets.reports import figures as F
from quant_assets.reports.book_history import BookHistory
from quant_assets.strategy.metrics import max_drawdown, performance_summary

ANNUALISE_MIN_DAYS = 126  # half a trading year

_PCT, _NUM = "{:.2%}", "{:.2f}"
# key of performance_summary -> (label, format); the annualised ones are left out of a short history
ANNUALISED = {
    "annual_return": ("Annual return", _PCT),
    "excess_annual_return": ("Excess return over the universe, annual", _PCT),
    "annual_volatility": ("Annual volatility", _PCT),
    "sharpe": ("Sharpe ratio", _NUM),
    "sortino": ("Sortino ratio", _NUM),
    "information_ratio": ("Information ratio", _NUM),
    "calmar": ("Calmar ratio", _NUM),
}
ALWAYS = {
    "total_return": ("Total return", _PCT),
    "excess_total_return": ("Total return in excess of the universe", _PCT),
    "max_drawdown": ("Maximum drawdown", _PCT),
    "turnover": ("Turnover a day (one side)", _PCT),
    "hit_rate": ("Hit rate (closed positions that made money)", "{:.0%}"),
    "holding_days": ("Average holding period (trading days)", "{:.1f}"),
    "names_held": ("Names held on average", "{:.1f}"),
    "fees": ("Fees paid (CNY)", "{:,.2f}"),
}


@dataclass
class ReportData:
    """What the page shows (small frames: they travel to the drawing process)."""

    day: str
    for_day: str
    status: str
    history: BookHistory
    benchmark: pd.Series
    exposure: pd.DataFrame
    ic: pd.Series
    quantiles: pd.Series
    recommendations: pd.DataFrame  # shown as is
    holdings: pd.Series  # weight by "name (symbol)"
    notes: list[str]


def key_figures(data: ReportData) -> tuple[pd.DataFrame, dict[str, float], str | None]:
    """The table of figures (after and before costs), the raw after-costs figures, and the
    note on a short history (None when the history is long enough to annualise)."""
    h = data.history
    n = len(h.returns)
    if n < 2:
        return pd.DataFrame(columns=["Figure", "After costs", "Before costs"]), {}, (
            f"{n} trading day(s) of history: no figures yet.")  # fmt: skip
    bench = data.benchmark.reindex(h.returns.index)
    raw = {}
    for name, r in (("after", h.returns), ("before", h.returns_before_costs)):
        s = performance_summary(r, bench, positions=h.positions, trades=h.trades,
                                turnover=h.turnover)  # fmt: skip
        s["total_return"] = float(np.prod(1 + r.fillna(0)) - 1)
        s["excess_total_return"] = s["total_return"] - float(np.prod(1 + bench.fillna(0)) - 1)
        s["max_drawdown"] = max_drawdown(r.fillna(0))
        raw[name] = s
    short = n < ANNUALISE_MIN_DAYS
    shown = dict(ALWAYS) if short else {**ANNUALISED, **ALWAYS}
    rows = []
    for key, (label, fmt) in shown.items():
        a, b = raw["after"].get(key), raw["before"].get(key)
        cost_free = key in ("fees", "turnover", "hit_rate", "holding_days", "names_held")
        rows.append((label, _fmt(a, fmt), "" if cost_free else _fmt(b, fmt)))
    note = (f"Only {n} trading days of history: annualised figures (return, volatility, Sharpe, "
            "information ratio) would mislead over so short a sample and are not shown; the "
            "figures are totals over the period.") if short else None  # fmt: skip
    return pd.DataFrame(rows, columns=["Figure", "After costs", "Before costs"]), raw["after"], note


def _fmt(v, fmt: str) -> str:
    return "n/a" if v is None or not np.isfinite(v) else fmt.format(v)


def draw_figures(data: ReportData) -> dict[str, bytes]:
    h = data.history
    out = {}
    if len(h.returns) >= 2:
        out["Cumulative return"] = F.cumulative_png(h.returns, h.returns_before_costs,
                                                    data.benchmark.rename("universe"))  # fmt: skip
        out["Drawdown"] = F.drawdown_png(h.returns)
        out["Monthly returns"] = F.monthly_png(h.returns)
        window = F.ROLLING_DAYS if len(h.returns) >= 2 * F.ROLLING_DAYS else 20
        if len(h.returns) > window:
            out["Rolling Sharpe"] = F.rolling_sharpe_png(h.returns, window)
        out["Turnover"] = F.turnover_png(h.turnover)
    if not data.exposure.empty:
        out["Exposure by industry"] = F.exposure_png(data.exposure)
    if len(data.holdings):
        out["Positions"] = F.holdings_png(data.holdings)
    if len(data.ic):
        out["Rank IC over time"] = F.ic_png(data.ic)
    if len(data.quantiles):
        out["Quantile returns"] = F.quantile_png(data.quantiles)
    return out


# column -> (heading, format); numbers are right-aligned
RECOMMENDATION_COLUMNS = {
    "rank": ("Rank", "{:.0f}"), "symbol": ("Symbol", None), "name": ("Name", None),
    "industry": ("Industry", None), "action": ("Action", None), "weight": ("Weight", "{:.1%}"),
    "shares": ("Shares", "{:,.0f}"), "score": ("Score", "{:.2f}"),
    "probability": ("Probability of the top quintile", "{:.0%}"),
    "confidence": ("Confidence", "{:.0%}"), "reason": ("Reason", None),
    "risk_note": ("Risk notes", None),
}  # fmt: skip


def table_html(frame: pd.DataFrame, columns: dict[str, tuple[str, str | None]]) -> str:
    """An HTML table with people's headings and formats; numbers right-aligned."""
    esc = html.escape
    shown = [c for c in columns if c in frame.columns]
    head = "".join(f"<th>{esc(columns[c][0])}</th>" for c in shown)
    rows = []
    for _, r in frame.iterrows():
        cells = []
        for c in shown:
            fmt, v = columns[c][1], r[c]
            if fmt is None:
                cells.append(f"<td>{esc('' if pd.isna(v) else str(v))}</td>")
            else:
                text = "" if pd.isna(v) else fmt.format(v)
                cells.append(f"<td class='num'>{esc(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def embedded_font(text: str) -> str:
    """A CSS @font-face with Noto Sans CJK SC cut down to the page's Chinese characters (a
    few kB): the names render on a machine without a Chinese font. Empty when there are none
    or the font is not installed."""
    chars = sorted({ch for ch in text if ord(ch) > 0x2E7F})
    if not chars:
        return ""
    try:
        import io

        import mplfonts
        from fontTools import subset
    except ImportError:  # pragma: no cover - dependencies of the project
        return ""
    font = Path(mplfonts.__file__).parent / "fonts" / "NotoSansCJKsc-Regular.otf"
    if not font.exists():
        return ""
    options = subset.Options()
    cut = subset.load_font(str(font), options)
    subsetter = subset.Subsetter(options)
    subsetter.populate(text="".join(chars))
    subsetter.subset(cut)
    buf = io.BytesIO()
    subset.save_font(cut, buf, options)
    data = base64.b64encode(buf.getvalue()).decode()
    return (f"@font-face{{font-family:'Report CJK';"
            f"src:url(data:font/otf;base64,{data}) format('opentype')}}")  # fmt: skip


def render(data: ReportData, pngs: dict[str, bytes]) -> str:
    table, _, note = key_figures(data)
    esc = html.escape
    recs = table_html(data.recommendations, RECOMMENDATION_COLUMNS)
    notes = " ".join(data.notes)
    font = embedded_font(recs + notes)
    # Chromium draws the first run of text that needs an embedded font before the font is
    # decoded (empty boxes) and the later runs with it: an off-screen character takes the hit
    warm = next((ch for ch in recs + notes if ord(ch) > 0x2E7F), "") if font else ""
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Performance report {esc(data.day)}</title><style>"
        f"{font}.warm{{font-family:'Report CJK';position:absolute;left:-9999px}}"
        "body{font-family:Arial,'Liberation Sans','Report CJK',sans-serif;margin:2em;"
        "max-width:75em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}td{white-space:nowrap}td.num{text-align:right}"
        ".note{color:#8a5a00}img{max-width:100%;display:block;margin:1em 0}"
        "</style></head><body>",
        f"<span class='warm' aria-hidden='true'>{warm}</span>" if warm else "",
        f"<h1>Paper book after the close of {esc(data.day)}</h1>",
        f"<p>Orders for {esc(data.for_day)}: <b>{esc(data.status)}</b></p>",
    ]
    parts += [f"<p class='note'>{esc(n)}</p>" for n in data.notes]
    parts.append("<h2>Recommendations</h2>")
    parts.append(recs)
    parts.append("<h2>Key figures</h2>")
    if note:
        parts.append(f"<p class='note'>{esc(note)}</p>")
    parts.append(table_html(table, {"Figure": ("Figure", None), "After costs": ("After costs", "{}"),
                                    "Before costs": ("Before costs", "{}")}))  # fmt: skip
    for title, png in pngs.items():
        parts.append(f"<h2>{esc(title)}</h2><img alt='{esc(title)}' "
                     f"src='data:image/png;base64,{base64.b64encode(png).decode()}'/>")  # fmt: skip
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(path: Path, data: ReportData) -> bytes | None:
    """Draw the plots, write the page to `path`; returns the cumulative-return plot (for the
    asset's metadata) when there is one. Runs in the drawing process."""
    pngs = draw_figures(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(data, pngs), encoding="utf-8")
    return pngs.get("Cumulative return")
