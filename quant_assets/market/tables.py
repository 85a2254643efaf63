"""ClickHouse tables of the market stage.

Codecs: prices change little from one row to the next within a symbol (rows are sorted by
symbol, then time), so Gorilla's XOR encoding plus ZSTD compresses them well; integer volumes
use T64 (bit-packing of a block's range); dates are near-constant steps, so DoubleDelta.
"""

from __future__ import annotations

from resources.clickhouse import TableSpec

_PRICE = "Float64 CODEC(Gorilla, ZSTD(1))"
_DATE = "Date CODEC(DoubleDelta, ZSTD(1))"
_SYMBOL = "LowCardinality(String)"

UNIVERSE_DAILY = TableSpec(
    name="universe_daily",
    columns={
        "date": _DATE,
        "symbol": _SYMBOL,
        "name": "String",
        "industry": "LowCardinality(String)",
        "board": "LowCardinality(String)",
        "list_date": "Date",
        "is_st": "Bool",
    },
    order_by=("symbol", "date"),
)

RAW_DAILY_BARS = TableSpec(
    name="raw_daily_bars",
    columns={
        "date": _DATE,
        "symbol": _SYMBOL,
        "open": _PRICE,
        "high": _PRICE,
        "low": _PRICE,
        "close": _PRICE,
        "preclose": _PRICE,
        "volume": "UInt64 CODEC(T64, ZSTD(1))",
        "amount": "Float64 CODEC(ZSTD(1))",
        "is_suspended": "Bool",
        "is_st": "Bool",
    },
    order_by=("symbol", "date"),
)
