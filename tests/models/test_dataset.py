"""The daily training window holds only days before the model's day, with labels known by
then."""

import numpy as np
import pandas as pd

from quant_assets.models.daily import daily_segments
from quant_assets.models.dataset import segment_frames
from quant_assets.models.metrics import daily_rank_ic


def _panel(dates) -> pd.DataFrame:
    idx = pd.MultiIndex.from_product(
        [pd.DatetimeIndex(dates), ["a", "b", "c"]], names=["date", "symbol"]
    )
    return pd.DataFrame({"f": np.arange(len(idx), dtype=float)}, index=idx)


def test_the_daily_window_never_uses_the_day_itself_nor_an_unknown_label():
    days = pd.bdate_range("2024-01-02", periods=20)
    day = days[-1]
    features = _panel(days)
    label = (features["f"] * 0.01).rename("label")
    label[label.index.get_level_values("date") >= days[-3]] = np.nan  # known two days later
    label.loc[(days[5], "b")] = np.nan  # not realisable
    labelled = pd.DatetimeIndex(label.dropna().index.get_level_values("date").unique())
    segments = daily_segments(labelled, day, train_days=8, valid_days=6)
    frames = segment_frames(features, label, segments, purge_valid=False)
    for X, y in (frames.train, frames.valid, frames.report):
        assert X.index.get_level_values("date").max() < days[-3]
        assert y.notna().all() and y.index.equals(X.index)
    assert (days[5], "b") not in frames.train[0].index
    assert frames.days["test"].tolist() == [day]


def test_rank_ic_of_a_perfect_score_is_one():
    idx = pd.MultiIndex.from_product(
        [pd.to_datetime(["2024-01-02", "2024-01-03"]), list("abcd")], names=["date", "symbol"]
    )
    label = pd.Series(np.arange(8.0), index=idx)
    assert np.allclose(daily_rank_ic(label * 2, label), 1.0)
    assert np.allclose(daily_rank_ic(-label, label), -1.0)
