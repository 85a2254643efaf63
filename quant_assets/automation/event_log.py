"""The embedded instance's event log: Dagster's SQLite event log, with its engines kept.

Dagster 1.13's `SqliteEventLogStorage` builds a new SQLAlchemy engine for every event it
stores and opens and closes a connection for it (no pool), so each insert statement is
compiled again, and closing the only connection to a WAL database makes SQLite checkpoint the
log and delete its `-wal` and `-shm` files, which the next event creates again: about 6 ms an
event, and a daily run over a range stores thousands. `SqliteEventLogStorage` here keeps one
engine per database file for the process (the most recently used few, so a long-lived
webserver or daemon does not collect one per run), each keeping one idle connection open
(more are opened when threads need them, and closed after), and commits with SQLite's
`synchronous=NORMAL`, the setting SQLite recommends for WAL databases (Dagster creates them
in WAL mode): about 2 ms an event. A crash of the process loses nothing and cannot corrupt a
file, a power cut can lose the last events of a run. SQLite locks per transaction, so several
processes (webserver, daemon, run workers) share the files as before. A deleted run's file is
removed rather than left empty.
Production instances use PostgreSQL and are not concerned.
"""

from __future__ import annotations

import contextlib
import os
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

import dagster._check as check
from dagster import Field, StringSource
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable
from dagster._core.storage.event_log.sqlite import sqlite_event_log
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._serdes import ConfigurableClassData
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import QueuePool

# Open engines kept per process: a run's file and the index file, with room for the
# webserver reading a few runs at once.
KEPT_ENGINES = 8


def _normal_sync(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class SqliteEventLogStorage(sqlite_event_log.SqliteEventLogStorage):
    """Dagster's SQLite event log with an engine kept per database file (see the module).
    `base_dir` defaults to where Dagster keeps it, `$DAGSTER_HOME/history/runs` (an instance
    loaded from another folder than $DAGSTER_HOME gives `base_dir` in its dagster.yaml)."""

    def __init__(self, base_dir: str | None = None, inst_data: ConfigurableClassData | None = None):
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        if base_dir is None:
            home = os.environ.get("DAGSTER_HOME")
            if not home:
                raise ValueError(
                    "SqliteEventLogStorage: set DAGSTER_HOME (its event logs go to "
                    "$DAGSTER_HOME/history/runs) or give base_dir in dagster.yaml"
                )
            base_dir = os.path.join(home, "history", "runs")
        super().__init__(base_dir, inst_data)

    @classmethod
    def config_type(cls) -> dict:
        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: dict):
        return cls(inst_data=inst_data, **config_value)

    def _engine(self, shard: str) -> Engine:
        engine = self._engines.get(shard)
        if engine is None:
            engine = create_engine(
                self.conn_string_for_shard(shard),
                # one connection kept open: see the module docstring
                poolclass=QueuePool,
                pool_size=1,
                max_overflow=-1,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
            )
            event.listen(engine, "connect", _normal_sync)
            self._engines[shard] = engine
            while len(self._engines) > KEPT_ENGINES:
                self._engines.popitem(last=False)[1].dispose()
        self._engines.move_to_end(shard)
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            check.str_param(shard, "shard")
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def delete_events(self, run_id: str) -> None:
        """Delete a run's events and check evaluations, and its database file with them:
        Dagster empties the file but leaves it on disk, so deleted runs would still hold
        their megabytes."""
        super().delete_events(run_id)
        # Dagster keeps a deleted run's check evaluations in the index (a few KB each, some
        # thousands a demo): they go with the run, as its other events do.
        with self.index_connection() as conn:
            conn.execute(
                AssetCheckExecutionsTable.delete().where(
                    AssetCheckExecutionsTable.c.run_id == run_id
                )
            )
        with self._db_lock:
            engine = self._engines.pop(run_id, None)
            if engine is not None:
                engine.dispose()
            self._initialized_dbs.discard(run_id)
            path = self.path_for_shard(run_id)
            for leftover in (path, f"{path}-wal", f"{path}-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(leftover)

    def compact_index(self) -> None:
        """Give the index file back the pages of deleted runs (SQLite's VACUUM): deleting
        events frees pages inside the file but does not shrink it."""
        with self._db_lock:
            engine = self._engine(INDEX_SHARD_NAME)
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM")
                # VACUUM writes the compacted file through the WAL: move it into the file and
                # empty the WAL, so the disk use drops now rather than at the next close
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def dispose(self) -> None:
        with self._db_lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()
        super().dispose()
