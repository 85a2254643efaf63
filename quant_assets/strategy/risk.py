"""Risk rules of a target portfolio: hard limits that reject it, soft ones that scale it down.

Hard (a breach rejects the portfolio: no orders, the day's recommendation says "no trade" and
why): the weight of one stock, of one industry, of one board, the liquidity of a position (its
value against the stock's average daily traded value) and the blacklist. Soft (applied, and
noted): a volatility target that scales the invested share down when the predicted volatility
is above it, and a drawdown brake that cuts the invested share while the book is in a deep
drawdown. Every breach and adjustment is recorded with its numbers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

TOLERANCE = 1e-6  # weights at a limit pass (within a solver's tolerance)


@dataclass(frozen=True)
class RiskLimits:
    """The limits; fractions of the book's equity unless said otherwise."""

    max_stock_weight: float = 0.10
    max_industry_weight: float = 0.35
    # boards not named are not limited: a main-board book is the norm
    max_board_weight: tuple[tuple[str, float], ...] = (("chinext", 0.40), ("star", 0.30))
    liquidity_share: float = 0.05  # of the stock's average daily traded value (20 days)
    volatility_target: float | None = 0.30  # annualised
    drawdown_brake: float | None = 0.20  # drawdown beyond which ...
    drawdown_exposure: float = 0.5  # ... the invested share is cut to this
    blacklist: tuple[str, ...] = ()


@dataclass(frozen=True)
class Breach:
    """One broken rule: which, of what, the value and the limit."""

    rule: str
    subject: str
    value: float
    limit: float
    hard: bool = True

    def describe(self) -> str:
        kind = "" if self.hard else " (adjusted)"
        return f"{self.rule} {self.subject}: {self.value:.2%} > {self.limit:.2%}{kind}"

    def as_dict(self) -> dict:
        return asdict(self)


def liquidity_caps(adv: pd.Series, equity: float, limits: RiskLimits) -> pd.Series:
    """The largest weight each stock may take: its share of average daily traded value over
    the book's equity (0 without trading history)."""
    return (adv.fillna(0.0) * limits.liquidity_share / equity).rename("liquidity_cap")


def check_portfolio(
    weights: pd.Series, info: pd.DataFrame, equity: float, limits: RiskLimits
) -> list[Breach]:
    """The hard rules a portfolio (`weights` by symbol) breaks. `info` by symbol holds
    `industry`, `board` and `adv` (average daily traded value, CNY)."""
    w = weights[weights.abs() > 0]
    info = info.reindex(w.index)
    out: list[Breach] = []
    for sym, v in w.items():
        if v > limits.max_stock_weight + TOLERANCE:
            out.append(Breach("max_stock_weight", str(sym), float(v), limits.max_stock_weight))
        if str(sym) in limits.blacklist:
            out.append(Breach("blacklist", str(sym), float(v), 0.0))
    for col, rule, lims in (("industry", "max_industry_weight", limits.max_industry_weight),
                            ("board", "max_board_weight", dict(limits.max_board_weight))):  # fmt: skip
        for group, v in w.groupby(info[col].fillna("unknown")).sum().items():
            lim = lims.get(group, np.inf) if isinstance(lims, dict) else lims
            if v > lim + TOLERANCE:
                out.append(Breach(rule, str(group), float(v), lim))
    caps = liquidity_caps(info["adv"], equity, limits)
    for sym in w.index[(w > caps + TOLERANCE).to_numpy()]:
        out.append(Breach("liquidity", str(sym), float(w[sym]), float(caps[sym])))
    return out


def exposure_scale(
    predicted_vol: float | None, drawdown: float, limits: RiskLimits
) -> tuple[float, list[Breach]]:
    """The share of equity to invest (at most 1) under the soft rules, with what set it."""
    scale, notes = 1.0, []
    vt = limits.volatility_target
    if (
        vt is not None
        and predicted_vol is not None
        and np.isfinite(predicted_vol)
        and predicted_vol > vt
    ):
        scale = vt / predicted_vol
        notes.append(Breach("volatility_target", "book", predicted_vol, vt, hard=False))
    brake = limits.drawdown_brake
    if brake is not None and -drawdown > brake:
        scale = min(scale, limits.drawdown_exposure)
        notes.append(Breach("drawdown_brake", "book", -drawdown, brake, hard=False))
    return scale, notes
