"""Publishing staged partitions: several tables' partitions made visible together, under a journal.

ClickHouse swaps one table's partition atomically (REPLACE PARTITION) but has no transaction
across tables, and a step may publish two (a raw table and its quarantine) that must never
disagree. So a publication is written ahead to the `publications` journal with every staged
partition it swaps, then the swaps run, the `stored_partitions` log is written, and the
journal marks it done before the staging tables are dropped. A process killed between two
swaps leaves a journal entry "swapping" whose staging tables all still exist: the next
process that opens the store (`recover`) rolls it forward, so the two tables agree again
before anything reads them. Staging tables of runs that are no longer alive and that no
unfinished publication needs (a run killed mid-write) are dropped on the way.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
from clickhouse_connect.driver.client import Client

from resources.clickhouse import STAGING_MARK, ClickHouseResource, StagedPartition, TableSpec

# What each table holds: one row per published partition (the newest write wins).
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

# The write-ahead journal of publications: "swapping" before the first swap, "done" after the
# last; FINAL gives each publication's latest state.
PUBLICATIONS = TableSpec(
    name="publications",
    columns={
        "publication": "String",
        "state": "LowCardinality(String)",
        "run_id": "String",
        "parts": "String",  # JSON: the staged partitions and their log entries
        "written_at": "DateTime64(3, 'UTC')",
    },
    order_by=("publication",),
    partition_by=None,
    engine="ReplacingMergeTree(written_at)",
)


@dataclass(frozen=True)
class Part:
    """A staged partition and the entry it gets in `stored_partitions` once published."""

    staged: StagedPartition
    table: str  # the table's name (without database)
    slice: str  # e.g. "kind=trades", "" for a table written whole by one asset
    date: str

    def to_dict(self) -> dict:
        return {**self.staged.to_dict(), "name": self.table, "slice": self.slice, "date": self.date}

    @classmethod
    def from_dict(cls, d: dict) -> Part:
        return cls(StagedPartition.from_dict(d), d["name"], d["slice"], d["date"])


def run_tag(run_id: str | None) -> str:
    """A run id as it appears in staging-table names (hex, no dashes)."""
    return (run_id or "").replace("-", "")


def publish(ch: ClickHouseResource, client: Client, parts: list[Part], run_id: str) -> None:
    """Make every staged part visible: journal, swaps, log, journal done, staging dropped."""
    ch.ensure_table(client, STORED_PARTITIONS)
    publication = uuid.uuid4().hex
    _journal(ch, client, publication, "swapping", run_id, parts)
    _apply(ch, client, parts, run_id)
    _journal(ch, client, publication, "done", run_id, parts)
    for staging in dict.fromkeys(p.staged.staging for p in parts if p.staged.rows):
        ch.drop_staging(client, staging)
    tidy(ch, client, parts)


def tidy(ch: ClickHouseResource, client: Client, parts: list[Part]) -> None:
    """Leave no litter on disk (embedded engine): the replaced parts of the published tables go,
    and the journal and the partition log are merged once they have many parts."""
    for table in dict.fromkeys(p.staged.table for p in parts):
        ch.clear_old_parts(client, table)
    for spec in (PUBLICATIONS, STORED_PARTITIONS):
        ch.compact_log(client, f"{ch.database}.{spec.name}")


def _apply(ch: ClickHouseResource, client: Client, parts: list[Part], run_id: str) -> None:
    for table in dict.fromkeys(p.staged.table for p in parts):  # one ALTER a table
        ch.swap_in(client, *(p.staged for p in parts if p.staged.table == table))
    now = datetime.now(UTC)
    log = pd.DataFrame(
        {
            "table": [p.table for p in parts],
            "slice": [p.slice for p in parts],
            "date": [pd.Timestamp(p.date) for p in parts],
            "rows": [p.staged.rows for p in parts],
            "run_id": [run_id or "" for _ in parts],
            "written_at": [now for _ in parts],
        }
    )
    ch.insert(client, f"{ch.database}.{STORED_PARTITIONS.name}", log)


def _journal(
    ch: ClickHouseResource,
    client: Client,
    publication: str,
    state: str,
    run_id: str,
    parts: list[Part],
) -> None:
    ch.ensure_table(client, PUBLICATIONS)
    entry = pd.DataFrame(
        {
            "publication": [publication],
            "state": [state],
            "run_id": [run_id or ""],
            "parts": [json.dumps([p.to_dict() for p in parts])],
            "written_at": [datetime.now(UTC)],
        }
    )
    ch.insert(client, f"{ch.database}.{PUBLICATIONS.name}", entry)


def recover(ch: ClickHouseResource, client: Client, alive: Callable[[str], bool]) -> list[str]:
    """Roll forward the publications of dead runs that stopped between their swaps (unless a
    later publication replaced those days), then drop the staging tables nothing needs any
    more. `alive(run_id)` says whether a run may still be working (its tables are left
    alone). Returns what was done, one line each."""
    ch.ensure_table(client, PUBLICATIONS)
    ch.ensure_table(client, STORED_PARTITIONS)
    done = []
    unfinished = ch.query_df(
        client,
        f"SELECT publication, run_id, parts FROM {{db}}.{PUBLICATIONS.name} FINAL "
        "WHERE state = 'swapping' ORDER BY written_at",
    )
    existing = _staging_tables(ch, client)
    needed: set[str] = set()
    for publication, run_id, raw in unfinished.itertuples(index=False):
        parts = [Part.from_dict(d) for d in json.loads(raw)]
        if alive(run_id):
            needed |= {p.staged.staging for p in parts}
            continue
        if _superseded(ch, client, parts, publication):  # a later publication replaced these days
            _journal(ch, client, publication, "superseded", run_id, parts)
            done.append(f"publication {publication} of run {run_id} superseded by a later one")
            continue
        lost = [
            p.staged.staging for p in parts if p.staged.rows and p.staged.staging not in existing
        ]
        if lost:  # cannot happen in publish's order; never publish half of it
            _journal(ch, client, publication, "abandoned", run_id, parts)
            done.append(f"publication {publication} of run {run_id} abandoned: {lost} are gone")
            continue
        _apply(ch, client, parts, run_id)
        _journal(ch, client, publication, "done", run_id, parts)
        done.append(
            f"rolled forward the publication of run {run_id} stopped between its swaps: "
            + ", ".join(f"{p.table} {p.date} {p.slice}".strip() for p in parts)
        )
    for name in sorted(existing - needed):
        tag = name.rsplit("_", 1)[-1]
        if len(tag) == 32 and alive(tag):
            continue
        client.command(f"DROP TABLE IF EXISTS {name}")
        done.append(f"dropped the leftover staging table {name}")
    return done


def _superseded(
    ch: ClickHouseResource, client: Client, parts: list[Part], publication: str
) -> bool:
    """True when a publication finished after `publication` began covers one of its parts."""
    later = ch.query_df(
        client,
        f"SELECT parts FROM {{db}}.{PUBLICATIONS.name} FINAL WHERE state = 'done' AND "
        f"written_at > (SELECT min(written_at) FROM {{db}}.{PUBLICATIONS.name} "
        "WHERE publication = %(p)s)",
        {"p": publication},
    )
    mine = {(p.staged.table, p.staged.literal) for p in parts}
    return any(
        (d["table"], d["literal"]) in mine for raw in later["parts"] for d in json.loads(raw)
    )


def _staging_tables(ch: ClickHouseResource, client: Client) -> set[str]:
    names = ch.query_df(
        client,
        "SELECT name FROM system.tables WHERE database = %(db)s AND position(name, %(mark)s) > 0",
        {"db": ch.database, "mark": STAGING_MARK},
    )
    return {f"{ch.database}.{n}" for n in names["name"]}


def published(
    ch: ClickHouseResource, client: Client, table: str, slice_label: str, day: str
) -> str:
    """What is published for one partition, in a sentence (for messages about a day that was
    not replaced)."""
    ch.ensure_table(client, STORED_PARTITIONS)
    log = ch.query_df(
        client,
        f"SELECT rows, run_id, toString(written_at) AS at FROM {{db}}.{STORED_PARTITIONS.name} "
        "FINAL WHERE table = %(t)s AND slice = %(s)s AND date = %(d)s",
        {"t": table, "s": slice_label, "d": day},
    )
    if log.empty:
        return f"Nothing was published for {day} before, and nothing is now."
    row = log.iloc[0]
    return (
        f"The published {day} stays as it was: {int(row['rows']):,} rows, written by run "
        f"{str(row['run_id'])[:8]} at {row['at']} UTC."
    )
