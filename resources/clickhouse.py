"""ClickHouse access for every stage: one client API for the embedded chDB engine and for servers.

The DSN decides the deployment: ``chdb://<folder>`` runs the ClickHouse engine in-process,
``http(s)://user:password@host:port`` talks to a server or cluster. SQL is written once.
A chDB folder can be open in one process at a time, so callers open a client for a unit of work
and close it (`client()` is a context manager), and opening retries while another process holds it.
With a cluster name configured, the same table specs create replicated tables behind Distributed
ones and a day's writes go through replicated staging tables (`cluster_ddl` says how, and what is
left to do for clusters of more than one shard).
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, replace

import clickhouse_connect
import numpy as np
import pandas as pd
import pyarrow as pa
from clickhouse_connect.driver.client import Client
from dagster import ConfigurableResource, InitResourceContext, get_dagster_logger
from pydantic import Field, PrivateAttr

from resources.arrow_frames import record_batches

ARROW_MIN_ROWS = 50_000
# Tables are partitioned by trading day, so a run that writes a range of days (a history
# backfill in one run) inserts one block spanning as many partitions; ClickHouse refuses more
# than 100 by default. 5,000 trading days is twenty years.
INSERT_SETTINGS = {"max_partitions_per_insert_block": 5000}
# One batch is one INSERT and so one part of the partition: batches of 250k to 1M rows keep a
# day's parts few while two clients still have two batches each to share.
BATCH_MIN_ROWS = 250_000
BATCH_MAX_ROWS = 1 << 20
READ_CHUNK_ROWS = 2_500_000


STAGING_MARK = "__staging_"  # <table>__staging_<partition>[_<run>]: never read by the platform
# The id of a partition no table holds (1970-01-01, or nothing in an unpartitioned table):
# dropping it changes no data and makes MergeTree delete its inactive parts (`clear_old_parts`).
NO_PARTITION_ID = "19700101"
# On a cluster, `<name>` is the Distributed table every query names, `<name>_local` the
# replicated table on each node that holds the rows.
LOCAL_SUFFIX = "_local"


@dataclass(frozen=True)
class StagedPartition:
    """One partition written to a staging table and not yet published."""

    table: str  # database.table it belongs to
    staging: str  # database.staging table holding it (none when rows == 0)
    literal: str  # the partition as a SQL literal: '2024-06-03' or ('2024-06-03', 'trades')
    rows: int

    def to_dict(self) -> dict:
        return {
            "table": self.table,
            "staging": self.staging,
            "literal": self.literal,
            "rows": self.rows,
        }

    @classmethod
    def from_dict(cls, d: dict) -> StagedPartition:
        return cls(d["table"], d["staging"], d["literal"], int(d["rows"]))


class SchemaMismatch(RuntimeError):
    """A stored table whose layout the asset's spec cannot take over without losing data."""


@dataclass(frozen=True)
class TableSpec:
    """A table's DDL: columns (name -> ClickHouse type, codec and default included), sort key,
    partition key and engine.

    Daily tables are PARTITION BY their `date` column so that one trading day can be replaced
    atomically (REPLACE PARTITION) and dropped cheaply; ORDER BY puts `symbol` first because
    almost every read is a time range of a few symbols or a cross-section of one day.
    """

    name: str
    columns: dict[str, str]
    order_by: tuple[str, ...]
    partition_by: str | None = "date"
    engine: str = "MergeTree"
    settings: str = ""
    cached: bool = False  # hot: the IO manager reads it through the cache (resources/cache.py)

    def ddl(self, database: str, cluster: str | None = None) -> str:
        """CREATE TABLE IF NOT EXISTS on one server; with `cluster`, the two statements of
        `cluster_ddl` (the replicated local table, then the Distributed table) joined by `;`."""
        if cluster:
            return ";\n".join(cluster_ddl(self, database, cluster))
        cols = ",\n  ".join(f"`{c}` {t}" for c, t in self.columns.items())
        parts = [
            f"CREATE TABLE IF NOT EXISTS {database}.{self.name} (\n  {cols}\n)",
            f"ENGINE = {self.engine}",
        ]
        if self.partition_by:
            parts.append(f"PARTITION BY {self.partition_by}")
        parts.append(f"ORDER BY ({', '.join(self.order_by)})")
        if self.settings:
            parts.append(f"SETTINGS {self.settings}")
        return "\n".join(parts)

    def column_type(self, column: str) -> str:
        """The column's type as DESCRIBE TABLE prints it: without codec and default."""
        return _bare_type(self.columns[column])

    def has_default(self, column: str) -> bool:
        return " DEFAULT " in f" {self.columns[column]} "

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "columns": dict(self.columns),
            "order_by": list(self.order_by),
            "partition_by": self.partition_by,
            "engine": self.engine,
            "settings": self.settings,
            "cached": self.cached,
        }

    @classmethod
    def from_dict(cls, d: dict) -> TableSpec:
        return cls(
            name=d["name"],
            columns=dict(d["columns"]),
            order_by=tuple(d["order_by"]),
            partition_by=d.get("partition_by"),
            engine=d.get("engine", "MergeTree"),
            settings=d.get("settings", ""),
            cached=d.get("cached", False),
        )


