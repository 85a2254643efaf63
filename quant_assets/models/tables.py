"""ClickHouse tables of the model stage."""

from __future__ import annotations

from resources.clickhouse import TableSpec

PREDICTIONS = TableSpec(
    name="predictions",
    columns={
        "date": "Date",
        "symbol": "LowCardinality(String)",
        "score": "Float64",
        "model_uri": "String",
    },
    order_by=("date", "symbol"),
)
