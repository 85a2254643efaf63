"""A bounded load test on loopback: the real service (`python -m quant_assets.api`, uvicorn in its
own process) answers N cached recommendation requests from 8 concurrent clients within a time
bound, all 200; the figures (requests per second, p50 and p99 latency) are printed. The speed
target of issue 16 belongs to bench/, this only bounds it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from api_test_store import DATABASE, api_config, build

from quant_assets.api.app import build_services

ROOT = Path(__file__).resolve().parents[2]
REQUESTS, CLIENTS, BOUND_S = 2000, 8, 120.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    built = build(tmp_path)
    config = api_config(built)
    _, key = build_services(config).keys.create("load", "read", 1)
    port = free_port()
    env = {
        **os.environ,
        "QUANT_DATA_DIR": str(tmp_path),
        "QUANT_CLICKHOUSE_DSN": built.dsn,
        "QUANT_CLICKHOUSE_DATABASE": DATABASE,
        "QUANT_API_KEY_PEPPER": config.key_pepper,
        "QUANT_API_RATE_LIMIT": "1000000",
        "DAGSTER_HOME": str(built.dagster_home),
    }
    env.pop("QUANT_REDIS_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "quant_assets.api", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/openapi.json", timeout=1)
            break
        except httpx.TransportError:
            assert proc.poll() is None, proc.stderr.read()
            time.sleep(0.3)
    try:
        yield url, key
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_cached_recommendations_under_load(server, capsys):
    url, key = server
    headers = {"X-API-Key": key}
    with httpx.Client(base_url=url, headers=headers) as warm:
        assert warm.get("/v1/recommendations").status_code == 200  # fills the cache

    def worker(n: int) -> list[tuple[int, float]]:
        out = []
        with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
            for _ in range(n):
                t0 = time.perf_counter()
                status = client.get("/v1/recommendations").status_code
                out.append((status, time.perf_counter() - t0))
        return out

    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        results = [r for part in pool.map(worker, [REQUESTS // CLIENTS] * CLIENTS) for r in part]
    elapsed = time.perf_counter() - started
    statuses = [s for s, _ in results]
    latency_ms = np.array([t for _, t in results]) * 1000
    assert statuses == [200] * REQUESTS
    assert elapsed < BOUND_S
    with capsys.disabled():
        print(
            f"\nAPI load: {REQUESTS} cached /v1/recommendations from {CLIENTS} clients in "
            f"{elapsed:.1f} s: {REQUESTS / elapsed:.0f} req/s, p50 "
            f"{np.percentile(latency_ms, 50):.1f} ms, p99 {np.percentile(latency_ms, 99):.1f} ms"
        )
