"""Labels are stored on the day their last price is known, and map back to their own day."""

import numpy as np
import pandas as pd
import pytest

from quant_assets.calendar import previous_trading_day, trading_days
from quant_assets.market.labels import LAGS, labels_by_date, labels_known_on

# 14 trading days across the 2024 Spring Festival (02-09..02-16 closed)
DAYS = trading_days("2024-01-29", "2024-02-23")


def _bars(n_symbols: int = 3, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_symbols):
        close = 10 * np.cumprod(1 + rng.normal(0, 0.02, len(DAYS)))
        open_ = close * (1 + rng.normal(0, 0.005, len(DAYS)))
        for d, c, o in zip(DAYS, close, open_, strict=True):
            rows.append((d, f"S{s}", o, c, False))
    return pd.DataFrame(rows, columns=["date", "symbol", "open", "close", "is_suspended"])


def _at(bars: pd.DataFrame, day: pd.Timestamp, symbol: str, col: str) -> float:
    return float(bars.set_index(["date", "symbol"]).loc[(day, symbol), col])


def test_each_label_is_the_return_that_ends_on_the_day():
    bars = _bars()
    d = DAYS[-1]
    got = labels_known_on(bars, d).set_index("symbol")
    wide = {c: bars.pivot(index="date", columns="symbol", values=c) for c in ("open", "close")}
    for s in got.index:
        close = wide["close"][s].to_numpy()[::-1]  # close[k]: k trading days before d
        opened = wide["open"][s].to_numpy()[::-1]
        assert got.loc[s, "ret_1d"] == pytest.approx(close[0] / close[1] - 1)
        assert got.loc[s, "ret_5d"] == pytest.approx(close[0] / close[5] - 1)
        assert got.loc[s, "ret_10d"] == pytest.approx(close[0] / close[10] - 1)
        assert got.loc[s, "label"] == pytest.approx(close[0] / close[1] - 1)
        assert got.loc[s, "open_ret"] == pytest.approx(opened[0] / opened[1] - 1)
    assert (got["date"] == d).all()


def test_later_prices_never_change_a_day_s_labels():
    bars = _bars()
    d = DAYS[-4]
    known = labels_known_on(bars[bars["date"] <= d], d)
    with_future = labels_known_on(bars, d)
    pd.testing.assert_frame_equal(known, with_future)
    shocked = bars.copy()
    shocked.loc[shocked["date"] > d, ["open", "close"]] *= 3
    pd.testing.assert_frame_equal(known, labels_known_on(shocked, d))


def test_a_suspended_end_or_entry_day_gives_no_label():
    bars = _bars()
    halt = (bars["symbol"] == "S1") & (bars["date"] == DAYS[-2])
    bars.loc[halt, "is_suspended"] = True
    got = labels_known_on(bars, DAYS[-1]).set_index("symbol")
    assert np.isnan(got.loc["S1", "label"]) and np.isnan(got.loc["S1", "open_ret"])
    assert np.isfinite(got.loc["S1", "ret_1d"])  # the close-to-close return is still realised
    ended = labels_known_on(bars, DAYS[-2]).set_index("symbol")
    assert ended.loc["S1", ["ret_1d", "ret_5d", "label", "open_ret"]].isna().all()


def test_labels_map_back_to_their_own_day_across_a_holiday():
    bars = _bars()
    known = pd.concat([labels_known_on(bars, d) for d in DAYS[9:]], ignore_index=True)
    for name, lag in LAGS.items():
        series = labels_by_date(known, name)
        own = series.index.get_level_values("date").unique().sort_values()
        assert list(own) == [previous_trading_day(d, lag) for d in DAYS[9:]], name
    # 2024-02-19 reveals the 1-day return of 2024-02-08, the last day before the holiday
    one_day = labels_by_date(known, "ret_1d").xs("S0", level="symbol")
    assert one_day.loc["2024-02-08"] == pytest.approx(
        _at(bars, pd.Timestamp("2024-02-19"), "S0", "close")
        / _at(bars, pd.Timestamp("2024-02-08"), "S0", "close")
        - 1
    )
