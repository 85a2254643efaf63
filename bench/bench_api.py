"""The API's recommendations endpoint under load on loopback, from the cache and without it.

    .venv/bin/python bench/bench_api.py [--seconds 10] [--connections 32] [--workers 2]

The real service (`python -m quant_assets.api`, uvicorn with `--workers` processes) over a
small real store (chDB, two days of every table the API reads), authenticated with a real read
key (`X-API-Key`), the rate limit raised out of the way. Load comes from wrk (Debian's `wrk`,
one thread, so the server keeps the cores), which reports requests per second and latency
percentiles. Target (issue 16): at least 1,000 requests per second with p99 under 50 ms on 2
cores from the cache; the same run without the cache (`QUANT_API_READ_CACHE=false`: every
answer read from ClickHouse, the embedded engine opened for each) is printed next to it.
The load average before each measurement is printed too: wrk and the server share the cores
with whatever else runs. Not part of pytest.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "api"))  # the tests' small real store

from api_test_store import DATABASE, api_config, build  # noqa: E402

from quant_assets.api.app import build_services  # noqa: E402

TARGET_RPS, TARGET_P99_MS = 1000.0, 50.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(env: dict[str, str], workers: int) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "quant_assets.api", "--port", str(port), "--workers", str(workers)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/openapi.json", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.3)
    proc.terminate()
    raise SystemExit("the API did not start within 120 s")


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def _wrk(url: str, key: str, seconds: int, connections: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
         "-H", f"X-API-Key: {key}", f"{url}/v1/recommendations"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    figures = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))}
    for pct in ("50", "99"):
        figures[f"p{pct}"] = _ms(re.search(rf"\s{pct}(?:\.000)?%\s+(\S+)", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    figures["errors"] = float(bad.group(1)) if bad else 0.0
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    root = Path(tempfile.mkdtemp(prefix="bench_api_"))
    built = build(root)
    config = api_config(built)
    _, key = build_services(config).keys.create("bench", "read", 1)
    base = {**os.environ, "QUANT_DATA_DIR": str(root), "QUANT_CLICKHOUSE_DSN": built.dsn,
            "QUANT_CLICKHOUSE_DATABASE": DATABASE, "QUANT_API_KEY_PEPPER": config.key_pepper,
            "QUANT_API_RATE_LIMIT": "1000000000", "DAGSTER_HOME": str(built.dagster_home)}  # fmt: skip
    base.pop("QUANT_REDIS_URL", None)
    print(f"{os.cpu_count()} cores; wrk 1 thread, {args.connections} connections, "
          f"{args.seconds} s; uvicorn {args.workers} workers; GET /v1/recommendations")  # fmt: skip
    results = {}
    for label, cached in (("from the cache", "true"), ("without the cache", "false")):
        # other work on the machine shares the cores: its load is part of the result
        print("  load average before: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
        proc, url = _serve({**base, "QUANT_API_READ_CACHE": cached}, args.workers)
        try:
            for _ in range(50 * args.workers):  # every worker's first reads fill its memos
                assert httpx.get(f"{url}/v1/recommendations", headers={"X-API-Key": key}).is_success
            seconds = args.seconds if cached == "true" else max(3, args.seconds // 2)
            results[label] = _wrk(url, key, seconds, args.connections)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        r = results[label]
        print(f"  {label:<18} {r['rps']:8.0f} req/s   p50 {r['p50']:7.1f} ms   "
              f"p99 {r['p99']:7.1f} ms   non-2xx {r['errors']:.0f}")  # fmt: skip
    hot, cold = results["from the cache"], results["without the cache"]
    ok = hot["rps"] >= TARGET_RPS and hot["p99"] < TARGET_P99_MS and hot["errors"] == 0
    print(f"cache speed-up {hot['rps'] / max(cold['rps'], 1e-9):.0f}x; target >= {TARGET_RPS:.0f}"
          f" req/s with p99 < {TARGET_P99_MS:.0f} ms: {'met' if ok else 'MISSED'}")  # fmt: skip
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
