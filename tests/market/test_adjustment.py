"""Point-in-time backward adjustment: a day's step from the announced actions (or the
exchange's ex-rights gap), compounded over the chain of days, applied to the day's bars."""

import numpy as np
import pandas as pd

from quant_assets.market.adjustment import adjusted_day, adjustment_of_day, backward_adjusted
from quant_assets.market.contract.columns import CORPORATE_ACTIONS

DATES = pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"])


def _raw() -> pd.DataFrame:
    # Symbol A pays a 1.0 dividend with ex-date on day 3: preclose 9 instead of 10.
    a = pd.DataFrame(
        {
            "date": DATES,
            "symbol": "A",
            "open": [10.0, 10.0, 9.0, 9.9],
            "high": [10.0, 10.0, 9.9, 9.9],
            "low": [10.0, 10.0, 9.0, 9.9],
            "close": [10.0, 10.0, 9.9, 9.9],
            "preclose": [10.0, 10.0, 9.0, 9.9],
            "volume": [100, 100, 100, 0],
            "amount": [1000.0, 1000.0, 950.0, 0.0],
            "is_suspended": [False, False, False, True],
            "is_st": False,
        }
    )
    b = a.assign(symbol="B", preclose=[10.0, 10.0, 10.0, 9.9])
    return pd.concat([a, b], ignore_index=True)


def _dividend(announced: str) -> pd.DataFrame:
    return pd.DataFrame(
        [["D1", "A", pd.Timestamp(announced), DATES[2], 1.0, 0.0, 1.0]], columns=CORPORATE_ACTIONS
    )


def _day(raw, actions, previous, i):
    window = raw[raw["date"].isin(DATES[max(0, i - 1) : i + 1])]
    return adjustment_of_day(window, actions, previous, DATES[i]).set_index("symbol")


def test_an_announced_dividend_steps_the_factor_on_its_ex_date():
    raw = _raw()
    prev = pd.DataFrame({"symbol": ["A", "B"], "factor": [1.0, 1.0]})
    day = _day(raw, _dividend("2023-12-20"), prev, 2)
    assert day.loc["A", "basis"] == "actions" and np.isclose(day.loc["A", "step"], 10 / 9)
    assert np.isclose(day.loc["A", "step_from_preclose"], 10 / 9)
    assert day.loc["B", "basis"] == "none" and day.loc["B", "factor"] == 1.0
    chained = _day(raw, _dividend("2023-12-20"), day.reset_index()[["symbol", "factor"]], 3)
    assert np.isclose(chained.loc["A", "factor"], 10 / 9)  # the step stays in the chain


def test_an_action_announced_after_its_ex_date_is_not_known_on_it():
    day = _day(_raw(), _dividend("2024-01-05"), pd.DataFrame({"symbol": [], "factor": []}), 2)
    # the gap is still there in the exchange's preclose, and that is what the day knows
    assert day.loc["A", "basis"] == "preclose" and np.isclose(day.loc["A", "step"], 10 / 9)


def test_adjusted_returns_are_exact_and_earlier_days_never_change():
    adj = backward_adjusted(_raw(), _dividend("2023-12-20")).set_index(["date", "symbol"])
    a = adj.xs("A", level="symbol")
    # The dividend day's return is 9.9 / 9.0 - 1 = +10%, not 9.9 / 10 - 1 = -1%.
    assert np.isclose(a["close"].iloc[2] / a["close"].iloc[1] - 1, 0.1)
    assert np.isclose(a["preclose"].iloc[2], a["close"].iloc[1])
    # Values before the ex-date are the raw ones: the factor only compounds forward in time.
    assert np.allclose(a["close"].iloc[:2], [10.0, 10.0])
    truncated = backward_adjusted(_raw()[lambda d: d["date"] <= DATES[1]])
    assert np.allclose(truncated.loc[truncated.symbol == "A", "close"], [10.0, 10.0])
    # volume in base shares, vwap from amount, the close when nothing traded
    assert np.isclose(a["volume"].iloc[2], 100 * 9 / 10)
    assert np.isclose(a["vwap"].iloc[2], 950.0 / 90.0)
    assert a["vwap"].iloc[3] == a["close"].iloc[3]


def test_a_bar_without_a_factor_is_refused():
    raw = _raw()[lambda d: d["date"] == DATES[0]]
    try:
        adjusted_day(raw, pd.DataFrame({"symbol": ["A"], "factor": [1.0]}))
    except ValueError as exc:
        assert "1 bars have no factor" in str(exc) and "B" in str(exc)
    else:
        raise AssertionError("a bar without a factor was adjusted")
