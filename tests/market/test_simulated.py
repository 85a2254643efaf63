"""The simulated market: realism, exact bar/trade/book consistency, planted alphas, determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quant_assets.calendar import TZ
from quant_assets.market.contract import columns as C
from quant_assets.market.rules import (
    board_of,
    in_session,
    limit_pct,
    price_limits,
    round_price,
)
from quant_assets.market.sources.simulated import (
    IMBALANCE_SCALE,
    REVERSAL_SCALE,
    AlphaStrengths,
    SimulatedMarket,
)

DAYS = pd.bdate_range("2023-01-02", periods=60)


@pytest.fixture(scope="module")
def market() -> SimulatedMarket:
    return SimulatedMarket(DAYS, n_symbols=40, seed=7)


@pytest.fixture(scope="module")
def bars(market: SimulatedMarket) -> pd.DataFrame:
    return market.daily_bars()


@pytest.fixture(scope="module")
def big() -> SimulatedMarket:
    """100 symbols over ~120 trading days: the size at which the alphas are specified."""
    return SimulatedMarket(pd.bdate_range("2023-01-02", periods=120), n_symbols=100, seed=7)


def on_tick(x: pd.Series | np.ndarray) -> bool:
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    return bool(np.all(np.abs(x * 100 - np.round(x * 100)) < 1e-6))


def limits(bars: pd.DataFrame, universe: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    info = universe.set_index("symbol").loc[bars["symbol"]]
    pct = limit_pct(pd.Series(info["board"].to_numpy()), pd.Series(info["is_st"].to_numpy()))
    up, down = price_limits(bars["preclose"].reset_index(drop=True), pct)
    return up.set_axis(bars.index), down.set_axis(bars.index)


def returns_wide(bars: pd.DataFrame) -> pd.DataFrame:
    """Adjusted daily returns close / preclose - 1 (NaN on suspended days), dates x symbols."""
    ret = (bars["close"] / bars["preclose"] - 1).where(~bars["is_suspended"])
    return ret.set_axis(pd.MultiIndex.from_frame(bars[["date", "symbol"]])).unstack()


def daily_rank_ic(signal: pd.DataFrame, forward: pd.DataFrame) -> np.ndarray:
    signal, forward = signal.align(forward, join="inner")
    ics = signal.rank(axis=1).corrwith(forward.rank(axis=1), axis=1)
    counts = (signal.notna() & forward.notna()).sum(axis=1)
    return ics[(counts >= 20) & ics.notna()].to_numpy()


def t_stat(x: np.ndarray) -> float:
    return float(x.mean() / x.std(ddof=1) * np.sqrt(len(x)))


# ------------------------------------------------------------------------------------ universe
def test_universe_has_boards_industries_st_and_new_listings(market, bars):
    uni = market.universe()
    assert list(uni.columns) == C.UNIVERSE and len(uni) == 40
    assert uni["symbol"].is_unique and uni["name"].is_unique
    assert (uni["board"] == uni["symbol"].map(board_of)).all()
    assert set(uni["board"]) == {"main", "chinext", "star"}
    assert (uni["board"] == "main").mean() > 0.5
    assert (
        uni["symbol"]
        .str.match(r"^(60[0135]\d{3}\.SH|688\d{3}\.SH|00[0-3]\d{3}\.SZ|30[01]\d{3}\.SZ)$")
        .all()
    )
    assert 8 <= uni["industry"].nunique() <= 20
    st = uni[uni["is_st"]]
    assert len(st) in range(1, 5) and (st["board"] == "main").all()
    assert st["name"].str.contains("ST").all()
    assert uni["list_date"].dtype == "datetime64[ns]"

    new = uni[uni["list_date"] > DAYS[0]]
    assert len(new) >= 1
    first_bar = bars.groupby("symbol")["date"].min()
    for row in new.itertuples():
        if row.list_date <= DAYS[-1]:
            assert first_bar[row.symbol] == row.list_date
        else:
            assert row.symbol not in first_bar.index
    assert (first_bar.drop(new["symbol"], errors="ignore") == DAYS[0]).all()


# ---------------------------------------------------------------------------------------- bars
def test_bars_contract_and_realism(market, bars):
    assert list(bars.columns) == C.BARS
    assert bars["date"].dtype == "datetime64[ns]" and bars["volume"].dtype == np.int64
    assert bars.equals(bars.sort_values(["date", "symbol"]).reset_index(drop=True))
    assert not bars.duplicated(["date", "symbol"]).any()
    for col in ("open", "high", "low", "close", "preclose"):
        assert on_tick(bars[col]), col
    assert (bars["high"] >= bars[["open", "close", "low"]].max(axis=1)).all()
    assert (bars["low"] <= bars[["open", "close"]].min(axis=1)).all()

    ret = returns_wide(bars)
    assert 0.012 < np.nanstd(ret.to_numpy()) < 0.03  # about 2% a day
    assert bars["close"].min() > 1.5 and bars["close"].max() < 400
    assert bars["close"].quantile(0.1) < 8 and bars["close"].quantile(0.9) > 25

    up, down = limits(bars, market.universe())
    for col in ("open", "high", "low", "close"):
        assert ((bars[col] <= up + 1e-9) & (bars[col] >= down - 1e-9)).all(), col
    at_limit = np.isclose(bars["close"], up) | np.isclose(bars["close"], down)
    assert at_limit[~bars["is_suspended"]].sum() >= 1

    # ST shares move at most 5%.
    st = bars[bars["is_st"] & ~bars["is_suspended"]]
    assert (np.abs(st["close"] / st["preclose"] - 1) <= 0.05 + 0.01 / st["preclose"]).all()


def test_factor_structure(big):
    bars = big.daily_bars()
    ret = returns_wide(bars).dropna(axis=1, thresh=100)
    corr = ret.corr().to_numpy()
    industry = big.universe().set_index("symbol").loc[ret.columns, "industry"].to_numpy()
    same = industry[:, None] == industry[None, :]
    off = ~np.eye(len(industry), dtype=bool)
    within, across = np.nanmean(corr[same & off]), np.nanmean(corr[~same])
    assert across > 0.15  # the market factor
    assert within > across + 0.1  # industry factors


def test_suspensions_keep_a_flat_row(market, bars):
    susp = bars[bars["is_suspended"]]
    assert 0.001 < len(susp) / len(bars) < 0.03
    assert (susp["volume"] == 0).all() and (susp["amount"] == 0).all()
    for col in ("open", "high", "low", "close"):
        assert (susp[col] == susp["preclose"]).all()
    row = susp.iloc[0]
    day = market.trades(row["date"])
    assert row["symbol"] not in set(day["symbol"])
    assert market.order_book(row["date"], [row["symbol"]]).empty


def test_corporate_actions_move_unadjusted_prices():
    # Two years of 100 stocks: ~150 actions, a few of them splits (of shares above 30 CNY).
    m = SimulatedMarket(pd.bdate_range("2023-01-02", periods=500), n_symbols=100, seed=7)
    actions = pd.concat([m.corporate_actions(d) for d in m.trading_days], ignore_index=True)
    assert list(actions.columns) == C.CORPORATE_ACTIONS
    assert actions["action_id"].is_unique and len(actions) > 50
    assert (actions["cash_dividend"] > 0).any() and (actions["bonus_ratio"] > 0).any()
    assert (actions["split_ratio"] == 2).any()
    assert (actions["ex_date"] > actions["announce_date"]).all()
    assert actions["ex_date"].isin(m.trading_days).all()

    # On the ex-date the exchange's preclose follows the formula of columns.py.
    splits = actions[actions["split_ratio"] > 1]
    checked = pd.concat([splits, actions[actions["split_ratio"] == 1].head(20)])
    for a in checked.itertuples():
        t = m.trading_days.get_loc(a.ex_date)
        bars = m.daily_bars(m.trading_days[t - 1], a.ex_date).set_index(["symbol", "date"])
        prev_close = bars.loc[(a.symbol, m.trading_days[t - 1]), "close"]
        row = bars.loc[(a.symbol, a.ex_date)]
        factor = (1 + a.bonus_ratio) * a.split_ratio
        assert row["preclose"] == pytest.approx(
            round_price((prev_close - a.cash_dividend) / factor), abs=1e-9
        )
        # The unadjusted price jumps; the adjusted return stays an ordinary day's.
        if factor > 1:
            assert row["preclose"] < 0.85 * prev_close
        assert abs(row["close"] / row["preclose"] - 1) <= 0.2 + 1e-9


def test_preclose_is_the_previous_close_away_from_ex_dates(big):
    bars = big.daily_bars()
    actions = pd.concat([big.corporate_actions(d) for d in big.trading_days], ignore_index=True)
    ex = pd.MultiIndex.from_frame(actions[["symbol", "ex_date"]])
    keyed = bars.assign(prev=bars.groupby("symbol")["close"].shift()).set_index(["symbol", "date"])
    plain = keyed[~keyed.index.isin(ex) & keyed["prev"].notna()]
    assert len(plain) > 0.95 * len(keyed)
    assert np.array_equal(plain["preclose"], plain["prev"])
    moved = keyed[keyed.index.isin(ex)]
    assert len(moved) >= 1 and (moved["preclose"] < moved["prev"]).all()


def test_announcements_are_in_the_news_window(market):
    seen = 0
    for t, day in enumerate(market.trading_days):
        acts = market.corporate_actions(day)
        if acts.empty:
            continue
        seen += len(acts)
        lo = market.trading_days[t - 1] if t else day - pd.Timedelta(days=1)
        assert ((acts["announce_date"] > lo) & (acts["announce_date"] <= day)).all()
        filings = market.news(day)
        assert set(acts["symbol"]) <= set(
            filings.loc[filings["source"] == "Exchange filing", "symbol"]
        )
    assert seen >= 1


# ------------------------------------------------------------------------------------- trades
@pytest.mark.parametrize("t", [0, 17, 59])
def test_bars_are_the_aggregation_of_trades(market, bars, t):
    day = market.trading_days[t]
    trades = market.trades(day)
    assert list(trades.columns) == C.TRADES
    assert str(trades["ts"].dt.tz) == TZ and trades["ts"].dtype == f"datetime64[ns, {TZ}]"
    g = trades.groupby("symbol", sort=True)
    agg = pd.DataFrame(
        {
            "open": g["price"].first(),
            "high": g["price"].max(),
            "low": g["price"].min(),
            "close": g["price"].last(),
            "volume": g["volume"].sum(),
            "amount": (trades["price"] * trades["volume"]).groupby(trades["symbol"]).sum(),
        }
    )
    day_bars = bars[(bars["date"] == day) & ~bars["is_suspended"]].set_index("symbol")
    assert list(agg.index) == list(day_bars.index)
    for col in ("open", "high", "low", "close", "volume"):
        assert (agg[col] == day_bars[col]).all(), col
    assert np.allclose(agg["amount"], day_bars["amount"], rtol=1e-12, atol=1e-3)

    # Trade invariants: tick, limits, lots, sessions, ids, auction prints.
    assert on_tick(trades["price"]) and (trades["volume"] % 100 == 0).all()
    assert (trades["volume"] > 0).all()
    lim = day_bars.join(market.universe().set_index("symbol"), rsuffix="_u")
    up, down = price_limits(lim["preclose"], limit_pct(lim["board"], lim["is_st"]))
    px = trades.join(pd.DataFrame({"up": up, "down": down}), on="symbol")
    assert ((px["price"] <= px["up"] + 1e-9) & (px["price"] >= px["down"] - 1e-9)).all()
    assert in_session(trades["ts"]).all()
    assert (g["trade_id"].diff().dropna() > 0).all()
    assert (g["ts"].diff().dropna() > pd.Timedelta(0)).all()
    assert (g["ts"].first().dt.strftime("%H:%M:%S") == "09:25:00").all()
    assert (g["ts"].last().dt.strftime("%H:%M:%S") == "15:00:00").all()
    auction = trades["ts"].dt.strftime("%H:%M:%S").isin(["09:25:00", "15:00:00"])
    assert (trades.loc[auction, "side"] == 0).all()
    assert trades.loc[~auction, "side"].isin([-1, 1]).all()
    counts = g.size()
    assert counts.min() >= 20 and 100 < counts.median() < 3000


# --------------------------------------------------------------------------------- order book
@pytest.fixture(scope="module")
def limit_day(market, bars) -> tuple[pd.Timestamp, str, str]:
    """A (date, symbol, 'up'|'down') with a limit close."""
    up, down = limits(bars, market.universe())
    hit = bars[
        ~bars["is_suspended"] & (np.isclose(bars["close"], up) | np.isclose(bars["close"], down))
    ]
    row = hit.iloc[0]
    kind = "up" if np.isclose(row["close"], up[hit.index[0]]) else "down"
    return row["date"], row["symbol"], kind


def test_order_book_snapshots(market, bars, limit_day):
    day, limit_symbol, kind = limit_day
    book = market.order_book(day)
    trades = market.trades(day)
    assert list(book.columns) == C.ORDER_BOOK
    assert book["ts"].dtype == f"datetime64[ns, {TZ}]"
    n_sym = trades["symbol"].nunique()
    per_day = 2 * 3600 // 3 + 1 + (117 * 60) // 3 + 1  # both ends of both sessions
    assert len(book) == n_sym * per_day
    t = book["ts"].dt.strftime("%H:%M:%S")
    assert ((t >= "09:30:00") & (t <= "11:30:00") | (t >= "13:00:00") & (t <= "14:57:00")).all()
    assert (
        book.groupby("symbol")["ts"]
        .diff()
        .dropna()
        .isin([pd.Timedelta(seconds=3), pd.Timedelta(minutes=90)])
    ).all()

    lv = range(1, C.LEVELS + 1)
    bid_px = book[[f"bid_px_{i}" for i in lv]].to_numpy()
    ask_px = book[[f"ask_px_{i}" for i in lv]].to_numpy()
    bid_sz = book[[f"bid_sz_{i}" for i in lv]].to_numpy()
    ask_sz = book[[f"ask_sz_{i}" for i in lv]].to_numpy()
    assert on_tick(bid_px) and on_tick(ask_px)
    for px, sz in ((bid_px, bid_sz), (ask_px, ask_sz)):
        assert np.array_equal(np.isnan(px), sz == 0)  # empty level: NaN price, size 0
        assert (sz % 100 == 0).all() and (sz >= 0).all()
    with np.errstate(invalid="ignore"):
        assert not (np.diff(bid_px, axis=1) >= 0).any()  # strictly decreasing bids
        assert not (np.diff(ask_px, axis=1) <= 0).any()  # strictly increasing asks
        assert not (bid_px[:, 0] >= ask_px[:, 0]).any()  # never crossed or locked
    assert (np.isfinite(bid_px[:, 0]) | np.isfinite(ask_px[:, 0])).all()

    day_bars = bars[bars["date"] == day].set_index("symbol")
    up, down = limits(day_bars.reset_index(), market.universe())
    lim = pd.DataFrame({"up": up.to_numpy(), "down": down.to_numpy()}, index=day_bars.index)
    bl = lim.loc[book["symbol"]]
    with np.errstate(invalid="ignore"):
        assert not (np.nanmax(np.c_[bid_px, ask_px], axis=1) > bl["up"].to_numpy() + 1e-9).any()
        assert not (np.nanmin(np.c_[bid_px, ask_px], axis=1) < bl["down"].to_numpy() - 1e-9).any()

    # The last trade at or before each snapshot lies in [bid_1, ask_1].
    last = pd.merge_asof(
        book[["ts", "symbol", "bid_px_1", "ask_px_1"]].sort_values("ts"),
        trades[["ts", "symbol", "price"]].sort_values("ts"),
        on="ts",
        by="symbol",
        direction="backward",
    )
    assert last["price"].notna().all()
    lo = last["bid_px_1"].fillna(last["ask_px_1"])
    hi = last["ask_px_1"].fillna(last["bid_px_1"])
    assert ((last["price"] >= lo - 1e-9) & (last["price"] <= hi + 1e-9)).all()

    # At the limit close, the last snapshot has one empty side.
    closing = book[book["symbol"] == limit_symbol].iloc[-1]
    empty, full = ("ask", "bid") if kind == "up" else ("bid", "ask")
    assert np.isnan(closing[f"{empty}_px_1"]) and closing[f"{empty}_sz_1"] == 0
    assert closing[f"{full}_px_1"] == day_bars.loc[limit_symbol, "close"]


def test_order_book_subset_equals_full_book(market):
    day = market.trading_days[5]
    full = market.order_book(day)
    pick = sorted(full["symbol"].unique())[3:6]
    sub = market.order_book(day, pick)
    expected = full[full["symbol"].isin(pick)].reset_index(drop=True)
    pd.testing.assert_frame_equal(sub, expected)
    with pytest.raises(ValueError, match="unknown symbols"):
        market.order_book(day, ["999999.SH"])


@pytest.mark.parametrize("t", [3, 30])
def test_closing_imbalance_is_the_last_snapshot(market, t):
    day = market.trading_days[t]
    last = market.order_book(day).groupby("symbol").tail(1).set_index("symbol")
    bid = last[[f"bid_sz_{i}" for i in range(1, 6)]].sum(axis=1)
    ask = last[[f"ask_sz_{i}" for i in range(1, 6)]].sum(axis=1)
    assert (last["ts"].dt.strftime("%H:%M:%S") == "14:57:00").all()
    imbalance = (bid - ask) / (bid + ask)
    truth = market.truth(day, day).set_index("symbol")["closing_imbalance"].dropna()
    assert list(truth.index) == list(imbalance.index)
    assert np.allclose(imbalance, truth, rtol=0, atol=1e-12)
    assert imbalance.std() > 0.2


# ---------------------------------------------------------------------------------------- news
def test_news_items(market):
    frames = [market.news(d) for d in market.trading_days]
    news = pd.concat(frames, ignore_index=True)
    assert list(news.columns) == C.NEWS
    assert news["ts"].dtype == f"datetime64[ns, {TZ}]"
    assert news["news_id"].is_unique and len(news) > 100
    assert news["sentiment"].between(-1, 1).all()
    assert set(news["symbol"]) <= set(market.universe()["symbol"])
    local = news["ts"].dt.tz_localize(None)
    assert (local.dt.dayofweek >= 5).any()  # weekend items
    assert (local.dt.hour >= 15).any() and (local.dt.hour < 9).any()
    assert news["title"].str.contains(r"[\u4e00-\u9fff]").any()
    assert news["title"].str.contains(r"[A-Za-z]{4}").any()
    # Each day's items lie in its window (previous trading day, day].
    for t, (day, frame) in enumerate(zip(market.trading_days, frames, strict=True)):
        date = frame["ts"].dt.tz_localize(None).dt.normalize()
        lo = market.trading_days[t - 1] if t else day - pd.Timedelta(days=1)
        assert ((date > lo) & (date <= day)).all()
    # Wording matches the sentiment.
    strong_pos = news[news["sentiment"] >= 0.5]["title"]
    strong_neg = news[news["sentiment"] <= -0.5]["title"]
    assert strong_pos.str.contains("jumps|wins|buyback|增长|中标|回购").all()
    assert strong_neg.str.contains("plunges|investigation|loss|下降|立案|亏损").all()
    # A vendor-style listing with the stable ids: asking again gives the same frame.
    pd.testing.assert_frame_equal(market.news(market.trading_days[10]), frames[10])


# ---------------------------------------------------------------------------- planted alphas
def test_planted_alphas_have_significant_rank_ic_and_noise_does_not(big):
    bars = big.daily_bars()
    ret = returns_wide(bars)
    nxt = ret.shift(-1)
    truth = big.truth().set_index(["date", "symbol"])

    # Closing imbalance (equal to the last snapshot's, see the order-book test).
    imbalance = truth["closing_imbalance"].unstack()
    # News sentiment computed from the published items (0 for a listed symbol without news).
    listed = bars.set_index(["date", "symbol"])["close"].unstack().notna()
    news = pd.concat([big.news(d).assign(date=d) for d in big.trading_days])
    sentiment = news.groupby(["date", "symbol"])["sentiment"].mean().unstack()
    sentiment = sentiment.reindex_like(listed).fillna(0).where(listed)
    # Reversal: minus the past five-day adjusted return.
    growth = (1 + ret.fillna(0)).cumprod()
    reversal = -(growth / growth.shift(5) - 1).where(listed)
    noise = pd.DataFrame(
        np.random.default_rng(0).standard_normal(ret.shape), index=ret.index, columns=ret.columns
    )

    ics = {
        name: daily_rank_ic(signal, nxt)
        for name, signal in [
            ("imbalance", imbalance),
            ("news", sentiment),
            ("reversal", reversal),
            ("noise", noise),
        ]
    }
    for name in ("imbalance", "news", "reversal"):
        assert 0.03 < ics[name].mean() < 0.15, (name, ics[name].mean())
        assert t_stat(ics[name]) > 3.0, (name, t_stat(ics[name]))
    assert abs(t_stat(ics["noise"])) < 2.0
    assert abs(ics["noise"].mean()) < 0.02

    # News drifts over several days: the 5-day forward return is predicted too.
    fwd5 = (1 + ret.fillna(0)).rolling(5).apply(np.prod, raw=True).shift(-5) - 1
    assert t_stat(daily_rank_ic(sentiment, fwd5)) > 3.0
    # The published news agrees with the truth the drift was planted from.
    t_news = truth["news_sentiment"].unstack().reindex_like(sentiment)
    assert np.allclose(sentiment.fillna(0), t_news.fillna(0))


def test_alpha_strengths_set_the_expected_returns():
    days = pd.bdate_range("2023-01-02", periods=40)
    off = SimulatedMarket(days, n_symbols=30, seed=3, alphas=AlphaStrengths(0.0, 0.0, 0.0))
    mu = ["mu_imbalance", "mu_news", "mu_reversal", "expected_return"]
    assert (off.truth()[mu] == 0).all().all()

    strengths = AlphaStrengths(order_book_imbalance=0.002, news_sentiment=0.001, reversal=0.003)
    truth = SimulatedMarket(days, n_symbols=30, seed=3, alphas=strengths).truth()
    prev = truth.groupby("symbol")[["closing_imbalance", "reversal_5d"]].shift()
    expected = 0.002 * prev["closing_imbalance"].fillna(0) / IMBALANCE_SCALE
    assert np.allclose(truth["mu_imbalance"], expected)
    assert truth["mu_imbalance"].std() == pytest.approx(0.002, rel=0.25)
    # Reversal is planted on the cross-sectionally demeaned signal.
    demeaned = prev["reversal_5d"] - prev["reversal_5d"].groupby(truth["date"]).transform("mean")
    assert np.allclose(truth["mu_reversal"], 0.003 * demeaned.fillna(0) / REVERSAL_SCALE)
    assert np.allclose(
        truth["expected_return"], truth[["mu_imbalance", "mu_news", "mu_reversal"]].sum(axis=1)
    )


# ------------------------------------------------------------------------------ determinism
def test_same_seed_same_frames_and_day_order_does_not_matter():
    days = pd.bdate_range("2023-03-01", periods=25)
    a = SimulatedMarket(days, n_symbols=20, seed=11)
    b = SimulatedMarket(days, n_symbols=20, seed=11)
    d1, d2 = days[4], days[20]
    b.trades(d2)  # ask b for another day first
    pd.testing.assert_frame_equal(a.trades(d1), b.trades(d1))
    pd.testing.assert_frame_equal(a.daily_bars(), b.daily_bars())
    pd.testing.assert_frame_equal(a.universe(), b.universe())
    pd.testing.assert_frame_equal(a.order_book(d1), b.order_book(d1))
    pd.testing.assert_frame_equal(a.news(d2), b.news(d2))
    pd.testing.assert_frame_equal(a.truth(), b.truth())

    other = SimulatedMarket(days, n_symbols=20, seed=12)
    assert not other.universe()["symbol"].equals(a.universe()["symbol"])
    assert not other.daily_bars()["close"].equals(a.daily_bars()["close"])


def test_a_longer_market_agrees_on_the_shared_days():
    days = pd.bdate_range("2023-03-01", periods=30)
    short = SimulatedMarket(days[:12], n_symbols=20, seed=5)
    long = SimulatedMarket(days, n_symbols=20, seed=5)
    pd.testing.assert_frame_equal(short.daily_bars(), long.daily_bars(end=days[11]))
    pd.testing.assert_frame_equal(short.trades(days[11]), long.trades(days[11]))
    pd.testing.assert_frame_equal(short.news(days[7]), long.news(days[7]))


def test_non_trading_days_raise(market):
    with pytest.raises(ValueError, match="not a trading day"):
        market.trades("2023-01-07")  # a Saturday
    with pytest.raises(ValueError, match="not a trading day"):
        market.news(DAYS[-1] + pd.offsets.BDay(5))
    with pytest.raises(ValueError):
        SimulatedMarket(DAYS, snapshot_seconds=7)
    assert market.daily_bars("2023-01-07", "2023-01-08").empty
    assert list(market.daily_bars("2023-01-07", "2023-01-08").columns) == C.BARS


def test_frames_have_the_contract_dtypes(market):
    from quant_assets.market.contract.schemas import dtype_schema

    day = market.trading_days[2]
    actions = pd.concat([market.corporate_actions(d) for d in market.trading_days])
    frames = {
        "universe": market.universe(),
        "bars": market.daily_bars(day, day),
        "trades": market.trades(day),
        "order_book": market.order_book(day, market.universe()["symbol"][:2]),
        "news": market.news(day),
        "corporate_actions": actions,
    }
    for kind, frame in frames.items():
        assert len(frame) > 0, kind
        dtype_schema(kind).validate(frame)
