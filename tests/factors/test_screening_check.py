"""The `admitted_on_evidence` check of factor_screening, on screening summaries computed by
`screen` from daily rank ICs: it passes on what `screen` admits and fails on an admission the
rule does not support or on a factor whose IC counts more days than the window."""

from __future__ import annotations

import numpy as np
import pandas as pd

from quant_assets.factors.assets import ScreeningConfig, _admitted_on_evidence
from quant_assets.factors.screening import screen

CONFIG = ScreeningConfig(window_days=30, ic_threshold=0.02, min_t=2.0, min_days=20)


def _ic(days: int = 30) -> pd.DataFrame:
    """Daily rank ICs of a strong factor, a noise factor and one with no IC at all."""
    rng = np.random.default_rng(0)
    dates = pd.bdate_range("2024-03-01", periods=days, name="date")
    return pd.DataFrame(
        {
            "strong": 0.08 + 0.02 * rng.standard_normal(days),
            "noise": 0.05 * rng.standard_normal(days),
            "empty": np.nan,
        },
        index=dates,
    )


def _summary(ic: pd.DataFrame) -> pd.DataFrame:
    return screen(ic, CONFIG.ic_threshold, CONFIG.min_t, CONFIG.min_days)


def test_what_screen_admits_passes():
    summary = _summary(_ic())
    assert bool(summary.loc["strong", "active"]) and not summary.loc["empty", "active"]
    result = _admitted_on_evidence(summary, CONFIG)
    assert result.passed and result.metadata["admitted"].value == 1


def test_a_factor_with_nan_ic_admitted_fails():
    summary = _summary(_ic())
    summary.loc["empty", "active"] = True
    result = _admitted_on_evidence(summary, CONFIG)
    assert not result.passed
    assert result.metadata["admitted_without_evidence"].value == "empty"


def test_more_ic_days_than_the_window_fails():
    summary = _summary(_ic(days=35))  # 35 days of IC for a 30-day window
    result = _admitted_on_evidence(summary, CONFIG)
    assert not result.passed
    assert "strong" in result.metadata["factors_beyond_window"].value
    assert result.metadata["max_ic_days"].value == 35
