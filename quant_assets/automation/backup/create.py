"""Backing up the platform: every ClickHouse table, the MLflow store and the Dagster instance,
into an object store (S3 or a folder); and retention over the backups there.

A table is exported partition by partition in ClickHouse's Native format (the engine's own
column encoding, read back by any ClickHouse version, server or chDB), compressed and, with a
key, encrypted (`backup_codec`). The manifest (`backup_manifest`) records each table's DDL
(`SHOW CREATE TABLE`) and each partition's rows, an order-independent content hash (the sum of
`cityHash64` over the rows) and its object with the sha256 of the stored bytes and of the
plaintext. The manifest is written last and `latest` moved after it: a backup that fails at
any point leaves the previous one the latest complete backup.

Objects are content-addressed, and a partition whose parts are unchanged since the previous
backup (same part names and file hashes in `system.parts`, same DDL, same key) reuses the
previous object without being read: each daily backup is complete on its own, yet uploads
only the partitions written since. Retention deletes the objects no kept backup references.

ClickHouse's own BACKUP ... TO S3 works in chDB 26.9 (measured), but it was not chosen: the
S3 credentials would travel in the SQL text (and a server's query log), the server itself must
reach the store (a local folder store is out of its reach), and its archives could not be
encrypted with our key nor share the manifest, checksums and retention of the MLflow and
Dagster archives.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from clickhouse_connect.driver.binding import quote_identifier
from clickhouse_connect.driver.client import Client

from quant_assets.automation.backup.archives import pack_folder
from quant_assets.automation.backup.codec import Encoded, Encoder, key_id
from quant_assets.automation.backup.manifest import (
    BACKUPS,
    MANIFEST,
    OBJECTS,
    STARTED,
    ArchiveEntry,
    BackupError,
    Manifest,
    ObjectRef,
    PartitionEntry,
    TableEntry,
    latest_backup,
    list_backups,
    move_latest,
    read_manifest,
    write_manifest,
)
from quant_assets.automation.backup.postgres import dump_postgres, shown_url
from quant_assets.automation.backup.retention import (
    RetentionPlan,
    backup_id,
    backup_time,
    plan_retention,
)
from resources.backup_store import ObjectStore
from resources.clickhouse import STAGING_MARK

# Engines whose data is the table as a whole (no parts): exported in one object.
WHOLE_TABLE_ENGINES = frozenset(
    {"Log", "TinyLog", "StripeLog", "Memory", "Set", "Join", "EmbeddedRocksDB"}
)
# Order-independent: equal for the same rows whatever the part layout or the read order.
CONTENT_HASH = "sum(cityHash64(tuple(*)))"
EXPORT_READ = 8 << 20  # chDB's stream hands out large blocks: fewer, bigger reads copy less
EXPORT_ATTEMPTS = 3  # a partition rewritten while it was exported is exported again

_log = logging.getLogger(__name__)
Log = Callable[[str], None]


@dataclass
class BackupSummary:
    """What a backup did."""

    backup_id: str
    database: str
    tables: dict[str, int]  # table -> rows
    partitions: int
    exported: int  # partitions read from ClickHouse this time
    reused: int  # partitions unchanged since the previous backup (not read)
    uploaded_objects: int
    uploaded_bytes: int
    stored_bytes: int  # all objects the backup references
    archives: dict[str, int]  # folder name -> files
    seconds: float

    @property
    def rows(self) -> int:
        return sum(self.tables.values())


@dataclass
class RetentionSummary:
    """What retention kept and deleted."""

    kept: dict[str, list[str]]
    deleted_backups: list[str]
    abandoned: list[str]
    deleted_objects: int
    freed_bytes: int


def qualified_name(database: str, table: str) -> str:
    """`database`.`table`, quoted for SQL."""
    return f"{quote_identifier(database)}.{quote_identifier(table)}"


def _tables(client: Client, database: str) -> list[tuple[str, str]]:
    """(name, engine) of the database's tables, staging tables and views' inner tables left
    out (transient, or recreated by their view)."""
    rows = client.query(
        "SELECT name, engine FROM system.tables WHERE database = %(db)s AND NOT is_temporary "
        "ORDER BY name",
        parameters={"db": database},
    ).result_rows
    return [(n, e) for n, e in rows if STAGING_MARK not in n and not n.startswith(".inner")]


def _kind(engine: str) -> str:
    if engine.endswith("MergeTree"):
        return "parts"
    return "whole" if engine in WHOLE_TABLE_ENGINES else "schema"


def _parts(client: Client, database: str, table: str) -> dict[str, tuple[str, str]]:
    """partition id -> (partition as text, fingerprint of its active parts)."""
    rows = client.query(
        "SELECT partition_id, any(partition), "
        "arraySort(groupArray(concat(name, ':', hash_of_all_files))) "
        "FROM system.parts WHERE database = %(db)s AND table = %(t)s AND active "
        "GROUP BY partition_id ORDER BY partition_id",
        parameters={"db": database, "t": table},
    ).result_rows
    return {
        pid: (text, hashlib.sha256("\n".join(parts).encode()).hexdigest())
        for pid, text, parts in rows
    }


def partition_contents(
    client: Client, source: str, where: str = "", params: dict | None = None
) -> dict:
    """partition id -> (rows, content hash) of the rows of `source` that `where` selects."""
    rows = client.query(
        f"SELECT _partition_id, count(), toString({CONTENT_HASH}) FROM {source} {where} "
        "GROUP BY _partition_id",
        parameters=params or {},
    ).result_rows
    return {pid: (int(n), h) for pid, n, h in rows}


def table_content(client: Client, source: str) -> tuple[int, str]:
    """(rows, content hash) of a whole table (engines without partitions)."""
    n, h = client.query(f"SELECT count(), toString({CONTENT_HASH}) FROM {source}").result_rows[0]
    return int(n), h


def _export(client: Client, sql: str, spool: Path, key: bytes | None) -> Encoded:
    """Stream a query's Native result through the encoder into a spool file."""
    stream = client.raw_stream(sql, fmt="Native")
    try:
        with open(spool, "wb") as out:
            encoder = Encoder(out, key)
            while piece := stream.read(EXPORT_READ):
                encoder.write(piece)
            return encoder.close()
    finally:
        stream.close()


