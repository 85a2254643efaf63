import numpy as np
import pandas as pd
import pytest

from quant_assets.strategy import performance_summary
from quant_assets.strategy.metrics import max_drawdown


def test_hand_computed_summary():
    r = pd.Series([0.01, -0.02, 0.03, -0.01])
    s = performance_summary(r)
    growth = 1.01 * 0.98 * 1.03 * 0.99
    assert s["annual_return"] == pytest.approx(growth ** (252 / 4) - 1)
    std = np.std([0.01, -0.02, 0.03, -0.01], ddof=1)
    assert s["annual_volatility"] == pytest.approx(std * np.sqrt(252))
    assert s["sharpe"] == pytest.approx(0.0025 / std * np.sqrt(252))
    downside = np.sqrt((0.02**2 + 0.01**2) / 4) * np.sqrt(252)
    assert s["sortino"] == pytest.approx(0.0025 * 252 / downside)
    assert s["max_drawdown"] == pytest.approx(0.98 - 1)
    assert s["calmar"] == pytest.approx(s["annual_return"] / 0.02)


def test_drawdown_counts_the_start_as_a_peak():
    assert max_drawdown(pd.Series([-0.1, 0.05])) == pytest.approx(-0.1)
    assert max_drawdown(pd.Series([0.1, -0.5, 0.2])) == pytest.approx(-0.5)


def test_benchmark_relative_figures():
    r = pd.Series([0.02, 0.0, 0.01])
    b = pd.Series([0.01, 0.01, 0.0])
    s = performance_summary(r, b)
    excess = np.array([0.01, -0.01, 0.01])
    assert s["excess_annual_return"] == pytest.approx(excess.mean() * 252)
    assert s["information_ratio"] == pytest.approx(
        excess.mean() / excess.std(ddof=1) * np.sqrt(252)
    )


def test_too_short_series_is_refused():
    with pytest.raises(ValueError, match="at least two"):
        performance_summary(pd.Series([0.01]))
