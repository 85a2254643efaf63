"""PostgreSQL databases in a backup (the Dagster instance's storage, MLflow's backend store in
production): `pg_dump`'s custom format streamed out, `pg_restore` into an empty database.

pg_dump takes one consistent snapshot of the database (a repeatable-read transaction) while
it keeps serving writes, as the SQLite backup API does for the embedded stores. The client
tools must be at least the server's major version (PostgreSQL's rule). A URL may be written
SQLAlchemy's way (`postgresql+psycopg2://...`, as MLflow and Dagster take it).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from typing import BinaryIO

READ = 1 << 20


class PostgresBackupError(RuntimeError):
    """pg_dump or pg_restore failed, or the target database is not empty."""


def libpq_url(url: str) -> str:
    """`postgresql+driver://...` as libpq reads it: `postgresql://...`."""
    return re.sub(r"^postgres(?:ql)?(?:\+\w+)?://", "postgresql://", url.strip())


def shown_url(url: str) -> str:
    """The URL as a message may show it: the password masked."""
    return re.sub(r"(://[^/:@]*:)[^/@]*@", r"\1***@", url)


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise PostgresBackupError(
            f"{name} is not installed: PostgreSQL's client tools are needed to back up and "
            "restore a Postgres-backed store (apt-get install postgresql-client)"
        )
    return path


def dump_postgres(url: str, out: BinaryIO) -> None:
    """Stream a consistent dump of the database at `url` (pg_dump's custom format, without
    owners and grants, which the restoring role may not have) into `out`."""
    command = [_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges"]
    # stderr to a file, not a pipe: a full pipe nobody reads would stall the dump
    with (
        tempfile.TemporaryFile() as messages,
        subprocess.Popen(
            [*command, f"--dbname={libpq_url(url)}"], stdout=subprocess.PIPE, stderr=messages
        ) as dump,
    ):
        assert dump.stdout is not None
        while piece := dump.stdout.read(READ):
            out.write(piece)
        dump.wait()
        messages.seek(0)
        error = messages.read().decode(errors="replace").strip()
    if dump.returncode != 0:
        raise PostgresBackupError(
            f"pg_dump of {shown_url(url)} failed (exit {dump.returncode}): {shown_url(error)}"
        )


def postgres_tables(url: str) -> list[str]:
    """Tables of the database outside PostgreSQL's own schemas, as schema.table."""
    import psycopg2

    with psycopg2.connect(libpq_url(url)) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT schemaname || '.' || tablename FROM pg_tables "
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1"
        )
        return [row[0] for row in cur.fetchall()]


def require_empty_postgres(url: str) -> None:
    """Refuse a restore target that holds tables, naming them."""
    present = postgres_tables(url)
    if present:
        more = f" and {len(present) - 10} more" if len(present) > 10 else ""
        raise PostgresBackupError(
            f"database {shown_url(url)} is not empty ({', '.join(present[:10])}{more}); "
            "restore into an empty database"
        )


def restore_postgres(src: BinaryIO, url: str) -> None:
    """Load a dump made by `dump_postgres` into the (empty) database at `url`, in one
    transaction: an error leaves the database as it was."""
    require_empty_postgres(url)
    command = [
        _tool("pg_restore"),
        "--no-owner",
        "--no-privileges",
        "--exit-on-error",
        "--single-transaction",
        f"--dbname={libpq_url(url)}",
    ]
    with (
        tempfile.TemporaryFile() as messages,
        # unbuffered: after a broken pipe, closing has nothing left to flush
        subprocess.Popen(command, stdin=subprocess.PIPE, stderr=messages, bufsize=0) as restore,
    ):
        assert restore.stdin is not None
        try:
            while piece := src.read(READ):
                restore.stdin.write(piece)
            restore.stdin.close()
        except BrokenPipeError:
            pass  # pg_restore stopped early: its exit status and message say why
        restore.wait()
        messages.seek(0)
        error = messages.read().decode(errors="replace").strip()
    if restore.returncode != 0:
        raise PostgresBackupError(
            f"pg_restore into {shown_url(url)} failed (exit {restore.returncode}): "
            f"{shown_url(error)}"
        )
