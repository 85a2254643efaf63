"""The paper broker and one day of the paper book: T+1, fees, actions, rejection, kept sells."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quant_assets.strategy.book import REJECTED, TRADE, BookConfig, apply_actions, book_day
from quant_assets.strategy.broker import Account, PaperBroker
from quant_assets.strategy.costs import Costs
from quant_assets.strategy.risk import RiskLimits

DAY = pd.Timestamp("2023-08-28")
NO_SLIP = Costs(slippage=0.0)


def bars(overrides: dict | None = None) -> pd.DataFrame:
    rows = {s: dict(symbol=s, open=10.0, high=10.0, low=10.0, close=10.0, preclose=10.0,
                    volume=1e6, amount=1e7, is_suspended=False, is_st=False)
            for s in ("600000.SH", "600001.SH", "600002.SH", "600003.SH")}  # fmt: skip
    for (sym, col), v in (overrides or {}).items():
        rows[sym][col] = v
    return pd.DataFrame(rows.values())


def orders(*rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["symbol", "side", "shares", "reason"])


def test_t_plus_one_shares_bought_today_cannot_be_sold_today():
    acct = Account(cash_cents=2_000_000.0, shares={}, bought_today={})
    broker = PaperBroker(NO_SLIP)
    fills, unfilled = broker.execute(orders(("600000.SH", "buy", 1000, "enter")), bars(), DAY, acct)
    assert fills["shares"].tolist() == [1000]
    fills, unfilled = broker.execute(orders(("600000.SH", "sell", 1000, "out")), bars(), DAY, acct)
    assert fills.empty
    assert unfilled["reason"].tolist() == ["T+1: bought today"]
    assert acct.shares == {"600000.SH": 1000}


def test_paper_fills_to_the_cent_after_the_stamp_duty_change():
    acct = Account(cash_cents=0.0, shares={"600000.SH": 1000.0}, bought_today={})
    fills, _ = PaperBroker(NO_SLIP).execute(orders(("600000.SH", "sell", 1000, "out")), bars(),
                                            DAY, acct)  # fmt: skip
    f = fills.iloc[0]
    assert (f["value"], f["commission"], f["stamp_duty"], f["transfer_fee"]) == (10_000, 5, 5, 0.1)
    assert acct.cash_cents == 1_000_000 - 500 - 500 - 10
    before = Account(cash_cents=0.0, shares={"600000.SH": 1000.0}, bought_today={})
    fills, _ = PaperBroker(NO_SLIP).execute(orders(("600000.SH", "sell", 1000, "out")), bars(),
                                            pd.Timestamp("2023-08-25"), before)  # fmt: skip
    assert fills.iloc[0]["stamp_duty"] == 10.0


def test_blocked_orders_say_why_and_an_odd_lot_is_sold_only_whole():
    acct = Account(cash_cents=10_000_000.0, shares={"600001.SH": 1050.0}, bought_today={})
    b = bars({("600000.SH", "open"): 11.0, ("600002.SH", "is_suspended"): True,
              ("600003.SH", "open"): 9.0})  # fmt: skip
    fills, unfilled = PaperBroker(NO_SLIP).execute(orders(
        ("600000.SH", "buy", 100, "enter"),  # opens at +10%: limit-up
        ("600002.SH", "buy", 100, "enter"),  # suspended
        ("600001.SH", "sell", 1050, "out"),  # whole position: the odd 50 go too
    ), b, DAY, acct)  # fmt: skip
    assert fills[["symbol", "shares"]].values.tolist() == [["600001.SH", 1050]]
    assert unfilled.set_index("symbol")["reason"].to_dict() == {
        "600000.SH": "at the price limit",
        "600002.SH": "suspended",
    }


def test_a_dividend_and_bonus_shares_change_the_holding():
    acct = Account(cash_cents=0.0, shares={"600000.SH": 1000.0}, bought_today={})
    acts = pd.DataFrame({"symbol": ["600000.SH"], "cash_dividend": [0.35], "bonus_ratio": [0.3],
                         "split_ratio": [1.0]})  # fmt: skip
    notes = apply_actions(acct, acts)
    assert acct.shares == {"600000.SH": 1300.0} and acct.cash_cents == 35_000
    assert type(acct.cash) is float  # Dagster's metadata takes no numpy scalar
    assert notes == ["600000.SH: 1000 -> 1300 shares, dividend 350.00 CNY"]


def signals(scores: dict[str, float], buyable=None) -> pd.DataFrame:
    return pd.DataFrame({"score": scores, "buyable": buyable or {s: True for s in scores},
                         "holdable": {s: True for s in scores}})  # fmt: skip


INFO = pd.DataFrame({"industry": ["bank", "bank", "energy", "tech"], "board": "main",
                     "adv": 1e9}, index=["600000.SH", "600001.SH", "600002.SH", "600003.SH"])  # fmt: skip


def day(account, pending, sig, config, b=None):
    empty = pd.DataFrame(columns=["symbol", "cash_dividend", "bonus_ratio", "split_ratio"])
    return book_day(DAY, account, pending, 1e6, b if b is not None else bars(), empty, sig, INFO,
                    pd.DataFrame(), config, PaperBroker(NO_SLIP))  # fmt: skip


def test_a_day_of_the_book_fills_yesterdays_orders_and_orders_tomorrows_top_n():
    acct = Account(cash_cents=100_000_000.0, shares={}, bought_today={})
    cfg = BookConfig(top_n=2, limits=RiskLimits(max_stock_weight=0.6, max_industry_weight=0.6))
    out = day(acct, orders(), signals({"600000.SH": 3, "600001.SH": 1, "600002.SH": 2,
                                       "600003.SH": 0}), cfg)  # fmt: skip
    assert out.status == TRADE and out.fills.empty
    assert sorted(out.orders["symbol"]) == ["600000.SH", "600002.SH"]
    assert (out.orders["side"] == "buy").all() and (out.orders["shares"] % 100 == 0).all()
    assert out.target["weight"].sum() == pytest.approx(1.0)
    # next day: the orders fill; the ranking moved one name, n_drop=1 replaces one
    nxt = day(acct, out.orders, signals({"600000.SH": 0, "600001.SH": 5, "600002.SH": 2,
                                         "600003.SH": 4}), cfg)  # fmt: skip
    assert sorted(nxt.fills["symbol"]) == ["600000.SH", "600002.SH"]
    assert acct.cash_cents >= 0
    assert nxt.orders.set_index("symbol")["side"].to_dict() == {
        "600000.SH": "sell",
        "600001.SH": "buy",
    }
    assert nxt.orders.set_index("symbol").loc["600000.SH", "reason"] == "dropped out of the top-N"


def test_sizing_holds_the_industry_limit_and_leaves_the_rest_in_cash():
    acct = Account(cash_cents=100_000_000.0, shares={}, bought_today={})
    # the two best are banks: 50% each would break the 35% industry limit
    cfg = BookConfig(top_n=2, limits=RiskLimits(max_stock_weight=0.6, max_industry_weight=0.35))
    out = day(acct, orders(), signals({"600000.SH": 3, "600001.SH": 2, "600002.SH": 0}), cfg)
    assert out.status == TRADE and not [b for b in out.breaches if b.hard]
    assert out.target["weight"].tolist() == pytest.approx([0.175, 0.175])


def test_a_portfolio_that_breaks_a_hard_rule_is_rejected_with_no_orders():
    acct = Account(cash_cents=100_000_000.0, shares={}, bought_today={})
    # the risk desk's blacklist: the signals may rank the name, the risk rules refuse it
    cfg = BookConfig(top_n=2, limits=RiskLimits(max_stock_weight=0.6, max_industry_weight=1.0,
                                                blacklist=("600000.SH",)))  # fmt: skip
    out = day(acct, orders(), signals({"600000.SH": 3, "600001.SH": 2, "600002.SH": 0}), cfg)
    assert out.status == REJECTED and out.orders.empty
    assert [(b.rule, b.subject, round(b.value, 2)) for b in out.breaches if b.hard] == [
        ("blacklist", "600000.SH", 0.5)
    ]


def test_a_sell_that_could_not_fill_is_kept_the_next_day():
    acct = Account(cash_cents=0.0, shares={"600000.SH": 1000.0}, bought_today={})
    cfg = BookConfig(top_n=1, limits=RiskLimits(max_stock_weight=1.0, max_industry_weight=1.0))
    b = bars({("600000.SH", "is_suspended"): True})
    # yesterday's sell of A fails today (suspended); A now ranks first again, yet it is sold
    out = day(acct, orders(("600000.SH", "sell", 1000, "dropped out of the top-N")),
              signals({"600000.SH": 5, "600001.SH": 1}), cfg, b)  # fmt: skip
    assert out.unfilled["reason"].tolist() == ["suspended"]
    sells = out.orders[out.orders["side"] == "sell"]
    assert sells["symbol"].tolist() == ["600000.SH"]
    assert np.isfinite(out.equity) and out.equity == pytest.approx(10_000.0)


def test_position_monitoring_names_holdings_at_a_limit_or_suspended():
    from quant_assets.strategy.book import limit_events

    acct = Account(cash_cents=0.0, shares={"600000.SH": 100.0, "600001.SH": 100.0,
                                           "600002.SH": 100.0, "600003.SH": 100.0},
                   bought_today={})  # fmt: skip
    b = bars({("600000.SH", "close"): 9.0, ("600001.SH", "is_suspended"): True,
              ("600002.SH", "close"): 11.0})  # fmt: skip
    assert limit_events(acct, b) == ["600000.SH held at limit-down (9.00)",
                                     "600001.SH held while suspended",
                                     "600002.SH held at limit-up (11.00)"]  # fmt: skip


def test_breaches_read_back_from_the_ledger_are_the_ones_recorded():
    from quant_assets.strategy.ledger import read_breaches, to_ledger

    acct = Account(cash_cents=100_000_000.0, shares={}, bought_today={})
    cfg = BookConfig(top_n=2, limits=RiskLimits(max_stock_weight=0.6, max_industry_weight=1.0,
                                                blacklist=("600000.SH",)))  # fmt: skip
    out = day(acct, orders(), signals({"600000.SH": 3, "600001.SH": 2, "600002.SH": 0}), cfg)
    rows = to_ledger(DAY, out, bars().set_index("symbol")["close"])
    assert read_breaches(rows) == out.breaches
