"""walk_forward and the dataset under it: the contract, the planted alpha learned by every tree
family, the window discipline (test prices change nothing fitted), purged segments, labels
and deduplication."""

import numpy as np
import pandas as pd
import pytest

from quant_assets.market.adjustment import backward_adjusted
from quant_assets.market.sources.simulated import SimulatedMarket
from quant_assets.models import fit_window, walk_forward
from quant_assets.models.dataset import deduplicate, forward_label, top_quintile
from quant_assets.models.segments import Segments, rolling_segments, split_valid


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    sim = SimulatedMarket(pd.bdate_range("2023-01-02", periods=240), n_symbols=150, seed=4)
    adjusted = backward_adjusted(sim.daily_bars())
    return adjusted[~adjusted["is_suspended"]].reset_index(drop=True)


@pytest.fixture(scope="module")
def segments(bars) -> dict:
    days = sorted(bars["date"].unique())
    return {"train": (days[60], days[159]), "valid": (days[160], days[199]),
            "test": (days[200], days[-1])}  # fmt: skip


def test_contract(bars, segments):
    out = walk_forward(bars, model="lgbm", features="alpha158", segments=segments, seed=1)
    assert list(out.index.names) == ["date", "symbol"] and list(out.columns) == ["score"]
    test_rows = bars[bars["date"] >= segments["test"][0]]
    assert len(out) == len(test_rows)
    assert out.index.get_level_values("date").min() == segments["test"][0]
    assert np.isfinite(out["score"]).all()
    assert set(out.attrs["timings"]) == {"features", "processing", "fit", "predict"}
    assert out.attrs["metrics"]["best_iteration"] >= 1


def test_unknown_names_are_refused(bars, segments):
    with pytest.raises(ValueError, match="unknown model"):
        walk_forward(bars, model="svm", segments=segments)
    with pytest.raises(TypeError, match="num_leafs"):
        walk_forward(bars, model="lgbm", segments=segments, num_leafs=8)
    with pytest.raises(ValueError, match="order"):
        walk_forward(bars, segments={**segments, "valid": segments["train"]})


@pytest.mark.slow
@pytest.mark.parametrize("family", ["lgbm", "xgb", "rf"])
def test_tree_families_learn_the_planted_reversal(bars, segments, family):
    """Better than chance on the test days, and better than the same model on noise."""
    learned = walk_forward(bars, model=family, segments=segments)
    rng = np.random.default_rng(0)
    index = pd.MultiIndex.from_frame(bars[["date", "symbol"]]).sort_values()
    noise = pd.DataFrame(rng.normal(size=(len(index), 20)), index=index).add_prefix("noise")
    null = walk_forward(bars, model=family, features=noise, segments=segments)
    good, bad = learned.attrs["test_metrics"], null.attrs["test_metrics"]
    assert good["rank_ic"] > 0.02 and good["rank_icir"] > 0.2, good
    assert good["rank_ic"] > bad["rank_ic"] + 0.02, (good, bad)


def test_test_prices_change_nothing_fitted(bars, segments):
    """Prices of the test days (and anything after the valid segment) reach no fitted
    parameter and no validation number."""
    later = bars["date"] >= segments["test"][0]
    rng = np.random.default_rng(7)
    shocked = bars.copy()
    factor = np.exp(rng.normal(0, 0.2, later.sum()))
    for col in ("open", "high", "low", "close", "vwap"):
        shocked.loc[later, col] *= factor
    shocked.loc[later, "volume"] *= 3
    a = fit_window(bars, "lgbm", segments=segments, seed=3, num_boost_round=60)
    b = fit_window(shocked, "lgbm", segments=segments, seed=3, num_boost_round=60)
    assert a.model.model.booster_.model_to_string() == b.model.model.booster_.model_to_string()
    assert a.metrics == b.metrics
    assert not np.allclose(a.scores.to_numpy(), b.scores.to_numpy())  # test scores do move


def test_segments_are_purged_and_validation_split():
    calendar = pd.bdate_range("2024-01-01", periods=30)
    seg = Segments.from_dict({"train": (calendar[0], calendar[14]),
                              "valid": (calendar[15], calendar[24]),
                              "test": (calendar[25], calendar[29])})  # fmt: skip
    train, valid = seg.dates(calendar, "train"), seg.dates(calendar, "valid")
    assert train[-1] == calendar[12] and valid[-1] == calendar[22]  # two label days purged
    assert len(seg.dates(calendar, "test")) == 5
    stop, report = split_valid(valid, 0.5)
    assert report[0] - stop[-1] > pd.Timedelta(days=2)  # a purge between the two halves
    assert stop[-1] < report[0] and len(report) == 4
    windows = list(rolling_segments(calendar, 10, 5, 5))
    assert [w.test[0] for w in windows] == [calendar[15], calendar[20], calendar[25]]
    assert all(w.train[1] < w.valid[0] and w.valid[1] < w.test[0] for w in windows)


def test_forward_label_follows_each_stocks_bars():
    days = pd.bdate_range("2024-01-01", periods=5)
    bars = pd.DataFrame({"date": list(days) + list(days[[0, 1, 3, 4]]),
                         "symbol": ["A"] * 5 + ["B"] * 4,
                         "close": [10, 11, 12, 13, 14, 20, 21, 23, 24.0]})  # fmt: skip
    label = forward_label(bars)
    assert label.loc[(days[0], "A")] == pytest.approx(12 / 11 - 1)
    assert np.isnan(label.loc[(days[0], "B")])  # B did not trade on day 2: no label
    assert np.isnan(label.loc[(days[3], "A")]) and np.isnan(label.loc[(days[4], "B")])
    quint = top_quintile(pd.Series(np.arange(10.0), index=pd.MultiIndex.from_product(
        [[days[0]], list("abcdefghij")], names=["date", "symbol"])))  # fmt: skip
    assert quint.tolist() == [0.0] * 8 + [1.0] * 2


def test_deduplicate_keeps_the_stronger_of_two_copies():
    rng = np.random.default_rng(1)
    index = pd.MultiIndex.from_product(
        [pd.bdate_range("2024-01-01", periods=40), [f"s{i}" for i in range(60)]],
        names=["date", "symbol"],
    )
    signal = rng.normal(size=len(index))
    y = pd.Series(signal + rng.normal(size=len(index)), index=index)
    X = pd.DataFrame({"weak_copy": signal + rng.normal(0, 0.1, len(index)), "strong": signal,
                      "other": rng.normal(size=len(index))}, index=index)  # fmt: skip
    kept, dropped = deduplicate(X, y, limit=0.9)
    assert kept == ["strong", "other"]
    row = dropped.iloc[0]
    assert row["factor"] == "weak_copy" and row["kept_instead"] == "strong"
    assert row["corr"] > 0.9 and row["abs_ic_kept"] >= row["abs_ic"]
