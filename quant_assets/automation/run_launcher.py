"""The embedded instance's run launcher: Dagster's default launcher plus a run-worker health check.

Dagster 1.13's `DefaultRunLauncher` starts each run in a subprocess of the code server and has
no health check (`supports_check_run_worker_health` is False), so run monitoring can only time
out runs that never start or overrun `max_runtime_seconds`. The code server itself notices a
run process that dies, but only while it lives: when it goes too (the daemon or `dagster dev`
killed with its children, the OOM killer, a reboot), the run stays STARTED forever and holds
the run slot. `LocalRunLauncher` tells the monitoring daemon whether the process that logged
the run's pid is still alive on this machine, so such a run is marked failed on the next poll.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from dagster import DagsterEventType, DefaultRunLauncher
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.storage.tags import GRPC_INFO_TAG
from dagster_shared import seven

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}
# The worker logs its pid after it started: a process under that pid that began later than
# this (plus /proc's one-second boot-time resolution) is another process that reused the pid.
START_SLACK_S = 2.0


class LocalRunLauncher(DefaultRunLauncher):
    """`DefaultRunLauncher` whose runs' workers are checked by pid on this host."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        """FAILED when the run's worker process is gone; RUNNING when it lives or when this
        host cannot tell (no pid logged yet, or the code server runs on another machine)."""
        host = _grpc_host(run)
        if host is not None and host not in LOCAL_HOSTS | {socket.gethostname()}:
            return CheckRunHealthResult(WorkerStatus.RUNNING, f"run worker on {host}: not checked")
        worker = self._worker(run)
        if worker is None:
            return CheckRunHealthResult(WorkerStatus.RUNNING, "no run-worker pid logged yet")
        pid, logged_at = worker
        if _alive(pid, logged_at):
            return CheckRunHealthResult(WorkerStatus.RUNNING, f"run worker pid {pid} is alive")
        return CheckRunHealthResult(
            WorkerStatus.FAILED,
            f"run worker pid {pid} is gone (killed or crashed together with the code server "
            "that started it, so nothing reported the run's end)",
        )

    def _worker(self, run: DagsterRun) -> tuple[int, float] | None:
        """The pid the run's worker logged first ("Started process for run", or "Executing
        steps in process" for a run executed in the caller's process) and when."""
        for record in self._instance.all_logs(run.run_id, of_type=DagsterEventType.ENGINE_EVENT):
            data = record.dagster_event.engine_event_data if record.dagster_event else None
            pid = data.metadata.get("pid") if data is not None else None
            if pid is not None:
                return int(pid.value), record.timestamp
        return None


def _grpc_host(run: DagsterRun) -> str | None:
    """The host of the code server that launched the run (None: launched in-process)."""
    raw = run.tags.get(GRPC_INFO_TAG)
    if not raw:
        return None
    info = seven.json.loads(raw)
    return None if info.get("socket") else info.get("host")


def _alive(pid: int, logged_at: float) -> bool:
    """Whether `pid` is a live process that already existed when it logged its pid."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    try:  # Linux: a zombie is dead; a process started after the log line reused the pid
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
    except (OSError, StopIteration, IndexError):
        return True  # no procfs (macOS): the pid exists, which is all that can be said
    state, start_ticks = stat[0], int(stat[19])
    started = boot + start_ticks / os.sysconf("SC_CLK_TCK")
    return state not in ("Z", "X") and started <= logged_at + START_SLACK_S
