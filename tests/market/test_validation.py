"""Row-level validation: one test per rule, nothing lost, clean rows satisfy the schemas."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from quant_assets.market.contract import columns as C
from quant_assets.market.contract.schemas import SCHEMAS
from quant_assets.market.validation import (
    QUARANTINE_COLUMNS,
    RULES,
    IngestError,
    text_problems,
    validate,
)

TZ = "Asia/Shanghai"
DAY = "2024-01-02"
NOW = "2024-01-02 18:00"
SYMS = {"600000.SH", "000001.SZ", "688001.SH"}


def ts(*times: str) -> pd.Series:
    stamps = pd.to_datetime([f"{DAY} {t}" for t in times])
    return pd.Series(stamps).dt.tz_localize(TZ).dt.as_unit("ns")


def make_trades() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ts": ts("09:25:00", "09:30:01", "09:30:02", "10:00:00", "13:00:00", "15:00:00"),
            "symbol": ["600000.SH"] * 3 + ["000001.SZ"] * 3,
            "trade_id": [1, 2, 3, 1, 2, 3],
            "price": [10.0, 10.01, 10.02, 20.0, 20.1, 20.2],
            "volume": [1000, 200, 300, 100, 500, 800],
            "side": [0, 1, -1, 1, -1, 0],
        }
    )[C.TRADES]


def make_book(n: int = 4) -> pd.DataFrame:
    d: dict[str, object] = {
        "ts": ts("10:00:00").iloc[0] + pd.to_timedelta(np.arange(n) * 3, "s"),
        "symbol": ["600000.SH"] * n,
    }
    for i in range(1, C.LEVELS + 1):
        d[f"bid_px_{i}"] = [round(10.0 - 0.01 * i, 2)] * n
        d[f"bid_sz_{i}"] = [100 * i] * n
        d[f"ask_px_{i}"] = [round(10.0 + 0.01 * i, 2)] * n
        d[f"ask_sz_{i}"] = [100 * i] * n
    return pd.DataFrame(d)[C.ORDER_BOOK]


def make_bars() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "date": pd.to_datetime([DAY] * 3).astype("datetime64[ns]"),
            "symbol": ["600000.SH", "000001.SZ", "688001.SH"],
            "open": [10.0, 20.0, 50.0],
            "high": [10.5, 20.5, 55.0],
            "low": [9.9, 19.5, 49.0],
            "close": [10.2, 20.2, 54.0],
            "preclose": [10.0, 20.0, 50.0],
            "volume": [1_000_000, 2_000_000, 0],
            "amount": [1.0e7, 4.0e7, 0.0],
            "is_suspended": [False, False, False],
            "is_st": [False, False, False],
        }
    )[C.BARS]


def make_news() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "news_id": ["n1", "n2", "n3"],
            "ts": ts("08:00:00", "12:00:00", "16:00:00"),
            "symbol": ["600000.SH", "000001.SZ", "600000.SH"],
            "title": ["浦发银行发布年报", "平安银行 profit up", "Dividend announced"],
            "body": ["正文", None, "text"],
            "source": ["sina", "wind", None],
            "sentiment": [0.5, np.nan, -0.2],
        }
    )[C.NEWS]


def make_actions() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "action_id": ["a1", "a2"],
            "symbol": ["600000.SH", "000001.SZ"],
            "announce_date": pd.to_datetime(["2023-12-20", DAY]),
            "ex_date": pd.to_datetime(["2024-01-05", "2024-01-10"]),
            "cash_dividend": [0.5, 0.0],
            "bonus_ratio": [0.0, 0.3],
            "split_ratio": [1.0, 1.0],
        }
    )[C.CORPORATE_ACTIONS]


def make_universe() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "symbol": ["600000.SH", "000001.SZ", "688001.SH"],
            "name": ["浦发银行", "平安银行", "华兴源创"],
            "industry": ["bank", "bank", None],
            "board": ["main", "main", "star"],
            "list_date": pd.to_datetime(["1999-11-10", "1991-04-03", "2019-07-22"]),
            "is_st": [False, False, False],
        }
    )[C.UNIVERSE]


MAKERS = {
    "trades": make_trades,
    "order_book": make_book,
    "bars": make_bars,
    "news": make_news,
    "corporate_actions": make_actions,
    "universe": make_universe,
}


def run(kind: str, df: pd.DataFrame, **kw):
    args = dict(known_symbols=SYMS, trading_date=DAY, now=NOW, source_file=f"{kind}.csv")
    args.update(kw)
    return validate(kind, df, **args)


def assert_conserved(res, n: int) -> None:
    """clean + distinct quarantined rows == input rows, with no row in both."""
    clean_rows = set(res.clean.index.tolist())
    bad_rows = set(res.quarantine["row_number"].tolist())
    assert not clean_rows & bad_rows
    assert clean_rows | bad_rows == set(range(n))
    assert len(res.clean) + res.n_quarantined == n == res.n_input


def quarantined(res, rule: str) -> list[int]:
    return sorted(res.quarantine.loc[res.quarantine["rule"] == rule, "row_number"].tolist())


# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(MAKERS))
def test_good_frames_pass_untouched_and_satisfy_the_full_schema(kind):
    df = MAKERS[kind]()
    res = run(kind, df)
    assert res.quarantine.empty, res.quarantine[["rule", "detail"]]
    assert list(res.quarantine.columns) == QUARANTINE_COLUMNS
    assert res.bad_share == 0.0
    SCHEMAS[kind].validate(res.clean)  # dtypes and every column-level constraint
    pd.testing.assert_frame_equal(res.clean.reset_index(drop=True), df, check_dtype=False)


CASES = [
    # (kind, rule, mutate(df), rows expected in quarantine)
    (
        "trades",
        "bad_price",
        lambda d: d.assign(price=[10.0, -1, 10.02, 0.0, 20.1, np.nan]),
        [1, 3, 5],
    ),
    ("trades", "negative_volume", lambda d: d.assign(volume=[1000, -200, 300, 100, 500, 800]), [1]),
    ("trades", "bad_value", lambda d: d.assign(side=[0, 1, 2, 1, -1, 0]), [2]),
    ("trades", "duplicate", lambda d: pd.concat([d, d.iloc[[2]]], ignore_index=True), [6]),
    ("trades", "duplicate", lambda d: d.assign(trade_id=[1, 2, 2, 1, 2, 3]), [2]),
    (
        "trades",
        "out_of_order",
        lambda d: d.assign(
            ts=ts("09:25:00", "09:30:01", "09:30:02", "10:00:00", "09:31:00", "15:00:00")
        ),
        [4],
    ),
    (
        "trades",
        "outside_session",
        lambda d: d.assign(
            ts=ts("09:20:00", "09:30:01", "11:45:00", "10:00:00", "13:00:00", "15:01:30")
        ),
        [0, 2, 5],
    ),
    ("trades", "in_future", lambda d: d, [4, 5]),  # with now = 12:00 below
    (
        "trades",
        "not_on_trading_date",
        lambda d: d.assign(ts=d["ts"].where(d.index != 3, d["ts"] - pd.Timedelta(days=1))),
        [3],
    ),
    (
        "trades",
        "unknown_symbol",
        lambda d: d.assign(symbol=["600000.SH"] * 3 + ["999999.SZ"] * 3),
        [3, 4, 5],
    ),
    (
        "trades",
        "missing_value",
        lambda d: d.assign(symbol=["600000.SH", None] + ["600000.SH"] * 4),
        [1],
    ),
    ("order_book", "crossed_book", lambda d: d.assign(bid_px_1=[9.99, 10.01, 10.02, 9.99]), [1, 2]),
    (
        "order_book",
        "non_monotone_levels",
        lambda d: d.assign(
            bid_px_3=[9.97, 9.99, 9.97, 9.97], ask_px_5=[10.05, 10.05, 10.05, 10.03]
        ),
        [1, 3],
    ),
    ("order_book", "bad_price", lambda d: d.assign(ask_px_2=[10.02, np.nan, 10.02, -1.0]), [1, 3]),
    ("order_book", "negative_volume", lambda d: d.assign(bid_sz_4=[400, 400, -5, 400]), [2]),
    (
        "bars",
        "ohlc_inconsistent",
        lambda d: d.assign(high=[10.1, 20.5, 55.0], low=[9.9, 20.3, 49.0]),
        [0, 1],
    ),
    ("bars", "bad_price", lambda d: d.assign(open=[np.nan, 0.0, 50.0]), [0, 1]),
    ("bars", "negative_volume", lambda d: d.assign(amount=[1.0e7, -4.0e7, 0.0]), [1]),
    ("bars", "duplicate", lambda d: pd.concat([d, d.iloc[[1]]], ignore_index=True), [3]),
    (
        "bars",
        "not_on_trading_date",
        lambda d: d.assign(date=pd.to_datetime([DAY, DAY, "2024-01-03"])),
        [2],
    ),
    ("bars", "suspended_inconsistent", lambda d: d.assign(is_suspended=[True, False, False]), [0]),
    (
        "bars",
        "outside_price_limit",
        lambda d: d.assign(low=[9.9, 19.5, 39.99], close=[10.2, 20.2, 39.99]),  # STAR: >= 40
        [2],
    ),
    ("bars", "missing_value", lambda d: d.assign(volume=[1_000_000, np.nan, 0]), [1]),
    ("news", "empty_title", lambda d: d.assign(title=["ok", "  ", None]), [1, 2]),
    (
        "news",
        "undecodable_text",
        lambda d: d.assign(title=["浦发\ufffd银行", "å¹³å®‰é“¶è¡Œ", "ok"]),
        [0, 1],
    ),
    (
        "news",
        "undecodable_text",
        lambda d: d.assign(body=pd.Series(["ok", b"\xff\xfe bad", "x"], dtype=object)),
        [1],
    ),
    ("news", "bad_value", lambda d: d.assign(sentiment=[0.5, 1.5, np.nan]), [1]),
    ("news", "duplicate", lambda d: d.assign(news_id=["n1", "n1", "n3"]), [1]),
    (
        "news",
        "not_on_trading_date",
        lambda d: d.assign(ts=d["ts"].where(d.index != 2, d["ts"] + pd.Timedelta(days=1))),
        [2],
    ),
    (
        "corporate_actions",
        "ex_before_announce",
        lambda d: d.assign(ex_date=pd.to_datetime(["2023-12-01", "2024-01-10"])),
        [0],
    ),
    ("corporate_actions", "bad_value", lambda d: d.assign(split_ratio=[1.0, 0.0]), [1]),
    (
        "corporate_actions",
        "not_on_trading_date",
        lambda d: d.assign(announce_date=pd.to_datetime(["2023-12-20", "2024-01-03"])),
        [1],
    ),
    ("universe", "bad_value", lambda d: d.assign(board=["main", "chinext", "moon"]), [1, 2]),
]


@pytest.mark.parametrize(
    "kind,rule,mutate,rows", CASES, ids=[f"{k}-{r}-{i}" for i, (k, r, _, _) in enumerate(CASES)]
)
def test_each_rule_quarantines_the_bad_rows_and_loses_nothing(kind, rule, mutate, rows):
    df = mutate(MAKERS[kind]())
    kw = {"now": f"{DAY} 12:00"} if rule == "in_future" else {}
    res = run(kind, df, **kw)
    assert quarantined(res, rule) == rows, res.quarantine[["row_number", "rule", "detail"]]
    assert res.counts[rule] == len(rows)
    assert_conserved(res, len(df))
    q = res.quarantine
    assert (q["kind"] == kind).all() and (q["source_file"] == f"{kind}.csv").all()
    assert (q["trading_date"] == pd.Timestamp(DAY)).all()
    assert q["detail"].str.len().gt(0).all()
    if len(res.clean):
        SCHEMAS[kind].validate(res.clean)


def test_price_limits_use_the_bar_preclose_board_and_st_flag():
    trades = make_trades()
    # 600000.SH main board, ST: 5 % -> [9.50, 10.50]; 000001.SZ main: 10 % -> [18.00, 22.00]
    trades["price"] = [10.50, 10.51, 9.49, 22.0, 22.01, 17.99]
    bars = make_bars().assign(is_st=[True, False, False])
    res = run("trades", trades, bars_for_limits=bars)
    assert quarantined(res, "outside_price_limit") == [1, 2, 4, 5]  # limit prices themselves ok
    assert "outside_price_limit" not in res.skipped


def test_price_limit_rule_is_skipped_and_said_so_without_bars():
    res = run("trades", make_trades().assign(price=[10, 99, 10, 20, 20, 20]))
    assert "outside_price_limit" in res.skipped
    assert "outside_price_limit" not in res.counts


def test_star_board_limit_is_20_percent():
    book = make_book(2)
    book["ask_px_10"] = [59.0, 60.01]
    for i in range(1, 10):
        book[f"ask_px_{i}"] = [50.0 + i * 0.01] * 2
    for i in range(1, 11):
        book[f"bid_px_{i}"] = [50.0 - i * 0.01] * 2
    book["symbol"] = "688001.SH"
    res = run("order_book", book, bars_for_limits=make_bars())  # preclose 50 -> up 60.00
    assert quarantined(res, "outside_price_limit") == [1]


CALENDAR = pd.bdate_range("2023-12-01", DAY)  # weekdays are enough for these cases


@pytest.mark.parametrize(
    ("listed", "price", "outside"),
    [
        # STAR listed three trading days before: day 4 of the five without a limit
        ("2023-12-28", [200.0, 10.0], []),
        # listed six trading days before: day 7, the usual +-20% of preclose 50 applies again
        ("2023-12-22", [60.0, 60.01], [1]),
    ],
)
def test_new_star_listings_trade_without_a_limit_for_five_days(listed, price, outside):
    trades = make_trades().iloc[:2].assign(symbol="688001.SH", price=price)
    listings = pd.Series({"688001.SH": pd.Timestamp(listed)})
    res = run(
        "trades", trades, bars_for_limits=make_bars(), trading_days=CALENDAR, listings=listings
    )
    assert quarantined(res, "outside_price_limit") == outside
    assert any("new listings" in n for n in res.notes) == (not outside)


def test_a_main_board_listing_before_2023_has_one_first_day_at_plus_44_minus_36():
    day = pd.Timestamp("2021-06-01")
    trades = make_trades().assign(
        ts=lambda d: d["ts"] + (day - pd.Timestamp(DAY)),
        symbol="600000.SH",
        trade_id=range(1, 7),
        price=[14.40, 14.41, 6.40, 6.39, 10.0, 10.0],  # preclose (issue price) 10
    )

    def listed_on(listed: pd.Timestamp):
        return run(
            "trades",
            trades,
            trading_date=day,
            now=day + pd.Timedelta(hours=18),
            bars_for_limits=make_bars().assign(date=day),
            trading_days=pd.bdate_range("2021-05-01", day),
            listings=pd.Series({"600000.SH": listed}),
        )

    first = listed_on(day)
    assert quarantined(first, "outside_price_limit") == [1, 3]
    assert first.n_quarantined == 2
    second = listed_on(day - pd.offsets.BDay(1))
    assert quarantined(second, "outside_price_limit") == [0, 1, 2, 3]  # back to +-10 %


def test_without_listing_dates_a_new_listing_gets_the_usual_limits_and_a_note():
    trades = make_trades().iloc[:2].assign(symbol="688001.SH", price=[200.0, 10.0])
    res = run("trades", trades, bars_for_limits=make_bars())
    assert quarantined(res, "outside_price_limit") == [0, 1]
    assert any("no listing dates" in n for n in res.notes)


def test_a_bar_30_percent_above_its_preclose_on_a_10_percent_board_is_quarantined():
    bars = make_bars()
    bars.loc[0, ["high", "close"]] = [13.0, 13.0]  # 600000.SH, preclose 10: limit-up 11.00
    res = run("bars", bars)
    assert quarantined(res, "outside_price_limit") == [0]
    assert "close=13.0 outside [9.0, 11.0]" in res.quarantine["detail"].iloc[0]
    assert res.n_quarantined == 1
    assert_conserved(res, 3)


@pytest.mark.parametrize(
    ("row", "change", "is_st", "outside"),
    [
        # main board 10 %: [9.00, 11.00] around preclose 10; the limit prices themselves are fine
        (0, {"open": 9.0, "low": 9.0, "high": 11.0, "close": 11.0}, False, False),
        (0, {"low": 8.99}, False, True),
        # ST on the main board: 5 %, [9.50, 10.50]
        (0, {"high": 10.5}, True, False),
        (0, {"high": 10.51}, True, True),
        (0, {"open": 9.49, "low": 9.49}, True, True),
        # STAR 20 % around 50: [40.00, 60.00]; ST changes nothing there
        (2, {"high": 60.0}, True, False),
        (2, {"high": 60.01}, False, True),
    ],
)
def test_bar_limits_follow_board_and_st_flag_of_the_bar(row, change, is_st, outside):
    bars = make_bars()
    for col, value in change.items():
        bars.loc[row, col] = value
    bars.loc[row, "is_st"] = is_st
    res = run("bars", bars)
    assert quarantined(res, "outside_price_limit") == ([row] if outside else [])
    assert res.n_quarantined == int(outside)


def test_bars_of_new_listings_use_the_listing_day_limits():
    bars = make_bars()
    bars.loc[2, ["open", "high", "low", "close"]] = [150.0, 200.0, 120.0, 180.0]  # STAR, pre 50
    bars.loc[0, ["open", "high", "low", "close"]] = [14.4, 14.4, 6.4, 14.0]  # main, pre 10

    def listed(star: str, main: str):
        listings = pd.Series({"688001.SH": pd.Timestamp(star), "600000.SH": pd.Timestamp(main)})
        return run("bars", bars, trading_days=CALENDAR, listings=listings)

    # listed three trading days before, STAR and main board (the main boards have had five
    # days without a limit since 2023-04-10)
    assert listed("2023-12-28", "2023-12-28").quarantine.empty
    # both listed long ago: the usual limits
    assert quarantined(listed("2019-07-22", "1999-11-10"), "outside_price_limit") == [0, 2]
    # without listing dates the usual limits apply, and the notes say so
    res = run("bars", bars)
    assert quarantined(res, "outside_price_limit") == [0, 2]
    assert any("no listing dates" in n for n in res.notes)


def test_a_bar_dated_before_the_calendar_s_fifth_day_leaves_the_other_listings_exempt():
    bars = make_bars()
    bars.loc[2, ["open", "high", "low", "close"]] = [150.0, 200.0, 120.0, 180.0]  # STAR, pre 50
    bars.loc[0, "date"] = CALENDAR[1]  # too early to tell its listing days: and off the day
    listings = pd.Series({"688001.SH": pd.Timestamp("2023-12-28")})
    res = run("bars", bars, trading_days=CALENDAR, listings=listings)
    assert quarantined(res, "outside_price_limit") == []
    assert quarantined(res, "not_on_trading_date") == [0] and res.n_quarantined == 1
    assert any("1 of 3 without 5 trading days of calendar" in n for n in res.notes)


def test_a_main_board_bar_on_its_listing_day_before_2023_is_capped_at_plus_44_minus_36():
    day = pd.Timestamp("2021-06-10")
    bars = make_bars().iloc[:1].assign(date=day, preclose=2.65)
    bars[["open", "high", "low", "close"]] = [3.18, 3.82, 3.18, 3.82]  # 600905.SH's first day
    kw = dict(trading_date=day, now=day + pd.Timedelta(hours=18))
    cal = pd.bdate_range("2021-05-01", "2021-06-30")
    res = run("bars", bars, trading_days=cal, listings=pd.Series({"600000.SH": day}), **kw)
    assert res.quarantine.empty, res.quarantine[["rule", "detail"]]
    over = bars.assign(high=3.82 + 0.01, close=3.82 + 0.01)  # above 2.65 * 1.44 = 3.816 -> 3.82
    res = run("bars", over, trading_days=cal, listings=pd.Series({"600000.SH": day}), **kw)
    assert quarantined(res, "outside_price_limit") == [0]


def test_bar_limits_are_skipped_outside_china_and_without_preclose_not_checked():
    bars = make_bars()
    bars.loc[0, ["high", "close"]] = [13.0, 13.0]
    res = run("bars", bars, market="US")
    assert "outside_price_limit" in res.skipped and res.quarantine.empty
    res = run("bars", bars.assign(preclose=[np.nan, 20.0, 50.0]))
    assert res.quarantine.empty
    assert any("1 bars without preclose" in n for n in res.notes)


def session_day(step_s: int = 3) -> pd.Series:
    """A whole day of continuous trading every `step_s` seconds, 09:30 to 14:57."""
    morning = pd.timedelta_range("09:30:00", "11:29:59", freq=f"{step_s}s")
    afternoon = pd.timedelta_range("13:00:00", "14:56:59", freq=f"{step_s}s")
    stamps = pd.Timestamp(DAY) + morning.append(afternoon)
    return pd.Series(stamps.tz_localize(TZ).as_unit("ns"))


def in_2030(stamp: pd.Timestamp) -> pd.Timestamp:
    return stamp.replace(year=2030)


@pytest.mark.parametrize("kind", ["trades", "order_book"])
def test_one_stamp_in_2030_in_the_morning_quarantines_that_row_only(kind):
    stamps = session_day()
    n = len(stamps)
    if kind == "order_book":
        df = pd.concat([make_book(1)] * n, ignore_index=True).assign(ts=stamps)
    else:
        df = pd.DataFrame(
            {
                "ts": stamps,
                "symbol": "600000.SH",
                "trade_id": np.arange(1, n + 1),
                "price": 10.0,
                "volume": 100,
                "side": 1,
            }
        )
    bad = int(np.flatnonzero(stamps.dt.strftime("%H:%M:%S") == "09:45:00")[0])
    df.loc[bad, "ts"] = in_2030(df.loc[bad, "ts"])
    res = run(kind, df, bars_for_limits=make_bars())
    assert n - bad > 4_000  # thousands of good rows after it
    assert set(res.quarantine["row_number"]) == {bad}
    assert {"out_of_order", "in_future", "not_on_trading_date"} <= set(res.quarantine["rule"])
    assert res.clean.index.tolist() == [i for i in range(n) if i != bad]
    assert_conserved(res, n)


def test_an_early_stamp_and_a_swapped_block_in_a_bar_history():
    days = pd.bdate_range("2023-10-02", periods=20)
    bars = pd.concat([make_bars().iloc[[0]]] * 20, ignore_index=True).assign(date=days)
    order = [0, 1, 2, 3, 4, 10, 11, 5, 6, 7, 8, 9, *range(12, 20)]  # days 10-11 moved up
    bars = bars.iloc[order].reset_index(drop=True)
    bars.loc[16, "date"] = pd.Timestamp("2023-01-02")  # one date far back
    res = run("bars", bars, trading_date=None)
    # kept: the 17 rows in order; flagged: the shorter of the two swapped blocks (days 10-11,
    # not days 5-9) and the early date
    assert quarantined(res, "out_of_order") == [5, 6, 16]
    assert res.n_quarantined == 3


def test_empty_levels_are_nan_price_with_size_zero_and_are_skipped_by_monotonicity():
    book = make_book(2)
    for i in range(6, 11):
        book[f"ask_px_{i}"] = np.nan
        book[f"ask_sz_{i}"] = 0
    book.loc[1, "bid_px_1"] = np.nan  # no bids at all on row 1: not crossed, not monotone
    book.loc[1, "bid_sz_1"] = 0
    res = run("order_book", book)
    assert res.quarantine.empty, res.quarantine[["rule", "detail"]]


def test_a_row_failing_several_rules_appears_once_per_rule_but_is_removed_once():
    trades = make_trades()
    trades.loc[1, "price"] = -5.0
    trades.loc[1, "volume"] = -1
    trades.loc[1, "symbol"] = "999999.SH"
    res = run("trades", trades)
    rules_of_row = sorted(res.quarantine.loc[res.quarantine.row_number == 1, "rule"])
    assert rules_of_row == ["bad_price", "negative_volume", "unknown_symbol"]
    assert len(res.clean) == len(trades) - 1
    assert res.n_quarantined == 1 and res.bad_share == pytest.approx(1 / 6)
    assert_conserved(res, len(trades))


def test_wrong_types_are_quarantined_not_raised_and_parseable_values_are_coerced():
    trades = make_trades().astype({"price": object, "volume": object, "ts": object})
    trades.loc[0, "price"] = "abc"
    trades.loc[1, "volume"] = "12.5"  # not a whole number of shares
    trades.loc[2, "ts"] = "yesterday"
    trades.loc[3, "price"] = "20.0"  # parseable text: coerced, row stays clean
    trades["ts"] = [v if isinstance(v, str) else v.isoformat() for v in trades["ts"]]
    res = run("trades", trades)
    assert quarantined(res, "wrong_type") == [0, 1, 2]
    assert "bad_price" not in set(res.quarantine.rule)  # "abc" is a type error, not a price
    assert res.clean.loc[3, "price"] == 20.0
    assert str(res.clean["ts"].dtype) == "datetime64[ns, Asia/Shanghai]"
    assert res.clean["volume"].dtype == "int64"
    assert_conserved(res, len(trades))


def test_timestamps_with_and_without_offset_are_local_time():
    trades = make_trades()
    trades["ts"] = [
        "2024-01-02T09:25:00",
        "2024-01-02 09:30:01+08:00",
        "2024-01-02T01:30:02Z",
        "2024-01-02 10:00:00",
        "2024-01-02T05:00:00+00:00",
        "2024-01-02 15:00:00",
    ]
    res = run("trades", trades)
    assert res.quarantine.empty, res.quarantine[["rule", "detail"]]
    assert res.clean["ts"].dt.strftime("%H:%M:%S").tolist() == [
        "09:25:00",
        "09:30:01",
        "09:30:02",
        "10:00:00",
        "13:00:00",
        "15:00:00",
    ]


def test_quarantine_keeps_the_original_row_as_json():
    trades = make_trades()
    trades.loc[4, "price"] = -20.1
    res = run("trades", trades)
    row = json.loads(res.quarantine["row_json"].iloc[0])
    assert row["price"] == -20.1 and row["trade_id"] == 2 and row["symbol"] == "000001.SZ"
    assert pd.Timestamp(row["ts"]) == trades.loc[4, "ts"]


def test_news_with_lone_surrogates_is_quarantined_and_serialisable():
    news = make_news().astype({"title": object})
    news.loc[0, "title"] = b"\xe6\xb5\xa6\xff".decode("utf-8", "surrogateescape")
    res = run("news", news)
    assert quarantined(res, "undecodable_text") == [0]
    json.loads(res.quarantine["row_json"].iloc[0])
    assert res.clean["title"].dtype == "str"


def test_text_problems_leaves_real_chinese_and_latin_text_alone():
    good = pd.Series(
        ["平安银行2023年度利润分配方案", "Café crème, naïve", "Ålesund", "“quoted” – dash"]
    )
    assert not text_problems(good).any()
    bad = pd.Series(["平安\ufffd", "Ã©tÃ©", "â€œquoteâ€\x9d", "å¹³å®‰"])
    assert text_problems(bad).all()


@pytest.mark.parametrize("kind", list(MAKERS))
def test_missing_columns_raise_ingest_error_with_the_file_name(kind):
    df = MAKERS[kind]().drop(columns=["symbol"])
    with pytest.raises(IngestError, match=rf"{kind}.csv.*missing columns \['symbol'\]"):
        run(kind, df)


def test_empty_frame_is_fine_for_validate():
    res = run("trades", make_trades().iloc[:0])
    assert res.clean.empty and res.quarantine.empty and res.bad_share == 0.0


def test_every_rule_is_documented():
    assert set(RULES) >= {
        "bad_price",
        "crossed_book",
        "non_monotone_levels",
        "duplicate",
        "out_of_order",
        "outside_session",
        "in_future",
        "not_on_trading_date",
        "unknown_symbol",
        "outside_price_limit",
        "ohlc_inconsistent",
        "wrong_type",
        "undecodable_text",
        "empty_title",
        "negative_volume",
    }


@pytest.mark.parametrize("seed", range(8))
def test_property_random_corruption_loses_nothing(seed):
    """Corrupt random cells of a larger book and trades frame: clean + quarantine == input."""
    rng = np.random.default_rng(seed)
    book = pd.concat([make_book(50)] * 4, ignore_index=True)
    book["ts"] = ts(*[f"10:{m:02d}:{s:02d}" for m in range(4) for s in range(50)])
    trades = pd.concat([make_trades()] * 30, ignore_index=True)
    trades["trade_id"] = np.arange(len(trades))
    trades["ts"] = trades["ts"].sort_values(ignore_index=True)
    for df, cols in (
        (book, ["bid_px_1", "ask_px_3", "bid_sz_2", "ts", "symbol"]),
        (trades, ["price", "volume", "ts", "symbol", "trade_id", "side"]),
    ):
        kind = "order_book" if df is book else "trades"
        df = df.astype({c: object for c in cols})
        for _ in range(int(rng.integers(1, 40))):
            r, c = int(rng.integers(len(df))), cols[int(rng.integers(len(cols)))]
            df.at[r, c] = rng.choice(
                np.array([np.nan, -1, 0, "x", 1e9, "999999.SH", None], dtype=object)
            )
        if rng.random() < 0.5:
            df = pd.concat([df, df.sample(5, random_state=seed)], ignore_index=True)
        res = run(kind, df)
        assert_conserved(res, len(df))
        assert res.bad_share > 0
        if len(res.clean):
            SCHEMAS[kind].validate(res.clean)