_MERGE_TREE = re.compile(r"(\w*)MergeTree(?:\((.*)\))?", re.DOTALL)


def replicated_engine(engine: str, zookeeper_path: str) -> str:
    """The replicated form of a MergeTree-family engine, its own arguments after the two of
    replication: `ReplacingMergeTree(written_at)` ->
    `ReplicatedReplacingMergeTree('<path>', '{replica}', written_at)`."""
    match = _MERGE_TREE.fullmatch(engine.strip())
    if match is None or match.group(1).startswith("Replicated"):
        raise ValueError(f"engine {engine!r} is not a non-replicated MergeTree-family engine")
    args = [f"'{zookeeper_path}'", "'{replica}'"]
    if (match.group(2) or "").strip():
        args.append(match.group(2).strip())
    return f"Replicated{match.group(1)}MergeTree({', '.join(args)})"


def sharding_key(spec: TableSpec) -> str:
    """The Distributed table's sharding key: a hash of the partition key (of the sort key for an
    unpartitioned table), so every row of a partition lives on one shard."""
    key = _normalise_key(spec.partition_by or ", ".join(spec.order_by)).replace(",", ", ")
    return f"cityHash64({key})"


def local_name(table: str) -> str:
    """The local table behind the Distributed table `table` (with or without its database):
    `<name>_local`, and for a staging table `<name>_local__staging_<...>`, so that its name
    still ends with the run's tag (`resources.publishing` reads the tag there)."""
    name, mark, rest = table.partition(STAGING_MARK)
    return f"{name}{LOCAL_SUFFIX}{mark}{rest}"


def cluster_ddl(
    spec: TableSpec, database: str, cluster: str, name: str | None = None, like: str | None = None
) -> tuple[str, str]:
    """The table `name` (default the spec's) on a ClickHouse cluster: the statements creating
    `<name>_local` ON CLUSTER, the spec's engine made replicated
    (`/clickhouse/tables/{shard}/<database>/<name>`, replica `{replica}`: the nodes' macros)
    with the same columns, partition, sort key and settings, then `<name>` ON CLUSTER, a
    Distributed table with the same columns over the local tables (`sharding_key`). Every read
    and insert keeps naming `<name>`. With `like` (a table name), the local table takes the
    columns of `like`'s local table as they are stored (a staging table must match them exactly).

    What works on a cluster (`ClickHouseResource.cluster`): tables are created and columns added
    on every node (ON CLUSTER); a day is staged in a staging pair made by this same function
    (its own replicated table, inserted into through its Distributed table in the foreground,
    then `SYSTEM SYNC REPLICA` so every replica holds the staged parts), and published by
    `ALTER TABLE <name>_local ON CLUSTER ... REPLACE PARTITION ... FROM <staging>_local`: the
    sharding key follows the partition key, so a day's rows, staged and published, are all on
    one shard, where REPLACE PARTITION swaps the whole day atomically and replication carries
    the swap to the shard's replicas; other shards hold no row of the day. Readers of the
    Distributed table see the old day or the new one. The journal and the partition log
    (`resources.publishing`) are replicated tables too, and their FINAL reads stay exact
    (rows of one key are on one shard).

    What is left, none of it tried against a server here (no ClickHouse server installs on the
    project's machines; the statements are tested as text and parsed and created by chDB):
    on a cluster of several shards running ClickHouse 26 or newer, the shards that hold no row
    of a day refuse REPLACE PARTITION from an empty source unless the servers' profile sets
    `allow_replace_partition_from_empty_source = 1` (the compose stack has one shard with
    three replicas, where this never arises); `resources.publishing.recover` finds and drops
    leftover staging tables on the node it is connected to only; the maintenance jobs
    (backup, restore) read and write one node's tables; the embedded-engine housekeeping
    (`clear_old_parts`, `compact_log`) is not needed on servers and does nothing there.
    """
    name = name or spec.name
    local = local_name(name)
    engine = replicated_engine(spec.engine, f"/clickhouse/tables/{{shard}}/{database}/{name}")
    # The single-node DDL of the local table, its name slot followed by the ON CLUSTER clause.
    create_local = replace(spec, name=f"{local} ON CLUSTER {cluster}", engine=engine).ddl(database)
    if like:
        storage = create_local[create_local.index("\nENGINE = ") :]
        create_local = (
            f"CREATE TABLE IF NOT EXISTS {database}.{local} ON CLUSTER {cluster} "
            f"AS {database}.{local_name(like)}{storage}"
        )
    create_distributed = (
        f"CREATE TABLE IF NOT EXISTS {database}.{name} ON CLUSTER {cluster} "
        f"AS {database}.{local}\n"
        f"ENGINE = Distributed({cluster}, {database}, {local}, {sharding_key(spec)})"
    )
    return create_local, create_distributed


