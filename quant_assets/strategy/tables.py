"""ClickHouse tables of the strategy stage."""

from __future__ import annotations

from resources.clickhouse import TableSpec

SIGNALS = TableSpec(
    name="signals",
    columns={
        "date": "Date",
        "symbol": "LowCardinality(String)",
        "rank": "UInt32",
        "score": "Float64",
        "probability": "Float64",
        "confidence": "Float64",
        "buyable": "Bool",
        "holdable": "Bool",
        "note": "String",
    },
    order_by=("date", "rank"),
)

# The paper book's ledger, one row per fact of the day: `kind` is position (shares, price =
# close, value, weight), cash (value), equity (value; price = the peak equity so far), fill
# (side, shares, price, value, fees, reason), unfilled (side, shares, reason), target (shares,
# price, value, weight, reason = the action), order (for the next trading day), status (reason
# = trade / no trade / rejected) and breach (symbol = what, reason = the rule, value, price =
# the limit). The next day's book starts from this one.
PAPER_BOOK = TableSpec(
    name="paper_book",
    columns={
        "date": "Date",
        "kind": "LowCardinality(String)",
        "symbol": "String",
        "side": "LowCardinality(String)",
        "shares": "Float64",
        "price": "Float64",
        "value": "Float64",
        "weight": "Float64",
        "commission": "Float64",
        "stamp_duty": "Float64",
        "transfer_fee": "Float64",
        "reason": "String",
    },
    order_by=("date", "kind", "symbol"),
)

ORDERS = TableSpec(
    name="orders",
    columns={
        "date": "Date",
        "for_date": "Date",
        "symbol": "LowCardinality(String)",
        "side": "LowCardinality(String)",
        "shares": "UInt64",
        "reason": "String",
    },
    order_by=("date", "symbol", "side"),
)
