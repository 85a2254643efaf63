"""Position sizing: equal, score-weighted, inverse-volatility and mean-variance weights, and
target weights turned into whole lots. Every method keeps names within their stock and
liquidity caps and industries and boards within their limits (the simple methods by
water-filling, the optimiser as constraints), so the risk check rejects only what the
sizing could not fix (a blacklisted holding, limits no weights can meet).

The mean-variance optimiser maximises expected return minus risk aversion times variance
minus a turnover penalty, long only, with the risk rules as constraints (stock, industry and
board weights, liquidity caps), on a Ledoit-Wolf shrunk covariance of recent daily returns,
solved by cvxpy (Clarabel, bundled). Expected returns follow Grinold's rule of thumb:
IC x volatility x the score's cross-sectional z-score. When the problem has no solution
(limits that cannot all hold at the asked exposure) or the solver fails, the weights fall back
to equal weights within the caps and limits (`capped_weights`), and the result says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from quant_assets.market.rules import LOT_SIZE
from quant_assets.strategy.risk import RiskLimits, liquidity_caps

METHODS = ("equal", "score", "inverse_vol", "mean_variance")


@dataclass
class Sizing:
    """Weights by symbol (summing to the exposure or less), how they were made, and notes."""

    weights: pd.Series
    method: str
    fallback: str | None = None
    notes: list[str] = field(default_factory=list)


def capped_weights(
    raw: pd.Series,
    caps: pd.Series,
    exposure: float = 1.0,
    info: pd.DataFrame | None = None,
    limits: RiskLimits | None = None,
) -> pd.Series:
    """Weights proportional to `raw` (>= 0) summing to `exposure`, each within its cap and,
    with `info` and `limits`, each industry and board within its limit: whatever a cap cuts is
    handed to the names with room, in proportion (water-filling); less than `exposure` when
    the caps allow no more (the rest stays cash)."""
    names = raw.index
    raw = raw.clip(lower=0.0).fillna(0.0)
    if raw.sum() <= 0:
        raw = pd.Series(1.0, index=names)
    caps = caps.reindex(names).fillna(np.inf).clip(lower=0.0)
    groups = []
    if info is not None and limits is not None:
        for col, lims in (("industry", limits.max_industry_weight),
                          ("board", dict(limits.max_board_weight))):  # fmt: skip
            if col in info:
                labels = info[col].reindex(names).fillna("unknown")
                lim = labels.map(lambda g, lims=lims: lims.get(g, np.inf) if isinstance(lims, dict)
                                 else lims).astype(float)  # fmt: skip
                groups.append((labels, lim))
    w = raw / raw.sum() * exposure
    for _ in range(10 * len(names) + 10):
        w = np.minimum(w, caps)
        free = w < caps - 1e-12
        for labels, lim in groups:
            total = w.groupby(labels).transform("sum")
            over = total > lim + 1e-12
            w[over] *= (lim / total)[over]
            free &= total < lim - 1e-12
        short = exposure - w.sum()
        if short <= 1e-10 or not (free & (raw > 0)).any():
            break
        w[free] += short * raw[free] / raw[free].sum()
    return w.rename(None)


def capped_equal(names: pd.Index, caps: pd.Series, exposure: float = 1.0) -> pd.Series:
    """Equal weights within the caps (`capped_weights` of equal raw weights)."""
    return capped_weights(pd.Series(1.0, index=names), caps, exposure)


def shrunk_covariance(returns: pd.DataFrame) -> pd.DataFrame:
    """Ledoit-Wolf shrunk covariance of daily returns (days x names; missing days as 0)."""
    from sklearn.covariance import LedoitWolf

    x = returns.fillna(0.0).to_numpy(float)
    cov = LedoitWolf().fit(x).covariance_
    return pd.DataFrame(cov, index=returns.columns, columns=returns.columns)


def size(
    scores: pd.Series,
    method: str,
    *,
    caps: pd.Series | None = None,
    returns: pd.DataFrame | None = None,
    info: pd.DataFrame | None = None,
    previous: pd.Series | None = None,
    limits: RiskLimits | None = None,
    equity: float = 1.0,
    exposure: float = 1.0,
    ic: float = 0.05,
    risk_aversion: float = 5.0,
    turnover_penalty: float = 0.002,
) -> Sizing:
    """Weights for the selected names (`scores` by symbol). `returns` (days x names) serve
    the volatility and covariance, `info` (industry, board, adv by symbol) the constraints,
    `previous` weights the turnover penalty; `caps` bound single names."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    names = scores.index
    limits = limits or RiskLimits()
    stock_cap = pd.Series(limits.max_stock_weight, index=names)
    if info is not None and "adv" in info:
        stock_cap = np.minimum(
            stock_cap, liquidity_caps(info["adv"].reindex(names), equity, limits)
        )
    if caps is not None:
        stock_cap = np.minimum(stock_cap, caps.reindex(names).fillna(np.inf))
    if method == "equal" or len(names) == 0:
        return Sizing(capped_weights(pd.Series(1.0, index=names), stock_cap, exposure, info,
                                     limits), method)  # fmt: skip
    vol = _volatility(returns, names)
    if method == "score":
        z = (scores - scores.mean()) / (scores.std(ddof=0) or 1.0)
        raw = (z - z.min() + 1.0).clip(lower=0.0)  # every selected name keeps a positive weight
    elif method == "inverse_vol":
        raw = 1.0 / vol
    else:
        return _mean_variance(scores, vol, returns, info, previous, stock_cap, limits, exposure,
                              ic, risk_aversion, turnover_penalty)  # fmt: skip
    return Sizing(capped_weights(raw, stock_cap, exposure, info, limits), method)


