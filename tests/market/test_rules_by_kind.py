"""Every rule on every kind it is registered for: one corrupted row in a clean frame is
quarantined under that rule and is the only row quarantined. The registry (`rules_by_kind`) is
what `validate()` runs, and the README's table is rendered from it."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from quant_assets.market.validation import rules_by_kind, validate
from quant_assets.market.validation.rules_table import BEGIN, END, README, render, with_table
from tests.market.test_validation import (
    DAY,
    MAKERS,
    NOW,
    SYMS,
    assert_conserved,
    make_bars,
    make_universe,
)

CALENDAR = pd.bdate_range("2023-12-01", DAY)
LISTINGS = make_universe().set_index("symbol")["list_date"]
# every input validate() takes, so that every rule can run
FULL = dict(
    known_symbols=SYMS,
    trading_date=DAY,
    now=NOW,
    bars_for_limits=make_bars(),
    trading_days=CALENDAR,
    listings=LISTINGS,
)
HISTORY = {"trading_date": None}  # a multi-day file: no file day to be on


def at(row: int, **values: object) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """Set cells of one row (columns become object where the value needs it)."""

    def change(df: pd.DataFrame) -> pd.DataFrame:
        df = df.copy()
        for col, value in values.items():
            if not isinstance(value, (int, float, np.number)) or df[col].dtype == bool:
                df[col] = df[col].astype(object)
            df.loc[row, col] = value
        return df

    return change


def shift(row: int, col: str, by: pd.Timedelta) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def change(df: pd.DataFrame) -> pd.DataFrame:
        df = df.copy()
        df.loc[row, col] = df.loc[row, col] + by
        return df

    return change


def repeat(row: int) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """The frame with a copy of `row` appended (the copy is the duplicate)."""
    return lambda df: pd.concat([df, df.iloc[[row]]], ignore_index=True)


def bar_history(df: pd.DataFrame) -> pd.DataFrame:
    """600000.SH over four days with 2023-12-26 delivered third: [27, 28, 26, 29]."""
    days = pd.to_datetime(["2023-12-27", "2023-12-28", "2023-12-26", "2023-12-29"])
    first = df.iloc[[0]]
    rest = pd.concat([first.assign(date=d) for d in days[1:]], ignore_index=True)
    return pd.concat([df.assign(date=pd.Timestamp(days[0])), rest], ignore_index=True)


US = pd.Timedelta(microseconds=400)
# (rule, kind) -> (corrupt the clean frame, the row that breaks the rule, inputs to change)
CASES: dict[tuple[str, str], tuple[Callable, int, dict]] = {
    # ----------------------------------------------------------------------------- trades
    ("wrong_type", "trades"): (at(2, price="abc"), 2, {}),
    ("missing_value", "trades"): (at(2, side=np.nan), 2, {}),
    ("unknown_symbol", "trades"): (at(5, symbol="999999.SZ"), 5, {}),
    ("bad_price", "trades"): (at(1, price=-1.0), 1, {}),
    ("negative_volume", "trades"): (at(1, volume=-200), 1, {}),
    ("bad_value", "trades"): (at(2, side=2), 2, {}),
    ("outside_session", "trades"): (shift(5, "ts", pd.Timedelta(seconds=90)), 5, {}),
    ("not_on_trading_date", "trades"): (shift(3, "ts", -pd.Timedelta(days=1)), 3, {}),
    ("in_future", "trades"): (lambda d: d, 5, {"now": f"{DAY} 14:00"}),
    ("out_of_order", "trades"): (shift(4, "ts", -pd.Timedelta(hours=3, minutes=29)), 4, {}),
    ("duplicate", "trades"): (repeat(2), 6, {}),
    ("outside_price_limit", "trades"): (at(4, price=22.01), 4, {}),
    ("out_of_range", "trades"): (at(4, volume=5_000_000_000), 4, {}),
    ("precision_lost", "trades"): (shift(1, "ts", US), 1, {}),
    # ------------------------------------------------------------------------- order book
    ("wrong_type", "order_book"): (at(1, bid_px_3="x"), 1, {}),
    ("missing_value", "order_book"): (at(1, bid_sz_2=np.nan), 1, {}),
    ("unknown_symbol", "order_book"): (at(3, symbol="999999.SH"), 3, {}),
    ("bad_price", "order_book"): (at(1, ask_px_10=-1.0), 1, {}),
    ("negative_volume", "order_book"): (at(2, bid_sz_4=-5), 2, {}),
    ("crossed_book", "order_book"): (at(1, bid_px_1=10.01), 1, {}),
    ("non_monotone_levels", "order_book"): (at(1, bid_px_3=9.99), 1, {}),
    ("outside_session", "order_book"): (shift(3, "ts", pd.Timedelta(hours=1, minutes=45)), 3, {}),
    ("not_on_trading_date", "order_book"): (shift(0, "ts", -pd.Timedelta(days=1)), 0, {}),
    ("in_future", "order_book"): (lambda d: d, 3, {"now": f"{DAY} 10:00:07"}),
    ("out_of_order", "order_book"): (shift(1, "ts", pd.Timedelta(seconds=30)), 1, {}),
    ("duplicate", "order_book"): (repeat(3), 4, {}),
    ("outside_price_limit", "order_book"): (at(2, ask_px_10=11.01), 2, {}),
    ("out_of_range", "order_book"): (at(2, ask_sz_7=5_000_000_000), 2, {}),
    ("precision_lost", "order_book"): (shift(1, "ts", US), 1, {}),
    # ------------------------------------------------------------------------------- bars
    ("wrong_type", "bars"): (at(1, open="abc"), 1, {}),
    ("missing_value", "bars"): (at(1, volume=np.nan), 1, {}),
    ("unknown_symbol", "bars"): (at(1, symbol="999999.SZ"), 1, {}),
    ("bad_price", "bars"): (at(1, preclose=-20.0), 1, {}),
    ("negative_volume", "bars"): (at(1, amount=-4.0e7), 1, {}),
    ("ohlc_inconsistent", "bars"): (at(0, high=10.1), 0, {}),
    ("suspended_inconsistent", "bars"): (at(0, is_suspended=True), 0, {}),
    ("not_on_trading_date", "bars"): (at(2, date=pd.Timestamp("2023-12-29")), 2, {}),
    ("in_future", "bars"): (at(2, date=pd.Timestamp("2024-01-03")), 2, {}),
    ("non_trading_day", "bars"): (at(1, date=pd.Timestamp("2023-12-30")), 1, HISTORY),
    ("duplicate", "bars"): (repeat(1), 3, {}),
    ("out_of_order", "bars"): (bar_history, 4, HISTORY),
    ("outside_price_limit", "bars"): (at(0, high=13.0, close=13.0), 0, {}),
    ("out_of_range", "bars"): (at(1, date=pd.Timestamp("1969-12-31")), 1, HISTORY),
    # ------------------------------------------------------------------------------- news
    ("wrong_type", "news"): (at(0, sentiment="abc"), 0, {}),
    ("missing_value", "news"): (at(1, news_id=None), 1, {}),
    ("unknown_symbol", "news"): (at(1, symbol="999999.SZ"), 1, {}),
    ("bad_value", "news"): (at(1, sentiment=1.5), 1, {}),
    ("empty_title", "news"): (at(1, title="  "), 1, {}),
    ("undecodable_text", "news"): (at(0, title="浦发\ufffd银行"), 0, {}),
    ("not_on_trading_date", "news"): (shift(2, "ts", pd.Timedelta(days=1)), 2, {}),
    ("in_future", "news"): (lambda d: d, 2, {"now": f"{DAY} 14:00"}),
    ("duplicate", "news"): (at(1, news_id="n1"), 1, {}),
    ("out_of_range", "news"): (at(1, ts="1899-12-29 08:00:00"), 1, {}),
    ("precision_lost", "news"): (shift(1, "ts", US), 1, {}),
    # ------------------------------------------------------------------ corporate actions
    ("wrong_type", "corporate_actions"): (at(1, cash_dividend="abc"), 1, {}),
    ("missing_value", "corporate_actions"): (at(1, action_id=None), 1, {}),
    ("unknown_symbol", "corporate_actions"): (at(1, symbol="999999.SZ"), 1, {}),
    ("bad_value", "corporate_actions"): (at(1, split_ratio=0.0), 1, {}),
    ("ex_before_announce", "corporate_actions"): (
        at(0, ex_date=pd.Timestamp("2023-12-01")),
        0,
        {},
    ),
    ("not_on_trading_date", "corporate_actions"): (
        at(0, announce_date=pd.Timestamp("2024-01-03")),
        0,
        {"now": "2024-01-04 18:00"},
    ),
    ("in_future", "corporate_actions"): (
        at(1, announce_date=pd.Timestamp("2024-01-03")),
        1,
        HISTORY,
    ),
    ("duplicate", "corporate_actions"): (at(1, action_id="a1"), 1, {}),
    ("out_of_range", "corporate_actions"): (at(1, ex_date=pd.Timestamp("2150-01-05")), 1, {}),
    # ---------------------------------------------------------------------------- universe
    ("wrong_type", "universe"): (at(1, is_st="maybe"), 1, {}),
    ("missing_value", "universe"): (at(1, is_st=None), 1, {}),
    ("unknown_symbol", "universe"): (at(1, symbol="999999.SH"), 1, {}),
    ("bad_value", "universe"): (at(1, board="moon"), 1, {}),
    ("duplicate", "universe"): (repeat(1), 3, {}),
    ("out_of_range", "universe"): (at(1, list_date=pd.Timestamp("1969-12-31")), 1, {}),
}

REGISTERED = sorted((rule, kind) for kind, rules in rules_by_kind().items() for rule in rules)


def run_full(kind: str, df: pd.DataFrame, **kw):
    return validate(kind, df, **{**FULL, "source_file": f"{kind}.csv", **kw})


def test_every_registered_rule_has_a_case_and_every_case_is_registered():
    assert sorted(CASES) == REGISTERED


@pytest.mark.parametrize("kind", list(MAKERS))
def test_the_registry_is_what_validate_runs(kind):
    """With every input given, the rules that ran on a clean frame are the registered ones."""
    res = run_full(kind, MAKERS[kind]())
    assert res.quarantine.empty, res.quarantine[["rule", "detail"]]
    assert sorted(res.counts) == sorted(rules_by_kind()[kind])
    assert not res.skipped


@pytest.mark.parametrize(("rule", "kind"), REGISTERED, ids=[f"{k}-{r}" for r, k in REGISTERED])
def test_one_corrupted_row_is_quarantined_under_the_rule_and_alone(rule, kind):
    corrupt, row, kw = CASES[(rule, kind)]
    df = corrupt(MAKERS[kind]())
    res = run_full(kind, df, **kw)
    q = res.quarantine
    assert q.loc[q["rule"] == rule, "row_number"].tolist() == [row], q[["row_number", "rule"]]
    assert set(q["row_number"]) == {row}, q[["row_number", "rule", "detail"]]
    assert res.counts[rule] == 1
    assert_conserved(res, len(df))


def test_the_readme_table_is_the_rendered_registry():
    text = README.read_text(encoding="utf-8")
    assert with_table(text) == text, (
        "README's rules table is stale: python -m quant_assets.market.validation.rules_table"
    )


def test_render_marks_each_rule_under_its_kinds_only():
    table = render({"bars": ["bad_price", "duplicate"], "news": ["duplicate"]})
    lines = table.splitlines()
    assert lines[0] == "| rule | what it catches | `bars` | `news` |"
    assert [ln.split(" | ")[0] for ln in lines[2:]] == ["| `bad_price`", "| `duplicate`"]
    assert lines[2].endswith("| ✓ |  |") and lines[3].endswith("| ✓ | ✓ |")


def test_with_table_replaces_only_between_the_markers_and_refuses_without_them():
    text = f"before\n{BEGIN}\nold table\n{END}\nafter\n"
    assert with_table(text, "T\n") == f"before\n{BEGIN}\nT\n{END}\nafter\n"
    with pytest.raises(ValueError, match="markers"):
        with_table("no table here", "T\n")
