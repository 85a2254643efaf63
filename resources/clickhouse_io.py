"""The one IO manager of the platform's tables: every daily asset's frame in its ClickHouse table.

An asset declares its table with `table_metadata(spec)`: the spec (columns, codecs, sort and
partition keys) travels in the asset's definition metadata, so the asset that writes a table
owns its layout and the UI shows its columns. Writes replace the asset's partition atomically
(`ClickHouseResource.replace_partition`) and record it in `stored_partitions`, the log of what
each table holds. Reads serve a downstream input one partition or a window of partitions (from
the input's partition mapping), with the columns the input asks for pushed down to ClickHouse.

A window is checked against the log before anything is read. Partitions before the upstream's
first stored partition are the start of its history: with the input's `window` policy set to
"history" they are left out (the window starts where the stored history starts), otherwise
they are missing. A partition inside the stored history that was never written, or whose row
count no longer matches what was written, fails the step with the list of partitions and what
to backfill: a window is never shortened silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import pandas as pd
from clickhouse_connect.driver.client import Client
from dagster import (
    ConfigurableIOManager,
    Failure,
    InputContext,
    MetadataValue,
    OutputContext,
    TableColumn,
    TableSchema,
)

from resources.clickhouse import ClickHouseResource, TableSpec, empty_frame

SPEC_KEY = "clickhouse/table_spec"
SLICE_KEY = "clickhouse/slice"
COLUMNS_KEY = "clickhouse/columns"  # on an input: the columns it reads
EXPRESSIONS_KEY = "clickhouse/expressions"  # on an input: name -> SQL computed by ClickHouse
WINDOW_KEY = "clickhouse/window"  # on an input: "exact" (default), "history" or "chain"

# What each table holds: one row per written partition (the newest write wins).
STORED_PARTITIONS = TableSpec(
    name="stored_partitions",
    columns={
        "table": "LowCardinality(String)",
        "slice": "LowCardinality(String)",
        "date": "Date",
        "rows": "UInt64",
        "run_id": "String",
        "written_at": "DateTime64(3, 'UTC')",
    },
    order_by=("table", "slice", "date"),
    partition_by=None,
    engine="ReplacingMergeTree(written_at)",
)

PREVIEW_ROWS = 5
PREVIEW_COLUMNS = 12


def table_metadata(spec: TableSpec, **slice_values: str) -> dict[str, object]:
    """Definition metadata of an asset stored in `spec`'s table.

    `slice_values` name the asset's share of a table several assets write (e.g.
    ``kind="trades"`` in the quarantine): its partitions are (date, slice) and its reads
    are filtered to the slice."""
    extra = [c for c in slice_values if c not in spec.columns]
    if extra:
        raise KeyError(f"{spec.name} has no columns {extra} to slice by")
    return {
        SPEC_KEY: MetadataValue.json(spec.to_dict()),
        SLICE_KEY: MetadataValue.json(dict(slice_values)),
        "dagster/table_name": spec.name,
        "dagster/column_schema": TableSchema(
            columns=[TableColumn(name=c, type=spec.column_type(c)) for c in spec.columns]
        ),
    }


def _value(meta: Mapping[str, object], key: str, default: object = None) -> object:
    v = meta.get(key, default)
    return getattr(v, "value", v)


def _spec_of(meta: Mapping[str, object], asset: str) -> tuple[TableSpec, dict[str, str]]:
    raw = _value(meta or {}, SPEC_KEY)
    if raw is None:
        raise Failure(
            f"{asset} is stored with the ClickHouse IO manager but declares no table: "
            "give it metadata=table_metadata(<its TableSpec>)"
        )
    return TableSpec.from_dict(raw), dict(_value(meta, SLICE_KEY, {}) or {})


def _slice_label(slice_values: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(slice_values.items()))


def _days(keys: list[str]) -> str:
    if len(keys) <= 6:
        return ", ".join(keys)
    return f"{', '.join(keys[:3])}, ... {', '.join(keys[-2:])} ({len(keys)} days)"


def _preview(df: pd.DataFrame) -> str:
    shown = df.head(PREVIEW_ROWS).iloc[:, :PREVIEW_COLUMNS]
    more = (
        f"\n\n{df.shape[1] - PREVIEW_COLUMNS} more columns" if df.shape[1] > PREVIEW_COLUMNS else ""
    )
    return shown.to_markdown(index=False, floatfmt=".4g") + more


class ClickHouseIOManager(ConfigurableIOManager):
    """Stores daily-partitioned DataFrame assets in ClickHouse and loads partitions and
    windows of them for downstream inputs (see the module docstring)."""

    clickhouse: ClickHouseResource

    # -- writing ---------------------------------------------------------------------------

    def handle_output(self, context: OutputContext, obj: pd.DataFrame) -> None:
        asset = context.asset_key.to_user_string()
        spec, slice_values = _spec_of(context.definition_metadata, asset)
        if not isinstance(obj, pd.DataFrame):
            raise Failure(f"{asset} returned {type(obj).__name__}, its table takes a DataFrame")
        if not context.has_partition_key:
            raise Failure(f"{asset} is not partitioned: its table {spec.name} is written by day")
        day = context.partition_key
        with self.clickhouse.client() as client:
            rows = self.clickhouse.replace_partition(client, spec, obj, day, **slice_values)
            self._log_partition(client, spec, slice_values, day, rows, context.run_id)
        context.add_output_metadata(
            {
                "dagster/row_count": rows,
                "columns": len(obj.columns),
                "preview": MetadataValue.md(_preview(obj) if rows else "no rows"),
            }
        )

    def _log_partition(
        self, client: Client, spec: TableSpec, slice_values: dict, day: str, rows: int, run: str
    ) -> None:
        self.clickhouse.ensure_table(client, STORED_PARTITIONS)
        entry = pd.DataFrame(
            {
                "table": [spec.name],
                "slice": [_slice_label(slice_values)],
                "date": [pd.Timestamp(day)],
                "rows": [rows],
                "run_id": [run or ""],
                "written_at": [datetime.now(UTC)],
            }
        )
        self.clickhouse.insert(
            client, f"{self.clickhouse.database}.{STORED_PARTITIONS.name}", entry
        )

    # -- reading ---------------------------------------------------------------------------

    def load_input(self, context: InputContext) -> pd.DataFrame:
        upstream = context.upstream_output
        asset = context.asset_key.to_user_string()
        spec, slice_values = _spec_of(upstream.definition_metadata if upstream else {}, asset)
        own = context.definition_metadata or {}
        columns = _value(own, COLUMNS_KEY)
        expressions = _value(own, EXPRESSIONS_KEY)
        policy = _value(own, WINDOW_KEY, "exact")
        if not context.has_asset_partitions:
            raise Failure(f"{asset} is read by day: the reading asset must be partitioned too")
        keys = sorted(context.asset_partition_keys)
        with self.clickhouse.client() as client:
            present, rows = self._check_window(client, spec, slice_values, keys, policy, context)
            if present:
                frame = self.clickhouse.read_days(
                    client,
                    spec,
                    present[0],
                    present[-1],
                    columns,
                    slice_values,
                    expressions=expressions,
                    expected_rows=rows,
                )
            else:  # nothing stored in the window: the table's columns, no rows
                frame = empty_frame(spec, columns, expressions)
        frame.attrs["window"] = {"asset": asset, "requested": len(keys), "stored": len(present)}
        return frame

    def _check_window(
        self,
        client: Client,
        spec: TableSpec,
        slice_values: dict[str, str],
        keys: list[str],
        policy: str,
        context: InputContext,
    ) -> tuple[list[str], int]:
        """The window's partitions to read and their rows; raises a Failure naming what is
        missing."""
        if not keys:
            return [], 0
        asset = context.asset_key.to_user_string()
        self.clickhouse.ensure_table(client, STORED_PARTITIONS)
        # every stored day up to the window's end: the window's days and the first one
        log = self.clickhouse.query_df(
            client,
            "SELECT toString(date) AS day, rows FROM {db}.stored_partitions FINAL "
            "WHERE table = %(t)s AND slice = %(s)s AND date <= %(b)s",
            {"t": spec.name, "s": _slice_label(slice_values), "b": keys[-1]},
        )
        stored = dict(zip(log["day"], log["rows"].astype(int), strict=True))
        written = {k: n for k, n in stored.items() if k >= keys[0]}
        if policy == "exact":
            wanted = list(keys)
        elif policy in ("history", "chain"):
            first = min(stored) if stored else None
            wanted = [k for k in keys if first is not None and k >= first]
            if policy == "history" and keys[-1] not in wanted:
                wanted.append(keys[-1])  # the newest day of a window is always required
        else:
            raise Failure(f"{asset}: unknown window policy {policy!r} (exact, history, chain)")
        missing = [k for k in wanted if k not in written]
        changed = []
        if any(k in written for k in wanted):  # the table exists: compare its row counts
            counted = self._row_counts(client, spec, slice_values, keys[0], keys[-1])
            changed = [k for k in wanted if k in written and counted.get(k, 0) != written[k]]
        if missing or changed:
            problems = []
            if missing:
                problems.append(f"{len(missing)} not materialized: {_days(missing)}")
            if changed:
                problems.append(
                    f"{len(changed)} changed outside the pipeline (row counts differ from what "
                    f"was written): {_days(changed)}"
                )
            todo = sorted(missing + changed)
            raise Failure(
                description=(
                    f"{asset}: the input window {keys[0]}..{keys[-1]} is incomplete, "
                    f"{'; '.join(problems)}. Materialize {asset} for "
                    f"{todo[0]}..{todo[-1]} first (a backfill of that range in the UI, or "
                    "`dagster asset materialize --partition-range`), then rerun."
                ),
                metadata={
                    "asset": asset,
                    "window": f"{keys[0]}..{keys[-1]}",
                    "missing": MetadataValue.json(missing),
                    "changed": MetadataValue.json(changed),
                },
            )
        if len(wanted) < len(keys):
            context.log.info(
                f"{asset}: {len(keys) - len(wanted)} of {len(keys)} days of the window precede "
                f"its stored history: read {len(wanted)}"
            )
        return wanted, sum(written[k] for k in wanted)

    def _row_counts(
        self, client: Client, spec: TableSpec, slice_values: dict[str, str], a: str, b: str
    ) -> dict[str, int]:
        where = "".join(f" AND `{c}` = %(v{i})s" for i, c in enumerate(slice_values))
        params = {"a": a, "b": b, **{f"v{i}": v for i, v in enumerate(slice_values.values())}}
        counts = self.clickhouse.query_df(
            client,
            f"SELECT toString(date) AS day, count() AS n FROM {{db}}.{spec.name} "
            f"WHERE date BETWEEN %(a)s AND %(b)s{where} GROUP BY date",
            params,
        )
        return dict(zip(counts["day"], counts["n"].astype(int), strict=True))
