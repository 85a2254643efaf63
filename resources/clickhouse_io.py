"""The one IO manager of the platform's tables: every daily asset's frame in its ClickHouse table.

An asset declares its table with `table_metadata(spec)`: the spec (columns, codecs, sort and
partition keys) travels in the asset's definition metadata, so the asset that writes a table
owns its layout and the UI shows its columns.

Writes are write-audit-publish: the partition goes to a staging table (never read); outputs
that must be published together (a raw table and its quarantine: `publish_with`) wait until
all of them are staged, their staged row counts are verified, and `resources.publishing` swaps
them in under a journal and records them in `stored_partitions`, the log of what each table
holds. An output that the step's own audit withheld (`withhold(reason)` in its output
metadata, e.g. a file with too many bad rows) is not published at all: the step fails with
the reason and with what stays published for the day. A partition key outside the asset's
partitions (a Saturday given as a run tag) is refused, for writes and reads. Reads serve a downstream input one partition or a window of partitions (from
the input's partition mapping), with the columns the input asks for pushed down to ClickHouse.

A window is checked against the log before anything is read. Partitions before the upstream's
first stored partition are the start of its history: with the input's `window` policy set to
"history" they are left out (the window starts where the stored history starts), otherwise
they are missing. A partition inside the stored history that was never written, or whose row
count no longer matches what was written, fails the step with the list of partitions and what
to backfill: a window is never shortened silently.

Reads of a table whose spec is `cached` (the hot ones: recent bars, the active factor set, the
day's recommendations) go through the `cache` resource (resources/cache.py; in process by
default, Redis when configured), keyed by the table's generation and everything that shapes
the read (days, columns, expressions, slice, window policy). A hit is served without opening
ClickHouse: its window was checked when it was stored, and nothing was published since, as
every publication of a partition of any table bumps that table's generation after the swap. An
unreachable Redis only means reads from ClickHouse.
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from clickhouse_connect.driver.client import Client
from dagster import (
    ConfigurableIOManager,
    DagsterRunStatus,
    Failure,
    InputContext,
    MetadataValue,
    OutputContext,
    PartitionsDefinition,
    TableColumn,
    TableSchema,
)
from pydantic import PrivateAttr

from resources.cache import CacheResource
from resources.clickhouse import ClickHouseResource, TableSpec, empty_frame
from resources.publishing import STORED_PARTITIONS, Part, publish, published, recover, run_tag

SPEC_KEY = "clickhouse/table_spec"
SLICE_KEY = "clickhouse/slice"
COLUMNS_KEY = "clickhouse/columns"  # on an input: the columns it reads
EXPRESSIONS_KEY = "clickhouse/expressions"  # on an input: name -> SQL computed by ClickHouse
WINDOW_KEY = "clickhouse/window"  # on an input: "exact" (default), "history" or "chain"
PUBLISH_WITH_KEY = "clickhouse/publish_with"  # on outputs published together: all their assets
WITHHELD_KEY = "clickhouse/withheld"  # in an output's runtime metadata: why not to publish it
ROW_DAYS_KEY = "clickhouse/row_days"  # in a range output's attrs: [(day, rows), ...] in row order

IN_PROCESS_CACHE = CacheResource()  # the cache when none is configured

# Run states in which a run may still write (its staging tables are left alone).
_LIVE = {
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
}

PREVIEW_ROWS = 5
PREVIEW_COLUMNS = 12


def table_metadata(
    spec: TableSpec, publish_with: Sequence[str] = (), **slice_values: str
) -> dict[str, object]:
    """Definition metadata of an asset stored in `spec`'s table.

    `slice_values` name the asset's share of a table several assets write (e.g.
    ``kind="trades"`` in the quarantine): its partitions are (date, slice) and its reads
    are filtered to the slice. `publish_with` names every asset (this one included) of a
    step whose partitions are published together or not at all."""
    extra = [c for c in slice_values if c not in spec.columns]
    if extra:
        raise KeyError(f"{spec.name} has no columns {extra} to slice by")
    return {
        SPEC_KEY: MetadataValue.json(spec.to_dict()),
        SLICE_KEY: MetadataValue.json(dict(slice_values)),
        PUBLISH_WITH_KEY: MetadataValue.json(list(publish_with)),
        "dagster/table_name": spec.name,
        "dagster/column_schema": TableSchema(
            columns=[TableColumn(name=c, type=spec.column_type(c)) for c in spec.columns]
        ),
    }


def withhold(reason: str) -> dict[str, str]:
    """Runtime output metadata that keeps an output from being published, with the reason."""
    return {WITHHELD_KEY: reason}


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
    cache: CacheResource | None = None  # hot tables' reads; None: in process

    _pending: dict = PrivateAttr(default_factory=dict)  # (run, day) -> {asset: Part}
    _recovered: bool = PrivateAttr(default=False)

    # -- writing ---------------------------------------------------------------------------

    def handle_output(self, context: OutputContext, obj: pd.DataFrame) -> None:
        asset = context.asset_key.to_user_string()
        spec, slice_values = _spec_of(context.definition_metadata, asset)
        if not isinstance(obj, pd.DataFrame):
            raise Failure(f"{asset} returned {type(obj).__name__}, its table takes a DataFrame")
        if not context.has_asset_partitions:
            raise Failure(f"{asset} is not partitioned: its table {spec.name} is written by day")
        days = sorted(context.asset_partition_keys)
        _refuse_unknown_partition(context, asset, days)
        label = _slice_label(slice_values)
        group = list(_value(context.definition_metadata, PUBLISH_WITH_KEY, []) or []) or [asset]
        rows, ready = 0, []
        with self.clickhouse.client() as client:
            self._recover(client, context)
            withheld = _value(context.output_metadata or {}, WITHHELD_KEY)
            if withheld:
                for day in days:
                    self._pending.pop((context.run_id, day), None)
                raise Failure(
                    description=f"{asset} {_days(days)} was not published: {withheld} "
                    + published(self.clickhouse, client, spec.name, label, days[-1]),
                    metadata={"asset": asset, "partition": days[-1], "withheld": str(withheld)},
                )
            staged_days = self.clickhouse.stage_partitions(
                client,
                spec,
                _with_dates(obj, days, asset),
                days,
                run_tag(context.run_id),
                **slice_values,
            )
            for day, staged in zip(days, staged_days, strict=True):
                rows += staged.rows
                waiting = self._pending.setdefault((context.run_id, day), {})
                waiting[asset] = Part(staged, spec.name, label, day)
                if set(group) <= set(waiting):
                    ready += [waiting[a] for a in group]
                    del self._pending[(context.run_id, day)]
            if ready:  # the complete days of the output, in one publication
                self._verify(client, ready)
                publish(self.clickhouse, client, ready, context.run_id)
                for table in dict.fromkeys(p.table for p in ready):  # after the swaps
                    self._cache().bump(self.cache_name(table))
                note = "published" + (
                    f" together with {', '.join(a for a in group if a != asset)}"
                    if len(group) > 1
                    else ""
                )
            else:
                others = ", ".join(a for a in group if a not in waiting)
                note = f"staged; published once {others} is staged and the step's audit passes"
        context.add_output_metadata(
            {
                "dagster/row_count": rows,
                "columns": len(obj.columns),
                "publication": note,
                "preview": MetadataValue.md(_preview(obj) if rows else "no rows"),
            }
        )

    def _verify(self, client: Client, parts: list[Part]) -> None:
        """The staged tables hold exactly what the step wrote, or nothing is published."""
        stagings = {p.staged.staging for p in parts if p.staged.rows}
        counts = {t: self.clickhouse.staged_counts(client, t) for t in sorted(stagings)}
        wrong = [
            f"{p.staged.staging} {p.date}: {n:,} rows staged of {p.staged.rows:,} written"
            for p in parts
            if p.staged.rows and (n := counts[p.staged.staging].get(p.date, 0)) != p.staged.rows
        ]
        if wrong:
            for staging in sorted(stagings):
                self.clickhouse.drop_staging(client, staging)
            raise Failure(
                description="the staged write does not hold what was written, nothing was "
                "published: " + "; ".join(wrong),
            )

    def _recover(self, client: Client, context: InputContext | OutputContext) -> None:
        """Once per process: roll forward what dead runs left between swaps, drop their
        staging tables."""
        if self._recovered:
            return
        instance = _instance(context)
        own = run_tag(_run_id(context))

        def alive(run: str) -> bool:
            if run_tag(run) == own:
                return True
            if self.clickhouse.embedded or instance is None or not run:
                # one process holds an embedded store at a time: any other run is gone
                return False
            try:
                found = instance.get_run_by_id(str(uuid.UUID(run_tag(run))))
            except ValueError:
                return False
            return found is not None and found.status in _LIVE

        done = recover(self.clickhouse, client, alive)
        for line in done:
            context.log.warning(line)
        if done:  # a publication rolled forward changed tables without bumping them
            self._cache().invalidate_all()
        self._recovered = True

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
        if context.has_partition_key:
            _refuse_unknown_partition(context, asset, [context.partition_key])
        reading = _step_range(context)
        if reading is not None:
            # a range step (quant_assets/day_range.py) cuts every input by day: it needs the
            # date; a chain of itself reads only the day before the range, it computes the rest
            if columns is not None and "date" not in columns and "date" in spec.columns:
                columns = ["date", *columns]
            if _same_asset(context):
                keys = [k for k in keys if k < reading[0]]
        cache, key = self._cache(), None
        if spec.cached and keys:  # everything that shapes the read is in its key
            read = {"days": keys, "columns": columns, "expressions": expressions}
            read |= {"slice": slice_values, "policy": policy}
            key = cache.key(self.cache_name(spec.name), read)
            hit = cache.get_frame(key) if key else None
            if hit is not None:
                context.log.debug(f"{asset} {_days(keys)}: from the cache ({cache.backend})")
                return hit
        with self.clickhouse.client() as client:
            self._recover(client, context)
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
        if key:
            cache.set_frame(key, frame)
        return frame

    def _cache(self) -> CacheResource:
        """The cache of hot reads: the configured one, or the in-process default."""
        return self.cache if self.cache is not None else IN_PROCESS_CACHE

    def cache_name(self, table: str) -> str:
        """A table as the cache names it (its generation's key): the store (a digest of the
        DSN, which may hold a password), the database and the table, so that two stores with
        a database of the same name never share cached reads."""
        store = hashlib.sha1(self.clickhouse.dsn.encode()).hexdigest()[:12]
        return f"{store}/{self.clickhouse.database}.{table}"

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
        elif policy == "sparse":  # an occasional upstream: whatever of the window is stored
            wanted = [k for k in keys if k in stored]
        elif policy in ("history", "chain"):
            first = min(stored) if stored else None
            wanted = [k for k in keys if first is not None and k >= first]
            if policy == "history" and keys[-1] not in wanted:
                wanted.append(keys[-1])  # the newest day of a window is always required
        else:
            raise Failure(
                f"{asset}: unknown window policy {policy!r} (exact, history, chain, sparse)"
            )
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


@functools.lru_cache(maxsize=16)
def _known_keys(parts: PartitionsDefinition) -> frozenset[str]:
    """The partition keys as of the first call (asking `has_partition_key` costs ~1 ms a key
    for trading days, thousands a range run). Time only adds keys, so a key found here is
    still one; any other is asked for again."""
    return frozenset(parts.get_partition_keys())


def _refuse_unknown_partition(
    context: InputContext | OutputContext, asset: str, keys: list[str]
) -> None:
    """A run started with a partition tag outside the partitions (a Saturday, a holiday)
    reaches the IO manager unchecked: refuse it before anything is read or written."""
    parts = context.asset_partitions_def
    if parts is None:
        return
    known = _known_keys(parts)
    unknown = [k for k in keys if k not in known and not parts.has_partition_key(k)]
    if unknown:
        raise Failure(
            f"{asset}: {', '.join(unknown)} is not one of its partitions (not a trading day, "
            "or outside the partitioned range); nothing was read or written"
        )


def _with_dates(obj: pd.DataFrame, days: list[str], asset: str) -> pd.DataFrame:
    """The output as it is staged: a one-day output as it is, a range's (a single-run backfill)
    with each row's day in its date column (from the range's row spans when the frame has
    none), every row in the range."""
    if len(days) == 1:
        return obj
    spans = obj.attrs.get(ROW_DAYS_KEY)
    if "date" not in obj.columns:
        if spans is None or sum(n for _, n in spans) != len(obj):
            raise Failure(
                f"{asset} wrote {len(days)} days without a date column to tell them apart"
            )
        dates = np.repeat(
            np.array([d for d, _ in spans], dtype="datetime64[ns]"), [n for _, n in spans]
        )
        obj = obj.assign(date=dates)
    found = pd.DatetimeIndex(pd.unique(pd.to_datetime(obj["date"]).dt.normalize()))
    stray = sorted(set(found.strftime("%Y-%m-%d")) - set(days))
    if stray:
        raise Failure(f"{asset} wrote rows of {_days(stray)}, outside its range {_days(days)}")
    return obj


def _step_range(context: InputContext) -> tuple[str, str] | None:
    """The (first, last) day of the reading step's partition range, None for a one-day step."""
    try:
        step = context.step_context
        if not step.has_partition_key_range:
            return None
        keys = step.partition_key_range
    except Exception:  # a context built outside a run
        return None
    return None if keys.start == keys.end else (keys.start, keys.end)


def _same_asset(context: InputContext) -> bool:
    """The input is the reading asset's own earlier partitions (a chain)."""
    try:
        return context.asset_key in context.step_context.get_output_asset_keys()
    except Exception:  # a context built outside a run
        return False


def _run_id(context: InputContext | OutputContext) -> str:
    """The run's id (an InputContext carries it only through its step context)."""
    if isinstance(context, OutputContext):
        return context.run_id or ""
    try:
        return context.step_context.run_id
    except Exception:  # a context built outside a run
        return ""


def _instance(context: InputContext | OutputContext):
    """The Dagster instance of the run, when there is one (None for a bare context)."""
    try:
        return context.step_context.instance
    except Exception:  # a context built outside a run has no step context
        return None
