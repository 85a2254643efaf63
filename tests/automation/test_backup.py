"""Backup and restore against real engines: moto's S3 server on loopback as the store, chDB in a
temporary folder holding some of the platform's tables (their own TableSpecs, a few days of
data), SQLite databases as the MLflow store and the Dagster instance, and real Dagster runs.

Round trip after every table is dropped, a restore refused by a non-empty database, a corrupt
or missing object refused and named, a backup interrupted halfway (the previous one stays the
latest), a month of daily backups under retention, encryption with a right, a wrong and no
key; the jobs through Dagster, also with the Dagster instance and MLflow's backend on the
machine's PostgreSQL (production mode, skipped where it is absent).
"""

from __future__ import annotations

import base64
import os
import socket
import sqlite3
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import numpy as np
import pandas as pd
import pytest
from dagster import build_schedule_context, instance_for_test
from moto.server import ThreadedMotoServer

from quant_assets.automation.backup.codec import BackupKeyError, parse_key
from quant_assets.automation.backup.create import apply_retention, run_backup
from quant_assets.automation.backup.jobs import backup_daily, backup_job, restore_job
from quant_assets.automation.backup.manifest import latest_backup, list_backups, read_manifest
from quant_assets.automation.backup.postgres import libpq_url, shown_url
from quant_assets.automation.backup.restore import (
    CorruptObjectError,
    TargetNotEmptyError,
    restore_backup,
    retarget_ddl,
)
from quant_assets.automation.backup.retention import BackupEntry, plan_retention
from quant_assets.market.contract.tables import QUARANTINE, RAW_DAILY_BARS, RAW_NEWS
from resources.backup_store import BackupStoreResource, open_store
from resources.publishing import STORED_PARTITIONS

