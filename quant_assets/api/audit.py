"""The audit log: a row per request in the `api_audit` table, written in batches off the
request path.

A request only appends its row to a queue in memory; a background thread writes the rows
queued every `flush_s` seconds (and on shutdown), those queued when the write starts: rows
arriving meanwhile wait for the next one, so under load the store is still opened once per
`flush_s`, not once per batch. With an embedded store the inserts run in the store agent's
child process (`store_agent`: chDB holds the GIL while it opens and inserts, which would
stall the event loop); with a server, in this process. A failed write keeps the rows and is
retried at the next flush, with a warning; when the store stays unreachable (a run holding
the embedded store for long) and the queue passes `max_pending` rows, the rows are spilled to
a JSON-lines file in `spill_dir` and written from there once the store answers. Without a
spill folder, rows beyond `max_pending` are dropped with an error naming how many: never
silently.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from quant_assets.api.store import Store
from quant_assets.api.tables import API_AUDIT

if TYPE_CHECKING:
    from quant_assets.api.store_agent import StoreAgent

log = logging.getLogger(__name__)
PARAMS_CHARS = 1000  # a row's parameters are cut to this many characters


@dataclass(frozen=True)
class AuditRow:
    """One request as audited: who (key id, client address), what (method, route template,
    parameters), how it ended (status, latency)."""

    ts: float  # seconds since the epoch
    request_id: str
    key_id: str
    method: str
    route: str
    params: str
    status: int
    latency_ms: float
    client: str


def params_text(params: dict[str, object]) -> str:
    """Parameters as stored: JSON, cut to PARAMS_CHARS characters."""
    text = json.dumps(params, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= PARAMS_CHARS else text[: PARAMS_CHARS - 1] + "…"


def frame_of(rows: list[AuditRow]) -> pd.DataFrame:
    """Rows as the `api_audit` table's frame."""
    frame = pd.DataFrame([asdict(r) for r in rows])
    ts = pd.to_datetime(frame["ts"], unit="s", utc=True)
    frame["ts"] = ts
    frame["date"] = ts.dt.tz_localize(None).dt.normalize()
    frame["status"] = frame["status"].astype("uint16")
    return frame[list(API_AUDIT.columns)]


FIELDS = tuple(f.name for f in fields(AuditRow))


def row_values(row: AuditRow) -> tuple:
    """A row as the tuple of its fields (how it is queued and travels to the store agent)."""
    return tuple(getattr(row, name) for name in FIELDS)


def write_rows(store: Store, rows: Sequence[Sequence[object]]) -> int:
    """Insert rows (each the values of an AuditRow's fields) into `api_audit`; their count."""
    with store.client() as client:
        store.ensure(client, API_AUDIT)
        store.resource.insert(
            client, f"{store.database}.api_audit", frame_of([AuditRow(*r) for r in rows])
        )
    return len(rows)


class AuditLog:
    """The queue of audit rows and the thread that writes it (see the module docstring);
    through `agent` when given, else in this process."""

    def __init__(
        self,
        store: Store,
        flush_s: float = 2.0,
        spill_dir: Path | None = None,
        max_batch: int = 20_000,
        max_pending: int = 200_000,
        agent: StoreAgent | None = None,
    ) -> None:
        self.store, self.flush_s, self.spill_dir, self.agent = store, flush_s, spill_dir, agent
        self.max_batch, self.max_pending = max_batch, max_pending
        # rows as plain tuples of their fields: the collector stops tracking a tuple of
        # numbers and strings, so a queue of many thousand rows adds nothing to the full
        # collections that would otherwise pause the event loop
        self._pending: deque[tuple] = deque()
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False
        self.written = 0

    def record(self, row: AuditRow) -> None:
        """Queue a row (cheap: the request path calls it)."""
        with self._lock:
            self._pending.append(row_values(row))

    @property
    def pending(self) -> int:
        return len(self._pending)

    def start(self) -> None:
        """Start the background writer."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="api-audit", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the writer and write what is queued (spilled to a file when that fails)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.flush_s + 60)
            self._thread = None
        if not self.flush() and self._pending:
            self._spill(final=True)

    def _run(self) -> None:
        while not self._stop.wait(self.flush_s):
            self.flush()

    def flush(self) -> bool:
        """Write the rows queued when it starts (and any spilled ones); False when the store
        refused."""
        with self._flushing:
            try:
                self._write_spilled()
                todo = len(self._pending)  # rows queued from now on wait for the next flush
                while todo > 0:
                    with self._lock:
                        batch = list(islice(self._pending, min(self.max_batch, todo)))
                    self._insert(batch)
                    with self._lock:
                        for _ in batch:
                            self._pending.popleft()
                    todo -= len(batch)
                    self.written += len(batch)
            except Exception as exc:  # kept and retried; the API answers on regardless
                if not self._failing:
                    log.warning(
                        "audit rows not written yet (%s: %s); %d queued, retried every %.0f s",
                        type(exc).__name__,
                        str(exc)[:200],
                        len(self._pending),
                        self.flush_s,
                    )
                self._failing = True
                if len(self._pending) > self.max_pending:
                    self._spill()
                return False
            if self._failing:
                log.info("audit rows written again")
                self._failing = False
            return True

    def _insert(self, rows: list[tuple]) -> None:
        if self.agent is None:
            write_rows(self.store, rows)
        else:
            self.agent.call("audit", rows=rows)

    def _spill(self, final: bool = False) -> None:
        with self._lock:
            rows = list(self._pending)
            self._pending.clear()
        if self.spill_dir is None:
            if final:
                log.error("%d audit rows lost at shutdown: the store refused them", len(rows))
            else:
                keep = rows[-self.max_pending :]
                with self._lock:
                    self._pending.extendleft(reversed(keep))
                log.error("%d audit rows dropped: the store refused them", len(rows) - len(keep))
            return
        self.spill_dir.mkdir(parents=True, exist_ok=True)
        path = self.spill_dir / f"audit-{time.time_ns()}.jsonl"
        with path.open("w") as out:
            for row in rows:
                out.write(json.dumps(dict(zip(FIELDS, row, strict=True))) + "\n")
        log.warning("%d audit rows spilled to %s until the store takes them", len(rows), path)

    def _write_spilled(self) -> None:
        if self.spill_dir is None or not self.spill_dir.is_dir():
            return
        for path in sorted(self.spill_dir.glob("audit-*.jsonl")):
            rows = [
                row_values(AuditRow(**json.loads(line)))
                for line in path.read_text().splitlines()
                if line
            ]
            for start in range(0, len(rows), self.max_batch):
                self._insert(rows[start : start + self.max_batch])
            path.unlink()  # a crash between insert and unlink writes these rows twice, not never
            self.written += len(rows)
            log.info("%d spilled audit rows written from %s", len(rows), path)


def now_s() -> float:
    """The wall clock in seconds (the audit's time)."""
    return datetime.now(UTC).timestamp()
