"""The ensembles on planted panels: weights that ignore a useless member, purged folds that
never train on a held-out date, regime weights that beat each member, calibrated
probabilities, agreement as confidence, combined importance, and nothing fitted on test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quant_assets.factors.screening import rank_ic_table
from quant_assets.models.base import ZooModel
from quant_assets.models.calibration import Calibrated, calibrate
from quant_assets.models.ensembles import (
    RegimeEnsemble,
    Stacking,
    WeightedAverage,
    blocked_folds,
    market_regime,
)
from quant_assets.models.trees import LGBMModel

FITTED_DATES: list[set[pd.Timestamp]] = []  # what each Recorder fit learned from


class Column(ZooModel):
    """Scores a name by one feature (times `sign`): a member whose skill is known exactly."""

    family = "column"

    def __init__(self, column: str = "a", sign: float = 1.0) -> None:
        self.column = column
        self.sign = sign

    def fit(self, X, y, valid=None):
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.feature_importance_ = pd.Series(
            (X.columns == self.column).astype(float) * 5.0, index=X.columns
        )
        self.curves_, self.best_iteration_ = {}, 1
        return self

    def predict(self, X):
        return (self.sign * X[self.column]).rename("score")


class Recorder(Column):
    """A `Column` that records the dates whose target it was given to learn from."""

    def fit(self, X, y, valid=None):
        dates = y.index.get_level_values("date")[np.isfinite(y.to_numpy())]
        FITTED_DATES.append(set(dates))
        return super().fit(X, y, valid)


class Subset(ZooModel):
    """A model that reads only `columns` (so a member can be made of noise features)."""

    def __init__(self, model: ZooModel, columns: list[str]) -> None:
        self.model = model
        self.columns = columns

    def fit(self, X, y, valid=None):
        v = (valid[0][self.columns], valid[1]) if valid is not None else None
        self.model.fit(X[self.columns], y, v)
        self.feature_importance_ = self.model.feature_importance_.reindex(X.columns).fillna(0.0)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.curves_, self.best_iteration_ = self.model.curves_, self.model.best_iteration_
        return self

    def predict(self, X):
        return self.model.predict(X[self.columns])


def small_lgbm() -> LGBMModel:
    return LGBMModel(
        learning_rate=0.1, num_leaves=15, min_data_in_leaf=20, num_boost_round=50, num_threads=1
    )


def panel(n_dates: int, n_symbols: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    idx = pd.MultiIndex.from_product(
        [pd.bdate_range("2024-01-01", periods=n_dates), [f"S{i:03d}" for i in range(n_symbols)]],
        names=["date", "symbol"],
    )
    return pd.DataFrame(rng.normal(size=(len(idx), 4)), index=idx, columns=["a", "b", "n1", "n2"])


def cut(X: pd.DataFrame, y: pd.Series, start: int, stop: int):
    """The rows of the dates at positions [start, stop)."""
    dates = X.index.get_level_values("date").unique()[start:stop]
    rows = X.index.get_level_values("date").isin(dates)
    return X[rows], y[rows]


def mean_ic(score: pd.Series, y: pd.Series) -> float:
    return float(rank_ic_table(score.to_frame("s"), y, min_names=5)["s"].mean())


def planted(n_dates: int = 90, seed: int = 0):
    X = panel(n_dates, seed=seed)
    noise = np.random.default_rng(seed + 1).normal(size=len(X))
    y = (X["a"] - 0.5 * X["b"] + 1.5 * noise).rename("target")
    return X, y


def test_the_weighted_average_gives_a_member_fitted_on_noise_no_weight():
    X, y = planted()
    train, valid, test = cut(X, y, 0, 50), cut(X, y, 52, 70), cut(X, y, 72, 90)
    members = {
        "signal": Subset(small_lgbm(), ["a", "b"]),
        "noise": Subset(small_lgbm(), ["n1", "n2"]),
    }
    model = WeightedAverage(members).fit(*train, valid=valid)
    assert model.member_ic_["signal"] > 0.2
    assert model.weights_["noise"] < 0.1 and model.weights_["signal"] > 0.9
    assert model.weights_.sum() == pytest.approx(1.0)
    assert not hasattr(members["signal"], "feature_importance_")  # the originals stay unfitted
    assert mean_ic(model.predict(test[0]), test[1]) > 0.2
    # importance: each member's sums to 1, the combination too, and follows the weights
    assert model.member_importance_.sum().to_numpy() == pytest.approx([1.0, 1.0])
    assert model.feature_importance_.sum() == pytest.approx(1.0)
    assert model.feature_importance_[["a", "b"]].sum() > 0.9
    scores = model.member_scores(test[0])
    assert list(scores.columns) == ["signal", "noise"] and scores.index.equals(test[0].index)


def test_stacking_folds_are_blocked_purged_and_never_train_on_their_own_dates():
    X, y = planted(40)
    FITTED_DATES.clear()
    train, valid = cut(X, y, 0, 30), cut(X, y, 32, 40)
    model = Stacking({"r": Recorder("a")}, n_folds=3, gap=2).fit(*train, valid=valid)
    dates = train[0].index.get_level_values("date").unique()
    assert len(FITTED_DATES) == 4  # three folds, then the refit on all of train
    expected = [  # (held out, purged) positions of 30 dates in three blocks, gap 2
        (range(0, 10), [10, 11]),
        (range(10, 20), [8, 9, 20, 21]),
        (range(20, 30), [18, 19]),
    ]
    for fold, learned, (held, purged) in zip(model.folds_, FITTED_DATES, expected, strict=False):
        assert list(fold.held_out) == list(dates[list(held)])
        assert list(fold.purged) == list(dates[purged])
        assert learned == set(fold.train)
        assert learned.isdisjoint(fold.held_out) and learned.isdisjoint(fold.purged)
        assert learned | set(fold.held_out) | set(fold.purged) == set(dates)
    assert FITTED_DATES[-1] == set(dates)
    # every training row has exactly one out-of-fold score, from the fold that held it out
    assert model.oof_.sort_index().index.equals(train[0].index)
    with pytest.raises(ValueError, match="no training date"):
        blocked_folds(dates[:4], n_folds=2, gap=2)


@pytest.mark.parametrize("meta", ["ridge", "lgbm"])
def test_stacking_learns_to_lean_on_the_member_with_skill(meta):
    X, y = planted()
    train, valid, test = cut(X, y, 0, 50), cut(X, y, 52, 70), cut(X, y, 72, 90)
    members = {"a": Column("a"), "noise": Column("n1"), "b": Column("b", sign=-1.0)}
    model = Stacking(members, meta=meta).fit(*train, valid=valid)
    assert model.weights_["a"] > model.weights_["b"] > model.weights_["noise"]
    assert model.weights_["noise"] < 0.15
    assert mean_ic(model.predict(test[0]), test[1]) > mean_ic(test[0]["a"], test[1])


def regime_panel(n_dates: int = 180, seed: int = 3):
    """Feature a drives the target on high-volatility dates, feature b on calm ones."""
    X = panel(n_dates, n_symbols=50, seed=seed)
    rng = np.random.default_rng(seed)
    dates = X.index.get_level_values("date").unique()
    regime = pd.DataFrame({"volatility": rng.uniform(size=n_dates)}, index=dates)
    high = regime["volatility"].reindex(X.index.get_level_values("date")).to_numpy() > 0.5
    y = pd.Series(np.where(high, X["a"], X["b"]), index=X.index, name="target")
    y = y + 0.7 * rng.normal(size=len(y))
    return X, y, regime


def test_a_regime_ensemble_beats_each_member_when_each_is_good_in_one_regime():
    X, y, regime = regime_panel()
    train, valid, test = cut(X, y, 0, 60), cut(X, y, 62, 120), cut(X, y, 122, 180)
    members = {"a": Column("a"), "b": Column("b")}
    model = RegimeEnsemble(members, regime=regime, min_dates=10).fit(*train, valid=valid)
    weights = model.state_weights_
    assert weights.loc["volatility=high", "a"] > 0.9 and weights.loc["volatility=low", "b"] > 0.9
    # the threshold is the median over the training dates only
    train_dates = train[0].index.get_level_values("date").unique()
    assert model.thresholds_["volatility"] == regime.loc[train_dates, "volatility"].median()
    ens = mean_ic(model.predict(test[0]), test[1])
    each = [mean_ic(test[0][c], test[1]) for c in "ab"]
    assert ens > max(each) + 0.15
    average = WeightedAverage(members).fit(*train, valid=valid)
    assert ens > mean_ic(average.predict(test[0]), test[1]) + 0.1
    # a state with too few dates falls back to the overall weights
    sparse = RegimeEnsemble(members, regime=regime, min_dates=1000).fit(*train, valid=valid)
    assert (sparse.state_weights_ == sparse.weights_).all().all()
    # out-of-fold source, and a regime frame set afterwards
    oof = RegimeEnsemble(members, source="oof", min_dates=10).set_regime(regime)
    oof.fit(*train, valid=valid)
    assert oof.daily_ic_.shape[0] > model.daily_ic_.shape[0]
    assert oof.state_weights_.loc["volatility=high", "a"] > 0.9
    with pytest.raises(ValueError, match="regime frame"):
        RegimeEnsemble(members).fit(*train, valid=valid)


def test_the_market_regime_of_a_day_reads_no_later_close():
    rng = np.random.default_rng(0)
    days = pd.bdate_range("2024-01-01", periods=60)
    bars = pd.DataFrame(
        [(d, s, 10 * np.exp(rng.normal(0, 0.02))) for d in days for s in "ABC"],
        columns=["date", "symbol", "close"],
    )
    regime = market_regime(bars, window=20)
    later = bars.assign(close=np.where(bars["date"] > days[40], bars["close"] * 3, bars["close"]))
    pd.testing.assert_frame_equal(market_regime(later, 20).loc[: days[40]], regime.loc[: days[40]])
    assert regime.iloc[:20].isna().all().all() and regime.iloc[20:].notna().all().all()


def test_probability_is_calibrated_in_0_1_and_monotone_and_confidence_follows_agreement():
    X, y = planted()
    # names where b agrees with a, and names where it says the opposite
    agree = X.index.get_level_values("symbol") < "S030"
    X = X.assign(b=np.where(agree, X["a"] + 0.1 * X["b"], -X["a"] + 0.1 * X["b"]))
    y = (X["a"] + 0.5 * X["b"] + X["n2"] * 1.5).rename("target")
    train, valid, test = cut(X, y, 0, 50), cut(X, y, 52, 70), cut(X, y, 72, 90)
    model = WeightedAverage({"a": Column("a"), "b": Column("b")}).fit(*train, valid=valid)
    assert (model.weights_ > 0.2).all()
    frame = model.predict_frame(test[0])
    assert list(frame.columns) == ["score", "probability", "confidence"]
    assert frame.index.equals(test[0].index)
    assert frame["score"].equals(model.predict(test[0]))
    ordered = frame.sort_values("score")
    assert ordered["probability"].between(0, 1).all()
    assert (np.diff(ordered["probability"].to_numpy()) >= -1e-12).all()
    # the top-scored names are in the top quintile more often than the base rate of 20 %
    assert frame["probability"][frame["score"] > frame["score"].quantile(0.9)].mean() > 0.35
    assert frame["confidence"].between(0, 1).all()
    on_test = agree[X.index.get_level_values("date") >= test[0].index[0][0]]
    assert frame["confidence"][on_test].mean() > frame["confidence"][~on_test].mean() + 0.2
    # a single model gets a probability too
    single = Calibrated(Column("a")).fit(*train, valid=valid).predict_frame(test[0])
    s = single.sort_values("score")["probability"].to_numpy()
    assert ((s >= 0) & (s <= 1)).all() and (np.diff(s) >= -1e-12).all()
    cal = calibrate(valid[0]["a"], valid[1])
    assert cal.predict(np.array([-10.0, 10.0])).tolist() == pytest.approx(
        [cal.isotonic_.y_thresholds_[0], cal.isotonic_.y_thresholds_[-1]]
    )


def test_changing_the_test_segments_labels_and_regime_changes_nothing_fitted():
    X, y, regime = regime_panel(120)
    members = {"lgbm": Subset(small_lgbm(), ["a", "b"]), "b": Column("b")}
    test_rows = X.index.get_level_values("date") >= X.index.get_level_values("date").unique()[95]
    y_other = y.where(~test_rows, -y)
    regime_other = regime.copy()
    regime_other.iloc[95:] = 100.0
    outputs = []
    for labels, reg in ((y, regime), (y_other, regime_other)):
        train, valid, test = cut(X, labels, 0, 60), cut(X, labels, 62, 93), cut(X, labels, 95, 120)
        fitted = [
            WeightedAverage(members).fit(*train, valid=valid),
            Stacking(members).fit(*train, valid=valid),
            RegimeEnsemble(members, regime=reg, min_dates=5).fit(*train, valid=valid),
        ]
        outputs.append(
            [
                (
                    m.weights_,
                    m.predict_frame(valid[0]),
                    # a test date's own regime row moves its weights; nothing fitted moves
                    m.thresholds_ if isinstance(m, RegimeEnsemble) else m.predict(test[0]),
                    getattr(m, "state_weights_", m.member_importance_),
                )
                for m in fitted
            ]
        )
    for first, second in zip(*outputs, strict=True):
        pd.testing.assert_series_equal(first[0], second[0])
        pd.testing.assert_frame_equal(first[1], second[1])
        pd.testing.assert_series_equal(first[2], second[2])
        pd.testing.assert_frame_equal(first[3], second[3])


def test_max_ic_weights_count_a_near_copy_once_and_drop_a_useless_member():
    from quant_assets.models.ensembles import max_ic_weights

    rng = np.random.default_rng(0)
    n = 5000
    a, b, noise = rng.normal(size=n), rng.normal(size=n), rng.normal(size=n)
    z = pd.DataFrame({"a": a, "a_copy": a + 1e-3 * rng.normal(size=n), "b": b,
                      "weak": 0.2 * a + noise})  # fmt: skip
    ic = pd.Series({"a": 0.05, "a_copy": 0.05, "b": 0.05, "weak": 0.01})
    w = max_ic_weights(z, ic)
    assert w["a"] + w["a_copy"] == pytest.approx(0.5, abs=0.02)
    assert w["b"] == pytest.approx(0.5, abs=0.02)
    assert w["weak"] < 0.02
    # members without a positive IC get nothing; one positive member takes everything
    lone = max_ic_weights(z, pd.Series({"a": 0.05, "a_copy": -0.01, "b": 0.0, "weak": np.nan}))
    assert lone.to_dict() == {"a": 1.0, "a_copy": 0.0, "b": 0.0, "weak": 0.0}


def test_stacking_on_validation_scores_learns_from_validation_and_refits_no_member():
    X, y = planted()
    FITTED_DATES.clear()
    train, valid, test = cut(X, y, 0, 50), cut(X, y, 52, 70), cut(X, y, 72, 90)
    members = {"a": Recorder("a"), "noise": Recorder("n1"), "b": Recorder("b", sign=-1.0)}
    model = Stacking(members, source="valid").fit(*train, valid=valid)
    train_dates = set(train[0].index.get_level_values("date"))
    assert len(FITTED_DATES) == 3  # each member fitted once, on train only
    assert all(dates == train_dates for dates in FITTED_DATES)
    assert not hasattr(model, "oof_")
    assert model.weights_["a"] > model.weights_["b"] > model.weights_["noise"]
    assert (model.coef_ >= 0).all()  # non-negative meta by default
    assert mean_ic(model.predict(test[0]), test[1]) > mean_ic(test[0]["a"], test[1])
    # the meta-learner learns from the validation labels: other labels, other coefficients
    flipped = Stacking(members, source="valid").fit(*train, valid=(valid[0], -valid[1]))
    assert flipped.coef_["noise"] >= 0 and flipped.coef_["a"] < model.coef_["a"]
    with pytest.raises(ValueError, match="source='valid'"):
        Stacking(members, source="valid").fit(*train)


def test_cross_fitted_validation_scores_never_use_their_own_blocks_labels():
    X, y = planted(120)
    train, valid = cut(X, y, 0, 50), cut(X, y, 52, 120)
    members = {"a": Column("a"), "noise": Column("n1"), "b": Column("b", sign=-1.0)}
    valid_dates = valid[0].index.get_level_values("date").unique()
    block = valid[0].index.get_level_values("date").isin(valid_dates[:10])  # the first of 5
    changed = (valid[0], valid[1].where(~block, -valid[1]))
    for make in (
        lambda: WeightedAverage(members),
        lambda: Stacking(members, source="valid"),
        lambda: RegimeEnsemble(members, regime=pd.DataFrame({"v": np.arange(120.0)},
                                                            index=X.index.levels[0]), min_dates=5),
    ):  # fmt: skip
        model = make().fit(*train, valid=valid)
        weights = model.weights_.copy()
        honest = model.cross_fitted(*valid, n_folds=5)
        assert model.weights_.equals(weights)  # the fitted ensemble is left as it was
        assert honest.index.equals(valid[0].index)
        assert mean_ic(honest, valid[1]) > 0.2
        # the first block's scores come from weights fitted on the other blocks only
        other = make().fit(*train, valid=changed)
        moved = other.cross_fitted(*changed, n_folds=5)
        pd.testing.assert_series_equal(moved[block], honest[block])
        assert not np.allclose(moved[~block], honest[~block])
        assert not np.allclose(other.predict(valid[0])[block], model.predict(valid[0])[block])
    # stacking weighted on out-of-fold training scores: its plain validation scores
    oof = Stacking(members).fit(*train, valid=valid)
    pd.testing.assert_series_equal(oof.cross_fitted(*valid), oof.predict(valid[0]))


def test_stacking_weighs_members_by_the_order_they_give_not_by_a_few_extreme_returns():
    X, y = planted()
    rng = np.random.default_rng(5)
    # two names a date with a return 40 standard deviations out, which only "tail" foresees
    picked = X.groupby(level="date").sample(2, random_state=1).index
    jump = pd.Series(0.0, index=X.index)
    jump[picked] = rng.choice([-40.0, 40.0], size=len(picked))
    X = X.assign(tail=jump)
    y = (y + jump).rename("target")
    train, valid = cut(X, y, 0, 50), cut(X, y, 52, 90)
    members = {"order": Column("a"), "tail": Column("tail")}
    ranked = Stacking(members, source="valid").fit(*train, valid=valid)
    raw = Stacking(members, source="valid", rank_target=False).fit(*train, valid=valid)
    assert raw.weights_["tail"] > raw.weights_["order"]  # the extremes decide a fit on values
    assert ranked.weights_["order"] > ranked.weights_["tail"]
