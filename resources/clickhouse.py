"""ClickHouse access for every stage: one client API for the embedded chDB engine and for servers.

The DSN decides the deployment: ``chdb://<folder>`` runs the ClickHouse engine in-process,
``http(s)://user:password@host:port`` talks to a server or cluster. SQL is written once.
A chDB folder can be open in one process at a time, so callers open a client for a unit of work
and close it (`client()` is a context manager), and opening retries while another process holds it.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import clickhouse_connect
import pandas as pd
import pyarrow as pa
from clickhouse_connect.driver.client import Client
from dagster import ConfigurableResource, InitResourceContext, get_dagster_logger
from pydantic import Field, PrivateAttr

ARROW_MIN_ROWS = 50_000
ARROW_BATCH_ROWS = 1 << 20  # ClickHouse reads a record batch as one block


@dataclass(frozen=True)
class TableSpec:
    """A table's DDL: columns (name -> ClickHouse type), sort key, partition key and engine.

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

    def ddl(self, database: str) -> str:
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


class ClickHouseResource(ConfigurableResource):
    """ClickHouse through clickhouse-connect; embedded chDB by default."""

    dsn: str = Field(description="chdb://<folder> (embedded) or http(s)://user:pass@host:port")
    database: str = Field(default="quant", description="database holding the platform's tables")
    open_timeout_s: float = Field(
        default=120.0, description="how long to wait for another process to release chDB"
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
            self._run_client.command(f"CREATE DATABASE IF NOT EXISTS {self.database}")

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
            client.command(f"CREATE DATABASE IF NOT EXISTS {self.database}")
            yield client
        finally:
            client.close()

    def _open(self) -> Client:
        deadline = time.monotonic() + self.open_timeout_s
        delay = 0.2
        while True:
            try:
                return clickhouse_connect.get_client(dsn=self.dsn)
            except Exception as exc:  # chDB says so when another process holds the folder
                busy = "EmbeddedServer" in str(exc) or "lock" in str(exc).lower()
                if not (self.embedded and busy) or time.monotonic() > deadline:
                    raise
                get_dagster_logger().info("chDB folder busy in another process; retrying")
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def ensure_table(self, client: Client, spec: TableSpec) -> None:
        """Create the table on first use."""
        client.command(spec.ddl(self.database))

    def replace_partition(
        self,
        client: Client,
        spec: TableSpec,
        df: pd.DataFrame,
        day: str | pd.Timestamp,
        **keys: str,
    ) -> int:
        """Atomically make `df` the whole content of one partition; returns rows written.

        The partition is the day plus, for tables partitioned by more columns, their values in
        `keys` (e.g. ``kind="trades"``). Rows go to a staging copy of the table first and are
        swapped in with REPLACE PARTITION, so readers see the old day or the new one, never a
        mix, and a crash before the swap leaves the old data. The staging table's name is fixed
        per partition, so a rerun after a crash removes the leftover first. An empty frame drops
        the partition explicitly (ClickHouse refuses to replace from an empty source).
        """
        self.ensure_table(client, spec)
        day = pd.Timestamp(day).strftime("%Y-%m-%d")
        values = [day, *keys.values()]
        literal = f"'{day}'" if not keys else "(" + ", ".join(f"'{v}'" for v in values) + ")"
        target = f"{self.database}.{spec.name}"
        if df.empty:
            client.command(f"ALTER TABLE {target} DROP PARTITION {literal}")
            return 0
        mismatched = pd.to_datetime(df["date"]).dt.normalize().ne(pd.Timestamp(day))
        for col, value in keys.items():
            mismatched |= df[col].astype(str).ne(value)
        if mismatched.any():
            raise ValueError(
                f"{spec.name}: {int(mismatched.sum())} rows are not in partition {literal}"
            )
        suffix = "_".join(str(v) for v in values).replace("-", "")
        staging = f"{self.database}.{spec.name}__staging_{suffix}"
        client.command(f"DROP TABLE IF EXISTS {staging}")
        client.command(f"CREATE TABLE {staging} AS {target}")
        try:
            self.insert(client, staging, df[list(spec.columns)])
            client.command(f"ALTER TABLE {target} REPLACE PARTITION {literal} FROM {staging}")
        finally:
            client.command(f"DROP TABLE IF EXISTS {staging}")
        return len(df)

    def insert(self, client: Client, table: str, df: pd.DataFrame) -> None:
        """Insert a frame. In the embedded engine large frames go through an uncompressed Arrow
        IPC file that ClickHouse reads natively (several times faster than clickhouse-connect's
        conversion to Native; writing it is little more than a memory copy, where Parquet
        encoding took ~0.75 s per 1.4 million 43-column rows); servers get the frame over the
        wire."""
        if not self.embedded or len(df) < ARROW_MIN_ROWS:
            client.insert_df(table, df)
            return
        with tempfile.TemporaryDirectory(prefix="quant-insert-") as tmp:
            path = Path(tmp) / "rows.arrow"
            arrow = self._arrow(client, table, df)
            with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, arrow.schema) as out:
                out.write_table(arrow, max_chunksize=ARROW_BATCH_ROWS)
            del arrow
            cols = ", ".join(f"`{c}`" for c in df.columns)
            client.command(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM file('{path}', Arrow)")

    @staticmethod
    def _arrow(client: Client, table: str, df: pd.DataFrame) -> pa.Table:
        """The frame as Arrow, NaN kept as NaN in float columns that are not Nullable.

        pyarrow turns NaN into null, and ClickHouse stores a null in a non-Nullable column as
        the type's default, i.e. an empty order-book level's NaN price would become 0.0
        (insert_df keeps NaN there, and maps NaN to NULL in Nullable columns, as this does).
        """
        arrow = pa.Table.from_pandas(df, preserve_index=False)
        types = dict(row[:2] for row in client.query(f"DESCRIBE TABLE {table}").result_rows)
        for i, name in enumerate(arrow.column_names):
            if df[name].dtype == "float64" and not types[name].startswith("Nullable"):
                nan_kept = pa.array(df[name].to_numpy(), type=pa.float64(), from_pandas=False)
                arrow = arrow.set_column(i, name, nan_kept)
        return arrow

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