def _bare_type(declared: str) -> str:
    """`Float64 DEFAULT nan CODEC(ZSTD(1))` -> `Float64` (codec and default cut off)."""
    t = declared
    for keyword in (" CODEC(", " DEFAULT "):
        cut = t.find(keyword)
        if cut >= 0:
            t = t[:cut]
    return t.strip()


def _normalise_key(expr: str | None) -> str:
    """A sort or partition key as system.tables prints it (no outer parentheses, no blanks)."""
    e = (expr or "").replace(" ", "").replace("`", "")
    while e.startswith("(") and e.endswith(")") and e.count("(") == 1:
        e = e[1:-1]
    return e


class ClickHouseResource(ConfigurableResource):
    """ClickHouse through clickhouse-connect; embedded chDB by default."""

    dsn: str = Field(description="chdb://<folder> (embedded) or http(s)://user:pass@host:port")
    database: str = Field(default="quant", description="database holding the platform's tables")
    insert_threads: int = Field(
        default=2,
        description="embedded engine: clients loading the batches of a large insert, or "
        "reading the chunks of a large read, side by side",
    )
    open_timeout_s: float = Field(
        default=120.0, description="how long to wait for another process to release chDB"
    )
    cluster: str | None = Field(
        default=None,
        description="a server cluster's name (remote_servers): tables become replicated local "
        "tables behind Distributed ones, created ON CLUSTER (see cluster_ddl); unset, one server",
    )

    @property
    def embedded(self) -> bool:
        return self.dsn.startswith("chdb://")

    _run_client: Client | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        """In the embedded engine, open the folder once for the whole run.

        Opening chDB attaches every part of every table (~0.3 s, growing with history), so a
        run holds one client for all its steps and releases the folder when it ends.
        """
        if self.embedded:
            self._run_client = self._open()
            self._run_client.command(self._create_database())

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self._run_client is not None:
            self._run_client.close()
            self._run_client = None

    @contextmanager
    def client(self) -> Iterator[Client]:
        """A connected client for a unit of work: the run's client inside a Dagster run on the
        embedded engine, otherwise one opened for this unit and closed afterwards."""
        if self._run_client is not None:
            yield self._run_client
            return
        client = self._open()
        try:
            client.command(self._create_database())
            yield client
        finally:
            client.close()

    def _create_database(self) -> str:
        return f"CREATE DATABASE IF NOT EXISTS {self.database}{self._on_cluster()}"

    def _on_cluster(self) -> str:
        return f" ON CLUSTER {self.cluster}" if self.cluster else ""

    def _open(self) -> Client:
        deadline = time.monotonic() + self.open_timeout_s
        delay = 0.2
        # On a cluster, an insert into a Distributed table returns once the shards have it (a
        # staged day must be there before its swap, a journal entry before what it announces).
        settings = {"distributed_foreground_insert": 1} if self.cluster else None
        while True:
            try:
                return clickhouse_connect.get_client(dsn=self.dsn, settings=settings)
            except Exception as exc:  # chDB says so when another process holds the folder
                busy = "EmbeddedServer" in str(exc) or "lock" in str(exc).lower()
                if not (self.embedded and busy) or time.monotonic() > deadline:
                    raise
                get_dagster_logger().info("chDB folder busy in another process; retrying")
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    _checked: set = PrivateAttr(default_factory=set)

    def ensure_table(self, client: Client, spec: TableSpec) -> None:
        """Create the table on first use; bring an existing one up to the spec, or refuse.

        A column the spec adds is added (ALTER TABLE ADD COLUMN, with the spec's default, so
        the days written before read that default: NaN for factor columns). Anything that
        would need data rewritten or dropped is refused with a SchemaMismatch that says what
        differs: a column whose type changed, a stored column the spec no longer has and that
        has no default (new rows would get ClickHouse's zero), a different sort or partition
        key. Nothing is ever dropped. Checked once per table and resource instance.
        """
        key = (self.database, spec.name, tuple(spec.columns.items()), spec.order_by)
        if key in self._checked:
            return
        if self.cluster:
            for statement in cluster_ddl(spec, self.database, self.cluster):
                client.command(statement)
        else:
            client.command(spec.ddl(self.database))  # CREATE TABLE IF NOT EXISTS
        target = f"{self.database}.{spec.name}"
        described = client.query(f"DESCRIBE TABLE {target}").result_rows
        stored = {row[0]: (row[1], row[2]) for row in described}  # name -> (type, default kind)
        keys = client.query(
            "SELECT sorting_key, partition_key FROM system.tables "
            "WHERE database = %(db)s AND name = %(t)s",
            # on a cluster the keys are the local table's (the Distributed table has none)
            parameters={
                "db": self.database,
                "t": local_name(spec.name) if self.cluster else spec.name,
            },
        ).result_rows[0]
        problems = []
        if _normalise_key(keys[0]) != _normalise_key(", ".join(spec.order_by)):
            problems.append(f"ORDER BY is ({keys[0]}), the spec wants ({', '.join(spec.order_by)})")
        if _normalise_key(keys[1]) != _normalise_key(spec.partition_by):
            problems.append(
                f"PARTITION BY is {keys[1] or 'none'}, the spec wants {spec.partition_by}"
            )
        for col in spec.columns:
            if col in stored and stored[col][0] != spec.column_type(col):
                problems.append(
                    f"column {col} is {stored[col][0]}, the spec wants {spec.column_type(col)}"
                )
        for col, (ctype, default_kind) in stored.items():
            if col not in spec.columns and not default_kind:
                problems.append(
                    f"column {col} ({ctype}) is no longer written and has no default: new rows "
                    "would store ClickHouse's zero in it"
                )
        if problems:
            raise SchemaMismatch(
                f"table {target} was created with another layout than its asset now declares: "
                + "; ".join(problems)
                + ". Nothing was changed. Migrate it by hand (ALTER TABLE ... MODIFY/DROP COLUMN,"
                " or create the new table and INSERT ... SELECT from the old one), or rename the"
                f" old table (RENAME TABLE {target} TO {target}_old) and rematerialize."
            )
        previous = None
        for col, declared in spec.columns.items():
            if col not in stored:
                after = f" AFTER `{previous}`" if previous else " FIRST"
                if self.cluster:  # the local tables first: the Distributed one reads them
                    for table in (local_name(target), target):
                        client.command(
                            f"ALTER TABLE {table}{self._on_cluster()} "
                            f"ADD COLUMN IF NOT EXISTS `{col}` {declared}{after}"
                        )
                else:
                    client.command(f"ALTER TABLE {target} ADD COLUMN `{col}` {declared}{after}")
                get_dagster_logger().info(f"{target}: added column {col} ({declared})")
            previous = col
        self._checked.add(key)

    def replace_partition(
        self,
        client: Client,
        spec: TableSpec,
        df: pd.DataFrame,
        day: str | pd.Timestamp,
        **keys: str,
    ) -> int:
        """Atomically make `df` the whole content of one partition; returns rows written.

        `stage_partition`, then `swap_in`, then `drop_staging`: readers see the old day or the
        new one, never a mix, and a crash before the swap leaves the old data. The publisher
        (`resources.publishing`) runs the same three steps for several tables under a journal.
        """
        staged = self.stage_partition(client, spec, df, day, **keys)
        try:
            self.swap_in(client, staged)
        finally:
            self.drop_staging(client, staged.staging)
        self.clear_old_parts(client, staged.table)
        return staged.rows

    def stage_partition(
        self,
        client: Client,
        spec: TableSpec,
        df: pd.DataFrame,
        day: str | pd.Timestamp,
        tag: str = "",
        **keys: str,
    ) -> StagedPartition:
        """Write `df` as one partition of a staging copy of the table, not yet visible.

        The partition is the day plus, for tables partitioned by more columns, their values in
        `keys` (e.g. ``kind="trades"``). Columns of the partition key that `df` leaves out (e.g.
        `date`) are filled with the partition's values; those it has must all be in the
        partition. The staging table is named after the table, the partition and `tag` (the
        run), so two runs never write the same staging table; a leftover of the same name is
        dropped first. An empty frame stages nothing: its swap drops the partition (ClickHouse
        refuses to replace from an empty source).
        """
        day = pd.Timestamp(day).strftime("%Y-%m-%d")
        return self.stage_partitions(client, spec, df, [day], tag, **keys)[0]

    def stage_partitions(
        self,
        client: Client,
        spec: TableSpec,
        df: pd.DataFrame,
        days: Sequence[str],
        tag: str = "",
        **keys: str,
    ) -> list[StagedPartition]:
        """`stage_partition` for several days (YYYY-MM-DD) at once: the rows of every day in
        one staging table, written in one insert, one StagedPartition per day (a day without
        rows stages nothing, and its swap drops the partition). With more than one day, `df`
        must have the `date` column, and each of its rows must be one of `days`."""
        self.ensure_table(client, spec)
        target = f"{self.database}.{spec.name}"
        literals = {
            d: f"'{d}'"
            if not keys
            else "(" + ", ".join(f"'{v}'" for v in (d, *keys.values())) + ")"
            for d in days
        }
        span = days[0] if len(days) == 1 else f"{days[0]}_{days[-1]}"
        suffix = "_".join(str(v) for v in (span, *keys.values())).replace("-", "")
        staging = f"{target}{STAGING_MARK}{suffix}" + (f"_{tag}" if tag else "")
        # partition columns the frame leaves out take the partition's value (no frame copy)
        constants = {
            c: v
            for c, v in {"date": pd.Timestamp(days[0]), **keys}.items()
            if c in spec.columns and c not in df.columns
        }
        if "date" in constants and len(days) > 1:
            raise ValueError(f"{spec.name}: rows of {len(days)} days need their date column")
        if "date" in df.columns:
            row_days = _dates(df["date"])
            mismatched = ~np.isin(row_days, np.array(days, dtype="datetime64[D]"))
        else:
            row_days = np.full(len(df), np.datetime64(days[0], "D"))
            mismatched = np.zeros(len(df), bool)
        for col, value in keys.items():
            if col in df.columns:
                mismatched |= df[col].astype(str).ne(value).to_numpy()
        if mismatched.any():
            shown = ", ".join(literals.values())
            where = "partition" if len(days) == 1 else "partitions"
            raise ValueError(
                f"{spec.name}: {int(mismatched.sum())} rows are not in {where} {shown}"
            )
        found, counts = np.unique(row_days, return_counts=True)
        rows = dict(zip(found.astype(str), counts.tolist(), strict=True))
        staged = [StagedPartition(target, staging, literals[d], rows.get(d, 0)) for d in days]
        if df.empty:
            return staged
        if self.cluster:  # a replicated staging table of its own behind a Distributed one
            self.drop_staging(client, staging)
            name = staging.split(".", 1)[1]
            for statement in cluster_ddl(spec, self.database, self.cluster, name, like=spec.name):
                client.command(statement)
        else:
            client.command(f"DROP TABLE IF EXISTS {staging}")
            client.command(f"CREATE TABLE {staging} AS {target}")
        try:
            self.insert(
                client, staging, df[[c for c in spec.columns if c in df.columns]], constants
            )
            if self.cluster:  # every replica holds the staged parts before the swap
                client.command(f"SYSTEM SYNC REPLICA{self._on_cluster()} {local_name(staging)}")
        except BaseException:
            if self.cluster:
                self.drop_staging(client, staging)
            else:
                client.command(f"DROP TABLE IF EXISTS {staging}")
            raise
        return staged

    def staged_counts(self, client: Client, staging: str) -> dict[str, int]:
        """Rows a staging table holds per day (what its swaps would publish)."""
        counts = client.query(
            f"SELECT toString(date), count() FROM {staging} GROUP BY date"
        ).result_rows
        return {day: int(n) for day, n in counts}

    def swap_in(self, client: Client, *staged: StagedPartition) -> None:
        """Publish staged partitions of one table: one ALTER of atomic REPLACE PARTITIONs (DROP
        for an empty day). Repeatable while the staging tables exist, so a publication can be
        rolled forward."""
        tables = {s.table for s in staged}
        if len(tables) != 1:
            raise ValueError(f"swap_in takes partitions of one table, not {sorted(tables)}")
        # On a cluster, the local tables: each shard swaps its part of the day (all of it, on
        # the shard its sharding key puts it) and replication carries the swap to the replicas.
        local = local_name if self.cluster else str
        commands = ", ".join(
            f"REPLACE PARTITION {s.literal} FROM {local(s.staging)}"
            if s.rows
            else f"DROP PARTITION {s.literal}"
            for s in staged
        )
        client.command(f"ALTER TABLE {local(staged[0].table)}{self._on_cluster()} {commands}")

    def drop_staging(self, client: Client, staging: str) -> None:
        """Drop a staging table; in the embedded engine its files go at once (SYNC) instead of
        waiting 8 minutes in `metadata_dropped` for a process that may have ended. On a cluster,
        the Distributed and the replicated staging tables on every node, at once (SYNC), so that
        their replication metadata is gone before a table of the same name is made again."""
        if self.cluster:
            for table in (staging, local_name(staging)):
                client.command(f"DROP TABLE IF EXISTS {table}{self._on_cluster()} SYNC")
            return
        if not self.embedded:
            client.command(f"DROP TABLE IF EXISTS {staging}")
            return
        database, name = staging.split(".", 1)
        paths = client.query(
            "SELECT data_paths FROM system.tables WHERE database = %(db)s AND name = %(t)s",
            parameters={"db": database, "t": name},
        ).result_rows
        client.command(f"DROP TABLE IF EXISTS {staging} SYNC")
        for path in paths[0][0] if paths else []:
            # store/<3 hex>/<uuid>/: the table's folder is gone, its prefix folder stays behind
            with contextlib.suppress(OSError):  # not empty: another table shares the prefix
                os.rmdir(os.path.dirname(os.path.normpath(path)))

    def clear_old_parts(self, client: Client, table: str) -> None:
        """Embedded engine: delete the parts of `table` that a swap or a merge left inactive.

        A server removes inactive parts in the background after `old_parts_lifetime`; chDB
        (measured with 26.9) never does within a short-lived process, so every rerun of a day
        would leave the replaced day on disk for good. Dropping a partition removes inactive
        parts on the spot (chDB's `old_parts_lifetime` is 0), so drop one that no table holds:
        the first drop deletes the replaced parts and retires the empty parts that covered
        them (one per replaced day, a file per column), the second deletes those.
        """
        if self.embedded:
            for _ in range(2):
                client.command(f"ALTER TABLE {table} DROP PARTITION ID '{NO_PARTITION_ID}'")

    def compact_log(self, client: Client, table: str, max_parts: int = 4) -> None:
        """Embedded engine: merge a small append-only log (a ReplacingMergeTree of a few rows per
        write) into one part once it has more than `max_parts`, and delete the merged parts."""
        if not self.embedded:
            return
        database, name = table.split(".", 1)
        parts = int(
            client.command(
                "SELECT count() FROM system.parts WHERE active AND database = %(db)s "
                "AND table = %(t)s",
                parameters={"db": database, "t": name},
            )
        )
        if parts > max_parts:
            client.command(f"OPTIMIZE TABLE {table} FINAL")
        self.clear_old_parts(client, table)

    def insert(
        self,
        client: Client,
        table: str,
        df: pd.DataFrame,
        constants: dict[str, object] | None = None,
    ) -> None:
        """Insert a frame, plus `constants` (column -> one value for every row).

        In the embedded engine large frames become Arrow record batches typed exactly like the
        table's columns (`arrow_frames`), which chDB's `Python()` table function reads in place:
        no serialisation, where clickhouse-connect's conversion to Native costs three times
        ClickHouse's own write. ClickHouse sorts and compresses one INSERT on one core, so the
        batches are loaded by `insert_threads` clients side by side (chDB releases the GIL)
        while the next batch is converted; beyond the batches being loaded at most one waits,
        so memory stays bounded. A failed batch raises after the others finish: callers write
        into a staging table, so nothing partial becomes visible. Servers get the frame over
        the wire.
        """
        if not self.embedded or len(df) < ARROW_MIN_ROWS:
            client.insert_df(
                table, df.assign(**constants) if constants else df, settings=INSERT_SETTINGS
            )
            return
        types = dict(row[:2] for row in client.query(f"DESCRIBE TABLE {table}").result_rows)
        cols = ", ".join(f"`{c}`" for c in [*df.columns, *(constants or {})])
        n_batches = max(
            -(-len(df) // BATCH_MAX_ROWS),
            min(2 * self.insert_threads, -(-len(df) // BATCH_MIN_ROWS)),
        )
        rows_per_batch = -(-len(df) // n_batches)
        n_clients = max(1, min(self.insert_threads, n_batches))
        clients = [client, *(self._open() for _ in range(n_clients - 1))]
        idle: queue.SimpleQueue[Client] = queue.SimpleQueue()
        for c in clients:
            idle.put(c)

        def load(quant_insert_batch: pa.RecordBatchReader, rows: int) -> None:
            # Python(name) resolves `name` among the calling Python frames' variables. From a
            # reader, with max_block_size at least the batch's rows, ClickHouse takes the batch
            # as one block; a bare batch comes in chunks of at most 131,072 rows that the
            # INSERT then copies back together into one part (a quarter of its CPU time).
            sql = (
                f"INSERT INTO {table} ({cols}) SELECT {cols} FROM Python(quant_insert_batch) "
                f"SETTINGS max_block_size = {max(rows, 1)}, "
                + ", ".join(f"{k} = {v}" for k, v in INSERT_SETTINGS.items())
            )
            c = idle.get()
            try:
                c.command(sql)
            finally:
                idle.put(c)

        try:
            with ThreadPoolExecutor(n_clients, thread_name_prefix="chdb-insert") as pool:
                pending: list[Future] = []
                for batch in record_batches(df, types, constants, rows_per_batch):
                    while sum(not f.done() for f in pending) > n_clients:
                        wait(pending, return_when=FIRST_COMPLETED)
                    reader = pa.RecordBatchReader.from_batches(batch.schema, [batch])
                    pending.append(pool.submit(load, reader, batch.num_rows))
                    del reader, batch
                wait(pending)
                for done in pending:
                    done.result()
        finally:
            for c in clients[1:]:
                c.close()
            pa.default_memory_pool().release_unused()  # the batches' pages, back to the OS

    def read_days(
        self,
        client: Client,
        spec: TableSpec,
        start: str | pd.Timestamp,
        end: str | pd.Timestamp,
        columns: list[str] | None = None,
        equals: dict[str, str] | None = None,
        expressions: dict[str, str] | None = None,
        expected_rows: int | None = None,
    ) -> pd.DataFrame:
        """Rows of the days in [start, end] (the partition key prunes the parts), only
        `columns` (default: all of the spec, none when only `expressions` are asked) plus
        `expressions` (name -> SQL over the table's columns, computed by ClickHouse), and only
        rows whose columns equal `equals`; ordered by date, then the sort key. Dtypes follow
        the table: Date as datetime64[ns] at midnight, DateTime64 as nanoseconds in its zone;
        an empty result keeps its columns.

        A single day of more than READ_CHUNK_ROWS rows (`expected_rows`) of a table sorted by
        symbol is read in ranges of symbols: chDB builds a result in one piece, and its time
        grows faster than the rows (a day of 23.6 million book rows: 15 s in one query, 10 s
        in ten)."""
        expressions = dict(expressions or {})
        default = [] if expressions else list(spec.columns)
        cols = list(columns) if columns is not None else default
        unknown = [c for c in cols if c not in spec.columns]
        if unknown:
            raise KeyError(f"{spec.name} has no columns {unknown}; it has {list(spec.columns)}")
        where = ["date BETWEEN %(start)s AND %(end)s"]
        params: dict[str, object] = {
            "start": pd.Timestamp(start).date(),
            "end": pd.Timestamp(end).date(),
        }
        for i, (col, value) in enumerate((equals or {}).items()):
            where.append(f"`{col}` = %(eq{i})s")
            params[f"eq{i}"] = value
        select = [f"`{c}`" for c in cols] + [f"({e}) AS `{n}`" for n, e in expressions.items()]
        order = ["date", *(c for c in spec.order_by if c != "date")]
        ranges = [None]
        one_day = pd.Timestamp(start) == pd.Timestamp(end)
        if one_day and spec.order_by[0] == "symbol" and (expected_rows or 0) > READ_CHUNK_ROWS:
            ranges = self._symbol_ranges(client, spec, where, params, expected_rows)
        queries = []
        for i, bounds in enumerate(ranges):
            cond = list(where)
            if bounds is not None:
                upper = f" AND symbol < %(hi{i})s" if bounds[1] is not None else ""
                cond.append(f"symbol >= %(lo{i})s{upper}")
                params[f"lo{i}"], params[f"hi{i}"] = bounds
            queries.append(
                f"SELECT {', '.join(select)} FROM {self.database}.{spec.name} "
                f"WHERE {' AND '.join(cond)} ORDER BY {', '.join(order)}"
            )
        parts = self._query_arrow_side_by_side(client, queries, params)
        table = parts[0] if len(parts) == 1 else pa.concat_tables(parts)
        del parts
        types: dict[str, str | None] = {c: spec.column_type(c) for c in cols}
        types.update(dict.fromkeys(expressions))
        frame = _arrow_to_frame(table, types)
        del table
        pa.default_memory_pool().release_unused()  # the Arrow pool keeps freed pages otherwise
        return frame

    def _query_arrow_side_by_side(
        self, client: Client, queries: list[str], params: dict
    ) -> list[pa.Table]:
        """The Arrow results of `queries`, in order; in the embedded engine several run side by
        side on `insert_threads` clients (chDB formats a result on one core). Uncompressed
        Arrow: the bytes are read in place instead of decompressed."""
        settings = {"output_format_arrow_compression_method": "none"}
        n_clients = min(self.insert_threads, len(queries)) if self.embedded else 1
        if n_clients <= 1:
            return [client.query_arrow(q, parameters=params, settings=settings) for q in queries]
        clients = [client, *(self._open() for _ in range(n_clients - 1))]
        idle: queue.SimpleQueue[Client] = queue.SimpleQueue()
        for c in clients:
            idle.put(c)

        def run(sql: str) -> pa.Table:
            c = idle.get()
            try:
                return c.query_arrow(sql, parameters=params, settings=settings)
            finally:
                idle.put(c)

        try:
            with ThreadPoolExecutor(n_clients, thread_name_prefix="chdb-read") as pool:
                return list(pool.map(run, queries))
        finally:
            for c in clients[1:]:
                c.close()

    def _symbol_ranges(
        self, client: Client, spec: TableSpec, where: list[str], params: dict, rows: int
    ) -> list[tuple[str, str | None]]:
        """Ranges of symbols of about READ_CHUNK_ROWS rows each (the last one open-ended)."""
        counts = client.query(
            f"SELECT symbol, count() FROM {self.database}.{spec.name} "
            f"WHERE {' AND '.join(where)} GROUP BY symbol ORDER BY symbol",
            parameters=params,
        ).result_rows
        ranges: list[tuple[str, str | None]] = []
        start, size = None, 0
        for symbol, n in counts:
            if start is None:
                start = symbol
            elif size + n > READ_CHUNK_ROWS:
                ranges.append((start, symbol))
                start, size = symbol, 0
            size += n
        if start is not None:
            ranges.append((start, None))
        return ranges or [None]

    def query_df(self, client: Client, sql: str, parameters: dict | None = None) -> pd.DataFrame:
        """Run a SELECT and return a DataFrame; `{db}` in the SQL names the platform database.
        An empty result keeps its column names."""
        sql = sql.replace("{db}", self.database)
        df = client.query_df(sql, parameters=parameters or {})
        if df.empty and len(df.columns) == 0:
            # The embedded engine returns no column names with an empty result: ask for them.
            described = client.query(f"DESCRIBE ({sql})", parameters=parameters or {})
            df = pd.DataFrame(columns=[row[0] for row in described.result_rows])
        return df


def _dates(s: pd.Series) -> np.ndarray:
    """A date column as numpy days (NaT for missing), without a Timestamp per row."""
    if s.dtype.kind == "M":
        return s.to_numpy(dtype="datetime64[D]")
    return pd.to_datetime(s).to_numpy(dtype="datetime64[D]")


def _arrow_to_frame(table: pa.Table, types: dict[str, str | None]) -> pd.DataFrame:
    """An Arrow result as the frame the stages expect, typed from the table's column types
    (None: as Arrow gives it).

    Dates become datetime64[ns] (midnight), timestamps nanoseconds in their zone, strings
    pandas strings, a dictionary (LowCardinality) column its values. Column by column, each
    dropped from the table once converted: numeric columns without nulls become views of the
    Arrow buffers, so a 23-million-row order book is not held twice.
    """
    if not table.num_rows:
        return pd.DataFrame(
            {name: _empty_column(_bare(t or "Float64")) for name, t in types.items()},
            columns=list(types),
        )
    columns = {}
    for name, t in types.items():
        col = table.column(name)
        table = table.drop_columns([name])
        if pa.types.is_dictionary(col.type):
            col = col.cast(col.type.value_type)
        bare = _bare(t or "")
        if bare in ("Date", "Date32"):
            col = col.cast(pa.timestamp("ms"))
        series = col.to_pandas(split_blocks=True, self_destruct=True)
        del col
        if bare in ("Date", "Date32") or bare.startswith("DateTime64"):
            series = series.dt.as_unit("ns")
        columns[name] = series
    return pd.DataFrame(columns, copy=False)


def _bare(ch_type: str) -> str:
    return ch_type.replace("LowCardinality(", "").replace("Nullable(", "").rstrip(")")


def empty_frame(
    spec: TableSpec, columns: list[str] | None = None, expressions: dict | None = None
) -> pd.DataFrame:
    """A frame with the table's columns (or `columns`, plus computed `expressions` as
    floats) and their dtypes, and no rows."""
    default = [] if expressions else list(spec.columns)
    cols = list(columns) if columns is not None else default
    types: dict[str, str | None] = {c: spec.column_type(c) for c in cols}
    types.update(dict.fromkeys(expressions or {}))
    return _arrow_to_frame(pa.table({}), types)


def _empty_column(bare: str) -> pd.Series:
    if bare in ("Date", "Date32"):
        return pd.Series([], dtype="datetime64[ns]")
    if bare.startswith("DateTime64"):
        tz = bare.split("'")[1] if "'" in bare else "UTC"
        return pd.Series([], dtype=pd.DatetimeTZDtype("ns", tz))
    if bare.startswith("Float"):
        return pd.Series([], dtype="float64")
    if bare.startswith(("Int", "UInt")):
        return pd.Series([], dtype=bare.lower())
    if bare == "Bool":
        return pd.Series([], dtype="bool")
    return pd.Series([], dtype="str")
