"""The market context of a day, in numbers a researcher or an LLM can read: the regime
(market return, volatility, trend, breadth, dispersion), the sectors' moves, and which
factors worked over the last weeks and which decayed lately. Everything is known at the
day's close."""

from __future__ import annotations

import numpy as np
import pandas as pd

from quant_assets.factors.screening import rank_ic_table

CONTEXT_COLUMNS = ["date", "section", "item", "metric", "value"]
REGIME_DAYS = 20  # the short window of the regime statistics
TOP_FACTORS = 10


def _rows(day: pd.Timestamp, section: str, table: pd.DataFrame) -> pd.DataFrame:
    """A wide table (index: item, columns: metrics) as context rows."""
    long = table.rename_axis("item").reset_index().melt("item", var_name="metric")
    long.insert(0, "section", section)
    long.insert(0, "date", day)
    return long[CONTEXT_COLUMNS]


def regime(close: pd.DataFrame) -> pd.DataFrame:
    """Market statistics of the newest day from closes (dates x symbols): equal-weight market
    return on the day and over 5 and 20 days, its 20-day volatility (annualised), the share of
    stocks up on the day and above their 20-day mean, and the cross-sectional dispersion."""
    ret = close.pct_change(fill_method=None)
    market = ret.mean(axis=1)
    last = ret.iloc[-1]
    above = (close.iloc[-1] > close.tail(REGIME_DAYS).mean()).where(close.iloc[-1].notna())
    stats = {
        "return_1d": market.iloc[-1],
        "return_5d": (1 + market.tail(5)).prod() - 1,
        "return_20d": (1 + market.tail(REGIME_DAYS)).prod() - 1,
        "volatility_20d": market.tail(REGIME_DAYS).std() * np.sqrt(252),
        "share_up": (last > 0).sum() / max(last.notna().sum(), 1),
        "share_above_ma20": above.mean(),
        "dispersion": last.std(),
    }
    return pd.DataFrame({"level": stats}).rename_axis("item")


def sector_moves(close: pd.DataFrame, industry: pd.Series) -> pd.DataFrame:
    """Per industry: mean stock return on the day and over 5 and 20 days, and its stocks."""
    ret = close.pct_change(fill_method=None)
    grouped = industry.reindex(close.columns)
    out = pd.DataFrame(
        {
            "return_1d": ret.iloc[-1].groupby(grouped).mean(),
            "return_5d": (close.iloc[-1] / close.iloc[-6] - 1).groupby(grouped).mean()
            if len(close) > 5
            else np.nan,
            "return_20d": (close.iloc[-1] / close.iloc[-REGIME_DAYS - 1] - 1)
            .groupby(grouped)
            .mean()
            if len(close) > REGIME_DAYS
            else np.nan,
            "stocks": grouped.value_counts(),
        }
    )
    return out.sort_values("return_5d", ascending=False)


def factor_health(panel: pd.DataFrame, label: pd.Series, recent: int = REGIME_DAYS) -> pd.DataFrame:
    """Per factor of `panel` (indexed by date, symbol): its mean daily rank IC with `label`
    over the whole window and over the `recent` newest days, and `decay` = 1 - |IC recent| /
    |IC window| (positive: weaker lately). The strongest over the window first."""
    daily = rank_ic_table(panel, label).dropna(how="all")
    if daily.empty:
        return pd.DataFrame(columns=["rank_ic", "rank_ic_recent", "decay"])
    whole, lately = daily.mean(), daily.tail(recent).mean()
    out = pd.DataFrame({"rank_ic": whole, "rank_ic_recent": lately})
    out["decay"] = 1 - lately.abs() / whole.abs()
    out = out.reindex(whole.abs().sort_values(ascending=False).index)
    return out.head(TOP_FACTORS)


def market_context(
    day: pd.Timestamp,
    bars: pd.DataFrame,
    universe: pd.DataFrame,
    factors: pd.DataFrame,
    label: pd.Series,
) -> pd.DataFrame:
    """The day's context rows (CONTEXT_COLUMNS) from adjusted bars up to the day (date,
    symbol, close), the day's universe (symbol, industry), and factor values (a panel indexed
    by date, symbol) with the label known by the day."""
    close = bars.pivot(index="date", columns="symbol", values="close").sort_index()
    close = close[close.index <= day]
    industry = universe.set_index("symbol")["industry"]
    parts = [
        _rows(day, "regime", regime(close)),
        _rows(day, "sector", sector_moves(close, industry)),
    ]
    health = factor_health(factors, label)
    if len(health):
        parts.append(_rows(day, "factor", health))
    return pd.concat(parts, ignore_index=True).astype({"value": "float64"})


def describe(context: pd.DataFrame) -> list[str]:
    """The context as short lines for a prompt (numbers only; no free text of any source)."""
    lines = []
    regime_rows = context[context["section"] == "regime"]
    if len(regime_rows):
        lines.append(
            "market: " + ", ".join(f"{r.item} {r.value:+.4f}" for r in regime_rows.itertuples())
        )
    sectors = context[(context["section"] == "sector") & (context["metric"] == "return_5d")]
    if len(sectors):
        ranked = sectors.sort_values("value", ascending=False)
        lines.append(
            "sectors, 5-day return: "
            + ", ".join(f"{r.item} {r.value:+.3f}" for r in ranked.itertuples())
        )
    factors = context[(context["section"] == "factor") & (context["metric"] == "rank_ic")]
    if len(factors):
        factors = factors.reindex(factors["value"].abs().sort_values(ascending=False).index)
        lines.append(
            "factors, rank IC over the last weeks: "
            + ", ".join(f"{r.item} {r.value:+.4f}" for r in factors.itertuples())
        )
    decayed = context[(context["section"] == "factor") & (context["metric"] == "decay")]
    decayed = decayed[decayed["value"] > 0.5]
    if len(decayed):
        lines.append("decayed lately (IC down by half or more): " + ", ".join(decayed["item"]))
    return lines
