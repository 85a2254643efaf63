"""ClickHouse tables of the AI-factor stage: the log of every mined candidate with its
decision, the admitted factors, and their daily values (long: the set changes over time)."""

from __future__ import annotations

from resources.clickhouse import TableSpec

_F = "Float64"

# Every candidate of a mining run (one partition: the day the run's window ends).
AI_FACTOR_MINING = TableSpec(
    name="ai_factor_mining",
    columns={
        "date": "Date",
        "round": "UInt16",
        "generator": "LowCardinality(String)",
        "hypothesis": "String",
        "name": "String",
        "formula": "String",
        "nodes": _F,
        "status": "LowCardinality(String)",
        "reason": "String",
        **{
            c: _F
            for c in (
                "train_ic",
                "train_icir",
                "train_t",
                "valid_ic",
                "valid_icir",
                "valid_t",
                "valid_p",
                "valid_days",
                "turnover",
            )
        },  # fmt: skip
        "closest": "String",
        "closest_corr": _F,
        "tests": _F,
        # the admitted set's test-segment figures, computed after selection (NaN otherwise)
        **{c: _F for c in ("test_ic", "test_icir", "test_t", "test_days")},
    },
    order_by=("date", "round", "name"),
)

# The admitted formulas of a mining run: the AI factor set from that day on.
AI_FACTORS = TableSpec(
    name="ai_factors",
    columns={
        "date": "Date",
        "name": "String",
        "formula": "String",
        "origin": "LowCardinality(String)",
        "hypothesis": "String",
        **{c: _F for c in ("train_ic", "valid_ic", "valid_p", "tests", "test_ic")},
    },
    order_by=("date", "name"),
)

AI_FACTOR_VALUES = TableSpec(
    name="ai_factor_values",
    columns={
        "date": "Date",
        "symbol": "LowCardinality(String)",
        "factor": "LowCardinality(String)",
        "value": "Float64 CODEC(ZSTD(1))",
    },
    order_by=("factor", "symbol", "date"),
)

# Per news item and stock it concerns: direction, strength, topic, and which analyser read it
# (an LLM through litellm, or the offline lexicon).
NEWS_ANALYSIS = TableSpec(
    name="news_analysis",
    columns={
        "date": "Date",
        "news_id": "String",
        "symbol": "LowCardinality(String)",
        "direction": "Int8",
        "strength": _F,
        "score": _F,
        "topic": "LowCardinality(String)",
        "analyser": "LowCardinality(String)",
    },
    order_by=("symbol", "date", "news_id"),
)

# The day's market context: regime statistics, sector moves, factor health (long).
MARKET_CONTEXT = TableSpec(
    name="market_context",
    columns={
        "date": "Date",
        "section": "LowCardinality(String)",
        "item": "String",
        "metric": "LowCardinality(String)",
        "value": _F,
    },
    order_by=("date", "section", "item", "metric"),
)
