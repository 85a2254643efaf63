"""Restoring a backup: the tables into an empty database, the folder archives into empty
folders, every checksum verified.

Tables are created from their stored DDL (moved to the target database), every object's
sha256 is checked before it is loaded, and every partition's rows and content hash after. A
missing or damaged object, or a mismatch, drops what the restore created and raises an error
naming the object and the table: a failed restore leaves the target empty, never half loaded.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from clickhouse_connect.driver.binding import quote_identifier
from clickhouse_connect.driver.client import Client

from quant_assets.automation.backup.archives import require_empty_folder, unpack_folder
from quant_assets.automation.backup.codec import Decoded, IterReader, file_sha256
from quant_assets.automation.backup.create import (
    Log,
    partition_contents,
    qualified_name,
    table_content,
)
from quant_assets.automation.backup.manifest import (
    OBJECTS,
    ArchiveEntry,
    BackupError,
    Manifest,
    ObjectRef,
    TableEntry,
    read_manifest,
    resolve_backup,
)
from quant_assets.automation.backup.postgres import (
    require_empty_postgres,
    restore_postgres,
    shown_url,
)
from resources.backup_store import ObjectStore

_log = logging.getLogger(__name__)


class CorruptObjectError(BackupError):
    """An object that is missing or whose bytes are not those the manifest recorded; `owner`
    is what it holds ("table raw_daily_bars", "archive mlflow")."""

    def __init__(self, message: str, key: str, owner: str) -> None:
        super().__init__(message)
        self.key = key
        self.owner = owner


class TargetNotEmptyError(BackupError):
    """A restore into a database that already holds tables."""


class VerificationError(BackupError):
    """Restored tables whose rows or content differ from the manifest."""


@dataclass
class RestoreSummary:
    """What a restore loaded and checked."""

    backup_id: str
    database: str | None
    tables: dict[str, int]  # table -> rows, verified
    partitions: int
    archives: dict[str, int]  # archive name -> files extracted (0 for a database)
    seconds: float


def retarget_ddl(ddl: str, source: str, target: str, name: str) -> str:
    """A CREATE statement of `source`.`name` rewritten to create `target`.`name`; references
    to other objects of `source` in a view's query move to `target` too."""
    head = re.compile(
        r"^(CREATE\s+(?:TABLE|VIEW|MATERIALIZED\s+VIEW|DICTIONARY)\s+(?:IF\s+NOT\s+EXISTS\s+)?)"
        + _name_pattern(source)
        + r"\."
        + _name_pattern(name)
        + r"(?=[\s(])",
        re.IGNORECASE,
    )
    rewritten, n = head.subn(lambda m: m.group(1) + qualified_name(target, name), ddl, count=1)
    if n != 1:
        raise BackupError(f"cannot read the name of table {name} in its stored DDL: {ddl[:80]!r}")
    body = re.compile(r"(?<![\w`.])" + _name_pattern(source) + r"\.(?=[\w`])")
    if source != target and not rewritten.lstrip().upper().startswith("CREATE TABLE"):
        rewritten = body.sub(quote_identifier(target) + ".", rewritten)
    return rewritten


def _name_pattern(name: str) -> str:
    return "(?:" + re.escape(name) + "|" + re.escape(quote_identifier(name)) + ")"


def _present_tables(client: Client, database: str) -> list[str]:
    return [
        r[0]
        for r in client.query(
            "SELECT name FROM system.tables WHERE database = %(db)s ORDER BY name",
            parameters={"db": database},
        ).result_rows
    ]


def _fetch_verified(store: ObjectStore, ref: ObjectRef, owner: str, spool: Path) -> None:
    """Download an object to `spool` and check its sha256 against the manifest."""
    try:
        store.get_file(ref.key, spool)
    except FileNotFoundError:
        raise CorruptObjectError(
            f"object {ref.key} of {owner} is missing from the backup store", ref.key, owner
        ) from None
    digest = file_sha256(spool)
    if digest != ref.stored_sha256:
        raise CorruptObjectError(
            f"object {ref.key} of {owner} is corrupt: its sha256 is {digest}, the manifest "
            f"recorded {ref.stored_sha256}",
            ref.key,
            owner,
        )


def _check_plain(decoded: Decoded, ref: ObjectRef, owner: str) -> None:
    if decoded.plain_sha256 != ref.plain_sha256 or decoded.plain_bytes != ref.plain_bytes:
        raise CorruptObjectError(
            f"object {ref.key} of {owner} decodes to other content than was backed up "
            f"(sha256 {decoded.plain_sha256}, recorded {ref.plain_sha256})",
            ref.key,
            owner,
        )


