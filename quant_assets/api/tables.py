"""ClickHouse tables of the API: its keys and its audit log, created on first use."""

from __future__ import annotations

from resources.clickhouse import TableSpec

_TS = "DateTime64(3, 'UTC')"

# One row per change of a key (created, revoked): the newest `version` of a key id wins
# (ReplacingMergeTree, read with FINAL). Only the hash of the secret is stored.
API_KEYS = TableSpec(
    name="api_keys",
    columns={
        "key_id": "String",
        "name": "String",
        "scope": "LowCardinality(String)",
        "key_hash": "String",
        "created_at": _TS,
        "expires_at": _TS,
        "revoked": "Bool",
        "revoked_at": f"{_TS} DEFAULT 0",
        "version": "UInt64",
    },
    order_by=("key_id",),
    partition_by=None,
    engine="ReplacingMergeTree(version)",
)

# One row per request, refused or not. `params` is the query (and path) parameters as JSON,
# truncated; never a credential (those travel in headers and the token request's body).
API_AUDIT = TableSpec(
    name="api_audit",
    columns={
        "date": "Date",
        "ts": _TS,
        "request_id": "String",
        "key_id": "String",
        "method": "LowCardinality(String)",
        "route": "LowCardinality(String)",
        "params": "String",
        "status": "UInt16",
        "latency_ms": "Float64",
        "client": "String",
    },
    order_by=("date", "ts"),
)