class _Uploader:
    """Puts spooled objects under their content address. An object already in the store is
    trusted, and not sent again, only when the previous complete backup references it (which
    retention always keeps); an orphan of the same content (left by an interrupted backup) is
    sent again, which renews its date, so a retention running meanwhile cannot take it."""

    def __init__(self, store: ObjectStore, trusted: set[str]) -> None:
        self.store = store
        self.existing = {o.key: o.size for o in store.list(OBJECTS)}
        self.trusted = set(trusted)
        self.objects = 0
        self.bytes = 0

    def has(self, ref: ObjectRef) -> bool:
        return ref.key in self.trusted and self.existing.get(ref.key) == ref.stored_bytes

    def put(self, spool: Path, info: Encoded) -> ObjectRef:
        ref = ObjectRef.from_encoded(info)
        if not self.has(ref):
            self.store.put_file(ref.key, spool)
            self.existing[ref.key] = ref.stored_bytes
            self.trusted.add(ref.key)
            self.objects += 1
            self.bytes += ref.stored_bytes
        spool.unlink(missing_ok=True)
        return ref


def _backup_table(
    client: Client,
    database: str,
    name: str,
    engine: str,
    previous: TableEntry | None,
    key: bytes | None,
    uploader: _Uploader,
    spool: Path,
) -> tuple[TableEntry, int]:
    """A table's entry, exporting the partitions that changed; returns it and the number of
    partitions exported."""
    source = qualified_name(database, name)
    ddl = client.query(f"SHOW CREATE TABLE {source}").result_rows[0][0]
    entry = TableEntry(name, engine, ddl, _kind(engine))
    if entry.kind == "schema":
        return entry, 0
    if entry.kind == "whole":
        rows, content = table_content(client, source)
        info = _export(client, f"SELECT * FROM {source}", spool, key)
        ref = uploader.put(spool, info)
        entry.partitions.append(PartitionEntry("all", "", rows, content, ref))
        return entry, 1
    reusable = {}
    if previous is not None and previous.ddl == ddl:
        reusable = {p.partition_id: p for p in previous.partitions if uploader.has(p.object)}
    parts = _parts(client, database, name)
    exported = 0
    for pid, (text, fingerprint) in parts.items():
        old = reusable.get(pid)
        if old is not None and old.fingerprint == fingerprint:
            entry.partitions.append(old)
            continue
        for _ in range(EXPORT_ATTEMPTS):
            params = {"p": pid}
            counted = partition_contents(client, source, "WHERE _partition_id = %(p)s", params)
            rows, content = counted.get(pid, (0, "0"))
            # one thread: the same parts give the same bytes, hence the same object
            info = _export(
                client,
                f"SELECT * FROM {source} WHERE _partition_id = {_literal(pid)} "
                "SETTINGS max_threads = 1",
                spool,
                key,
            )
            after = _parts(client, database, name).get(pid, (text, None))[1]
            if after == fingerprint:
                break
            fingerprint = after  # written to while exported: again, from the new parts
        else:
            raise BackupError(
                f"table {name} partition {pid} changed during each of {EXPORT_ATTEMPTS} exports"
            )
        if fingerprint is None:  # the partition was dropped meanwhile
            spool.unlink(missing_ok=True)
            continue
        ref = uploader.put(spool, info)
        entry.partitions.append(PartitionEntry(pid, text, rows, content, ref, fingerprint))
        exported += 1
    return entry, exported


