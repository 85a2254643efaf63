"""ClickHouse tables of the factor stage."""

from __future__ import annotations

from resources.clickhouse import TableSpec

# Long form (one row per date, symbol, factor) so that new factors, AI-generated ones included,
# need no schema change; within a day's partition rows are sorted by factor then symbol, which is
# how the model reads them (all symbols of a set of factors).
FACTOR_VALUES = TableSpec(
    name="factor_values",
    columns={
        "date": "Date",
        "symbol": "LowCardinality(String)",
        "factor": "LowCardinality(String)",
        "value": "Float64 CODEC(ZSTD(1))",
    },
    order_by=("factor", "symbol", "date"),
)
