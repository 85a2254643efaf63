"""Risk rules and sizing: breaches with their numbers, the optimiser's constraints, its fallback."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quant_assets.strategy.risk import RiskLimits, check_portfolio, exposure_scale
from quant_assets.strategy.sizing import capped_equal, size, to_shares

NAMES = pd.Index([f"{600000 + i}.SH" for i in range(10)])


def info(industries=None, adv=1e9) -> pd.DataFrame:
    return pd.DataFrame({
        "industry": industries or ["bank"] * 3 + ["energy"] * 3 + ["tech"] * 4,
        "board": ["main"] * 8 + ["star"] * 2,
        "adv": adv,
    }, index=NAMES)  # fmt: skip


def test_each_hard_rule_is_reported_with_its_numbers():
    w = pd.Series([0.15, 0.10, 0.10, 0.05, 0.05, 0.05, 0.10, 0.10, 0.15, 0.15], index=NAMES)
    limits = RiskLimits(max_stock_weight=0.12, max_industry_weight=0.34,
                        max_board_weight=(("star", 0.25),), liquidity_share=0.05,
                        blacklist=("600003.SH",))  # fmt: skip
    adv = [1e9] * 9 + [1e6]  # the last: 5% of 1e6 over 1e7 equity = 0.5% cap
    breaches = check_portfolio(w, info(adv=adv), equity=1e7, limits=limits)
    got = {(b.rule, b.subject): (round(b.value, 4), round(b.limit, 4)) for b in breaches}
    assert got == {
        ("max_stock_weight", "600000.SH"): (0.15, 0.12),
        ("max_stock_weight", "600008.SH"): (0.15, 0.12),
        ("max_stock_weight", "600009.SH"): (0.15, 0.12),
        ("blacklist", "600003.SH"): (0.05, 0.0),
        ("max_industry_weight", "bank"): (0.35, 0.34),
        ("max_industry_weight", "tech"): (0.5, 0.34),
        ("max_board_weight", "star"): (0.3, 0.25),
        ("liquidity", "600009.SH"): (0.15, 0.005),
    }
    assert "max_stock_weight 600000.SH: 15.00% > 12.00%" in [b.describe() for b in breaches]
    assert (
        check_portfolio(
            pd.Series(0.1, index=NAMES), info(), 1e7, RiskLimits(max_industry_weight=0.4)
        )
        == []
    )


def test_soft_rules_scale_exposure_and_say_why():
    limits = RiskLimits(volatility_target=0.20, drawdown_brake=0.10, drawdown_exposure=0.5)
    assert exposure_scale(0.15, -0.05, limits) == (1.0, [])
    scale, notes = exposure_scale(0.40, -0.05, limits)
    assert scale == pytest.approx(0.5) and notes[0].rule == "volatility_target"
    scale, notes = exposure_scale(0.25, -0.12, limits)
    assert scale == 0.5 and [n.rule for n in notes] == ["volatility_target", "drawdown_brake"]


def test_capped_equal_hands_the_excess_to_uncapped_names():
    caps = pd.Series([0.05, 0.5, 0.5], index=NAMES[:3])
    w = capped_equal(NAMES[:3], caps)
    assert w.tolist() == pytest.approx([0.05, 0.475, 0.475])
    # caps that cannot hold the exposure leave cash
    assert capped_equal(NAMES[:3], pd.Series(0.2, index=NAMES[:3])).sum() == pytest.approx(0.6)


@pytest.mark.parametrize("method", ["equal", "score", "inverse_vol", "mean_variance"])
def test_every_method_respects_the_limits(method):
    rng = np.random.default_rng(0)
    scores = pd.Series(rng.normal(size=10), index=NAMES)
    returns = pd.DataFrame(rng.normal(0, 0.02, (60, 10)) * np.linspace(0.5, 2, 10), columns=NAMES)
    limits = RiskLimits(max_stock_weight=0.15, max_industry_weight=0.4,
                        max_board_weight=(("star", 0.2),))  # fmt: skip
    s = size(scores, method, returns=returns, info=info(), limits=limits, equity=1e7)
    assert s.fallback is None
    assert s.weights.sum() == pytest.approx(1.0)
    assert check_portfolio(s.weights, info(), 1e7, limits) == []
    if method == "inverse_vol":  # the calmest name weighs most
        assert s.weights.idxmax() == NAMES[0]


def test_mean_variance_prefers_high_scores_and_the_turnover_penalty_keeps_yesterday():
    scores = pd.Series(np.linspace(-1, 1, 10), index=NAMES)
    returns = pd.DataFrame(np.random.default_rng(1).normal(0, 0.02, (120, 10)), columns=NAMES)
    free = size(scores, "mean_variance", returns=returns, info=info(), turnover_penalty=0.0,
                limits=RiskLimits(max_stock_weight=0.3, max_industry_weight=1))  # fmt: skip
    assert free.weights.iloc[-3:].sum() > free.weights.iloc[:3].sum()
    previous = pd.Series(0.1, index=NAMES)
    sticky = size(scores, "mean_variance", returns=returns, info=info(), previous=previous,
                  turnover_penalty=1.0,
                  limits=RiskLimits(max_stock_weight=0.3, max_industry_weight=1))  # fmt: skip
    assert (sticky.weights - previous).abs().sum() < (free.weights - previous).abs().sum()


def test_an_infeasible_optimisation_falls_back_and_says_so():
    scores = pd.Series(np.linspace(-1, 1, 10), index=NAMES)
    # ten names under a 5% cap cannot hold 100%
    s = size(scores, "mean_variance", info=info(), limits=RiskLimits(max_stock_weight=0.05))
    assert s.fallback is not None and "infeasible" in s.fallback
    assert s.weights.sum() == pytest.approx(0.5)
    assert (s.weights <= 0.05 + 1e-12).all()


def test_weights_become_whole_lots_with_the_cash_left_reported():
    w = pd.Series([0.5, 0.5], index=NAMES[:2])
    prices = pd.Series([10.37, 123.45], index=NAMES[:2])
    shares, cash = to_shares(w, prices, 100_000.0)
    assert shares["shares"].tolist() == [4800, 400]
    assert cash == pytest.approx(100_000 - 4800 * 10.37 - 400 * 123.45)
    assert (shares["shares"] % 100 == 0).all()
