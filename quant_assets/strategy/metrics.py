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


def performance_summary(returns: pd.Series, benchmark: pd.Series | None = None) -> dict[str, float]:
    """Annual return (compounded), volatility, Sharpe, Sortino, max drawdown and Calmar; with a
    benchmark also the excess annual return (mean daily excess x 252, as Qlib reports it) and the
    information ratio (mean over std of daily excess returns, annualised by sqrt(252))."""
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
    return out