DB = "quant_test"
DAYS = ["2024-03-04", "2024-03-05", "2024-03-06"]
T0 = datetime(2024, 3, 6, 15, 0, tzinfo=UTC)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint():
    """moto's S3 server on a free loopback port, for the whole module."""
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3(s3_endpoint, monkeypatch, tmp_path, request):
    """An empty bucket of its own for the test, and the AWS environment boto3 reads (dummy
    credentials; no profile or credentials file of the machine)."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    bucket = "backup-" + request.node.name.replace("_", "-")[:40].lower().strip("-")
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket=bucket)
    return client, bucket


@pytest.fixture
def store(s3, s3_endpoint):
    client, bucket = s3
    return open_store(f"s3://{bucket}/platform", endpoint_url=s3_endpoint)


def _bars(day: str, n: int = 40, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(zlib.crc32(f"{day}/{shift}".encode()))
    close = 10 + rng.random(n) + shift
    return pd.DataFrame(
        {
            "date": pd.Timestamp(day),
            "symbol": [f"{600000 + i:06d}.SH" for i in range(n)],
            "open": close * 0.99,
            "high": close * 1.01,
            "low": close * 0.98,
            "close": close,
            "preclose": close * 0.995,
            "volume": rng.integers(1000, 10**6, n).astype("uint64"),
            "amount": close * 1e5,
            "is_suspended": rng.random(n) < 0.05,
            "is_st": False,
        }
    )


def _news(day: str) -> pd.DataFrame:
    ts = pd.Timestamp(f"{day} 10:00", tz="Asia/Shanghai")
    return pd.DataFrame(
        {
            "date": pd.Timestamp(day),
            "news_id": [f"{day}-{i}" for i in range(3)],
            "ts": [ts + pd.Timedelta(minutes=i) for i in range(3)],
            "symbol": ["600000.SH", "600001.SH", "600002.SH"],
            "title": ["Profit warning 利润预警", "Buyback", "New plant"],
            "body": ["secret plaintext body", "", "more text"],
            "source": "wire",
            "sentiment": [-0.8, None, 0.3],  # a NULL among them: the content hash sees it
        }
    )


def _quarantine(day: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "date": pd.Timestamp(day),
            "kind": ["bars", "trades"],
            "rule": ["price_positive", "volume_positive"],
            "row_number": np.array([3, 9], dtype="uint64"),
            "symbol": ["600003.SH", "600004.SH"],
            "detail": ["close -1", "volume 0"],
            "row_json": ["{}", "{}"],
            "source_file": ["a.csv", "b.csv"],
        }
    )


def _fill(ch, client, days=DAYS) -> None:
    """Some of the platform's tables, through their specs: daily partitions, a (date, kind)
    partition key, an unpartitioned ReplacingMergeTree, NULLs and time zones, and a view."""
    for day in days:
        ch.replace_partition(client, RAW_DAILY_BARS, _bars(day), day)
        ch.replace_partition(client, RAW_NEWS, _news(day), day)
        for kind, rows in _quarantine(day).groupby("kind"):
            ch.replace_partition(client, QUARANTINE, rows, day, kind=kind)
    ch.ensure_table(client, STORED_PARTITIONS)
    log = pd.DataFrame(
        {
            "table": "raw_daily_bars",
            "slice": "",
            "date": pd.to_datetime(days),
            "rows": np.full(len(days), 40, dtype="uint64"),
            "run_id": "r1",
            "written_at": pd.Timestamp("2024-03-06 16:00", tz="UTC"),
        }
    )
    ch.insert(client, f"{DB}.stored_partitions", log)
    client.command(
        f"CREATE VIEW IF NOT EXISTS {DB}.last_close AS SELECT symbol, argMax(close, date) AS "
        f"close FROM {DB}.raw_daily_bars GROUP BY symbol"
    )


def _snapshot(client, database: str = DB) -> dict[str, pd.DataFrame]:
    names = [
        r[0]
        for r in client.query(
            "SELECT name FROM system.tables WHERE database = %(db)s ORDER BY name",
            parameters={"db": database},
        ).result_rows
    ]
    return {n: client.query_df(f"SELECT * FROM {database}.`{n}` ORDER BY ALL") for n in names}


def _assert_same(left: dict, right: dict) -> None:
    assert sorted(left) == sorted(right)
    for name in left:
        pd.testing.assert_frame_equal(left[name], right[name], obj=name)


def _drop_all(client, database: str = DB) -> None:
    for name in _snapshot(client, database):
        client.command(f"DROP TABLE {database}.`{name}` SYNC")


def _sqlite_folder(root: Path, name: str) -> Path:
    """A store folder as MLflow or Dagster leave it: a SQLite database in WAL mode with a
    commit still in its -wal file (a connection holds it open), plus plain files."""
    folder = root / name
    (folder / "artifacts" / "run1").mkdir(parents=True)
    (folder / "artifacts" / "run1" / "model.txt").write_text(f"{name} model v1")
    db = sqlite3.connect(folder / f"{name}.db")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA wal_autocheckpoint=0")
    db.execute("CREATE TABLE runs (id TEXT PRIMARY KEY, metric REAL)")
    db.executemany("INSERT INTO runs VALUES (?, ?)", [("a", 0.1), ("b", 0.2)])
    db.commit()
    assert (folder / f"{name}.db-wal").stat().st_size > 0
    return folder, db  # type: ignore[return-value]


class InterruptedStore:
    """The store, failing its (k+1)-th object upload as a lost connection would."""

    def __init__(self, inner, uploads: int) -> None:
        self._inner, self._left = inner, uploads

    def put_file(self, key: str, path: Path) -> None:
        if self._left == 0:
            raise ConnectionError(f"connection lost while uploading {key}")
        self._left -= 1
        self._inner.put_file(key, path)

    def __getattr__(self, name):
        return getattr(self._inner, name)


def test_round_trip_after_every_table_was_dropped(clickhouse, store, tmp_path):
    mlflow_dir, mlflow_db = _sqlite_folder(tmp_path, "mlflow")
    with clickhouse.client() as client:
        _fill(clickhouse, client)
        before = _snapshot(client)
        summary = run_backup(
            client, DB, store, folders={"mlflow": mlflow_dir}, now=T0, log=lambda _: None
        )
        assert summary.rows == 3 * 40 + 3 * 3 + 3 * 2 + 3
        assert summary.partitions == 3 + 3 + 6 + 1 and summary.exported == summary.partitions
        assert latest_backup(store) == summary.backup_id == "20240306T150000Z"
        manifest = read_manifest(store, summary.backup_id, None)
        bars = next(t for t in manifest.tables if t.name == "raw_daily_bars")
        assert [p.partition_id for p in bars.partitions] == ["20240304", "20240305", "20240306"]
        assert all(len(p.object.stored_sha256) == 64 for p in bars.partitions)
        assert "CREATE TABLE quant_test.raw_daily_bars" in bars.ddl
        assert {t.name: t.kind for t in manifest.tables}["last_close"] == "schema"
        assert manifest.archives[0].sqlite == ["mlflow.db"]

        _drop_all(client)
        assert _snapshot(client) == {}
        restored = restore_backup(
            client, store, DB, folders={"mlflow": tmp_path / "mlflow_restored"}, log=lambda _: None
        )
        assert restored.backup_id == summary.backup_id
        _assert_same(_snapshot(client), before)

    # the committed rows that were still in the -wal file came along; the -wal did not
    mlflow_db.close()
    copy = tmp_path / "mlflow_restored"
    assert not (copy / "mlflow.db-wal").exists()
    rows = sqlite3.connect(copy / "mlflow.db").execute("SELECT * FROM runs ORDER BY id").fetchall()
    assert rows == [("a", 0.1), ("b", 0.2)]
    assert (copy / "artifacts" / "run1" / "model.txt").read_text() == "mlflow model v1"


def test_unchanged_partitions_are_not_exported_again(clickhouse, store):
    with clickhouse.client() as client:
        _fill(clickhouse, client)
        first = run_backup(client, DB, store, now=T0, log=lambda _: None)
        clickhouse.replace_partition(client, RAW_DAILY_BARS, _bars("2024-03-07"), "2024-03-07")
        second = run_backup(client, DB, store, now=T0 + timedelta(days=1), log=lambda _: None)
        # the day rewritten with the same rows gives the same bytes: the same object
        clickhouse.replace_partition(client, RAW_DAILY_BARS, _bars("2024-03-07"), "2024-03-07")
        third = run_backup(client, DB, store, now=T0 + timedelta(days=2), log=lambda _: None)
    assert (second.exported, second.uploaded_objects) == (1, 1)
    assert second.reused == first.partitions
    assert (third.exported, third.uploaded_objects) == (1, 0)
    assert latest_backup(store) == third.backup_id


def test_restore_into_a_database_with_tables_is_refused(clickhouse, store):
    with clickhouse.client() as client:
        _fill(clickhouse, client)
        run_backup(client, DB, store, now=T0, log=lambda _: None)
        before = _snapshot(client)
        with pytest.raises(TargetNotEmptyError, match=r"database quant_test is not empty \(last"):
            restore_backup(client, store, DB, log=lambda _: None)
        _assert_same(_snapshot(client), before)
        # an empty database (or one that does not exist yet) is fine
        restore_backup(client, store, "quant_copy", log=lambda _: None)
        _assert_same(_snapshot(client, "quant_copy"), before)


def test_a_corrupt_object_is_refused_and_named(clickhouse, store, s3):
    s3_client, bucket = s3
    with clickhouse.client() as client:
        _fill(clickhouse, client)
        summary = run_backup(client, DB, store, now=T0, log=lambda _: None)
        manifest = read_manifest(store, summary.backup_id, None)
        # the last table loaded, so that the tables loaded before it must be dropped again
        table = [t for t in manifest.tables if t.partitions][-1]
        key = table.partitions[0].object.key
        body = s3_client.get_object(Bucket=bucket, Key=f"platform/{key}")["Body"].read()
        damaged = bytearray(body)
        damaged[len(damaged) // 2] ^= 0xFF  # same size: only the checksum can tell
        s3_client.put_object(Bucket=bucket, Key=f"platform/{key}", Body=bytes(damaged))

        with pytest.raises(CorruptObjectError) as refused:
            restore_backup(client, store, "quant_copy", log=lambda _: None)
        assert refused.value.key == key and refused.value.owner == f"table {table.name}"
        assert key in str(refused.value) and table.name in str(refused.value)
        assert "corrupt" in str(refused.value)
        assert _snapshot(client, "quant_copy") == {}  # nothing half loaded is left

        # a missing object is refused before anything is created
        s3_client.delete_object(Bucket=bucket, Key=f"platform/{key}")
        with pytest.raises(CorruptObjectError, match=rf"{key} of table {table.name} is missing"):
            restore_backup(client, store, "quant_copy", log=lambda _: None)
        assert _snapshot(client, "quant_copy") == {}


def test_an_interrupted_backup_leaves_the_previous_one_latest(clickhouse, store):
    quiet = lambda _: None  # noqa: E731
    with clickhouse.client() as client:
        _fill(clickhouse, client)
        first = run_backup(client, DB, store, now=T0, log=quiet)
        at_first = _snapshot(client)
        for day in ("2024-03-07", "2024-03-08"):
            clickhouse.replace_partition(client, RAW_DAILY_BARS, _bars(day), day)
            clickhouse.replace_partition(client, RAW_NEWS, _news(day), day)
        with pytest.raises(ConnectionError, match="connection lost"):
            run_backup(
                client,
                DB,
                InterruptedStore(store, uploads=2),
                now=T0 + timedelta(days=1),
                log=quiet,
            )
        second = "20240307T150000Z"
        assert [(b.backup_id, b.complete) for b in list_backups(store)] == [
            (first.backup_id, True),
            (second, False),
        ]
        assert latest_backup(store) == first.backup_id
        restored = restore_backup(client, store, "quant_copy", log=quiet)
        assert restored.backup_id == first.backup_id
        _assert_same(_snapshot(client, "quant_copy"), at_first)

        # retention leaves a backup that may still be running (newer than the latest) alone
        orphans = {o.key for o in store.list("objects/")} - set(
            read_manifest(store, first.backup_id, None).objects()
        )
        assert len(orphans) == 2
        kept = apply_retention(store, 7, 4, grace=timedelta(0), log=quiet)
        assert kept.deleted_objects == 0 and kept.abandoned == []

        # the next backup completes: the interrupted one is abandoned, its marker cleaned up
        # and what it uploaded goes unless a kept backup uses it
        clickhouse.replace_partition(
            client, RAW_DAILY_BARS, _bars("2024-03-07", shift=1.0), "2024-03-07"
        )
        third = run_backup(client, DB, store, now=T0 + timedelta(days=2), log=quiet)
        cleaned = apply_retention(store, 7, 4, grace=timedelta(0), log=quiet)
        assert cleaned.abandoned == [second]
        assert [b.backup_id for b in list_backups(store)] == [first.backup_id, third.backup_id]
        referenced = set(read_manifest(store, first.backup_id, None).objects())
        referenced |= set(read_manifest(store, third.backup_id, None).objects())
        assert {o.key for o in store.list("objects/")} == referenced
        assert cleaned.deleted_objects == 1  # the rewritten day's first version


def test_retention_over_a_month_of_daily_backups(clickhouse, store):
    quiet = lambda _: None  # noqa: E731
    start = datetime(2024, 5, 1, 15, 0, tzinfo=UTC)
    with clickhouse.client() as client:
        _fill(clickhouse, client, days=DAYS[:1])
        for i in range(31):
            day = (start + timedelta(days=i)).date().isoformat()
            # a new day of bars, and the log table rewritten (a new object every day)
            clickhouse.replace_partition(client, RAW_DAILY_BARS, _bars(day), day)
            client.command(
                f"INSERT INTO {DB}.stored_partitions VALUES ('raw_daily_bars', '', '{day}', 40, "
                f"'run{i}', now64(3))"
            )
            run_backup(client, DB, store, now=start + timedelta(days=i), log=quiet)
            apply_retention(store, 7, 4, grace=timedelta(0), log=quiet)
        may = [f"202405{d:02d}T150000Z" for d in (12, 19, 25, 26, 27, 28, 29, 30, 31)]
        # daily: 25-31 May; weekly (ISO weeks): the newest of W22 (31), W21 (26), W20 (19), W19 (12)
        remaining = list_backups(store)
        assert [b.backup_id for b in remaining] == may and all(b.complete for b in remaining)
        referenced = set()
        for b in remaining:
            referenced |= set(read_manifest(store, b.backup_id, None).objects())
        assert {o.key for o in store.list("objects/")} == referenced
        # 31 days of bars, the first day's tables, 9 versions of the log table (one per backup)
        bars = {
            p.partition_id
            for p in next(
                t for t in read_manifest(store, may[-1], None).tables if t.name == "raw_daily_bars"
            ).partitions
        }
        assert len(bars) == 32
        # the oldest kept backup restores what the database held on 12 May
        restore_backup(client, store, "quant_copy", backup=may[0], log=quiet)
        days = client.query("SELECT max(date), count() FROM quant_copy.raw_daily_bars").result_rows[
            0
        ]
        assert (str(days[0]), days[1]) == ("2024-05-12", 13 * 40)


def test_plan_retention_counts_only_complete_backups():
    def entry(day: int, complete: bool = True) -> BackupEntry:
        return BackupEntry(f"202406{day:02d}T230000Z", complete)

    # 3 June is a Monday; the 10th has a backup that never completed
    backups = [entry(d) for d in (1, 2, 3, 4, 5)] + [entry(6, False), entry(7)]
    plan = plan_retention(backups, keep_daily=2, keep_weekly=2)
    assert sorted(plan.keep) == ["20240602T230000Z", "20240605T230000Z", "20240607T230000Z"]
    assert plan.keep["20240607T230000Z"] == ["latest", "daily 2024-06-07", "weekly 2024-W23"]
    assert plan.abandoned == ["20240606T230000Z"] and plan.running == []
    plan = plan_retention([entry(1), entry(2, False)], keep_daily=0, keep_weekly=0)
    assert list(plan.keep) == ["20240601T230000Z"] and plan.running == ["20240602T230000Z"]
    with pytest.raises(ValueError, match="at least 0"):
        plan_retention([], keep_daily=-1, keep_weekly=4)


def test_encrypted_backups(clickhouse, store, s3, tmp_path):
    s3_client, bucket = s3
    key = os.urandom(32)
    folder, db = _sqlite_folder(tmp_path, "dagster")
    with clickhouse.client() as client:
        _fill(clickhouse, client)
        before = _snapshot(client)
        summary = run_backup(
            client, DB, store, key=key, folders={"dagster": folder}, now=T0, log=lambda _: None
        )
        db.close()
        # nothing readable at rest: not the objects, not the manifest
        for obj in s3_client.list_objects_v2(Bucket=bucket)["Contents"]:
            body = s3_client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            if obj["Key"].endswith(("started.json", "latest.json")):
                continue
            assert body.startswith(b"QBE1"), obj["Key"]
            for plain in (b"secret plaintext body", b"600000.SH", b"raw_daily_bars", b"SQLite"):
                assert plain not in body, (obj["Key"], plain)

        with pytest.raises(BackupKeyError, match="encrypted with another key"):
            restore_backup(client, store, "quant_copy", key=os.urandom(32), log=lambda _: None)
        with pytest.raises(BackupKeyError, match="no encryption key is configured"):
            restore_backup(client, store, "quant_copy", log=lambda _: None)
        occupied = tmp_path / "occupied"
        occupied.mkdir()
        (occupied / "dagster.yaml").write_text("telemetry: {}")
        with pytest.raises(FileExistsError, match=r"occupied is not empty \(dagster.yaml\)"):
            restore_backup(
                client,
                store,
                "quant_copy",
                key=key,
                folders={"dagster": occupied},
                log=lambda _: None,
            )
        assert _snapshot(client, "quant_copy") == {}

        restored = restore_backup(
            client,
            store,
            "quant_copy",
            key=key,
            folders={"dagster": tmp_path / "dagster_restored"},
            log=lambda _: None,
        )
        assert restored.backup_id == summary.backup_id
        _assert_same(_snapshot(client, "quant_copy"), before)
    rows = sqlite3.connect(tmp_path / "dagster_restored" / "dagster.db").execute(
        "SELECT count(*) FROM runs"
    )
    assert rows.fetchone() == (2,)


def test_a_malformed_key_is_a_clear_error_that_does_not_show_it():
    good = base64.b64encode(os.urandom(32)).decode()
    assert len(parse_key(good)) == 32
    short = base64.b64encode(b"sixteen byte key").decode()
    with pytest.raises(BackupKeyError, match="decodes to 16 bytes; AES-256 needs 32") as error:
        parse_key(short)
    assert short not in str(error.value)
    with pytest.raises(BackupKeyError, match="not base64") as error:
        parse_key("not a key!")
    assert "not a key!" not in str(error.value)


def test_database_urls_are_shown_without_their_password():
    url = "postgresql+psycopg2://mlflow:s3cret@db:5432/mlflow"
    assert libpq_url(url) == "postgresql://mlflow:s3cret@db:5432/mlflow"
    assert shown_url(url) == "postgresql+psycopg2://mlflow:***@db:5432/mlflow"


def test_ddl_moves_to_the_target_database():
    ddl = "CREATE TABLE quant.bars\n(\n    `date` Date\n)\nENGINE = MergeTree\nORDER BY date"
    assert retarget_ddl(ddl, "quant", "restored", "bars").startswith(
        "CREATE TABLE `restored`.`bars`\n("
    )
    view = "CREATE VIEW quant.v\n(\n    `x` UInt8\n)\nAS SELECT x FROM quant.bars"
    assert retarget_ddl(view, "quant", "r", "v").endswith("FROM `r`.bars")


def test_a_local_folder_store(clickhouse, tmp_path):
    """The default deployment's store: a folder, with the same layout as the bucket."""
    store = BackupStoreResource(url=str(tmp_path / "backups")).open()
    with clickhouse.client() as client:
        _fill(clickhouse, client)
        before = _snapshot(client)
        summary = run_backup(client, DB, store, now=T0, log=lambda _: None)
        root = tmp_path / "backups"
        assert (root / "backups" / summary.backup_id / "manifest.json").is_file()
        assert (root / "latest.json").read_text() == '{"backup_id": "20240306T150000Z"}'
        objects = list((root / "objects").iterdir())
        assert len(objects) == summary.uploaded_objects and not list(root.rglob(".put-*"))
        restore_backup(client, store, "quant_copy", log=lambda _: None)
        _assert_same(_snapshot(client, "quant_copy"), before)


