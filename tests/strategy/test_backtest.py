"""The backtest on hand-made markets (each A-share rule) and on CSI300 (the section 6 contract)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quant_assets.market.sources import real_data as R
from quant_assets.strategy import backtest
from quant_assets.strategy.costs import Costs

DAYS = pd.bdate_range("2023-08-21", periods=8)  # stamp duty halves on 2023-08-28 (day 5)


def market(prices: dict[str, list[float]], days=DAYS, **flags) -> pd.DataFrame:
    """Bars with open = close = the given price (preclose = the previous close; the first
    day's preclose is its close), volume 1e6; `flags` set is_suspended / is_st / open
    overrides as {(symbol, day index): value}."""
    rows = []
    for sym, closes in prices.items():
        for k, c in enumerate(closes):
            pre = closes[k - 1] if k else c
            rows.append(dict(date=days[k], symbol=sym, open=c, high=c, low=c, close=c,
                             preclose=pre, volume=1e6, amount=1e6 * c, is_suspended=False,
                             is_st=False))  # fmt: skip
    bars = pd.DataFrame(rows)
    for col, cells in flags.items():
        for (sym, k), v in cells.items():
            bars.loc[(bars["symbol"] == sym) & (bars["date"] == days[k]), col] = v
    return bars.sort_values(["date", "symbol"]).reset_index(drop=True)


def scores_of(bars: pd.DataFrame, ranking: dict[str, list[float]]) -> pd.Series:
    """Scores per symbol and day (the lists run over the days)."""
    s = [
        ranking[sym][list(DAYS).index(d)]
        for d, sym in zip(bars["date"], bars["symbol"], strict=True)
    ]
    return pd.Series(s, index=pd.MultiIndex.from_frame(bars[["date", "symbol"]]))


NO_SLIP = Costs(slippage=0.0)


def test_contract_rules_and_costs_off_equals_vectorised_top_n_on_a_random_market():
    rng = np.random.default_rng(3)
    days = pd.bdate_range("2022-01-03", periods=60)
    syms = [f"{600000 + i}.SH" for i in range(40)]
    close = 10 * np.exp(np.cumsum(rng.normal(0, 0.02, (60, 40)), axis=0))
    bars = pd.DataFrame({
        "date": np.repeat(days, 40), "symbol": np.tile(syms, 60), "close": close.ravel(),
        "preclose": np.vstack([close[:1], close[:-1]]).ravel() * rng.choice([1, 1, 1, 0.97], 2400),
    })  # fmt: skip
    bars = bars.assign(open=bars["close"], high=bars["close"], low=bars["close"],
                       volume=1e6, amount=1e7, is_suspended=False, is_st=False)  # fmt: skip
    bars = bars.drop(rng.choice(len(bars), 150, replace=False))  # missing bars
    score = pd.Series(
        rng.normal(size=len(bars)), index=pd.MultiIndex.from_frame(bars[["date", "symbol"]])
    )
    res = backtest(score, bars, top_n=7, rules=False, costs=False, execution="close")
    assert_vectorised_top_n(res.returns, bars, score, 7)


def assert_vectorised_top_n(returns: pd.Series, bars: pd.DataFrame, score: pd.Series, n: int):
    ret = bars.set_index(["date", "symbol"]).eval("close / preclose - 1")
    r = ret.unstack()
    s = score.unstack().reindex_like(r)
    dates = r.index
    expected = {}
    for a, b in zip(dates[:-1], dates[1:], strict=True):
        ok = s.loc[a][r.loc[b].notna() & s.loc[a].notna()]
        top = ok.sort_values(ascending=False, kind="stable").index[:n]
        expected[b] = r.loc[b, top].mean()
    expected = pd.Series(expected)
    assert list(returns.index) == list(expected.index)
    np.testing.assert_allclose(returns.to_numpy(), expected.to_numpy(), rtol=0, atol=1e-10)


def test_contract_on_csi300_with_suspensions_and_ex_rights_days():
    if not (R.DATA_ROOT / R.CSI300_BARS).exists():
        pytest.skip(f"real data absent: {R.DATA_ROOT / R.CSI300_BARS}")
    bars = R.load_csi300_bars()
    rng = np.random.default_rng(0)
    score = pd.Series(
        rng.normal(size=len(bars)), index=pd.MultiIndex.from_frame(bars[["date", "symbol"]])
    )
    res = backtest(score, bars, top_n=30, rules=False, costs=False, execution="close")
    assert len(res.returns) == bars["date"].nunique() - 1
    assert_vectorised_top_n(res.returns, bars, score, 30)


def test_a_stock_opening_at_limit_up_is_not_bought_and_the_order_is_cancelled():
    # A scores best on day 0; day 1 it opens at +10% (sealed), day 2 it is buyable again
    bars = market({"600000.SH": [10, 11, 11.5, 11.5], "600001.SH": [10, 10, 10, 10]},
                  days=DAYS[:4])  # fmt: skip
    score = scores_of(bars, {"600000.SH": [2] * 8, "600001.SH": [1] * 8})
    res = backtest(score, bars, top_n=1, costs=NO_SLIP, min_listed_days=0)
    buys = res.trades[res.trades["side"] == "buy"]
    assert buys["date"].tolist() == [DAYS[2]]
    assert buys["symbol"].tolist() == ["600000.SH"]
    assert res.unfilled[["date", "symbol", "side", "reason"]].values.tolist() == [
        [DAYS[1], "600000.SH", "buy", "at the price limit"]
    ]
    # the day it was blocked the book stayed in cash
    assert res.equity.loc[DAYS[1]] == 10_000_000.0


def test_a_sell_at_limit_down_or_suspended_is_kept_until_it_fills():
    bars = market({"600000.SH": [10, 10, 9, 9, 9.5, 9.5], "600001.SH": [10] * 6},
                  days=DAYS[:6], is_suspended={("600000.SH", 3): True})  # fmt: skip
    # A is held from day 1; from day 1 on B scores higher: A must go (limit-down day 2,
    # suspended day 3, sold day 4)
    score = scores_of(bars, {"600000.SH": [2, 0, 0, 0, 0, 0, 0, 0],
                             "600001.SH": [1, 1, 1, 1, 1, 1, 1, 1]})  # fmt: skip
    res = backtest(score, bars, top_n=1, costs=NO_SLIP, min_listed_days=0, n_drop=1)
    sells = res.trades[res.trades["side"] == "sell"]
    assert sells[["date", "symbol"]].values.tolist() == [[DAYS[4], "600000.SH"]]
    assert res.unfilled.query("side == 'sell'")["reason"].tolist() == [
        "at the price limit",
        "suspended",
    ]
    # B is bought only once A's cash is free, in whole lots
    b = res.trades.query("symbol == '600001.SH'")
    assert b["date"].tolist() == [DAYS[4]] and (b["shares"] % 100 == 0).all()


def test_lots_are_never_split_and_cash_is_exact_to_the_cent():
    rng = np.random.default_rng(5)
    days = pd.bdate_range("2023-08-01", periods=40)
    prices = {f"{600000 + i}.SH": list(np.round(10 + np.cumsum(rng.normal(0, 0.2, 40)), 2))
              for i in range(12)}  # fmt: skip
    bars = market(prices, days=days)
    score = pd.Series(
        rng.normal(size=len(bars)), index=pd.MultiIndex.from_frame(bars[["date", "symbol"]])
    )
    res = backtest(score, bars, top_n=4, min_listed_days=0, initial_cash=1_000_003.37)
    t = res.trades
    assert len(t) > 20
    assert (t.loc[t["side"] == "buy", "shares"] % 100 == 0).all()
    # a sell is whole lots or the whole position
    held = res.positions.set_index(["date", "symbol"])["shares"]
    for _, row in t[t["side"] == "sell"].iterrows():
        assert row["shares"] % 100 == 0 or (row["date"], row["symbol"]) not in held.index
    # prices on the tick, fees to the cent, and the cash adds up to the cent
    for col in ("price", "commission", "stamp_duty", "transfer_fee"):
        assert np.allclose(t[col] * 100, np.round(t[col] * 100), atol=1e-6)
    sign = np.where(t["side"] == "sell", 1, -1)
    fees = t[["commission", "stamp_duty", "transfer_fee"]].sum(axis=1)
    cash = 1_000_003.37 + (sign * t["value"] - fees).sum()
    assert res.cash.iloc[-1] == pytest.approx(cash, abs=1e-6)
    assert round(res.cash.iloc[-1], 2) == pytest.approx(res.cash.iloc[-1], abs=1e-6)


def test_fees_and_stamp_duty_to_the_cent_on_both_sides_of_2023_08_28():
    # buy 10,000 CNY of A on day 1 (08-22); sell on day 4 (08-25, 0.1%) or day 5 (08-28, 0.05%)
    for sell_day, stamp in ((4, 10.00), (5, 5.00)):
        bars = market({"600000.SH": [10.0] * 8, "600001.SH": [10.0] * 8})
        a = [1] * 8
        b = [0] * 8
        a[sell_day - 1 :] = [-1] * (8 - sell_day + 1)
        score = scores_of(bars, {"600000.SH": a, "600001.SH": b})
        res = backtest(score, bars, top_n=1, costs=NO_SLIP, min_listed_days=0, n_drop=1,
                       initial_cash=10_010.0)  # fmt: skip
        t = res.trades.set_index(["symbol", "side"])
        buy = t.loc[("600000.SH", "buy")]
        assert (buy["shares"], buy["value"]) == (1000, 10_000.0)
        assert (buy["commission"], buy["stamp_duty"], buy["transfer_fee"]) == (5.0, 0.0, 0.1)
        sell = t.loc[("600000.SH", "sell")]
        assert sell["date"] == DAYS[sell_day]
        # commission 0.025% = 2.50 -> the 5.00 minimum; transfer fee 0.001% = 0.10
        assert (sell["commission"], sell["stamp_duty"], sell["transfer_fee"]) == (5.0, stamp, 0.1)


def test_cash_dividend_and_bonus_shares_change_the_holding_on_the_ex_date():
    # 10 for 10 bonus (ratio 1.0) and 0.50 CNY cash per share on day 3:
    # preclose = (10 - 0.5) / 2 = 4.75
    bars = market(
        {"600000.SH": [10, 10, 10, 4.75, 4.8]}, days=DAYS[:5], preclose={("600000.SH", 3): 4.75}
    )  # the exchange's ex-rights preclose
    score = scores_of(bars, {"600000.SH": [1] * 8})
    actions = pd.DataFrame({"symbol": ["600000.SH"], "ex_date": [DAYS[3]], "cash_dividend": [0.5],
                            "bonus_ratio": [1.0], "split_ratio": [1.0]})  # fmt: skip
    res = backtest(score, bars, top_n=1, costs=False, min_listed_days=0, actions=actions,
                   initial_cash=100_000.0)  # fmt: skip
    pos = res.positions.set_index("date")["shares"]
    assert pos.loc[DAYS[2]] == 10_000  # bought 10,000 shares at 10.00 on day 1
    assert pos.loc[DAYS[3]] == 20_000
    assert res.cash.loc[DAYS[3]] - res.cash.loc[DAYS[2]] == pytest.approx(5_000.0)
    # value is preserved across the ex-date: 20,000 x 4.75 + 5,000 = 100,000
    assert res.equity.loc[DAYS[3]] == pytest.approx(100_000.0)
    # without the actions table the change is inferred from preclose (value kept, shares x2.105)
    inferred = backtest(
        score, bars, top_n=1, costs=False, min_listed_days=0, initial_cash=100_000.0
    )
    assert inferred.equity.loc[DAYS[3]] == pytest.approx(100_000.0)


def test_hysteresis_replaces_at_most_n_drop_names_a_day():
    rng = np.random.default_rng(8)
    days = pd.bdate_range("2022-01-03", periods=30)
    bars = market({f"{600000 + i}.SH": [10.0] * 30 for i in range(30)}, days=days)
    score = pd.Series(
        rng.normal(size=len(bars)), index=pd.MultiIndex.from_frame(bars[["date", "symbol"]])
    )
    res = backtest(score, bars, top_n=10, n_drop=2, costs=False, min_listed_days=0)
    sells = res.trades[res.trades["side"] == "sell"].groupby("date").size()
    assert sells.max() == 2
    names = res.positions.groupby("date").size()
    assert names.iloc[1:].eq(10).all()
    # without hysteresis (rules off) the book churns far more
    free = backtest(score, bars, top_n=10, rules=False, costs=False)
    assert free.summary["turnover"] > 2 * res.summary["turnover"]


def test_st_new_listings_and_blacklist_are_not_bought_and_a_stock_turning_st_is_sold():
    bars = market({"600000.SH": [10] * 8, "600001.SH": [10] * 8, "600002.SH": [10] * 8,
                   "600003.SH": [10] * 8}, is_st={("600001.SH", k): True for k in range(8)}
                  | {("600000.SH", k): True for k in range(3, 8)})  # fmt: skip
    score = scores_of(bars, {"600000.SH": [4] * 8, "600001.SH": [9] * 8, "600002.SH": [8] * 8,
                             "600003.SH": [1] * 8})  # fmt: skip
    res = backtest(score, bars, top_n=1, costs=NO_SLIP, min_listed_days=0,
                   blacklist=("600002.SH",))  # fmt: skip
    t = res.trades
    assert set(t["symbol"]) == {"600000.SH", "600003.SH"}
    sold = t[(t["symbol"] == "600000.SH") & (t["side"] == "sell")]
    assert sold["date"].tolist() == [DAYS[4]]
    assert sold["reason"].tolist() == ["no longer eligible (ST or blacklisted)"]
    # a stock listed inside the window waits min_listed_days
    late = market({"600000.SH": [10] * 8, "600009.SH": [np.nan] * 3 + [10] * 5})
    late = late.dropna(subset=["close"])
    s2 = pd.Series(np.where(late["symbol"] == "600009.SH", 5.0, 1.0),
                   index=pd.MultiIndex.from_frame(late[["date", "symbol"]]))  # fmt: skip
    r2 = backtest(s2, late, top_n=1, costs=False, min_listed_days=3, n_drop=1)
    first = r2.trades.query("symbol == '600009.SH' and side == 'buy'")["date"].min()
    assert first == DAYS[6]  # listed day 3; its third day (5) scores, bought at day 6's open


def test_vwap_execution_fills_at_amount_over_volume_and_close_is_rejected_as_unknown():
    bars = market({"600000.SH": [10, 10, 10]}, days=DAYS[:3])
    bars.loc[1, "amount"] = 1e6 * 10.37  # day 1 VWAP 10.37
    score = scores_of(bars, {"600000.SH": [1] * 8})
    res = backtest(score, bars, top_n=1, costs=NO_SLIP, execution="vwap", min_listed_days=0)
    assert res.trades["price"].tolist() == [10.37]
    with pytest.raises(ValueError, match="execution"):
        backtest(score, bars, execution="midpoint")


def test_summary_has_the_figures_a_pm_reads():
    rng = np.random.default_rng(2)
    days = pd.bdate_range("2022-01-03", periods=60)
    prices = {f"{600000 + i}.SH": list(10 * np.exp(np.cumsum(rng.normal(0, 0.02, 60))).round(2))
              for i in range(20)}  # fmt: skip
    bars = market(prices, days=days)
    score = pd.Series(
        rng.normal(size=len(bars)), index=pd.MultiIndex.from_frame(bars[["date", "symbol"]])
    )
    industries = pd.Series({s: "bank" if int(s[:6]) % 2 else "energy" for s in prices})
    res = backtest(score, bars, top_n=5, min_listed_days=0, industries=industries)
    s = res.summary
    for key in (
        "annual_return",
        "sharpe",
        "max_drawdown",
        "information_ratio",
        "turnover",
        "hit_rate",
        "holding_days",
        "fees",
        "exposure_bank",
        "exposure_energy",
    ):
        assert key in s and np.isfinite(s[key]), key
    assert 0 <= s["hit_rate"] <= 1
    assert s["exposure_bank"] + s["exposure_energy"] == pytest.approx(
        res.positions.groupby("date")["weight"].sum().mean()
    )
    assert s["fees"] == pytest.approx(
        res.trades[["commission", "stamp_duty", "transfer_fee"]].sum().sum()
    )
