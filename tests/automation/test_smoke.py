"""The deployment smoke test against real servers on loopback: Dagster's webserver loading the
project's code location (temporary DAGSTER_HOME), MLflow's tracking server on a SQLite store,
and the metrics endpoint reading that Dagster instance."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterInstance

from quant_assets.automation.smoke import metric_names, shown

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
START_TIMEOUT_S = 240


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(url: str, process: subprocess.Popen, log: Path) -> float:
    start = time.monotonic()
    while time.monotonic() - start < START_TIMEOUT_S:
        if process.poll() is not None:
            pytest.fail(
                f"{url}: the server exited ({process.returncode}): {log.read_text()[-2000:]}"
            )
        try:
            urllib.request.urlopen(url, timeout=5).read()
            return time.monotonic() - start
        except OSError:
            time.sleep(1)
    pytest.fail(f"{url} did not answer within {START_TIMEOUT_S} s: {log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[dict[str, str]]:
    """The three servers, started side by side; their URLs."""
    root = tmp_path_factory.mktemp("stack")
    home = root / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    # Create the instance's storage once, before three processes open it at the same time (as
    # a deployment's Postgres instance is migrated before its services start).
    DagsterInstance.from_config(str(home)).dispose()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "QUANT_DATA_DIR": str(root / "data"),
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    ports = {name: _free_port() for name in ("dagster", "mlflow", "metrics")}
    commands = {
        "dagster": [
            str(BIN / "dagster-webserver"),
            *("-h", "127.0.0.1", "-p", str(ports["dagster"])),
            *("-w", str(ROOT / "workspace.yaml")),
        ],
        "mlflow": [
            str(BIN / "mlflow"),
            "server",
            *("--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}"),
            *("--artifacts-destination", str(root / "artifacts")),
            *("--host", "127.0.0.1", "--port", str(ports["mlflow"]), "--workers", "1"),
        ],
        "metrics": [
            sys.executable,
            *("-m", "quant_assets.automation.monitoring.server"),
            *("--host", "127.0.0.1", "--port", str(ports["metrics"])),
        ],
    }
    urls = {
        "dagster": f"http://127.0.0.1:{ports['dagster']}",
        "mlflow": f"http://127.0.0.1:{ports['mlflow']}",
        "metrics": f"http://127.0.0.1:{ports['metrics']}/metrics",
    }
    ready = {
        "dagster": urls["dagster"] + "/server_info",
        "mlflow": urls["mlflow"] + "/health",
        "metrics": urls["metrics"],
    }
    processes: dict[str, subprocess.Popen] = {}
    logs = {name: root / f"{name}.log" for name in commands}
    try:
        for name, command in commands.items():
            with logs[name].open("w") as log:
                processes[name] = subprocess.Popen(
                    command,
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its own group: its children stop with it
                )
        for name in commands:
            seconds = _wait_for(ready[name], processes[name], logs[name])
            print(f"{name} answered after {seconds:.0f} s")
        yield urls
    finally:
        for process in processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _smoke(*args: str) -> subprocess.CompletedProcess:
    # `make smoke` runs the module with any Python: the test does it without the venv's path
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMOKE_")}
    return subprocess.run(
        ["python3", "-m", "quant_assets.automation.smoke", *args],
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=400,
    )


def test_smoke_passes_against_a_running_stack(stack):
    done = _smoke(
        *("--dagster", stack["dagster"], "--mlflow", stack["mlflow"]),
        *("--metrics", stack["metrics"], "--wait", "180"),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["ok", "dagster:"],
        ["ok", "mlflow:"],
        ["ok", "metrics:"],
    ]
    assert "code location 'quant_assets' loaded" in lines[0]


def test_smoke_fails_clearly(stack):
    closed = f"http://127.0.0.1:{_free_port()}"
    done = _smoke(
        *("--dagster", stack["dagster"], "--location", "no_such_location"),
        *("--mlflow", closed, "--metrics", stack["mlflow"] + "/health", "--wait", "0"),
    )
    assert done.returncode == 1
    dagster, mlflow, metrics = done.stdout.splitlines()
    assert dagster.startswith("FAIL dagster: no code location 'no_such_location'")
    assert mlflow.startswith(f"FAIL mlflow: {closed}/health:")
    assert metrics == f"FAIL metrics: {stack['mlflow']}/health serves no quant_* metric"


def test_metric_names_and_masked_urls():
    page = (
        "# HELP quant_runs_total Runs.\n# TYPE quant_runs_total counter\n"
        'quant_runs_total{status="SUCCESS"} 3.0\n'
        "# TYPE python_info gauge\npython_info 1.0\n"
    )
    assert metric_names(page) == {"quant_runs_total", "python_info"}
    assert shown("http://admin:s3cret@grafana:3000/x") == "http://grafana:3000/x"
