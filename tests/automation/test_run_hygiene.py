"""Run hygiene of the embedded instance: a killed run is failed by run monitoring and the queue
moves on; its chDB folder lock and staging tables do not outlive it.

A real instance in a temporary DAGSTER_HOME with the repository's dagster.yaml, a real
`dagster-daemon run` on the repository's workspace, runs submitted with `dagster job launch`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, job, op
from dagster._core.events import EngineEventData
from dagster._core.launcher import WorkerStatus
from dagster._core.storage.tags import GRPC_INFO_TAG

from quant_assets.automation.run_launcher import LocalRunLauncher
from resources import ClickHouseResource

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DAY = "2024-01-02"
# Monitoring polls every 5 s here instead of dagster.yaml's 30 s, so the test waits seconds for
# what the real instance does within a minute; everything else is the repository's config.
POLL_S = 5


def _instance_home(tmp_path: Path) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    config = yaml.safe_load((REPO / "dagster.yaml").read_text())
    config["run_monitoring"]["poll_interval_seconds"] = POLL_S
    # loaded from this folder, not $DAGSTER_HOME: the event log is told where it lives
    config["event_log_storage"]["config"] = {"base_dir": str(home / "history" / "runs")}
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    return home


def _env(home: Path, data: Path) -> dict[str, str]:
    """The embedded defaults in a temporary data folder, with a small simulated market."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QUANT_", "MLFLOW_"))}
    return env | {
        "DAGSTER_HOME": str(home),
        "QUANT_DATA_DIR": str(data),
        "QUANT_SIM_SYMBOLS": "5",
        "QUANT_SIM_SNAPSHOT_SECONDS": "15",
        "QUANT_PARTITIONS_START": os.environ["QUANT_PARTITIONS_START"],  # tests/conftest.py
    }


def _launch_command(job_name: str, run_id: str, day: str) -> list:
    """`dagster job launch` of one partition: the run is queued, the daemon launches it."""
    return [
        *(BIN / "dagster", "job", "launch", "-w", "workspace.yaml", "-j", job_name),
        *("--run-id", run_id, "--tags", json.dumps({"dagster/partition": day})),
    ]


def _wait(what: str, done, timeout_s: float, every_s: float = 0.5):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = done()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def _worker_pid(instance: DagsterInstance, run_id: str) -> int | None:
    """The pid of the run worker, from its "Started process for run (pid: ...)" event."""
    for record in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        pid = record.dagster_event.engine_event_data.metadata.get("pid")
        if pid is not None:
            return int(pid.value)
    return None


def _writing(instance: DagsterInstance, run_id: str) -> bool:
    """Whether the run has stored a table (so it holds the chDB folder); an ended run fails."""
    run = instance.get_run_by_id(run_id)
    assert not run.is_finished, (run.status, _errors(instance, run_id))
    return bool(instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION))


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _failure_message(instance: DagsterInstance, run_id: str) -> tuple[str, float]:
    (record,) = instance.all_logs(run_id, of_type=DagsterEventType.RUN_FAILURE)
    return record.message, record.timestamp


def _errors(instance: DagsterInstance, run_id: str) -> list[str]:
    """What went wrong in a run, for the assertion message."""
    out = []
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None:
            continue
        if event.is_step_failure:
            error = event.step_failure_data.error
        elif event.is_engine_event:  # e.g. a dequeue that could not reach the code server
            error = event.engine_event_data.error
            if error is None:
                continue
        elif not event.is_failure:
            continue
        else:
            error = None
        out.append(f"{event.event_type_value}: {record.message} {error or ''}"[:2000])
    return out


def _staging_tables(client) -> list[str]:
    """Staging tables (``<table>__staging_*``) in the platform's database."""
    tables = [row[0] for row in client.query("SHOW TABLES FROM quant").result_rows]
    return [t for t in tables if "__staging_" in t]


def _run_start(instance: DagsterInstance, run_id: str) -> float:
    (record,) = instance.all_logs(run_id, of_type=DagsterEventType.RUN_START)
    return record.timestamp


def test_the_repository_instance_uses_the_health_checking_launcher_and_monitoring(tmp_path):
    instance = DagsterInstance.from_config(str(_instance_home(tmp_path)))
    try:
        assert isinstance(instance.run_launcher, LocalRunLauncher)
        assert instance.run_launcher.supports_check_run_worker_health
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_max_resume_run_attempts == 0
        config = instance.get_concurrency_config()
        assert config.run_queue_config.max_concurrent_runs == 1
        assert config.pool_config.pool_granularity.value == "run"
    finally:
        instance.dispose()


@op
def _noop() -> None:
    pass


@job
def _a_job() -> None:
    _noop()


