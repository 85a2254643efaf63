"""The API's access to ClickHouse: a client per unit of work through `ClickHouseResource`.

The embedded chDB folder can be open in one process at a time, and a Dagster run holds it from
its start to its end: the API opens it for a cache miss (or an audit flush) and closes it at
once, and waits up to `wait_s` while a run holds it (then `StoreBusy`, answered 503). Inside
the API process the embedded store is used by one thread at a time. A ClickHouse server has
none of these limits: clients are opened side by side.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, nullcontext

import pandas as pd
from clickhouse_connect.driver.client import Client

from resources.clickhouse import ClickHouseResource, TableSpec

_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_LOCK = threading.Lock()


def _embedded_lock(dsn: str) -> threading.Lock:
    """One lock per embedded folder in this process, whichever Store uses it."""
    with _LOCKS_LOCK:
        return _LOCKS.setdefault(dsn, threading.Lock())


class StoreBusy(RuntimeError):
    """The embedded store stayed held by another process (a run) for longer than allowed."""


class Store:
    """ClickHouse for the API: `client()` for a unit of work, `query` for a counted SELECT
    (`reads` counts them: tests see whether a response came from the cache)."""

    def __init__(self, dsn: str, database: str, wait_s: float) -> None:
        self.resource = ClickHouseResource(dsn=dsn, database=database, open_timeout_s=wait_s)
        self._lock = _embedded_lock(dsn) if self.resource.embedded else None
        self._ensured: set[str] = set()
        self.reads = 0

    @property
    def database(self) -> str:
        return self.resource.database

    @contextmanager
    def client(self) -> Iterator[Client]:
        """A connected client, closed afterwards; StoreBusy when the embedded store stays
        held by another process."""
        with self._lock or nullcontext(), ExitStack() as stack:
            try:
                client = stack.enter_context(self.resource.client())
            except Exception as exc:
                if self.resource.embedded and "EmbeddedServer" in str(exc):
                    raise StoreBusy("the embedded ClickHouse store is held by a run") from exc
                raise
            yield client

    def ensure(self, client: Client, spec: TableSpec) -> None:
        """Create the table on its first use by this process."""
        if spec.name not in self._ensured:
            self.resource.ensure_table(client, spec)
            self._ensured.add(spec.name)

    def query(self, client: Client, sql: str, parameters: dict | None = None) -> pd.DataFrame:
        """A SELECT (`{db}` names the database) as a frame; counted in `reads`."""
        self.reads += 1
        return self.resource.query_df(client, sql, parameters)

    def table_exists(self, client: Client, table: str) -> bool:
        return bool(
            client.command(
                "SELECT count() FROM system.tables WHERE database = %(db)s AND name = %(t)s",
                parameters={"db": self.database, "t": table},
            )
        )
