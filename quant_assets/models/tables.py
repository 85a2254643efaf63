"""ClickHouse tables of the model stage."""

from __future__ import annotations

from resources.clickhouse import TableSpec

PREDICTIONS = TableSpec(
    name="predictions",
    columns={
        "date": "Date",
        "symbol": "LowCardinality(String)",
        "score": "Float64",
        "probability": "Float64",
        "confidence": "Float64",
        "model_uri": "String",
        "model_version": "String",
    },
    order_by=("date", "symbol"),
)

LIVE_IC = TableSpec(
    name="champion_live_ic",
    columns={
        "date": "Date",
        "scored_day": "Date",
        "rank_ic": "Float64",
        "names": "UInt32",
        "model_uri": "String",
    },
    order_by=("date", "scored_day"),
)