def _volatility(returns: pd.DataFrame | None, names: pd.Index) -> pd.Series:
    """Daily volatility per name; names without history take the median."""
    if returns is None or returns.empty:
        return pd.Series(0.02, index=names)
    vol = returns.reindex(columns=names).std(ddof=1)
    return vol.fillna(vol.median() if vol.notna().any() else 0.02).clip(lower=1e-4)


def _mean_variance(scores, vol, returns, info, previous, stock_cap, limits, exposure, ic,
                   risk_aversion, turnover_penalty) -> Sizing:  # fmt: skip
    import cvxpy as cp

    names = scores.index
    z = (scores - scores.mean()) / (scores.std(ddof=0) or 1.0)
    mu = (ic * vol * z).to_numpy(float)
    hist = returns.reindex(columns=names) if returns is not None else None
    if hist is None or len(hist) < 3:
        cov = np.diag(vol.to_numpy(float) ** 2)
    else:
        cov = shrunk_covariance(hist).to_numpy(float)
    cov = (cov + cov.T) / 2 + 1e-10 * np.eye(len(names))
    prev = (previous.reindex(names).fillna(0.0) if previous is not None
            else pd.Series(0.0, index=names)).to_numpy(float)  # fmt: skip
    w = cp.Variable(len(names))
    objective = mu @ w - risk_aversion * cp.quad_form(w, cp.psd_wrap(cov))
    if turnover_penalty > 0:
        objective -= turnover_penalty * cp.norm1(w - prev)
    cons = [w >= 0, cp.sum(w) == exposure, w <= stock_cap.to_numpy(float)]
    if info is not None:
        for col, lims in (("industry", limits.max_industry_weight),
                          ("board", dict(limits.max_board_weight))):  # fmt: skip
            if col in info:
                groups = info[col].reindex(names).fillna("unknown").to_numpy()
                for g in np.unique(groups):
                    lim = lims.get(g, np.inf) if isinstance(lims, dict) else lims
                    if np.isfinite(lim):
                        cons.append(cp.sum(w[np.flatnonzero(groups == g)]) <= lim)
    problem = cp.Problem(cp.Maximize(objective), cons)
    try:
        problem.solve(solver=cp.CLARABEL)
        status = problem.status
    except cp.error.SolverError as error:
        status = f"solver error: {error}"
    if status in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE) and w.value is not None:
        # the solver's tolerance can leave a weight a hair over its cap: clip, never scale up
        weights = pd.Series(np.clip(w.value, 0.0, stock_cap.to_numpy(float)), index=names)
        weights[weights < 1e-6] = 0.0
        weights *= min(1.0, exposure / weights.sum())
        return Sizing(weights, "mean_variance", notes=[f"solver status {status}"])
    fallback = f"mean-variance {status}: equal weights within the caps and limits"
    weights = capped_weights(pd.Series(1.0, index=names), stock_cap, exposure, info, limits)
    return Sizing(weights, "mean_variance", fallback=fallback)


def to_shares(
    weights: pd.Series, prices: pd.Series, equity: float, lot: int = LOT_SIZE
) -> tuple[pd.DataFrame, float]:
    """Whole lots for each weight at `prices` (rounded down, so the book never borrows), and
    the cash left over."""
    value = weights * equity
    shares = np.floor(value / prices / lot + 1e-9) * lot
    shares = shares.fillna(0.0)
    out = pd.DataFrame({"weight": weights, "price": prices, "shares": shares.astype("int64"),
                        "value": shares * prices})  # fmt: skip
    return out, float(equity - out["value"].sum())
