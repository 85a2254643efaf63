import numpy as np
import pandas as pd

from quant_assets.market.queries import adjusted_bars
from quant_assets.models.dataset import daily_rank_ic, next_day_labels, training_frame


def _raw() -> pd.DataFrame:
    # Symbol A pays a 1.0 dividend with ex-date on day 3: preclose 9 instead of 10.
    dates = pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"])
    a = pd.DataFrame(
        {
            "date": dates,
            "symbol": "A",
            "open": [10.0, 10.0, 9.0, 9.9],
            "high": [10.0, 10.0, 9.9, 9.9],
            "low": [10.0, 10.0, 9.0, 9.9],
            "close": [10.0, 10.0, 9.9, 9.9],
            "preclose": [10.0, 10.0, 9.0, 9.9],
            "volume": [100, 100, 100, 100],
            "amount": [1000.0, 1000.0, 950.0, 990.0],
            "is_suspended": False,
        }
    )
    b = a.assign(symbol="B", preclose=[10.0, 10.0, 10.0, 9.9])
    return pd.concat([a, b], ignore_index=True)


def test_adjustment_removes_the_ex_rights_gap_without_look_ahead():
    adj = adjusted_bars(_raw()).set_index(["date", "symbol"])
    a = adj.xs("A", level="symbol")
    # The dividend day's return is 9.9 / 9.0 - 1 = +10%, not 9.9 / 10 - 1 = -1%.
    assert np.isclose(a["ret1"].iloc[2], 0.1)
    assert np.isclose(a["close"].iloc[2] / a["close"].iloc[1] - 1, 0.1)
    # Values before the ex-date are unchanged: the factor only compounds forward in time.
    assert np.allclose(a["close"].iloc[:2], [10.0, 10.0])
    truncated = adjusted_bars(_raw()[lambda d: d["date"] <= "2024-01-03"])
    assert np.allclose(truncated.loc[truncated.symbol == "A", "close"], [10.0, 10.0])


def test_labels_are_next_day_returns_and_unknown_on_the_last_day():
    labels = next_day_labels(adjusted_bars(_raw()))
    a = labels.xs("A", level="symbol")
    assert np.isclose(a.loc["2024-01-03"], 0.1)
    assert np.isnan(a.loc["2024-01-05"])


def test_training_frame_never_uses_the_day_itself():
    adj = adjusted_bars(_raw())
    feats = adj.set_index(["date", "symbol"])[["ret1"]].rename(columns={"ret1": "f"})
    X, y = training_frame(feats, next_day_labels(adj), pd.Timestamp("2024-01-04"))
    assert X.index.get_level_values("date").max() == pd.Timestamp("2024-01-03")
    assert y.between(-0.5, 0.5).all()


def test_rank_ic_of_a_perfect_score_is_one():
    idx = pd.MultiIndex.from_product(
        [pd.to_datetime(["2024-01-02", "2024-01-03"]), list("abcd")], names=["date", "symbol"]
    )
    label = pd.Series(np.arange(8.0), index=idx)
    assert np.allclose(daily_rank_ic(label * 2, label), 1.0)
    assert np.allclose(daily_rank_ic(-label, label), -1.0)
