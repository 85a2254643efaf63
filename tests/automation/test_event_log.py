"""The embedded instance's event log (quant_assets/automation/event_log.py): the repository's
dagster.yaml selects it, a real materialisation is stored and read back through it, its
engines stay bounded, its connections commit with synchronous=NORMAL, and a deleted run
takes its file with it (which the demo relies on to replace its previous runs)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    Output,
    asset,
    materialize,
)
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable
from sqlalchemy import func, select

from quant_assets.automation.event_log import KEPT_ENGINES, SqliteEventLogStorage
from quant_assets.demo import DEMO_TAG, prune_earlier_demos

REPO = Path(__file__).resolve().parents[2]


@asset(check_specs=[AssetCheckSpec("positive", asset="answer")])
def answer():
    yield Output(42)
    yield AssetCheckResult(check_name="positive", passed=True)


def _check_runs(instance: DagsterInstance) -> set[str]:
    """The runs that check evaluations in the index belong to."""
    with instance.event_log_storage.index_connection() as conn:
        table = AssetCheckExecutionsTable
        rows = conn.execute(select(table.c.run_id, func.count()).group_by(table.c.run_id))
        return {run_id for run_id, _ in rows}


def _home(tmp_path: Path) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    return home


def test_the_repository_instance_stores_runs_in_the_kept_engine_event_log(tmp_path, monkeypatch):
    home = _home(tmp_path)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    instance = DagsterInstance.get()
    try:
        storage = instance.event_log_storage
        assert isinstance(storage, SqliteEventLogStorage)
        runs = []
        for _ in range(KEPT_ENGINES + 3):
            result = materialize([answer], instance=instance)
            assert result.success
            runs.append(result.run_id)
        # every run's events are in Dagster's own place for them, one file per run
        files = {p.stem for p in (home / "history" / "runs").glob("*.db")}
        assert set(runs) <= files and "index" in files
        for run_id in runs:
            kinds = {e.dagster_event_type for e in instance.all_logs(run_id) if e.dagster_event}
            assert {DagsterEventType.RUN_SUCCESS, DagsterEventType.ASSET_MATERIALIZATION} <= kinds
        latest = instance.get_latest_materialization_event(AssetKey("answer"))
        assert latest is not None and latest.run_id == runs[-1]
        # a long-lived process keeps only the most recently used files' engines
        assert len(storage._engines) == KEPT_ENGINES
        with storage.index_connection() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        instance.dispose()


def test_without_dagster_home_or_base_dir_it_says_what_to_set(monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    with pytest.raises(ValueError, match="set DAGSTER_HOME .* or give base_dir"):
        SqliteEventLogStorage()


def _size_with_wal(db: Path) -> int:
    """A SQLite file's disk use: the file and its write-ahead log (a connection is kept open,
    so committed pages may still be in the log)."""
    wal = db.with_name(db.name + "-wal")
    return db.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def test_a_new_demo_deletes_the_previous_demos_runs_and_their_files(tmp_path, monkeypatch):
    home = _home(tmp_path)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    runs_dir = home / "history" / "runs"
    instance = DagsterInstance.get()
    try:
        earlier = [materialize([answer], instance=instance, tags=DEMO_TAG).run_id for _ in "ab"]
        other = materialize([answer], instance=instance).run_id  # not a demo run: kept
        assert all((runs_dir / f"{r}.db").exists() for r in earlier)

        index = runs_dir / "index.db"
        for _ in range(20):  # enough runs for the index to hold pages worth giving back
            materialize([answer], instance=instance, tags=DEMO_TAG)
        before = _size_with_wal(index)
        since = time.time()
        latest = materialize([answer], instance=instance, tags=DEMO_TAG).run_id

        assert earlier[0] in _check_runs(instance)
        assert prune_earlier_demos(instance, since) == 22
        assert _size_with_wal(index) < before  # the deleted runs' pages are given back
        assert {r.run_id for r in instance.get_runs()} == {other, latest}
        assert _check_runs(instance) == {other, latest}  # their check evaluations went too
        assert not any((runs_dir / f"{r}.db").exists() for r in earlier)
        assert not instance.all_logs(earlier[0])
        event = instance.get_latest_materialization_event(AssetKey("answer"))
        assert event is not None and event.run_id == latest
        assert prune_earlier_demos(instance, time.time()) == 1  # the latest, by a later demo
    finally:
        instance.dispose()
