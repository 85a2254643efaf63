"""The mining loop with the offline genetic search on the simulated market: it finds the
planted reversal, admits nothing on a market without alphas, and never reads the test
segment before its final report."""

import numpy as np
import pandas as pd
import pytest

from quant_assets.ai_factors import AdmissionRules, mine
from quant_assets.factors.engine import evaluate_many
from quant_assets.factors.screening import rank_ic_table

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mined(planted_market):
    _, bars, segments = planted_market
    return mine(bars, segments, rounds=2, seed=0)


def test_finds_the_planted_reversal(planted_market, mined):
    sim, bars, segments = planted_market
    assert mined.generator == "offline" and mined.fallback == ""
    assert len(mined.admitted) >= 1
    truth = sim.truth().set_index(["date", "symbol"]).sort_index()
    values = evaluate_many(list(mined.formulas.values()), bars, names=list(mined.formulas))
    corr = {
        name: rank_ic_table(truth[["reversal_5d"]].reindex(col.index), col)["reversal_5d"].mean()
        for name, col in values.items()
    }
    # the latent signal is minus the 5-day return: an admitted factor ranks stocks like it
    assert max(abs(c) for c in corr.values()) > 0.4, corr
    # every admitted factor passed its validation test after the Bonferroni correction
    adm = mined.admitted
    assert (adm["valid_p"] * adm["tests"] < 0.05).all()
    assert (np.sign(adm["valid_ic"]) == np.sign(adm["train_ic"])).all()
    assert (adm["closest_corr"].fillna(0) < 0.7).all()
    # the test figures are of the admitted set only, reported apart
    assert set(mined.test.index) == set(mined.formulas)
    assert mined.test["n_days"].min() > 20


def test_every_candidate_and_round_is_logged(mined):
    log = mined.candidates
    assert set(log["status"]) <= {"admitted", "rejected", "invalid", "duplicate"}
    assert (log["reason"].str.len() > 0).all()
    assert list(mined.rounds["round"]) == [1, 2]
    assert mined.rounds["candidates"].sum() == len(log)
    assert mined.rounds["valid_tests"].sum() == log["tests"].max()
    assert (mined.rounds["seconds"] > 0).all()


def test_admits_nothing_built_from_noise(null_market):
    bars, segments = null_market
    result = mine(bars, segments, rounds=2, seed=0)
    assert len(result.candidates) > 0
    assert result.admitted.empty, result.admitted[["formula", "valid_ic", "valid_p"]]


def test_test_segment_prices_change_nothing_selected(planted_market, mined):
    _, bars, segments = planted_market
    rng = np.random.default_rng(1)
    changed = bars.copy()
    test_rows = changed["date"] >= pd.Timestamp(segments["test"][0])
    shock = rng.uniform(0.5, 1.5, size=int(test_rows.sum()))
    for column in ("open", "high", "low", "close", "vwap"):
        changed.loc[test_rows, column] *= shock
    again = mine(changed, segments, rounds=2, seed=0)
    pd.testing.assert_frame_equal(
        again.candidates.drop(columns="generator"), mined.candidates.drop(columns="generator")
    )
    assert again.formulas == mined.formulas
    # the test report did read the new prices
    assert not np.allclose(again.test["ic"], mined.test["ic"])


def test_rules_are_validated():
    with pytest.raises(ValueError, match="alpha"):
        AdmissionRules(alpha=0)
    with pytest.raises(ValueError, match="max_corr"):
        AdmissionRules(max_corr=0.99, rewrite_corr=0.9)
