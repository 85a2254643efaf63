"""ClickHouse tables of the factor stage."""

from __future__ import annotations

from resources.clickhouse import TableSpec

# Long form (one row per date, symbol, factor) so that new factors, AI-generated ones included,
# need no schema change. Each factor set (daily, alpha158, micro, ...) owns its partition of a
# day, so its asset can replace it without touching the others; rows are sorted by factor then
# symbol, which is how the model reads them.
FACTOR_VALUES = TableSpec(
    name="factor_values",
    columns={
        "date": "Date",
        "factor_set": "LowCardinality(String)",
        "symbol": "LowCardinality(String)",
        "factor": "LowCardinality(String)",
        "value": "Float64 CODEC(ZSTD(1))",
    },
    order_by=("factor", "symbol", "date"),
    partition_by="(date, factor_set)",
)

# Daily screening of every stored factor over the validation window that ends on the day.
FACTOR_SCREENING = TableSpec(
    name="factor_screening",
    columns={
        "date": "Date",
        "factor": "LowCardinality(String)",
        "rank_ic_mean": "Float64",
        "rank_ic_std": "Float64",
        "icir": "Float64",
        "t_stat": "Float64",
        "p_value": "Float64",
        "n_days": "UInt32",
        "active": "Bool",
    },
    order_by=("factor", "date"),
)
