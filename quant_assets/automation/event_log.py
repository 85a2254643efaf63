"""The embedded instance's event log: Dagster's SQLite event log, with its engines kept.

Dagster 1.13's `SqliteEventLogStorage` builds a new SQLAlchemy engine for every event it
stores (a run of the daily pipeline stores about 360), so each insert statement is compiled
again and each commit waits for the disk: about 15 ms an event, 4 to 5 s of a daily run at
100 stocks. `SqliteEventLogStorage` here keeps one engine per database file for the process
(the most recently used few, so a long-lived webserver or daemon does not collect one per
run), which keeps SQLAlchemy's compiled-statement cache, and commits with SQLite's
`synchronous=NORMAL`, the setting SQLite recommends for WAL databases (Dagster creates them
in WAL mode): a crash of the process loses nothing and cannot corrupt a file, a power cut can
lose the last events of a run. Connections are still opened per event (no pool), as Dagster
does, so several processes (webserver, daemon, run workers) share the files as before. A
deleted run's file is removed rather than left empty.
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
from dagster._core.storage.event_log.sqlite import sqlite_event_log
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._serdes import ConfigurableClassData
from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

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
                poolclass=NullPool,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
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
        """Delete a run's events, and its database file with them: Dagster empties the file
        but leaves it on disk, so deleted runs would still hold their megabytes."""
        super().delete_events(run_id)
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

    def dispose(self) -> None:
        with self._db_lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()
        super().dispose()
