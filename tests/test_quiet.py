"""The local UIs stop cleanly: Ctrl-C on `make mlflow-ui` (mlflow/serve.sh) ends the server within
seconds, with no traceback and no warning a user cannot act on."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_listening(port: int, proc: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the server exited before it listened"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"nothing listened on {port} within {timeout_s} s")


@pytest.mark.slow  # starts an MLflow server: about 12 s
def test_mlflow_serve_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "QUANT_DATA_DIR": str(tmp_path), "MLFLOW_PORT": str(port)}
    env.pop("MLFLOW_BACKEND_STORE_URI", None)
    env.pop("MLFLOW_ARTIFACTS_DESTINATION", None)
    proc = subprocess.Popen(
        ["bash", "mlflow/serve.sh"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    try:
        _wait_listening(port, proc, timeout_s=120)
        time.sleep(1)  # let the workers finish starting, as a user would see the UI first
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends
        started = time.monotonic()
        out, _ = proc.communicate(timeout=15)
        took = time.monotonic() - started
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert took < 10, f"took {took:.1f} s to stop"
    assert proc.returncode in (0, -signal.SIGINT, 130), out[-2000:]
    assert "Traceback" not in out, out[-4000:]
    assert "Warning" not in out and "WARNING" not in out, out[-4000:]
    assert (tmp_path / "mlflow" / "mlflow.db").exists()  # it served the embedded store