def test_store_urls_are_checked():
    with pytest.raises(ValueError, match="'Bad_Bucket' is not an S3 bucket name"):
        open_store("s3://Bad_Bucket/backups")
    with pytest.raises(ValueError, match="use s3://bucket/prefix or a folder"):
        open_store("ftp://host/backups")
    with pytest.raises(ValueError, match="not a store key"):
        open_store("/tmp/x").put_bytes("../escape", b"")


def test_the_jobs_through_dagster(clickhouse, store, s3_endpoint, tmp_path):
    mlflow_dir, mlflow_db = _sqlite_folder(tmp_path, "mlflow")
    mlflow_db.close()
    resource = BackupStoreResource(
        url=f"s3://{store.bucket}/platform",
        endpoint_url=s3_endpoint,
        keep_daily=2,
        keep_weekly=1,
        encryption_key=base64.b64encode(os.urandom(32)).decode(),
    )
    resources = {"clickhouse": clickhouse, "backup_store": resource}
    with clickhouse.client() as client:
        _fill(clickhouse, client)
        before = _snapshot(client)
    backup_config = {"ops": {"back_up_platform": {"config": {"mlflow_dir": str(mlflow_dir)}}}}
    with instance_for_test() as instance:
        result = backup_job.execute_in_process(
            run_config=backup_config, resources=resources, instance=instance
        )
        assert result.success
        backup_id = result.output_for_node("back_up_platform")
        backed_up, retained = (
            next(
                e.event_specific_data.metadata
                for e in result.events_for_node(node)
                if e.event_type_value == "STEP_OUTPUT"
            )
            for node in ("back_up_platform", "apply_backup_retention")
        )
        rows = sum(len(f) for name, f in before.items() if name != "last_close")
        assert backed_up["rows"].value == rows and backed_up["encrypted"].value is True
        assert backed_up["backup_id"].value == backup_id == latest_backup(store)
        archives = backed_up["archives"].value  # folder -> files
        assert set(archives) == {"mlflow", "dagster"} and archives["mlflow"] == 2
        assert list(retained["kept"].value) == [backup_id]
        assert retained["deleted_backups"].value == []

        with clickhouse.client() as client:
            _drop_all(client)
        restore_config = {
            "ops": {
                "restore_platform": {
                    "config": {
                        "target_database": DB,
                        "mlflow_dir": str(tmp_path / "mlflow_back"),
                        "dagster_home": str(tmp_path / "dagster_back"),
                    }
                }
            }
        }
        restored = restore_job.execute_in_process(
            run_config=restore_config, resources=resources, instance=instance
        )
        assert restored.success and restored.output_for_node("restore_platform") == backup_id
    with clickhouse.client() as client:
        _assert_same(_snapshot(client), before)
    # the instance's own SQLite run storage came along, with the backup run in it
    runs_db = tmp_path / "dagster_back" / "history" / "runs.db"
    assert sqlite3.connect(runs_db).execute("SELECT count(*) FROM runs").fetchone()[0] >= 1
    assert (tmp_path / "mlflow_back" / "mlflow.db").exists()


