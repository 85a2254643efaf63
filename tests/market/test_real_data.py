"""Real public data (../shared/data, see SOURCES.md) through the same validate() path.

Each test skips with the missing path when the shared data folder is absent.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quant_assets.calendar import trading_days
from quant_assets.market import rules
from quant_assets.market.adjustment import adjust_prices, adjustment_factors, factors_from_preclose
from quant_assets.market.contract.schemas import BarsSchema, OrderBookSchema, TradesSchema
from quant_assets.market.intraday import trades_to_daily_bars, trades_to_minute_bars
from quant_assets.market.sources import real_data as R
from quant_assets.market.validation import text_problems, validate


def need(relative: str):
    path = R.DATA_ROOT / relative
    return pytest.mark.skipif(not path.exists(), reason=f"real data absent: {path}")


def conserved(res) -> bool:
    rows = set(res.clean.index) | set(res.quarantine["row_number"])
    return rows == set(range(res.n_input)) and len(res.clean) + res.n_quarantined == res.n_input


@pytest.fixture(scope="module")
def csi300():
    if not (R.DATA_ROOT / R.CSI300_BARS).exists():
        pytest.skip(f"real data absent: {R.DATA_ROOT / R.CSI300_BARS}")
    return R.load_csi300_bars()


def test_csi300_bars_validate_clean_with_suspended_and_limit_up_rows_kept(csi300):
    # SOURCES.md: 16 codes list inside the window, on their first row's date; the limits of
    # their first days need the listing dates and a calendar reaching five days before the window
    first = csi300.groupby("symbol")["date"].min()
    listings = first[first > csi300["date"].min()]
    assert len(listings) == 16
    res = validate(
        "bars",
        csi300,
        known_symbols=set(csi300["symbol"]),
        trading_date=None,
        now="2024-08-21",
        source_file=R.CSI300_BARS,
        trading_days=trading_days(pd.Timestamp("2020-11-02"), csi300["date"].max()),
        listings=listings,
    )
    assert conserved(res)
    # the one row beyond its limits: 000792.SZ relisted on 2021-08-10 after a suspension (a
    # relisting's first day has no limit; the rules know listings, not relistings)
    q = res.quarantine
    assert q[["symbol", "rule"]].values.tolist() == [["000792.SZ", "outside_price_limit"]]
    assert csi300["date"].iloc[q["row_number"].iloc[0]] == pd.Timestamp("2021-08-10")
    assert any("16 new listings under listing-day limits" in n for n in res.notes)
    clean = res.clean
    BarsSchema.validate(clean)
    assert len(clean) == 229_364 and clean["symbol"].nunique() == 265
    assert clean["symbol"].str.match(r"^\d{6}\.(SH|SZ)$").all()
    susp = clean[clean["is_suspended"]]
    assert len(susp) == 328 and (susp["volume"] == 0).all()  # valid-but-suspended, kept
    assert (
        clean.loc[clean["is_st"], "symbol"].unique().tolist()
        == ["600515.SH", "000408.SZ", "000792.SZ"]
        or clean["is_st"].sum() == 629
    )
    board = clean["symbol"].map(rules.board_of)
    pct = rules.limit_pct(board, clean["is_st"])
    up, down = rules.price_limits(clean["preclose"], pct)
    at_up = (clean["close"] - up).abs() < 1e-6
    assert at_up.sum() > 1_000  # SOURCES.md counts 1,321 limit-up closes: all valid, all kept


def test_csi300_adjusted_returns_equal_the_vendor_pct_change(csi300):
    factors = factors_from_preclose(csi300)
    adj = adjust_prices(csi300, factors, how="backward")
    ret = adj.groupby("symbol")["close"].pct_change()
    ref = pd.Series(csi300.attrs["pct_chg"] / 100, index=csi300.index)
    ref = ref.reindex(csi300.sort_values(["symbol", "date"], kind="stable").index).to_numpy()
    ok = ~np.isnan(ret.to_numpy()) & ~np.isnan(ref)
    assert ok.sum() > 228_000
    np.testing.assert_allclose(ret.to_numpy()[ok], ref[ok], atol=2e-6)


def test_csi300_ex_rights_gap_of_600188_vanishes(csi300):
    bars = csi300[csi300["symbol"] == "600188.SH"]
    day = pd.Timestamp("2023-07-17")
    raw = bars.set_index("date")["close"]
    prev = raw.index[raw.index.get_loc(day) - 1]
    assert raw[prev] == pytest.approx(33.87)
    assert bars.set_index("date").loc[day, "preclose"] == pytest.approx(19.71)
    raw_ret = raw[day] / raw[prev] - 1
    assert raw_ret < -0.35  # the unadjusted series shows a 40 % "crash"
    for how in ("backward", "forward"):
        adj = adjust_prices(bars, factors_from_preclose(bars), how=how).set_index("date")["close"]
        adj_ret = adj[day] / adj[prev] - 1
        assert adj_ret == pytest.approx(raw[day] / 19.71 - 1)  # the true return of that day
        assert abs(adj_ret) < 0.1
    fwd = adjust_prices(bars, factors_from_preclose(bars), how="forward")
    assert fwd["close"].iloc[-1] == raw.iloc[-1]


@pytest.fixture(scope="module")
def tick():
    path = R.DATA_ROOT / R.TICK_5LEVEL / "SZ000001.csv"
    if not path.exists():
        pytest.skip(f"real data absent: {path}")
    return R.load_tick_5level(path)


def test_tick_snapshots_map_to_order_book_and_quirks_are_quarantined(tick):
    book, _ = tick
    assert book.shape == (4_749, 42)
    assert book["ask_px_6"].isna().all() and (book["ask_sz_10"] == 0).all()
    res = validate(
        "order_book",
        book,
        known_symbols={"000001.SZ"},
        trading_date="2020-01-02",
        now="2020-01-02 18:00",
        source_file="SZ000001.csv",
    )
    assert conserved(res)
    OrderBookSchema.validate(res.clean)
    q = res.quarantine
    by_rule = q.groupby("rule")["row_number"].apply(set)
    # call-auction indications before 09:25 (locked book, level 1 only), and the snapshots
    # after 15:00: outside the sessions
    assert set(range(66)) <= by_rule["outside_session"]
    # the duplicated 09:30:09 timestamp with a different book: the second one is quarantined
    assert len(by_rule["duplicate"]) == 1
    # the closing call auction (14:57-15:00) shows a locked indicative book
    assert "crossed_book" in by_rule
    assert res.bad_share < 0.05
    clean = res.clean
    assert not (clean["bid_px_1"] >= clean["ask_px_1"]).any()  # one side may be empty


def test_tick_trades_reconcile_with_the_vendor_volume_and_amount(tick):
    _, trades = tick
    daily = trades_to_daily_bars(trades)
    assert daily["volume"].iloc[0] == 1_530_232 * 100  # SOURCES.md: lots -> shares
    assert daily["amount"].iloc[0] == pytest.approx(2.571e9, rel=1e-3)
    assert daily["low"].iloc[0] >= 16.55 - 0.01 and daily["high"].iloc[0] <= 16.95 + 0.01
    res = validate(
        "trades",
        trades,
        known_symbols={"000001.SZ"},
        trading_date="2020-01-02",
        now="2020-01-02 18:00",
    )
    assert conserved(res)
    TradesSchema.validate(res.clean)
    # The opening (09:25:04) and closing (15:00:03) auction prints arrive a few seconds after
    # the print times; they are auction prints all the same and stay clean.
    assert res.counts.get("outside_session", 0) == 0 and res.n_quarantined == 0
    assert trades_to_daily_bars(res.clean)["volume"].iloc[0] == 1_530_232 * 100
    minutes = trades_to_minute_bars(res.clean)
    assert len(minutes) <= 240 and minutes["volume"].sum() == res.clean["volume"].sum()


@pytest.fixture(scope="module")
def sp500():
    if not (R.DATA_ROOT / R.SP500_BARS).exists():
        pytest.skip(f"real data absent: {R.DATA_ROOT / R.SP500_BARS}")
    return R.load_sp500_bars()


def test_sp500_corrupt_2021_rows_and_the_bhf_row_are_quarantined(sp500):
    xc = pytest.importorskip("exchange_calendars")
    sessions = xc.get_calendar("XNYS").sessions_in_range("2013-01-01", "2021-12-31")
    sessions = sessions.tz_localize(None) if sessions.tz is not None else sessions
    assert sp500.attrs["market"] == "US"
    # "now" is when the data set was published (Feb 2018): 2021 dates are corrupt
    res = validate(
        "bars",
        sp500,
        known_symbols=set(sp500["symbol"]),
        trading_date=None,
        now="2018-02-08",
        trading_days=sessions,
        market="US",
        source_file=R.SP500_BARS,
    )
    assert conserved(res)
    q = res.quarantine
    future = q[q["rule"] == "in_future"]
    assert len(future) == 2_600 and future.groupby("symbol").size().eq(26).all()
    weekend = q[q["rule"] == "non_trading_day"]
    assert len(weekend) >= 1_200  # every Saturday/Sunday row (and a US holiday)
    bhf = q[(q["rule"] == "bad_price") & (q["symbol"] == "BHF")]
    assert len(bhf) == 1 and '"date": "2017-07-26' in bhf["row_json"].iloc[0]
    assert res.clean["date"].max() <= pd.Timestamp("2018-02-07")
    assert res.clean["open"].notna().all()
    BarsSchema.validate(res.clean)


@pytest.fixture(scope="module")
def quandl():
    if not (R.DATA_ROOT / R.QUANDL_SAMPLE).exists():
        pytest.skip(f"real data absent: {R.DATA_ROOT / R.QUANDL_SAMPLE}")
    return R.load_quandl_sample()


def test_quandl_actions_validate_and_adjustment_matches_quandl_adj_close(quandl):
    bars, actions, reference = quandl
    assert validate(
        "corporate_actions", actions, known_symbols=set(bars["symbol"]), trading_date=None
    ).quarantine.empty
    assert validate(
        "bars", bars, known_symbols=None, trading_date=None, market="US"
    ).quarantine.empty
    factors = adjustment_factors(actions, bars)
    adj = adjust_prices(bars, factors, how="forward").merge(reference, on=["date", "symbol"])
    for symbol, g in adj.groupby("symbol"):
        # Quandl adjusts as of its (later) download date: a constant scale from later actions
        scale = g["adj_close"].iloc[-1] / g["close"].iloc[-1]
        np.testing.assert_allclose(g["close"] * scale, g["adj_close"], rtol=5e-4, err_msg=symbol)
        np.testing.assert_allclose(g["open"] * scale, g["adj_open"], rtol=5e-4, err_msg=symbol)
    aapl = adj[adj["symbol"] == "AAPL"].set_index("date")
    # the 7:1 split of 2014-06-09 is gone from the adjusted series
    assert aapl.loc["2014-06-09", "close"] / aapl.loc["2014-06-06", "close"] == pytest.approx(
        aapl.loc["2014-06-09", "adj_close"] / aapl.loc["2014-06-06", "adj_close"], rel=1e-4
    )


def test_quandl_factors_as_of_before_the_split_do_not_know_it(quandl):
    bars, actions, _ = quandl
    before = adjustment_factors(actions, bars, as_of="2014-06-06")
    aapl = before[before["symbol"] == "AAPL"]
    assert aapl["factor"].max() < 1.05  # dividends only, no 7x split
    assert aapl["date"].max() == pd.Timestamp("2014-06-06")


@need(f"{R.PHRASEBANK}/Sentences_50Agree.txt")
def test_phrasebank_is_not_news_but_its_latin1_file_exercises_the_text_rule():
    allagree = R.load_phrasebank()
    assert len(allagree) == 2_264 and set(allagree["sentiment"]) == {-1.0, 0.0, 1.0}
    assert not text_problems(allagree["sentence"]).any()
    latin1 = R.load_phrasebank("Sentences_50Agree.txt", encoding="latin-1")
    assert not text_problems(latin1["sentence"]).any()
    wrong = R.load_phrasebank("Sentences_50Agree.txt", encoding="utf-8", errors="replace")
    bad = text_problems(wrong["sentence"])
    non_ascii = latin1["sentence"].map(lambda s: not s.isascii()).to_numpy()
    np.testing.assert_array_equal(bad, non_ascii)  # exactly the lines with Latin-1 bytes
