"""ClickHouse tables of the factor stage.

Each factor set is a wide table of its own (date, symbol, one column per factor), owned by the
asset that computes it: a model or screening reads a window of a few hundred thousand rows of
exactly the columns it needs. A factor added to a set becomes a new column (the IO manager adds
it; earlier days read NaN, its default), never a rewrite of the table.
"""

from __future__ import annotations

from collections.abc import Iterable

from quant_assets.factors.alpha158 import alpha158_formulas
from quant_assets.factors.daily_set import DAILY_FACTORS
from quant_assets.factors.microstructure import COLUMNS as MICROSTRUCTURE_FACTORS
from quant_assets.factors.news_set import NEWS_FACTORS, TONE_FACTORS
from resources.clickhouse import TableSpec


def factor_table(name: str, factors: Iterable[str], value_type: str = "Float64") -> TableSpec:
    """A factor set's table: date, symbol, and one column per factor (NaN by default)."""
    return TableSpec(
        name=name,
        columns={
            "date": "Date",
            "symbol": "LowCardinality(String)",
            **{f: f"{value_type} DEFAULT nan CODEC(ZSTD(1))" for f in factors},
        },
        order_by=("symbol", "date"),
    )


DAILY_FACTOR_VALUES = factor_table("daily_factor_values", DAILY_FACTORS)
# Alpha158 is float32, as Qlib stores it.
ALPHA158_VALUES = factor_table("alpha158_values", alpha158_formulas(), "Float32")
MICROSTRUCTURE_VALUES = factor_table("microstructure_values", MICROSTRUCTURE_FACTORS)
NEWS_FACTOR_VALUES = factor_table("news_factor_values", [*NEWS_FACTORS, *TONE_FACTORS])

# The factor sets by name (the `factor_set` of screening rows): the set's table.
FACTOR_SETS: dict[str, TableSpec] = {
    "daily": DAILY_FACTOR_VALUES,
    "alpha158": ALPHA158_VALUES,
    "micro": MICROSTRUCTURE_VALUES,
    "news": NEWS_FACTOR_VALUES,
}

# Daily screening of every factor over the validation window that ends on the day.
FACTOR_SCREENING = TableSpec(
    name="factor_screening",
    columns={
        "date": "Date",
        "factor": "LowCardinality(String)",
        "factor_set": "LowCardinality(String)",
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

# The factors admitted on the day: the model's inputs.
ACTIVE_FACTORS = TableSpec(
    name="active_factors",
    columns={
        "date": "Date",
        "factor": "LowCardinality(String)",
        "factor_set": "LowCardinality(String)",
        "rank_ic_mean": "Float64",
        "t_stat": "Float64",
    },
    order_by=("date", "factor"),
    cached=True,  # hot: every model of the day reads the active set
)
