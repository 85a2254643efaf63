"""ClickHouse tables of the report stage."""

from __future__ import annotations

from resources.clickhouse import TableSpec

RECOMMENDATIONS = TableSpec(
    name="recommendations",
    columns={
        "date": "Date",
        "for_date": "Date",
        "rank": "UInt32",
        "symbol": "LowCardinality(String)",
        "name": "String",
        "industry": "LowCardinality(String)",
        "close": "Float64",
        "score": "Float64",
        "probability": "Float64",
        "confidence": "Float64",
        "weight": "Float64",
        "shares": "UInt64",
        "action": "LowCardinality(String)",
        "reason": "String",
        "risk_note": "String",
        "status": "LowCardinality(String)",
    },
    order_by=("date", "rank"),
    cached=True,  # hot: the day's recommendations are read again and again
)

# The report's key figures of each day, after costs (`figure` as performance_summary names it).
PERFORMANCE = TableSpec(
    name="performance",
    columns={"date": "Date", "figure": "LowCardinality(String)", "value": "Float64"},
    order_by=("date", "figure"),
)
