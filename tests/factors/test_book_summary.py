"""The order book's per-snapshot summary is the same computed by ClickHouse (what the
microstructure asset reads) and by pandas (frames in memory), and the factors agree."""

import numpy as np
import pandas as pd
import pytest

from quant_assets.calendar import trading_days
from quant_assets.factors.microstructure import daily_microstructure
from quant_assets.factors.microstructure_prep import (
    SUMMARY_COLUMNS,
    book_summary_sql,
    summarise_book,
)
from quant_assets.market.contract.tables import RAW_ORDER_BOOK
from quant_assets.market.sources.simulated import SimulatedMarket

DAY = "2024-03-12"


@pytest.fixture(scope="module")
def day_data():
    sim = SimulatedMarket(
        trading_days("2024-03-08", DAY), n_symbols=12, seed=5, snapshot_seconds=30
    )
    book = sim.order_book(DAY)
    # an empty bid level 3 and a price without size on level 2 of the ask, as vendors send
    book.loc[5, ["bid_px_3", "bid_sz_3"]] = [np.nan, 0]
    book.loc[9, "ask_sz_2"] = 0
    return sim.trades(DAY), book


def test_clickhouse_computes_the_summary_pandas_computes(clickhouse, day_data):
    _, book = day_data
    with clickhouse.client() as client:
        clickhouse.replace_partition(client, RAW_ORDER_BOOK, book, DAY)
        read = clickhouse.read_days(client, RAW_ORDER_BOOK, DAY, DAY,
                                    columns=["ts", "symbol", "bid_px_1", "ask_px_1"],
                                    expressions=book_summary_sql())  # fmt: skip
    assert list(read.columns) == SUMMARY_COLUMNS
    ordered = book.sort_values(["symbol", "ts"], kind="stable", ignore_index=True)
    expected = summarise_book(ordered)
    pd.testing.assert_frame_equal(read, expected, check_dtype=False, rtol=0, atol=0)


def test_the_factors_are_the_same_from_the_summary(day_data):
    trades, book = day_data
    full = daily_microstructure(trades, book, DAY)
    summary = daily_microstructure(trades, summarise_book(book), DAY)
    pd.testing.assert_frame_equal(full, summary)
