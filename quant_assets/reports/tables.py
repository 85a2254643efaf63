"""ClickHouse tables of the report stage."""

from __future__ import annotations

from resources.clickhouse import TableSpec

RECOMMENDATIONS = TableSpec(
    name="recommendations",
    columns={
        "date": "Date",
        "for_date": "Date",
        "rank": "UInt16",
        "symbol": "LowCardinality(String)",
        "name": "String",
        "industry": "LowCardinality(String)",
        "close": "Float64",
        "score": "Float64",
        "weight": "Float64",
    },
    order_by=("date", "rank"),
)
