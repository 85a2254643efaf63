"""What a backup is in the store: its manifest (tables with their DDL and partitions, folder
archives, every object with its checksums) and the keys that say which backups exist.

Layout under the store's root:

    objects/<sha256>                     content-addressed: the name is the hash of the bytes
    backups/<id>/started.json            written first (an id is the start time, UTC)
    backups/<id>/manifest.json           written last: only then is the backup complete
    latest.json                          the newest complete backup; moved after its manifest

A manifest is JSON, encrypted like the objects when a key is configured.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from quant_assets.automation.backup.codec import Encoded, decode_bytes, encode_bytes
from quant_assets.automation.backup.retention import BackupEntry, backup_time
from resources.backup_store import ObjectStore

FORMAT = 1
OBJECTS = "objects/"
BACKUPS = "backups/"
MANIFEST = "manifest.json"
STARTED = "started.json"
LATEST = "latest.json"


class BackupError(RuntimeError):
    """A backup or restore that cannot go on; the message says what and where."""


@dataclass(frozen=True)
class ObjectRef:
    """A stored object: its key and the size and sha256 of its stored bytes and plaintext."""

    key: str
    stored_sha256: str
    stored_bytes: int
    plain_sha256: str
    plain_bytes: int

    @classmethod
    def from_encoded(cls, info: Encoded) -> ObjectRef:
        return cls(
            OBJECTS + info.stored_sha256,
            info.stored_sha256,
            info.stored_bytes,
            info.plain_sha256,
            info.plain_bytes,
        )


@dataclass(frozen=True)
class PartitionEntry:
    """One partition of a table in a backup ('all' for a table without partitions)."""

    partition_id: str
    partition: str
    rows: int
    content_hash: str
    object: ObjectRef
    fingerprint: str | None = None  # hash of the active parts' names and file hashes


@dataclass
class TableEntry:
    """A table in a backup: its DDL and, for tables holding data, its partitions. `kind` is
    `parts` (MergeTree family), `whole` (one object) or `schema` (views, Distributed: DDL
    only, created after the data is loaded)."""

    name: str
    engine: str
    ddl: str
    kind: str
    partitions: list[PartitionEntry] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.partitions)


@dataclass(frozen=True)
class ArchiveEntry:
    """Something beside the tables in a backup: a folder (`kind` "folder": a tar of it,
    SQLite files as consistent copies) or a PostgreSQL database ("postgres": pg_dump's
    custom format; `source` its URL with the password masked)."""

    name: str
    source: str
    files: int
    sqlite: list[str]
    skipped: list[str]
    changed: list[str]
    object: ObjectRef
    kind: str = "folder"


@dataclass
class Manifest:
    """What a backup holds; its presence in the store makes the backup complete."""

    backup_id: str
    created_at: str
    completed_at: str
    database: str
    clickhouse_version: str
    key_id: str | None
    tables: list[TableEntry]
    archives: list[ArchiveEntry]
    format: int = FORMAT

    def objects(self) -> dict[str, str]:
        """Every object key the backup references -> what it holds (table or archive)."""
        found = {a.object.key: f"archive {a.name}" for a in self.archives}
        for t in self.tables:
            for p in t.partitions:
                found[p.object.key] = f"table {t.name}"
        return found

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=1, sort_keys=False).encode()

    @classmethod
    def from_json(cls, data: bytes, name: str) -> Manifest:
        try:
            raw = json.loads(data)
            if raw.get("format", 0) > FORMAT:
                raise BackupError(
                    f"{name} has format {raw['format']}; this code reads up to {FORMAT}"
                )
            tables = [
                TableEntry(
                    t["name"],
                    t["engine"],
                    t["ddl"],
                    t["kind"],
                    [
                        PartitionEntry(**{**p, "object": ObjectRef(**p["object"])})
                        for p in t["partitions"]
                    ],
                )
                for t in raw["tables"]
            ]
            archives = [
                ArchiveEntry(**{**a, "object": ObjectRef(**a["object"])}) for a in raw["archives"]
            ]
            rest = {k: v for k, v in raw.items() if k not in ("tables", "archives")}
            return cls(tables=tables, archives=archives, **rest)
        except (ValueError, KeyError, TypeError) as error:
            raise BackupError(f"{name} is not a readable backup manifest: {error}") from None


def list_backups(store: ObjectStore) -> list[BackupEntry]:
    """Every backup in the store (complete or not), oldest first."""
    seen: dict[str, bool] = {}
    for obj in store.list(BACKUPS):
        parts = obj.key[len(BACKUPS) :].split("/")
        if len(parts) != 2:
            continue
        try:
            backup_time(parts[0])
        except ValueError:
            continue  # not ours
        seen[parts[0]] = seen.get(parts[0], False) or parts[1] == MANIFEST
    return [BackupEntry(b, complete) for b, complete in sorted(seen.items())]


def latest_backup(store: ObjectStore) -> str | None:
    """The newest complete backup: the latest pointer when its manifest exists, else the
    newest manifest in the store; None when there is no complete backup."""
    complete = [b.backup_id for b in list_backups(store) if b.complete]
    try:
        pointed = json.loads(store.get_bytes(LATEST))["backup_id"]
    except (FileNotFoundError, ValueError, KeyError):
        pointed = None
    if pointed in complete:
        return pointed
    return complete[-1] if complete else None


def resolve_backup(store: ObjectStore, backup: str) -> str:
    """A backup id, or "latest", to the id of a complete backup; BackupError otherwise."""
    if backup == "latest":
        found = latest_backup(store)
        if found is None:
            raise BackupError(f"{store.describe()} holds no complete backup")
        return found
    backup_time(backup)  # a clear error for a malformed id
    complete = {b.backup_id: b.complete for b in list_backups(store)}
    if backup not in complete:
        raise BackupError(f"backup {backup} is not in {store.describe()}")
    if not complete[backup]:
        raise BackupError(f"backup {backup} is incomplete (no manifest): it cannot be restored")
    return backup


def read_manifest(store: ObjectStore, backup: str, key: bytes | None) -> Manifest:
    """The manifest of a complete backup, decrypted with `key` when it is encrypted."""
    name = f"{BACKUPS}{backup}/{MANIFEST}"
    data = store.get_bytes(name)
    if not data.lstrip().startswith(b"{"):
        data = decode_bytes(data, key, name)
    return Manifest.from_json(data, name)


def write_manifest(store: ObjectStore, manifest: Manifest, key: bytes | None) -> None:
    """Store a manifest (encrypted with `key` when given): the backup is complete from then."""
    data = manifest.to_json()
    if key is not None:
        data, _ = encode_bytes(data, key)
    store.put_bytes(f"{BACKUPS}{manifest.backup_id}/{MANIFEST}", data)


def move_latest(store: ObjectStore, backup: str) -> None:
    """Point `latest` at a complete backup, never back to an older one."""
    current = latest_backup(store)
    if current is None or current <= backup:
        store.put_bytes(LATEST, json.dumps({"backup_id": backup}).encode())