def _postgres_user() -> str | None:
    import psycopg2

    for user in ("postgres", "root"):
        try:
            psycopg2.connect(
                host="127.0.0.1", user=user, dbname="postgres", connect_timeout=3
            ).close()
            return user
        except psycopg2.Error:
            continue
    return None


@pytest.fixture
def postgres_databases():
    """Four fresh databases on the machine's PostgreSQL (trust auth): a Dagster instance's,
    an MLflow backend's, and an empty target for each; dropped afterwards."""
    import psycopg2

    user = _postgres_user()
    if user is None:
        pytest.skip("production-mode test: no PostgreSQL on 127.0.0.1:5432 (trust auth)")
    roles = ("dagster", "mlflow", "dagster_back", "mlflow_back")
    names = {role: f"qb_{role}_{os.getpid()}" for role in roles}
    admin = psycopg2.connect(host="127.0.0.1", user=user, dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        for name in names.values():
            cur.execute(f"DROP DATABASE IF EXISTS {name}")
            cur.execute(f"CREATE DATABASE {name}")
    yield {role: f"postgresql://{user}@127.0.0.1:5432/{name}" for role, name in names.items()}
    with admin.cursor() as cur:
        for name in names.values():
            cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.close()


def test_postgres_backed_stores_through_the_jobs(
    clickhouse, store, s3_endpoint, postgres_databases, monkeypatch, tmp_path
):
    """Production mode: the Dagster instance on Postgres (dagster-postgres) is dumped without
    being named, MLflow's backend database because its URL's variable is; both restore into
    empty databases, and a database that is not empty is refused."""
    import psycopg2

    urls = postgres_databases
    with psycopg2.connect(urls["mlflow"]) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE experiments (id int PRIMARY KEY, name text)")
        cur.execute("INSERT INTO experiments VALUES (1, 'quant_daily'), (2, '利润')")
    monkeypatch.setenv("BACKUP_TEST_MLFLOW_DB", urls["mlflow"])
    monkeypatch.setenv("BACKUP_TEST_MLFLOW_TARGET", urls["mlflow_back"])
    monkeypatch.setenv("BACKUP_TEST_DAGSTER_TARGET", urls["dagster_back"])
    resources = {
        "clickhouse": clickhouse,
        "backup_store": BackupStoreResource(
            url=f"s3://{store.bucket}/pg", endpoint_url=s3_endpoint
        ),
    }
    with clickhouse.client() as client:
        _fill(clickhouse, client, days=DAYS[:1])
    # as Dagster takes it: SQLAlchemy's form, the driver named
    dagster_url = urls["dagster"].replace("postgresql://", "postgresql+psycopg2://")
    overrides = {"storage": {"postgres": {"postgres_url": dagster_url}}}
    with instance_for_test(overrides=overrides) as instance:
        config = {"include_mlflow": False, "postgres_env": ["BACKUP_TEST_MLFLOW_DB"]}
        result = backup_job.execute_in_process(
            run_config={"ops": {"back_up_platform": {"config": config}}},
            resources=resources,
            instance=instance,
        )
        assert result.success
        backup = result.output_for_node("back_up_platform")
        manifest = read_manifest(resources["backup_store"].open(), backup, None)
        kinds = {a.name: a.kind for a in manifest.archives}
        assert kinds == {
            "dagster": "folder",
            "dagster_postgres": "postgres",
            "backup_test_mlflow_db": "postgres",
        }

        targets = {
            "dagster_postgres": "BACKUP_TEST_DAGSTER_TARGET",
            "backup_test_mlflow_db": "BACKUP_TEST_MLFLOW_TARGET",
        }
        restore = {"ops": {"restore_platform": {"config": {"postgres_targets": targets}}}}
        restored = restore_job.execute_in_process(
            run_config=restore, resources=resources, instance=instance
        )
        assert restored.success
        again = restore_job.execute_in_process(
            run_config=restore, resources=resources, instance=instance, raise_on_error=False
        )
        assert not again.success
        failure = again.get_step_failure_events()[0].event_specific_data.error.to_string()
        assert f"{urls['dagster_back']} is not empty (public.alembic_version" in failure
    with psycopg2.connect(urls["mlflow_back"]) as conn, conn.cursor() as cur:
        cur.execute("SELECT * FROM experiments ORDER BY id")
        assert cur.fetchall() == [(1, "quant_daily"), (2, "利润")]
    with psycopg2.connect(urls["dagster_back"]) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM runs")
        assert cur.fetchone()[0] >= 1  # the backup run itself, as the instance held it


def test_the_daily_schedule_asks_for_a_backup_run():
    context = build_schedule_context(
        scheduled_execution_time=datetime(2024, 6, 3, 23, 0, tzinfo=UTC)
    )
    requests = backup_daily.evaluate_tick(context).run_requests
    assert len(requests) == 1 and backup_daily.job_name == "backup_job"
    assert backup_daily.cron_schedule == "0 23 * * *"
