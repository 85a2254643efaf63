"""Microstructure factors: hand-computed tiny days, edge cases, the planted closing-imbalance
alpha of the simulated market, and real data (skipped when ../shared/data is absent)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from quant_assets.calendar import TZ
from quant_assets.factors.microstructure import (
    COLUMNS,
    daily_microstructure,
    effective_spread,
    ofi_increments,
    order_book_imbalance,
    realized_moments,
)
from quant_assets.market.contract import columns as C
from quant_assets.market.sources import real_data as R
from quant_assets.market.sources.simulated import SimulatedMarket

DAY = "2024-01-03"


def ts(clock: str) -> pd.Timestamp:
    return pd.Timestamp(f"{DAY} {clock}", tz=TZ)


def snap(symbol: str, clock: str, bids=(), asks=()) -> dict:
    """One ORDER_BOOK row from (price, size) lists; unlisted levels are empty (NaN, 0)."""
    row = {"ts": ts(clock), "symbol": symbol}
    for side, levels in (("bid", bids), ("ask", asks)):
        for i in range(1, C.LEVELS + 1):
            px, sz = levels[i - 1] if i <= len(levels) else (np.nan, 0)
            row[f"{side}_px_{i}"], row[f"{side}_sz_{i}"] = px, sz
    return row


def book_frame(rows) -> pd.DataFrame:
    return pd.DataFrame(rows)[C.ORDER_BOOK]


def trade_frame(rows) -> pd.DataFrame:
    out = pd.DataFrame(rows, columns=["symbol", "clock", "price", "volume", "side"])
    out["ts"] = [ts(c) for c in out["clock"]]
    out["trade_id"] = out.groupby("symbol").cumcount() + 1
    return out[C.TRADES]


# A: an ordinary book (auction indications at 09:25 and 14:59 must be ignored).
# B: sealed at limit-up all day: ask side empty, no trades; a duplicated 11:00:00 snapshot.
BOOK = book_frame(
    [
        snap("A", "09:25:00", [(10.00, 500)], [(10.00, 500)]),
        snap("A", "10:00:00", [(10.00, 300), (9.99, 100)], [(10.02, 100), (10.03, 300)]),
        snap("A", "10:00:30", [(10.01, 200)], [(10.02, 200), (10.03, 200)]),
        snap("A", "13:30:00", [(10.02, 100)], [(10.04, 100)]),
        snap("A", "14:59:00", [(10.05, 900)], [(10.05, 900)]),
        snap("B", "10:00:00", [(11.00, 5000), (10.99, 100)], []),
        snap("B", "11:00:00", [(11.00, 1)], []),
        snap("B", "11:00:00", [(11.00, 6000)], []),  # duplicate: the last row wins
    ]
)
TRADES = trade_frame(
    [
        ("A", "09:25:00", 10.00, 1000, 0),  # opening auction print
        ("A", "10:00:10", 10.02, 200, 1),
        ("A", "10:00:30", 10.01, 100, -1),  # same time as a snapshot: uses the one before
        ("A", "14:30:00", 10.04, 300, 1),
        ("A", "15:00:00", 10.05, 400, 0),  # closing auction print
    ]
)


@pytest.fixture(scope="module")
def tiny() -> pd.DataFrame:
    return daily_microstructure(TRADES, BOOK, DAY)


def test_rows_columns_and_suspended_symbol(tiny):
    assert list(tiny.columns) == COLUMNS
    assert list(tiny.index) == ["A", "B"]  # C (suspended) is absent by default ...
    out = daily_microstructure(TRADES, BOOK, DAY, symbols=["A", "B", "C"])
    assert out.loc["C"].isna().all()  # ... or an all-NaN row when asked for
    pd.testing.assert_frame_equal(out.loc[["A", "B"]], tiny)


def test_order_book_imbalance_by_hand(tiny):
    a = tiny.loc["A"]
    # snapshots 10:00:00, 10:00:30, 13:30:00 (09:25 and 14:59 are auction indications)
    assert a["imbalance_1_mean"] == pytest.approx(((300 - 100) / 400 + 0 + 0) / 3)
    assert a["imbalance_5_mean"] == pytest.approx((0 + (200 - 400) / 600 + 0) / 3)
    assert a["imbalance_10_mean"] == pytest.approx(a["imbalance_5_mean"])
    assert a["imbalance_1_close"] == 0.0 and a["imbalance_5_close"] == 0.0
    # limit-up, ask side empty: imbalance 1 everywhere
    b = tiny.loc["B", [c for c in COLUMNS if c.startswith("imbalance")]]
    assert (b == 1.0).all()


def test_close_is_the_last_snapshot_at_or_before_1457():
    rows = [
        snap("A", "14:56:57", [(10.0, 300)], [(10.01, 100)]),
        snap("A", "14:57:00", [(10.0, 100)], [(10.01, 300)]),
        snap("A", "14:57:03", [(10.0, 900)], [(10.01, 100)]),  # closing call period
    ]
    out = order_book_imbalance(book_frame(rows), DAY)
    assert out.loc["A", "imbalance_1_close"] == pytest.approx(-0.5)


def test_spreads_and_depth_by_hand(tiny):
    a = tiny.loc["A"]
    # quoted spread weighted by standing time: 30 s, 10:00:30 -> 11:30 and 13:30 -> 14:57
    w = np.array([30, 5370, 5220])
    s = np.array([0.02 / 10.01, 0.01 / 10.015, 0.02 / 10.03])
    assert a["quoted_spread"] == pytest.approx((w * s).sum() / w.sum())
    # 10:00:10 and 10:00:30 trades meet the 10:00:00 mid 10.01; 14:30 meets 10.03
    es = (200 * 2 * 0.01 / 10.01 + 100 * 0.0 + 300 * 2 * 0.01 / 10.03) / 600
    assert a["effective_spread"] == pytest.approx(es)
    assert a["depth5_bid"] == pytest.approx((10.00 * 300 + 9.99 * 100 + 10.01 * 200 + 1002) / 3)
    assert a["depth5_ask"] == pytest.approx((1002 + 3009 + 2004 + 2006 + 1004) / 3)
    b = tiny.loc["B"]
    assert np.isnan(b["quoted_spread"]) and np.isnan(b["effective_spread"])
    assert b["depth5_ask"] == 0.0
    assert b["depth5_bid"] == pytest.approx((11.0 * 5000 + 10.99 * 100 + 11.0 * 6000) / 2)


def test_effective_spread_uses_the_snapshot_strictly_before():
    book = book_frame([snap("A", "10:00:00", [(10.0, 1)], [(10.02, 1)]),
                       snap("A", "10:00:03", [(10.1, 1)], [(10.12, 1)])])  # fmt: skip
    trades = trade_frame([("A", "10:00:03", 10.02, 100, 1), ("A", "09:59:00", 10.0, 100, 1)])
    # the 09:59 trade has no earlier quote and is left out
    assert effective_spread(trades, book, DAY)["A"] == pytest.approx(2 * 0.01 / 10.01)


def test_ofi_by_hand(tiny):
    # A: (10:00:00 -> 10:00:30) bid up: +200; ask equal: -200 + 100  => +100
    #    (10:00:30 -> 13:30:00) bid up: +100; ask up: +200 (the old ask queue left) => +300
    # mean best-level depth: (200 + 200 + 100) / 3
    assert tiny.loc["A", "ofi"] == pytest.approx(400 / (500 / 3))
    # B: bid equal 5000 -> 6000: +1000; empty ask stays empty: 0
    assert tiny.loc["B", "ofi"] == pytest.approx(1000 / ((2500 + 3000) / 2))


def test_ofi_increments_signs_and_empty_side():
    e = ofi_increments(
        np.array([10.0, 10.0, 10.01, 10.0]),
        np.array([100, 150, 50, 80]),
        np.array([10.02, 10.02, 10.02, np.nan]),
        np.array([200, 100, 100, 0]),
    )
    # queue grows / ask queue shrinks; bid steps up; bid steps down, ask side empties
    np.testing.assert_allclose(e, [50 + 100, 50 + 0, -50 + 100])


def test_realized_moments_by_hand(tiny):
    a = tiny.loc["A"]
    # minute mids: NaN before 10:00, 10.01 at 10:00, 10.015 from 10:01 (also at 13:00: the
    # quote standing over lunch), 10.03 from 13:30. Finite returns: 90 morning + 117 afternoon.
    r = np.array([np.log(10.015 / 10.01), np.log(10.03 / 10.015)])
    assert a["realized_vol"] == pytest.approx(np.sqrt((r**2).sum()))
    skew = np.sqrt(90 + 117) * (r**3).sum() / (r**2).sum() ** 1.5
    assert a["realized_skew"] == pytest.approx(skew)
    assert np.isnan(tiny.loc["B", "realized_vol"])  # no mid at limit-up


def test_realized_moments_skip_the_lunch_break():
    rows = [snap("A", "11:30:00", [(10.0, 1)], [(10.02, 1)]),
            snap("A", "13:00:00", [(11.0, 1)], [(11.02, 1)]),
            snap("A", "13:01:00", [(11.1, 1)], [(11.12, 1)])]  # fmt: skip
    out = realized_moments(book_frame(rows), DAY)
    assert out.loc["A", "realized_vol"] == pytest.approx(np.log(11.11 / 11.01))


def test_trade_activity_amihud_and_auction_by_hand(tiny):
    a = tiny.loc["A"]
    assert a["trade_intensity"] == pytest.approx(3 / 237)
    assert a["buy_volume_share"] == pytest.approx(500 / 600)
    assert a["avg_trade_size"] == pytest.approx(200)
    amount = 10.0 * 1000 + 10.02 * 200 + 10.01 * 100 + 10.04 * 300 + 10.05 * 400
    assert a["amihud"] == pytest.approx(abs(10.05 / 10.00 - 1) / amount)  # open-to-close
    assert a["auction_volume_share"] == pytest.approx(400 / 2000)
    assert a["closing_auction_return"] == pytest.approx(10.05 / 10.04 - 1)
    assert a["last30_return"] == pytest.approx(10.04 / 10.01 - 1)
    assert a["last30_volume_share"] == pytest.approx(300 / 2000)
    b = tiny.loc["B"]  # no trades at all
    assert b["trade_intensity"] == 0.0
    assert b[["buy_volume_share", "avg_trade_size", "amihud", "kyle_lambda"]].isna().all()
    with_pre = daily_microstructure(TRADES, BOOK, DAY, preclose=pd.Series({"A": 9.9}))
    assert with_pre.loc["A", "amihud"] == pytest.approx(abs(10.05 / 9.9 - 1) / amount)


def test_kyle_lambda_by_hand(tiny):
    # 5-minute bars with a finite mid at both ends: 18 morning (from 10:00) + 24 afternoon
    # (13:00 ... 14:55, then 14:55 -> 14:57). Non-zero: (10:00, 10:05] r = log(10.015/10.01)
    # with q = 200 - 100; (13:25, 13:30] r = log(10.03/10.015), q = 0; (14:25, 14:30] q = 300.
    r, q = np.zeros(42), np.zeros(42)
    r[0], q[0] = np.log(10.015 / 10.01), 100
    r[18 + 5] = np.log(10.03 / 10.015)
    q[18 + 17] = 300
    slope = np.polyfit(q, r, 1)[0]
    assert tiny.loc["A", "kyle_lambda"] == pytest.approx(slope)


def test_unsorted_input_gives_the_same_answer(tiny):
    rng = np.random.default_rng(0)
    book = BOOK.iloc[rng.permutation(len(BOOK))]
    # the duplicated pair must keep its order (the last row wins)
    dup = book.index.isin([6, 7])
    book = pd.concat([book[~dup], BOOK.loc[[6, 7]]])
    trades = TRADES.iloc[rng.permutation(len(TRADES))]
    pd.testing.assert_frame_equal(daily_microstructure(trades, book, DAY), tiny)


# ------------------------------------------------------------------ simulated market
N_SYMBOLS, N_DAYS = 60, 40


@pytest.fixture(scope="module")
def simulated():
    days = pd.bdate_range("2024-03-01", periods=N_DAYS + 1)
    # 60-second snapshots keep the test fast; 14:57:00 (the planted close) is one of them.
    m = SimulatedMarket(days, n_symbols=N_SYMBOLS, seed=5, snapshot_seconds=60)
    bars = m.daily_bars()
    frames = []
    for day in days[:-1]:
        pre = bars[bars["date"] == day].set_index("symbol")["preclose"]
        f = daily_microstructure(m.trades(day), m.order_book(day), day, preclose=pre)
        frames.append(f.assign(date=day).set_index("date", append=True))
    factors = pd.concat(frames).swaplevel().sort_index()
    bars = bars.set_index(["date", "symbol"]).sort_index()
    ret = (bars["close"] / bars["preclose"] - 1).where(~bars["is_suspended"])
    nxt = ret.groupby(level="symbol").shift(-1)  # next trading day's return, on day t
    return m, factors, nxt.reindex(factors.index)


def _rank_ic(factor: pd.Series, fwd: pd.Series) -> pd.Series:
    frame = pd.DataFrame({"f": factor, "r": fwd}).dropna()
    return frame.groupby(level="date").apply(lambda g: stats.spearmanr(g["f"], g["r"])[0])


def test_closing_imbalance_is_the_planted_signal(simulated):
    m, factors, _ = simulated
    truth = m.truth().set_index(["date", "symbol"])["closing_imbalance"]
    got = factors["imbalance_5_close"]
    want = truth.reindex(got.index)
    assert want.notna().all() and got.notna().all()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_closing_imbalance_predicts_next_day_return_and_noise_does_not(simulated):
    _, factors, fwd = simulated
    ic = _rank_ic(factors["imbalance_5_close"], fwd)
    t_stat = ic.mean() / ic.std(ddof=1) * np.sqrt(len(ic))
    assert ic.mean() > 0.03 and t_stat > 2.5, (ic.mean(), t_stat)
    noise = pd.Series(np.random.default_rng(1).standard_normal(len(factors)), factors.index)
    ic0 = _rank_ic(noise, fwd)
    assert abs(ic0.mean() / ic0.std(ddof=1) * np.sqrt(len(ic0))) < 2.0


def test_simulated_factors_are_finite_and_plausible(simulated):
    _, factors, _ = simulated
    assert len(factors) >= N_SYMBOLS * N_DAYS * 0.9
    share = np.isfinite(factors).mean()
    assert (share > 0.95).all(), share[share <= 0.95]
    assert factors.filter(like="imbalance").abs().max().max() <= 1.0
    assert ((factors["quoted_spread"] > 0) & (factors["quoted_spread"] < 0.02)).mean() > 0.95
    assert factors["buy_volume_share"].between(0, 1).all()


# ------------------------------------------------------------------ real data
def _tick_day() -> tuple[pd.DataFrame, pd.DataFrame]:
    folder = R.DATA_ROOT / R.TICK_5LEVEL
    if not folder.exists():
        pytest.skip(f"real data absent: {folder}")
    pairs = [R.load_tick_5level(folder / f"SZ00000{i}.csv") for i in (1, 2)]
    return pd.concat([p[1] for p in pairs]), pd.concat([p[0] for p in pairs])


def test_real_tick_data_is_finite_and_plausible():
    trades, book = _tick_day()
    out = daily_microstructure(trades, book, "2020-01-02")
    assert list(out.index) == ["000001.SZ", "000002.SZ"]
    assert np.isfinite(out).all().all(), out.T
    pa = out.loc["000001.SZ"]
    tick = 0.01 / 16.7  # one tick at ~16.7 CNY
    assert 0.9 * tick < pa["quoted_spread"] < 1.5 * tick
    # one aggregated print per 3 s at the interval's last price, against the mid 3 s earlier
    assert 0 < pa["effective_spread"] < 3 * tick
    assert 1e6 < pa["depth5_bid"] < 1e9 and 1e6 < pa["depth5_ask"] < 1e9
    assert out.filter(like="imbalance").abs().max().max() <= 1
    assert ((out["realized_vol"] > 0.002) & (out["realized_vol"] < 0.05)).all()
    assert (out["trade_intensity"] < 21).all()  # one aggregated trade per 3 s snapshot at most
    assert out["buy_volume_share"].between(0.3, 0.7).all()
    assert out["auction_volume_share"].between(0.001, 0.1).all()
    assert out["closing_auction_return"].abs().max() < 0.01
    assert (out["amihud"] > 0).all() and (out["kyle_lambda"] > 0).all()


def _lobster_level1(symbol: str) -> pd.DataFrame:
    folder = R.DATA_ROOT / "lob_lobster_2012-06-21"
    path = folder / f"{symbol}_2012-06-21_34200000_57600000_orderbook_1.csv"
    if not path.exists():
        pytest.skip(f"real data absent: {path}")
    msg = folder / f"{symbol}_2012-06-21_34200000_57600000_message_1.csv"
    book = pd.read_csv(path, header=None, names=["ask_px", "ask_sz", "bid_px", "bid_sz"])
    book[["ask_px", "bid_px"]] /= 10_000  # USD x 10,000
    book["time"] = pd.read_csv(msg, header=None, usecols=[0]).iloc[:, 0].to_numpy()
    return book


@pytest.mark.parametrize("symbol", ["AMZN", "GOOG"])
def test_ofi_explains_mid_changes_on_lobster_nasdaq_data(symbol):
    """Cont-Kukanov-Stoikov's design: per half hour, regress 10-second mid changes on
    10-second OFI. They report positive slopes and an average R^2 of about 0.65 (NYSE, 2010)."""
    book = _lobster_level1(symbol)
    e = ofi_increments(
        book["bid_px"].to_numpy(),
        book["bid_sz"].to_numpy(),
        book["ask_px"].to_numpy(),
        book["ask_sz"].to_numpy(),
    )
    t = book["time"].to_numpy()[1:]  # seconds after midnight (ET)
    mid = ((book["bid_px"] + book["ask_px"]) / 2).to_numpy()
    frame = pd.DataFrame({"bar": t // 10, "e": e, "dmid": np.diff(mid)}).groupby("bar").sum()
    half_hour = frame.index.to_numpy() * 10 // 1800
    fits = [stats.linregress(g["e"], g["dmid"]) for _, g in frame.groupby(half_hour)]
    r2 = np.array([f.rvalue**2 for f in fits])
    slopes = np.array([f.slope for f in fits])
    assert len(fits) == 13 and (slopes > 0).all(), slopes
    assert r2.mean() > 0.35, r2