def _preflight(
    store: ObjectStore, backup: str, tables: Iterable[TableEntry], archives: Iterable[ArchiveEntry]
) -> None:
    """Every object the restore needs is in the store with its recorded size, before
    anything is created; else CorruptObjectError naming the first and counting the rest."""
    sizes = {o.key: o.size for o in store.list(OBJECTS)}
    wanted = [(p.object, f"table {t.name}") for t in tables for p in t.partitions]
    wanted += [(a.object, f"archive {a.name}") for a in archives]
    bad = [(ref, owner) for ref, owner in wanted if sizes.get(ref.key) != ref.stored_bytes]
    if bad:
        ref, owner = bad[0]
        what = (
            "missing" if ref.key not in sizes else f"{sizes[ref.key]} bytes, not {ref.stored_bytes}"
        )
        more = f" (and {len(bad) - 1} more objects)" if len(bad) > 1 else ""
        raise CorruptObjectError(
            f"backup {backup}: object {ref.key} of {owner} is {what}{more}; nothing was restored",
            ref.key,
            owner,
        )


def _load_table(
    client: Client,
    target: str,
    table: TableEntry,
    store: ObjectStore,
    key: bytes | None,
    spool: Path,
) -> None:
    destination = qualified_name(target, table.name)
    owner = f"table {table.name}"
    for part in table.partitions:
        _fetch_verified(store, part.object, owner, spool)  # before a byte is loaded
        with open(spool, "rb") as src:
            decoded = Decoded(src, key, part.object.key)
            client.raw_insert(destination, insert_block=IterReader(decoded), fmt="Native")
            for _ in decoded:  # whatever the insert left unread, for the hash
                pass
        _check_plain(decoded, part.object, owner)
    spool.unlink(missing_ok=True)


def verify_restore(client: Client, database: str, manifest: Manifest) -> list[str]:
    """Differences between the tables in `database` and the manifest: per partition, the
    rows and the content hash. Empty when the restore is faithful."""
    problems = []
    for table in manifest.tables:
        if table.kind == "schema":
            continue
        source = qualified_name(database, table.name)
        if table.kind == "whole":
            found = {"all": table_content(client, source)}
        else:
            found = partition_contents(client, source)
        expected = {p.partition_id: (p.rows, p.content_hash) for p in table.partitions}
        for pid in sorted(set(found) | set(expected)):
            got, want = found.get(pid, (0, "0")), expected.get(pid, (0, "0"))
            if got[0] != want[0]:
                problems.append(f"{table.name} partition {pid}: {got[0]} rows, backed up {want[0]}")
            elif got[1] != want[1]:
                problems.append(f"{table.name} partition {pid}: content differs from the backup")
    return problems


def restore_backup(
    client: Client | None,
    store: ObjectStore,
    target_database: str | None,
    *,
    backup: str = "latest",
    key: bytes | None = None,
    folders: Mapping[str, Path] | None = None,
    postgres: Mapping[str, str] | None = None,
    log: Log = _log.info,
    spool_dir: Path | None = None,
) -> RestoreSummary:
    """Restore a backup ("latest" or an id): its tables into `target_database` (created if
    absent, refused if it holds any table; None: no tables), the folder archives named in
    `folders` into those folders and the database archives named in `postgres` into those
    PostgreSQL databases (each must be empty). Every object's sha256 is checked
    before it is loaded and every partition's rows and content hash after; on any failure
    what the restore created is removed and the error names the object and table."""
    started = time.monotonic()
    bid = resolve_backup(store, backup)
    manifest = read_manifest(store, bid, key)  # a wrong or missing key fails here, named
    folders = {n: Path(f) for n, f in (folders or {}).items()}
    postgres = dict(postgres or {})
    archives = {a.name: a for a in manifest.archives}
    for wanted, kind in ((folders, "folder"), (postgres, "postgres")):
        unknown = sorted(n for n in wanted if getattr(archives.get(n), "kind", None) != kind)
        if unknown:
            held = sorted(f"{a.name} ({a.kind})" for a in archives.values()) or "none"
            raise BackupError(
                f"backup {bid} has no {kind} archive {', '.join(unknown)}; it has {held}"
            )
    for folder in folders.values():
        require_empty_folder(folder)
    for url in postgres.values():
        require_empty_postgres(url)
    if target_database is not None:
        if client is None:
            raise ValueError("restoring tables needs a ClickHouse client")
        client.command(f"CREATE DATABASE IF NOT EXISTS {quote_identifier(target_database)}")
        present = _present_tables(client, target_database)
        if present:
            shown = ", ".join(present[:10]) + (
                f" and {len(present) - 10} more" if len(present) > 10 else ""
            )
            raise TargetNotEmptyError(
                f"database {target_database} is not empty ({shown}); restore into an empty "
                "database (or drop those tables first)"
            )
    tables = manifest.tables if target_database is not None else []
    chosen = [*folders, *postgres]
    _preflight(store, bid, tables, [archives[n] for n in chosen])
    log(
        f"restoring backup {bid} of {manifest.database} (made {manifest.created_at}): "
        f"{len(tables)} tables, archives {chosen or 'none'}"
    )
    with tempfile.TemporaryDirectory(prefix="quant-restore-", dir=spool_dir) as scratch:
        fetched = {}
        for name in chosen:  # checked before the database is touched
            fetched[name] = Path(scratch) / f"archive-{name}"
            _fetch_verified(store, archives[name].object, f"archive {name}", fetched[name])
        if tables:
            assert client is not None and target_database is not None
            _restore_tables(client, store, manifest, target_database, key, Path(scratch), log)
        extracted = {}
        for name, folder in folders.items():
            extracted[name] = _restore_folder(archives[name], fetched[name], folder, key)
            log(f"{name}: {extracted[name]} files restored into {folder}")
        for name, url in postgres.items():
            _restore_database(archives[name], fetched[name], url, key)
            extracted[name] = 0
            log(f"{name}: restored into {shown_url(url)}")
    return RestoreSummary(
        backup_id=bid,
        database=target_database,
        tables={t.name: t.rows for t in tables if t.kind != "schema"},
        partitions=sum(len(t.partitions) for t in tables),
        archives=extracted,
        seconds=time.monotonic() - started,
    )


