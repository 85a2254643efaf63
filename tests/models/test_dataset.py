"""The training frame holds only days before the model's day, with labels known by then."""

import numpy as np
import pandas as pd

from quant_assets.models.dataset import training_frame
from quant_assets.models.metrics import daily_rank_ic


def _panel(dates: list[str]) -> pd.DataFrame:
    idx = pd.MultiIndex.from_product(
        [pd.to_datetime(dates), ["a", "b", "c"]], names=["date", "symbol"]
    )
    return pd.DataFrame({"f": np.arange(len(idx), dtype=float)}, index=idx)


def test_training_frame_never_uses_the_day_itself_nor_an_unknown_label():
    features = _panel(["2024-01-02", "2024-01-03", "2024-01-04"])
    label = features["f"].rename("label") * 0.01
    label.loc[("2024-01-03", "b")] = np.nan  # not yet known / not realisable
    X, y = training_frame(features, label, pd.Timestamp("2024-01-04"))
    assert X.index.get_level_values("date").max() == pd.Timestamp("2024-01-03")
    assert ("2024-01-03", "b") not in X.index and len(X) == 5
    assert y.between(-0.5, 0.5).all() and y.index.equals(X.index)


def test_rank_ic_of_a_perfect_score_is_one():
    idx = pd.MultiIndex.from_product(
        [pd.to_datetime(["2024-01-02", "2024-01-03"]), list("abcd")], names=["date", "symbol"]
    )
    label = pd.Series(np.arange(8.0), index=idx)
    assert np.allclose(daily_rank_ic(label * 2, label), 1.0)
    assert np.allclose(daily_rank_ic(-label, label), -1.0)