def test_the_launcher_reports_a_worker_dead_once_its_process_is_gone(tmp_path):
    instance = DagsterInstance.from_config(str(_instance_home(tmp_path)))
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        run = instance.create_run_for_job(_a_job, status=DagsterRunStatus.STARTED)
        launcher = instance.run_launcher
        assert launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING  # no pid yet
        instance.report_engine_event(
            f"Started process for run (pid: {worker.pid}).",
            run,
            EngineEventData.in_process(worker.pid),
        )
        assert launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING
        worker.kill()
        worker.wait()
        health = launcher.check_run_worker_health(run)
        assert health.status == WorkerStatus.FAILED
        assert f"run worker pid {worker.pid} is gone" in health.msg

        # a worker on another machine's code server is not for this host to judge
        remote = instance.create_run_for_job(
            _a_job,
            status=DagsterRunStatus.STARTED,
            tags={GRPC_INFO_TAG: json.dumps({"host": "code-location.internal", "port": 4000})},
        )
        instance.report_engine_event(
            f"Started process for run (pid: {worker.pid}).",
            remote,
            EngineEventData.in_process(worker.pid),
        )
        assert launcher.check_run_worker_health(remote).status == WorkerStatus.RUNNING
    finally:
        worker.kill()
        worker.wait()
        instance.dispose()


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_a_killed_run_is_failed_by_monitoring_and_the_queued_run_succeeds(tmp_path):
    """The defect: a run killed with kill -9 stayed STARTED and held the one run slot, so the
    runs queued behind it waited forever.

    The run worker and the code server that spawned it are killed together, as when `dagster
    dev` or the daemon is killed, or the OOM killer picks the code server. (A worker killed
    alone is reported by its code server at once; with the code server gone only run
    monitoring can notice, which is what this test checks.) The queued run then writes the
    same day the killed run was writing: the dead run's chDB folder lock must be gone, and no
    staging table may be left over.
    """
    home = _instance_home(tmp_path)
    data = tmp_path / "data"
    env = _env(home, data)
    clickhouse = ClickHouseResource(dsn=f"chdb://{data / 'clickhouse'}", open_timeout_s=10)
    # Create the SQLite storage before the daemon and the CLI open it side by side.
    instance = DagsterInstance.from_config(str(home))
    daemon_log = (tmp_path / "daemon.log").open("w")
    launches = (tmp_path / "launch.log").open("w")
    daemon = subprocess.Popen(
        [BIN / "dagster-daemon", "run", "-w", "workspace.yaml"],
        cwd=REPO,
        env=env,
        stdout=daemon_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its code servers and their run workers share its group
    )
    try:
        # The whole daily pipeline: long enough that it is still running when the second
        # run has been submitted and queued behind it.
        first, second_id = str(uuid.uuid4()), str(uuid.uuid4())
        subprocess.run(
            _launch_command("daily_pipeline", first, DAY),
            cwd=REPO,
            env=env,
            stdout=launches,
            stderr=subprocess.STDOUT,
            check=True,
            timeout=180,
        )
        second = subprocess.Popen(  # submitted while the first one starts
            _launch_command("market_ingest", second_id, DAY),
            cwd=REPO,
            env=env,
            stdout=launches,
            stderr=subprocess.STDOUT,
        )
        pid = _wait(
            "the first run to write a table",
            lambda: _writing(instance, first) and _worker_pid(instance, first),
            timeout_s=240,
        )
        assert second.wait(timeout=180) == 0, (tmp_path / "launch.log").read_text()[-3000:]
        assert instance.get_run_by_id(first).status == DagsterRunStatus.STARTED
        assert instance.get_run_by_id(second_id).status == DagsterRunStatus.QUEUED

        code_server = _parent(pid)
        cmdline = Path(f"/proc/{code_server}/cmdline").read_bytes().replace(b"\0", b" ")
        assert b"dagster api grpc" in cmdline, cmdline
        os.kill(code_server, signal.SIGKILL)
        os.kill(pid, signal.SIGKILL)
        killed_at = time.time()
        # The folder opens at once: the dead worker's chDB lock went with its process. Any
        # staging table the kill left (it depends on where the write was) must go below.
        with clickhouse.client() as client:
            leftovers = _staging_tables(client)

        _wait(
            "monitoring to fail the killed run",
            lambda: instance.get_run_by_id(first).status == DagsterRunStatus.FAILURE,
            timeout_s=4 * POLL_S + 30,
        )
        message, failed_at = _failure_message(instance, first)
        assert f"run worker pid {pid} is gone" in message, message
        assert failed_at - killed_at < 2 * POLL_S + 15

        # Dequeued once the slot is free; its code server is restarted by the daemon's
        # workspace reload (every 60 s), the dequeue retried meanwhile.
        run = _wait(
            "the queued run to finish",
            lambda: (r := instance.get_run_by_id(second_id)).is_finished and r,
            timeout_s=300,
            every_s=2,
        )
        assert run.status == DagsterRunStatus.SUCCESS, _errors(instance, second_id)
        assert _run_start(instance, second_id) > failed_at
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait()
        instance.dispose()
        daemon_log.close()
        launches.close()

    with clickhouse.client() as client:
        remaining = _staging_tables(client)
        bars = client.command(f"SELECT count() FROM quant.raw_daily_bars WHERE date = '{DAY}'")
    assert remaining == [], f"left over: {remaining} (after the kill: {leftovers})"
    assert int(bars) > 0
