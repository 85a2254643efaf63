"""Folders in a backup (the MLflow store, the Dagster instance): a tar stream of the folder in
which every SQLite database is a consistent copy, and its extraction into an empty folder.

A SQLite file copied byte by byte while a process writes it (Dagster writes its event log
during the backup run itself) can be torn, and its `-wal` file holds commits the main file
lacks. So a database is copied with SQLite's online backup API (a snapshot of the committed
state, WAL included) and its `-wal`, `-shm` and `-journal` companions are left out.
"""

from __future__ import annotations

import sqlite3
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO
from urllib.request import pathname2url

SQLITE_HEADER = b"SQLite format 3\x00"
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


@dataclass
class PackedFolder:
    """What went into an archive: regular files, SQLite databases among them, files left
    out (they vanished or could not be read while the folder was walked) and files that
    shrank while they were read (kept, zero-padded)."""

    files: int = 0
    sqlite: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)


def is_sqlite(path: Path) -> bool:
    """True when the file starts with SQLite's header (whatever its name)."""
    try:
        with open(path, "rb") as f:
            return f.read(len(SQLITE_HEADER)) == SQLITE_HEADER
    except OSError:
        return False


def sqlite_copy(source: Path, target: Path) -> None:
    """A consistent copy of a live SQLite database (the online backup API)."""
    src = sqlite3.connect(f"file:{pathname2url(str(source))}?mode=ro", uri=True, timeout=60)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()


def _normalised(info: tarfile.TarInfo) -> tarfile.TarInfo:
    # owners of the machine that made the backup mean nothing where it is restored
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def pack_folder(
    folder: Path, out: BinaryIO, log: Callable[[str], None] = lambda _: None
) -> PackedFolder:
    """Write `folder` as an uncompressed tar stream to `out`, paths relative to it, in name
    order; SQLite databases as consistent copies, their companions left out."""
    folder = Path(folder)
    packed = PackedFolder()
    paths = sorted(p for p in folder.rglob("*"))
    databases = {p for p in paths if p.is_file() and not p.is_symlink() and is_sqlite(p)}
    companions = {Path(f"{db}{suffix}") for db in databases for suffix in SQLITE_COMPANIONS}
    with (
        tempfile.TemporaryDirectory(prefix="quant-backup-") as scratch,
        tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path in paths:
            name = path.relative_to(folder).as_posix()
            if path in companions:
                continue
            try:
                if path in databases:
                    copy = Path(scratch) / "copy.sqlite"
                    copy.unlink(missing_ok=True)
                    sqlite_copy(path, copy)
                    info = _normalised(tar.gettarinfo(copy, arcname=name))
                    info.mtime = int(path.stat().st_mtime)
                    with open(copy, "rb") as f:
                        tar.addfile(info, f)
                    packed.sqlite.append(name)
                    packed.files += 1
                elif path.is_symlink() and not path.resolve().is_relative_to(folder.resolve()):
                    # a restore refuses links out of its folder: say so now, not then
                    log(f"{folder}: {name} links outside the folder; left out of the backup")
                    packed.skipped.append(name)
                elif path.is_symlink() or path.is_dir():
                    tar.addfile(_normalised(tar.gettarinfo(path, arcname=name)))
                elif path.is_file():
                    with open(path, "rb") as f:
                        info = _normalised(tar.gettarinfo(arcname=name, fileobj=f))
                        reader = _Exactly(f, info.size)
                        tar.addfile(info, reader)
                    if reader.short:
                        log(f"{folder}: {name} shrank while it was read; kept zero-padded")
                        packed.changed.append(name)
                    packed.files += 1
                else:  # sockets, pipes: nothing to restore
                    packed.skipped.append(name)
            except (OSError, sqlite3.Error) as error:
                # a file deleted or rewritten while the folder was walked (a run's temp file)
                log(f"{folder}: {name} left out of the backup: {error}")
                packed.skipped.append(name)
    return packed


class _Exactly:
    """A file read as exactly `size` bytes: zero-padded if it was truncated while read (the
    tar header already promised `size` bytes), so one such file cannot break the stream."""

    def __init__(self, f: BinaryIO, size: int) -> None:
        self._f, self._left, self.short = f, size, False

    def read(self, n: int = -1) -> bytes:
        n = self._left if n < 0 else min(n, self._left)
        data = self._f.read(n)
        if len(data) < n:
            self.short = True
            data += b"\0" * (n - len(data))
        self._left -= len(data)
        return data


def require_empty_folder(folder: Path) -> None:
    """Refuse a restore target that holds anything, naming what is there."""
    if folder.exists():
        if not folder.is_dir():
            raise FileExistsError(f"{folder} exists and is not a folder")
        present = sorted(p.name for p in folder.iterdir())
        if present:
            more = f" and {len(present) - 10} more" if len(present) > 10 else ""
            shown = ", ".join(present[:10]) + more
            raise FileExistsError(f"{folder} is not empty ({shown}); restore into an empty folder")


def unpack_folder(src: BinaryIO, folder: Path) -> int:
    """Extract a tar stream made by `pack_folder` into `folder` (created, must be empty);
    returns the number of regular files. Paths leaving the folder, absolute paths and links
    pointing outside are refused (tarfile's `data` filter)."""
    folder = Path(folder)
    require_empty_folder(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = 0
    with tarfile.open(fileobj=src, mode="r|") as tar:
        for member in tar:
            tar.extract(member, folder, filter="data")
            files += member.isfile()
    return files
