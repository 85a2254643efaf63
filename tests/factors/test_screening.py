"""The screening's rank IC against a direct per-date Spearman, and the admission rule."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from quant_assets.factors.screening import rank_ic_table, screen


def _panel(seed: int = 0, n_dates: int = 12, n_symbols: int = 30):
    rng = np.random.default_rng(seed)
    idx = pd.MultiIndex.from_product(
        [pd.bdate_range("2024-01-01", periods=n_dates), [f"S{i}" for i in range(n_symbols)]],
        names=["date", "symbol"],
    )
    label = pd.Series(rng.normal(size=len(idx)), index=idx)
    feats = pd.DataFrame(
        {
            "signal": label + rng.normal(size=len(idx)),
            "noise": rng.normal(size=len(idx)),
            "ties": np.round(rng.normal(size=len(idx))),  # many tied values
            "constant": 1.0,
            "holes": np.where(rng.random(len(idx)) < 0.3, np.nan, rng.normal(size=len(idx))),
        },
        index=idx,
    )
    feats.iloc[5, 1] = np.inf  # an infinite value is left out like a missing one
    label.iloc[7] = np.nan
    return feats.sample(frac=1.0, random_state=1), label  # rows in any order


def _direct(feats: pd.DataFrame, label: pd.Series, min_names: int) -> pd.DataFrame:
    out = {}
    for name in feats.columns:
        col = {}
        for day, group in feats[name].groupby(level="date"):
            y = label.reindex(group.index)
            ok = np.isfinite(group.to_numpy()) & np.isfinite(y.to_numpy())
            if ok.sum() < max(min_names, 2) or np.ptp(group[ok]) == 0:
                col[day] = np.nan
                continue
            col[day] = stats.spearmanr(group[ok], y[ok]).statistic
        out[name] = pd.Series(col)
    return pd.DataFrame(out)


@pytest.mark.parametrize("min_names", [2, 10, 25])
def test_rank_ic_is_the_per_date_spearman_with_pairwise_complete_rows(min_names):
    feats, label = _panel()
    got = rank_ic_table(feats, label, min_names=min_names)
    expected = _direct(feats, label, min_names)
    assert got.index.is_monotonic_increasing and list(got.columns) == list(feats.columns)
    pd.testing.assert_frame_equal(got, expected, check_names=False, check_freq=False, atol=1e-12)
    assert got["constant"].isna().all()
    assert got["signal"].mean() > 0.4 and abs(got["noise"].mean()) < 0.15


def test_screen_admits_a_reliable_factor_and_keeps_its_sign():
    ic = pd.DataFrame(
        {
            "good": [0.05, 0.06, 0.04] * 10,
            "bad": [0.05, -0.05, 0.0] * 10,
            "negative": [-0.05, -0.06, -0.04] * 10,
            "short": [0.05, 0.06, 0.04] + [np.nan] * 27,
        }
    )
    summary = screen(ic, threshold=0.02, min_t=2.0, min_days=20)
    assert summary["active"].to_dict() == {
        "good": True,
        "negative": True,
        "bad": False,
        "short": False,
    }
    assert summary.loc["negative", "rank_ic_mean"] < 0
    assert summary.loc["short", "n_days"] == 3