def _literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _mib(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB"


def run_backup(
    client: Client,
    database: str,
    store: ObjectStore,
    *,
    key: bytes | None = None,
    folders: Mapping[str, Path] | None = None,
    postgres: Mapping[str, str] | None = None,
    now: datetime | None = None,
    log: Log = _log.info,
    spool_dir: Path | None = None,
) -> BackupSummary:
    """Back up every table of `database`, the `folders` (name -> folder: the MLflow store,
    the Dagster instance) and the `postgres` databases (name -> URL: their Postgres-backed
    counterparts) into `store`; complete once its manifest is written, then `latest` moves
    to it. A failure at any point leaves the previous backup the latest complete one."""
    clash = sorted(set(folders or {}) & set(postgres or {}))
    if clash:
        raise ValueError(f"archive names used twice (folder and database): {clash}")
    started = time.monotonic()
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    bid = backup_id(moment)
    if store.list(f"{BACKUPS}{bid}/"):
        raise BackupError(f"backup {bid} already exists in {store.describe()}")
    store.put_bytes(
        f"{BACKUPS}{bid}/{STARTED}",
        json.dumps(
            {"backup_id": bid, "started_at": moment.isoformat(), "database": database}
        ).encode(),
    )
    previous = _previous_manifest(store, key, log)
    uploader = _Uploader(store, set(previous.objects()) if previous else set())
    own_key = key_id(key) if key is not None else None
    same_key = previous is not None and previous.key_id == own_key
    old_tables = {t.name: t for t in previous.tables} if same_key and previous else {}
    old_archives = {a.name: a for a in previous.archives} if same_key and previous else {}
    tables: list[TableEntry] = []
    exported = 0
    with tempfile.TemporaryDirectory(prefix="quant-backup-", dir=spool_dir) as scratch:
        spool = Path(scratch) / "object"
        for name, engine in _tables(client, database):
            t0, before = time.monotonic(), uploader.bytes
            entry, n = _backup_table(
                client, database, name, engine, old_tables.get(name), key, uploader, spool
            )
            tables.append(entry)
            exported += n
            log(
                f"{name}: {len(entry.partitions)} partitions, {entry.rows:,} rows, {n} exported,"
                f" {len(entry.partitions) - n} unchanged; {_mib(uploader.bytes - before)} "
                f"uploaded in {time.monotonic() - t0:.1f} s"
            )
        archives = []
        for name, folder in (folders or {}).items():
            folder = Path(folder)
            if not folder.is_dir():
                log(f"{name}: folder {folder} does not exist; not in this backup")
                continue
            archives.append(_backup_folder(name, folder, key, uploader, spool, old_archives, log))
        for name, url in (postgres or {}).items():
            t0 = time.monotonic()
            with open(spool, "wb") as out:
                encoder = Encoder(out, key)
                dump_postgres(url, encoder)  # type: ignore[arg-type]
                info = encoder.close()
            ref = uploader.put(spool, info)
            archives.append(ArchiveEntry(name, shown_url(url), 0, [], [], [], ref, "postgres"))
            log(
                f"{name}: pg_dump of {shown_url(url)}, {_mib(ref.stored_bytes)} stored, "
                f"{time.monotonic() - t0:.1f} s"
            )
        version = client.query("SELECT version()").result_rows[0][0]
    manifest = Manifest(
        backup_id=bid,
        created_at=moment.isoformat(),
        completed_at=datetime.now(UTC).isoformat(),
        database=database,
        clickhouse_version=version,
        key_id=own_key,
        tables=tables,
        archives=archives,
    )
    write_manifest(store, manifest, key)  # the backup is complete from here on
    move_latest(store, bid)
    referenced = {ref: uploader.existing.get(ref, 0) for ref in manifest.objects()}
    summary = BackupSummary(
        backup_id=bid,
        database=database,
        tables={t.name: t.rows for t in tables},
        partitions=sum(len(t.partitions) for t in tables),
        exported=exported,
        reused=sum(len(t.partitions) for t in tables) - exported,
        uploaded_objects=uploader.objects,
        uploaded_bytes=uploader.bytes,
        stored_bytes=sum(referenced.values()),
        archives={a.name: a.files for a in archives},
        seconds=time.monotonic() - started,
    )
    log(
        f"backup {bid} of {database} complete in {store.describe()}: {len(tables)} tables, "
        f"{summary.rows:,} rows, {_mib(summary.uploaded_bytes)} uploaded, "
        f"{_mib(summary.stored_bytes)} referenced, {summary.seconds:.1f} s"
    )
    return summary


def _previous_manifest(store: ObjectStore, key: bytes | None, log: Log) -> Manifest | None:
    """The latest complete backup's manifest, for the partitions it lets us reuse; None when
    there is none or it cannot be read (then everything is exported again)."""
    latest = latest_backup(store)
    if latest is None:
        return None
    try:
        return read_manifest(store, latest, key)
    except Exception as error:  # another key, a damaged manifest: start afresh, say why
        log(f"previous backup {latest} not reused (every partition is exported): {error}")
        return None


def _backup_folder(
    name: str,
    folder: Path,
    key: bytes | None,
    uploader: _Uploader,
    spool: Path,
    previous: Mapping[str, ArchiveEntry],
    log: Log,
) -> ArchiveEntry:
    t0 = time.monotonic()
    with open(spool, "wb") as out:
        encoder = Encoder(out, key)
        packed = pack_folder(folder, encoder, log)  # type: ignore[arg-type]
        info = encoder.close()
    old = previous.get(name)
    if (
        old is not None
        and old.object.plain_sha256 == info.plain_sha256
        and uploader.has(old.object)
    ):
        ref = old.object  # unchanged: keep the stored copy
        spool.unlink(missing_ok=True)
    else:
        ref = uploader.put(spool, info)
    log(
        f"{name}: {packed.files} files ({len(packed.sqlite)} SQLite) from {folder}, "
        f"{_mib(ref.stored_bytes)} stored, {time.monotonic() - t0:.1f} s"
    )
    return ArchiveEntry(
        name, str(folder), packed.files, packed.sqlite, packed.skipped, packed.changed, ref
    )


def apply_retention(
    store: ObjectStore,
    keep_daily: int,
    keep_weekly: int,
    *,
    key: bytes | None = None,
    grace: timedelta = timedelta(hours=1),
    log: Log = _log.info,
) -> RetentionSummary:
    """Delete the backups the policy drops (`plan_retention`), the markers of abandoned ones,
    then every object no remaining backup references. The kept manifests are all read first:
    if one cannot be (another key, damaged), nothing is deleted. Objects written less than
    `grace` ago, or since a backup still running started, are left alone (they may belong
    to a backup in progress)."""
    entries = list_backups(store)
    plan: RetentionPlan = plan_retention(entries, keep_daily, keep_weekly)
    referenced: set[str] = set()
    for bid in plan.keep:
        try:
            referenced |= set(read_manifest(store, bid, key).objects())
        except Exception as error:
            raise BackupError(
                f"retention stopped before deleting anything: the manifest of kept backup {bid} "
                f"cannot be read ({error})"
            ) from error
    for bid in plan.delete + plan.abandoned:
        # the manifest first: from then on the backup is incomplete, never half deleted
        store.delete([f"{BACKUPS}{bid}/{MANIFEST}"])
        store.delete([o.key for o in store.list(f"{BACKUPS}{bid}/")])
    cutoff = datetime.now(UTC) - grace
    if plan.running:
        cutoff = min(cutoff, min(backup_time(b) for b in plan.running) - grace)
    doomed = [o for o in store.list(OBJECTS) if o.key not in referenced and o.modified < cutoff]
    store.delete([o.key for o in doomed])
    summary = RetentionSummary(
        kept=plan.keep,
        deleted_backups=plan.delete,
        abandoned=plan.abandoned,
        deleted_objects=len(doomed),
        freed_bytes=sum(o.size for o in doomed),
    )
    log(
        f"retention (daily {keep_daily}, weekly {keep_weekly}): {len(plan.keep)} backups kept, "
        f"{len(plan.delete)} deleted, {len(plan.abandoned)} abandoned cleaned up, "
        f"{len(doomed)} unreferenced objects deleted ({_mib(summary.freed_bytes)})"
    )
    return summary
