"""The key command line, run for real (`python -m quant_assets.api.keys_cli` in a subprocess): it
prints a new key once, lists keys without secrets, revokes; the API honours both."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient

from quant_assets.api.app import create_app
from quant_assets.api.config import ApiConfig
from quant_assets.api.keys import hash_secret, parse_key

ROOT = Path(__file__).resolve().parents[2]


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "quant_assets.api.keys_cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_the_cli_creates_lists_and_revokes_keys(tmp_path: Path):
    dsn = f"chdb://{tmp_path / 'clickhouse'}"
    env = {
        **os.environ,
        "QUANT_DATA_DIR": str(tmp_path),
        "QUANT_CLICKHOUSE_DSN": dsn,
        "QUANT_CLICKHOUSE_DATABASE": "quant_cli",
        "QUANT_API_KEY_PEPPER": "cli-pepper",
    }
    env.pop("QUANT_REDIS_URL", None)
    created = run_cli(env, "create", "--scope", "read", "--expires-days", "90", "--name", "pm-desk")
    assert created.returncode == 0, created.stderr
    key = re.search(r"^key:\s+(\S+)$", created.stdout, re.M).group(1)
    key_id, secret = parse_key(key)
    assert created.stdout.count(secret) == 1 and "shown this once" in created.stdout
    listed = run_cli(env, "list")
    assert listed.returncode == 0, listed.stderr
    assert key_id in listed.stdout and "pm-desk" in listed.stdout and "read" in listed.stdout
    assert secret not in listed.stdout
    assert hash_secret(key_id, secret, "cli-pepper") not in listed.stdout

    config = ApiConfig(clickhouse_dsn=dsn, database="quant_cli", key_pepper="cli-pepper")
    app = create_app(config)
    with TestClient(app) as client:
        # the key works (no data stored here: 404, past authentication)
        assert client.get("/v1/performance", headers={"X-API-Key": key}).status_code == 404
    revoked = run_cli(env, "revoke", key_id)
    assert revoked.returncode == 0 and f"revoked {key_id}" in revoked.stdout
    relisted = run_cli(env, "list")
    assert re.search(rf"^{key_id} .* \d{{4}}-\d\d-\d\d \d\d:\d\d$", relisted.stdout, re.M)
    app = create_app(config)  # a fresh process's view: the key is refused
    with TestClient(app) as client:
        assert client.get("/v1/performance", headers={"X-API-Key": key}).status_code == 401
    unknown = run_cli(env, "revoke", "k0000000000000000")
    assert unknown.returncode == 1 and "no key" in unknown.stderr
    bad = run_cli(env, "create", "--scope", "root", "--name", "x")
    assert bad.returncode == 2
