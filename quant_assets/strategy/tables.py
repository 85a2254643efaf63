"""ClickHouse tables of the strategy stage."""

from __future__ import annotations

from resources.clickhouse import TableSpec

SIGNALS = TableSpec(
    name="signals",
    columns={
        "date": "Date",
        "symbol": "LowCardinality(String)",
        "rank": "UInt16",
        "score": "Float64",
        "weight": "Float64",
    },
    order_by=("date", "rank"),
)