def _restore_tables(
    client: Client,
    store: ObjectStore,
    manifest: Manifest,
    target: str,
    key: bytes | None,
    scratch: Path,
    log: Log,
) -> None:
    created: list[str] = []
    try:
        for table in (t for t in manifest.tables if t.kind != "schema"):
            t0 = time.monotonic()
            client.command(retarget_ddl(table.ddl, manifest.database, target, table.name))
            created.append(table.name)
            _load_table(client, target, table, store, key, scratch / "object")
            log(
                f"{table.name}: {len(table.partitions)} partitions, {table.rows:,} rows loaded "
                f"in {time.monotonic() - t0:.1f} s"
            )
        _create_schema_only(client, manifest, target, created)
        problems = verify_restore(client, target, manifest)
        if problems:
            more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
            raise VerificationError(
                f"restored backup {manifest.backup_id} differs from its manifest: "
                + "; ".join(problems[:5])
                + more
            )
        log(f"verified: every partition's rows and content hash equal backup {manifest.backup_id}")
    except BaseException as error:
        for name in reversed(created):
            client.command(f"DROP TABLE IF EXISTS {qualified_name(target, name)} SYNC")
        log(f"restore failed; the {len(created)} tables it had created were dropped")
        if isinstance(error, Exception) and not isinstance(error, BackupError):
            table = created[-1] if created else "?"
            raise BackupError(
                f"restore of backup {manifest.backup_id} failed at table {table}; the tables it "
                f"created were dropped: {error}"
            ) from error
        raise


def _create_schema_only(
    client: Client, manifest: Manifest, target: str, created: list[str]
) -> None:
    """Views and other DDL-only tables, after the data: one may read another, so the ones
    that fail are tried again while each pass creates at least one."""
    pending = [t for t in manifest.tables if t.kind == "schema"]
    while pending:
        failed, last_error = [], None
        for table in pending:
            try:
                client.command(retarget_ddl(table.ddl, manifest.database, target, table.name))
                created.append(table.name)
            except Exception as error:  # depends on one not created yet
                failed.append(table)
                last_error = error
        if len(failed) == len(pending):
            raise BackupError(
                f"cannot create {', '.join(t.name for t in failed)} from the backup: {last_error}"
            )
        pending = failed


def _restore_folder(entry: ArchiveEntry, fetched: Path, folder: Path, key: bytes | None) -> int:
    owner = f"archive {entry.name}"
    with open(fetched, "rb") as src:
        decoded = Decoded(src, key, entry.object.key)
        try:
            files = unpack_folder(IterReader(decoded), folder)  # type: ignore[arg-type]
            for _ in decoded:
                pass
            _check_plain(decoded, entry.object, owner)
        except BaseException:
            _empty(folder)
            raise
    return files


def _restore_database(entry: ArchiveEntry, fetched: Path, url: str, key: bytes | None) -> None:
    with open(fetched, "rb") as src:
        decoded = Decoded(src, key, entry.object.key)
        restore_postgres(IterReader(decoded), url)  # type: ignore[arg-type]
        for _ in decoded:
            pass
    _check_plain(decoded, entry.object, f"archive {entry.name}")


def _empty(folder: Path) -> None:
    if folder.is_dir():
        for child in folder.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
