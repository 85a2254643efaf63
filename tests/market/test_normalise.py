"""Normalisation cases computed by hand: minute/daily bars, adjustment factors, news days."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quant_assets.market.adjustment import adjust_prices, adjustment_factors, factors_from_preclose
from quant_assets.market.contract import columns as C
from quant_assets.market.intraday import (
    compare_daily_bars,
    trades_to_daily_bars,
    trades_to_minute_bars,
)
from quant_assets.market.news_days import news_to_trading_days

TZ = "Asia/Shanghai"


def local(*stamps: str) -> pd.Series:
    return pd.Series(pd.to_datetime(list(stamps))).dt.tz_localize(TZ).dt.as_unit("ns")


def trades_frame() -> pd.DataFrame:
    t = local(
        "2024-01-02 09:25:00",
        "2024-01-02 09:30:00",
        "2024-01-02 09:30:59",
        "2024-01-02 09:31:00",
        "2024-01-02 11:29:59",
        "2024-01-02 11:30:00",
        "2024-01-02 13:00:00",
        "2024-01-02 14:56:59",
        "2024-01-02 15:00:00",
    )
    return pd.DataFrame(
        {
            "ts": t,
            "symbol": "600000.SH",
            "trade_id": np.arange(1, 10),
            "price": [10.00, 10.02, 9.98, 10.05, 10.10, 10.12, 10.08, 10.20, 10.15],
            "volume": [5000, 100, 200, 300, 400, 500, 600, 700, 800],
            "side": [0, 1, -1, 1, 1, 1, -1, 1, 0],
        }
    )[C.TRADES]


def test_minute_bars_are_labelled_by_the_end_of_the_minute():
    bars = trades_to_minute_bars(trades_frame())
    assert bars["ts"].dt.strftime("%H:%M").tolist() == [
        "09:31",
        "09:32",
        "11:30",
        "13:01",
        "14:57",
        "15:00",
    ]
    first = bars.iloc[0]  # auction print + [09:30:00, 09:31:00)
    assert (first.open, first.high, first.low, first.close) == (10.00, 10.02, 9.98, 9.98)
    assert first.volume == 5300 and first.n_trades == 3
    assert first.amount == pytest.approx(10.00 * 5000 + 10.02 * 100 + 9.98 * 200)
    noon = bars.iloc[2]  # 11:29:59 and the 11:30:00 print share the 11:30 bar
    assert (noon.open, noon.close, noon.volume, noon.n_trades) == (10.10, 10.12, 900, 2)
    assert bars.iloc[-1].volume == 800  # closing auction in the 15:00 bar
    assert list(bars.columns) == [
        "ts",
        "symbol",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "amount",
        "n_trades",
    ]
    assert str(bars["ts"].dtype) == "datetime64[ns, Asia/Shanghai]"


def test_daily_bars_and_comparison_with_the_vendor():
    trades = trades_frame()
    shuffled = trades.sample(frac=1, random_state=3)  # order by ts, not by arrival
    daily = trades_to_daily_bars(shuffled)
    row = daily.iloc[0]
    assert (row.open, row.high, row.low, row.close) == (10.00, 10.20, 9.98, 10.15)
    assert row.volume == trades.volume.sum() and row.n_trades == 9
    assert row.date == pd.Timestamp("2024-01-02")
    vendor = pd.DataFrame(
        {
            "date": pd.to_datetime(["2024-01-02", "2024-01-02"]).astype("datetime64[ns]"),
            "symbol": ["600000.SH", "000001.SZ"],
            "open": [10.00, 9.0],
            "high": [10.20, 9.0],
            "low": [9.98, 9.0],
            "close": [10.15, 9.0],
            "preclose": [9.9, 9.0],
            "volume": [trades.volume.sum(), 0],
            "amount": [row.amount, 0.0],
            "is_suspended": [False, True],
            "is_st": [False, False],
        }
    )
    assert compare_daily_bars(daily, vendor).empty  # suspended 000001.SZ has no trades: fine
    vendor.loc[0, "close"] = 10.16
    vendor.loc[1, "is_suspended"] = False
    diff = compare_daily_bars(daily, vendor)
    assert diff[["symbol", "field"]].values.tolist() == [
        ["000001.SZ", "missing"],
        ["600000.SH", "close"],
    ]
    assert diff.loc[1, "from_trades"] == 10.15 and diff.loc[1, "vendor"] == 10.16
    assert compare_daily_bars(daily, vendor, tol={"close": 1e-3}).field.tolist() == ["missing"]


def ex_rights_bars() -> pd.DataFrame:
    """600000.SH: 10派1送5 (cash 0.10/share, 0.5 bonus shares) ex on 01-05, announced 01-03."""
    dates = pd.to_datetime(
        ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05", "2024-01-08"]
    ).astype("datetime64[ns]")
    close = [10.0, 10.5, 11.0, 7.5, 7.6]
    # exchange preclose on the ex-date: (11.0 - 0.1) / 1.5 = 7.2667 -> 7.27 on the tick
    preclose = [9.8, 10.0, 10.5, 7.27, 7.5]
    return pd.DataFrame(
        {
            "date": dates,
            "symbol": "600000.SH",
            "open": close,
            "high": close,
            "low": close,
            "close": close,
            "preclose": preclose,
            "volume": [1000, 1000, 1000, 1500, 1500],
            "amount": np.nan,
            "is_suspended": False,
            "is_st": False,
        }
    )[C.BARS]


def actions_frame(announce: str = "2024-01-03", ex: str = "2024-01-05") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "action_id": ["a1"],
            "symbol": ["600000.SH"],
            "announce_date": pd.to_datetime([announce]),
            "ex_date": pd.to_datetime([ex]),
            "cash_dividend": [0.1],
            "bonus_ratio": [0.5],
            "split_ratio": [1.0],
        }
    )[C.CORPORATE_ACTIONS]


def test_factors_from_actions_and_from_preclose_agree_up_to_the_tick():
    bars = ex_rights_bars()
    from_actions = adjustment_factors(actions_frame(), bars)
    from_preclose = factors_from_preclose(bars)
    expected = [1, 1, 1, 11.0 / ((11.0 - 0.1) / 1.5), 11.0 / ((11.0 - 0.1) / 1.5)]
    np.testing.assert_allclose(from_actions["factor"], expected)
    np.testing.assert_allclose(from_preclose["factor"], [1, 1, 1, 11.0 / 7.27, 11.0 / 7.27])
    # the exchange rounds preclose to 0.01: the two differ by at most half a tick in relative terms
    np.testing.assert_allclose(from_actions["factor"], from_preclose["factor"], rtol=0.005 / 7.27)


def test_ex_rights_gap_vanishes_in_backward_and_forward_adjusted_prices():
    bars = ex_rights_bars()
    f = factors_from_preclose(bars)
    for how in ("backward", "forward"):
        adj = adjust_prices(bars, f, how=how)
        ret = adj["close"].pct_change().iloc[3]
        assert ret == pytest.approx(7.5 / 7.27 - 1)  # the true return, not 7.5 / 11 - 1
        assert adj["preclose"].iloc[3] == pytest.approx(adj["close"].iloc[2])
    fwd = adjust_prices(bars, f, how="forward")
    assert fwd["close"].iloc[-1] == 7.6 and fwd["close"].iloc[0] == pytest.approx(10 * 7.27 / 11)
    assert fwd["volume"].iloc[0] == pytest.approx(1000 * 11 / 7.27)  # shares scale inversely
    back = adjust_prices(bars, f, how="backward")
    assert back["close"].iloc[0] == 10.0


def test_no_look_ahead_an_action_announced_after_t_never_changes_factors_up_to_t():
    bars = ex_rights_bars()
    base = adjustment_factors(actions_frame().iloc[:0], bars)
    with_action = adjustment_factors(actions_frame(announce="2024-01-04"), bars)
    t = pd.Timestamp("2024-01-04")
    np.testing.assert_array_equal(
        with_action.loc[with_action.date <= t, "factor"], base.loc[base.date <= t, "factor"]
    )
    # as of 01-04 the action was announced but not yet ex: nothing adjusts, later days dropped
    as_of = adjustment_factors(actions_frame(announce="2024-01-04"), bars, as_of="2024-01-03")
    assert as_of["date"].max() == pd.Timestamp("2024-01-03")
    assert (as_of["factor"] == 1).all()


def test_late_announced_action_enters_on_its_announcement_day_point_in_time():
    bars = ex_rights_bars()
    late = actions_frame(announce="2024-01-08", ex="2024-01-05")  # vendor learnt of it late
    pit = adjustment_factors(late, bars)
    ratio = 11.0 / ((11.0 - 0.1) / 1.5)
    np.testing.assert_allclose(pit["factor"], [1, 1, 1, 1, ratio])  # unknown on 01-05
    assert (adjustment_factors(late, bars, as_of="2024-01-05")["factor"] == 1).all()
    known_later = adjustment_factors(late, bars, as_of="2024-01-08")
    np.testing.assert_allclose(known_later["factor"], [1, 1, 1, ratio, ratio])


def test_forward_adjustment_refuses_factors_that_know_the_future():
    bars = ex_rights_bars()
    later = adjustment_factors(actions_frame(), bars, as_of="2024-01-08")
    with pytest.raises(ValueError, match="know actions announced after"):
        adjust_prices(bars, later, how="forward", as_of="2024-01-04")
    early = adjustment_factors(actions_frame(), bars, as_of="2024-01-04")
    fwd = adjust_prices(bars, early, how="forward", as_of="2024-01-04")
    assert fwd["close"].tolist() == [10.0, 10.5, 11.0]


def test_ex_date_on_a_non_trading_day_applies_on_the_next_bar():
    bars = ex_rights_bars()
    f = adjustment_factors(
        actions_frame(ex="2024-01-06"),
        bars.iloc[[0, 1, 2, 4]].assign(preclose=[9.8, 10.0, 10.5, 7.27]),
    )
    assert f["factor"].tolist()[:3] == [1, 1, 1] and f["factor"].iloc[3] > 1.5


def test_news_after_15_00_or_on_a_holiday_belongs_to_the_next_trading_day():
    days = pd.to_datetime(["2024-02-08", "2024-02-19", "2024-02-20"])  # Spring Festival gap
    news = pd.DataFrame(
        {
            "news_id": list("abcdef"),
            "ts": local(
                "2024-02-08 14:59:59",
                "2024-02-08 15:00:00",
                "2024-02-10 09:00:00",
                "2024-02-19 08:00:00",
                "2024-02-19 23:30:00",
                "2024-02-20 16:00:00",
            ),
            "symbol": "600000.SH",
            "title": "t",
            "body": None,
            "source": None,
            "sentiment": np.nan,
        }
    )[C.NEWS]
    out = news_to_trading_days(news, days)
    assert list(out.columns[:2]) == ["trading_date", "news_id"]
    assert out["trading_date"].dt.strftime("%m-%d").fillna("NaT").tolist() == [
        "02-08",
        "02-19",
        "02-19",
        "02-19",
        "02-20",
        "NaT",
    ]
