"""Values the stored tables cannot hold are quarantined with their row, before any insert."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quant_assets.market.contract.tables import RAW_ORDER_BOOK, RAW_TRADES
from quant_assets.market.validation.rules_storage import (
    ColumnCheck,
    column_checks,
    storage_rule_names,
    unstorable,
)
from quant_assets.market.validation.screen_kernels import book_suspects
from quant_assets.market.validation.storage_types import FLOAT32_MAX, base_type, storable
from tests.market.test_validation import (
    DAY,
    make_actions,
    make_bars,
    make_book,
    make_news,
    make_trades,
    make_universe,
    quarantined,
    run,
)

UINT32_MAX = 2**32 - 1
MS = 1_000_000


@pytest.mark.parametrize(
    ("declared", "name", "low", "high", "step", "temporal"),
    [
        ("UInt32 CODEC(T64)", "UInt32", 0, UINT32_MAX, None, False),
        ("UInt64 CODEC(Delta, ZSTD(1))", "UInt64", 0, 2**64 - 1, None, False),
        ("Int8", "Int8", -128, 127, None, False),
        ("Nullable(Int16)", "Int16", -(2**15), 2**15 - 1, None, False),
        ("Int256", "Int256", -(2**255), 2**255 - 1, None, False),
        ("Float32", "Float32", -FLOAT32_MAX, FLOAT32_MAX, None, False),
        ("Float64 CODEC(Gorilla, ZSTD(1))", "Float64", None, None, None, False),
        ("Nullable(Float64)", "Float64", None, None, None, False),
        ("Decimal(9, 2)", "Decimal(9, 2)", -9_999_999.99, 9_999_999.99, 0.01, False),
        ("Decimal64(4)", "Decimal64(4)", -(10.0**14 - 1e-4), 10.0**14 - 1e-4, 1e-4, False),
        ("LowCardinality(String)", "String", None, None, None, False),
        ("String CODEC(ZSTD(3))", "String", None, None, None, False),
        ("Bool", "Bool", None, None, None, False),
        (
            "Date CODEC(DoubleDelta, ZSTD(1))",
            "Date",
            0,
            pd.Timestamp("2149-06-06").value,
            86_400 * 10**9,
            True,
        ),
        ("Date32", "Date32", pd.Timestamp("1900-01-01").value, None, 86_400 * 10**9, True),
        ("DateTime", "DateTime", 0, UINT32_MAX * 10**9, 10**9, True),
        (
            "DateTime64(3, 'Asia/Shanghai') CODEC(DoubleDelta, LZ4)",
            "DateTime64(3, 'Asia/Shanghai')",
            pd.Timestamp("1900-01-01").value,
            None,
            MS,
            True,
        ),
        ("DateTime64(6)", "DateTime64(6)", pd.Timestamp("1900-01-01").value, None, 1_000, True),
        (
            "DateTime64(9, 'UTC')",
            "DateTime64(9, 'UTC')",
            pd.Timestamp("1900-01-01").value,
            None,
            1,
            True,
        ),
    ],
)
def test_storable_reads_range_and_precision_from_the_type_string(
    declared, name, low, high, step, temporal
):
    s = storable(declared)
    assert (s.name, s.low, s.high, s.step, s.temporal) == (name, low, high, step, temporal)


def test_base_type_cuts_codecs_and_defaults_outside_parentheses_only():
    assert base_type("DateTime64(3, 'Asia/Shanghai') CODEC(DoubleDelta, LZ4)") == (
        "DateTime64(3, 'Asia/Shanghai')"
    )
    assert base_type("Float64 DEFAULT nan CODEC(ZSTD(1))") == "Float64"
    assert base_type("LowCardinality(Nullable(String))") == "String"


def test_the_checks_come_from_the_table_types_and_leave_the_domain_to_its_rules():
    trades = column_checks("trades")
    assert trades["volume"].high == UINT32_MAX
    assert trades["volume"].low is None  # below 0 is the schema's ge=0: negative_volume
    assert "side" not in trades  # Int8 holds the domain {-1, 0, 1}
    assert "price" not in trades  # Float64 holds every float
    assert trades["ts"].step == MS and trades["ts"].low == pd.Timestamp("1900-01-01").value
    # the frame holds int64: a UInt64 column is bounded by it
    assert column_checks("bars")["volume"].high == np.iinfo(np.int64).max
    sizes = [c for c in column_checks("order_book") if "_sz_" in c]
    assert len(sizes) == 20
    assert all(column_checks("order_book")[c].high == UINT32_MAX for c in sizes)
    assert storage_rule_names("trades") == {"out_of_range", "precision_lost"}
    assert storage_rule_names("bars") == {"out_of_range"}  # dates are parsed to whole days
    assert RAW_ORDER_BOOK.columns["bid_sz_1"].startswith("UInt32")


def test_unstorable_on_a_decimal_column_and_on_floats_at_an_integer_bound():
    dec = ColumnCheck("x", "float", storable("Decimal(9, 2)"), -9_999_999.99, 9_999_999.99, 0.01)
    x = np.array([10.01, 0.1 + 0.2, 10.015, 9_999_999.99, 10_000_000.0, np.nan, -1e8])
    out, lost = unstorable(x, dec)
    assert out.tolist() == [False, False, False, False, True, False, True]
    assert lost.tolist() == [False, False, True, False, False, False, False]
    # an int column parsed from text holds floats: 2**32 - 1 fits a UInt32, 2**32 does not
    u32 = ColumnCheck("v", "int", storable("UInt32"), None, UINT32_MAX, None)
    out, _ = unstorable(np.array([UINT32_MAX, 2.0**32, np.nan]), u32)
    assert out.tolist() == [False, True, False]
    i64 = ColumnCheck("v", "int", storable("UInt64"), None, np.iinfo(np.int64).max, None)
    out, _ = unstorable(np.array([9.2e18, 2.0**63, 1e19]), i64)  # int64 ends below 2**63
    assert out.tolist() == [False, True, True]


def test_a_trade_of_5e9_shares_is_quarantined_by_its_row():
    trades = make_trades()
    trades.loc[4, "volume"] = 5_000_000_000
    trades.loc[1, "volume"] = UINT32_MAX  # the largest a UInt32 holds: clean
    res = run("trades", trades)
    assert quarantined(res, "out_of_range") == [4]
    assert res.n_quarantined == 1
    assert "volume=5000000000" in res.quarantine["detail"].iloc[0]
    assert "UInt32" in res.quarantine["detail"].iloc[0]


def test_a_volume_too_large_read_as_text_is_quarantined_not_cast():
    trades = make_trades().astype({"volume": object})
    trades.loc[2, "volume"] = "5e9"
    trades.loc[3, "volume"] = "99999999999999999999"  # beyond int64 as well
    res = run("trades", trades)
    assert quarantined(res, "out_of_range") == [2, 3]
    assert res.n_quarantined == 2 and res.clean["volume"].dtype == "int64"


def test_a_negative_volume_is_reported_once_by_its_own_rule():
    trades = make_trades()
    trades.loc[0, "volume"] = -1
    res = run("trades", trades)
    assert res.quarantine[["row_number", "rule"]].values.tolist() == [[0, "negative_volume"]]


def test_an_order_book_size_too_large_is_picked_by_the_screen_and_quarantined():
    book = make_book(4)
    book.loc[2, "ask_sz_7"] = 5_000_000_000
    res = run("order_book", book)
    assert quarantined(res, "out_of_range") == [2]
    assert res.n_quarantined == 1
    levels = [
        [book[f"{side}_{what}_{k}"].to_numpy() for k in range(1, 11)]
        for side, what in (("bid", "px"), ("bid", "sz"), ("ask", "px"), ("ask", "sz"))
    ]
    assert book_suspects(*levels).tolist() == [False] * 4  # without the bound: no suspect
    assert book_suspects(*levels, size_max=UINT32_MAX).tolist() == [False, False, True, False]


@pytest.mark.parametrize("kind", ["trades", "order_book", "news"])
def test_a_sub_millisecond_time_is_precision_lost(kind):
    df = {"trades": make_trades, "order_book": make_book, "news": make_news}[kind]()
    df.loc[1, "ts"] = df.loc[1, "ts"] + pd.Timedelta(microseconds=400)
    df.loc[2, "ts"] = df.loc[2, "ts"] + pd.Timedelta(milliseconds=7)  # whole ms: kept
    res = run(kind, df)
    assert quarantined(res, "precision_lost") == [1]
    assert res.n_quarantined == 1


def test_two_snapshots_distinct_only_below_the_millisecond_keep_one_key():
    # DateTime64(3) would store both at 10:00:00.000: the duplicate the rules had ruled out
    book = make_book(2)
    book.loc[1, "ts"] = book.loc[0, "ts"] + pd.Timedelta(microseconds=400)
    res = run("order_book", book)
    assert quarantined(res, "precision_lost") == [1]
    assert res.clean["ts"].dt.floor("ms").is_unique


@pytest.mark.parametrize(
    ("kind", "make", "change", "kw"),
    [
        ("corporate_actions", make_actions, {"ex_date": pd.Timestamp("2150-01-05")}, {}),
        ("universe", make_universe, {"list_date": pd.Timestamp("1969-12-31")}, {}),
        # a history (no file day, no calendar, no `now`): only the Date type is left to object
        (
            "bars",
            make_bars,
            {"date": pd.Timestamp("1969-12-31")},
            {"trading_date": None, "now": None},
        ),
        ("news", make_news, {"ts": "1899-12-29 08:00:00"}, {}),  # as a file's text
    ],
)
def test_dates_and_times_beyond_their_column_type_are_out_of_range(kind, make, change, kw):
    df = make()
    for col, value in change.items():
        df[col] = df[col].astype(object)
        df.loc[1, col] = value
    res = run(kind, df, **kw)
    assert quarantined(res, "out_of_range") == [1]
    assert set(res.quarantine["row_number"]) == {1}


# ---------------------------------------------------------------------------------------------
# what reaches the table: the clean rows insert, the raw ones would not


def _store_trades(clickhouse, frame: pd.DataFrame) -> pd.DataFrame:
    day = pd.Timestamp(DAY)
    with clickhouse.client() as client:
        clickhouse.ensure_table(client, RAW_TRADES)
        clickhouse.replace_partition(client, RAW_TRADES, frame.assign(date=day), day)
        return clickhouse.query_df(
            client, f"SELECT * FROM {clickhouse.database}.raw_trades ORDER BY symbol, trade_id"
        )


def _trades(n: int) -> pd.DataFrame:
    """`n` trades of two symbols, one per millisecond from 09:30."""
    i = np.arange(n)
    return pd.DataFrame(
        {
            "ts": pd.Timestamp(f"{DAY} 09:30", tz="Asia/Shanghai") + pd.to_timedelta(i, "ms"),
            "symbol": np.where(i % 2 == 0, "600000.SH", "000001.SZ"),
            "trade_id": i,
            "price": np.where(i % 2 == 0, 10.0, 20.0),
            "volume": 100,
            "side": 1,
        }
    )


@pytest.mark.parametrize("n", [10, 60_000])  # a few rows, and the Arrow batches' path
def test_the_clean_trades_insert_where_the_raw_file_fails(clickhouse, n):
    trades = _trades(n)
    trades.loc[4, "volume"] = 5_000_000_000
    trades.loc[7, "ts"] = trades.loc[7, "ts"] + pd.Timedelta(microseconds=250)
    with pytest.raises(Exception, match="volume|not in range: 0 to 4294967295"):
        _store_trades(clickhouse, trades)
    res = run("trades", trades)
    assert res.quarantine[["row_number", "rule"]].values.tolist() == [
        [4, "out_of_range"],
        [7, "precision_lost"],
    ]
    stored = _store_trades(clickhouse, res.clean)
    assert len(stored) == n - 2
    kept = res.clean.sort_values(["symbol", "trade_id"], ignore_index=True)
    assert stored["trade_id"].tolist() == kept["trade_id"].tolist()
    assert stored["volume"].tolist() == kept["volume"].tolist()
    # every stored time is the validated one, to the nanosecond: nothing was truncated
    stored_ns = stored["ts"].dt.tz_convert("UTC").dt.as_unit("ns").array.asi8
    assert (stored_ns == kept["ts"].array.asi8).all()
