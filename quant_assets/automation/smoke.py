"""Smoke test of a deployment: is the stack up and serving what it should?

    python -m quant_assets.automation.smoke [--dagster URL] [--mlflow URL] [--metrics URL]

checks that Dagster's webserver answers GraphQL with the code location loaded (its
repositories, jobs and assets listed), that MLflow's server is healthy (`/health`), and that
the metrics endpoint serves the platform's `quant_` metrics in the Prometheus text format. URLs
default to SMOKE_DAGSTER_URL, SMOKE_MLFLOW_URL and SMOKE_METRICS_URL, else the local stack's.
A deployment that has just started needs a moment (the code location loads its definitions),
so failing checks are retried until `--wait` seconds have passed. One line per check; the exit
status is 1 when any failed. Standard library only: it runs from any Python, before or without
the project's venv (`make smoke`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

LOCATION = "quant_assets"  # the code location's name (workspace.yaml, docker-compose.yml)
METRIC_PREFIX = "quant_"

WORKSPACE_QUERY = """
{
  version
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError {
          __typename
          ... on RepositoryLocation { repositories { name jobs { name } assetNodes { id } } }
          ... on PythonError { message }
        }
      }
    }
    ... on PythonError { message }
  }
}
"""


@dataclass(frozen=True)
class Check:
    """The outcome of one check: which, whether it passed, and what was seen."""

    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.name}: {self.detail}"


def shown(url: str) -> str:
    """`url` without its user and password, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


def _get(url: str, timeout_s: float, body: dict | None = None) -> str:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if body is not None else {}
    request = urllib.request.Request(url, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        return response.read().decode("utf-8", errors="replace")


def check_dagster(url: str, location: str = LOCATION, timeout_s: float = 15.0) -> Check:
    """Dagster's GraphQL answers and lists the code location `location`, loaded."""
    try:
        answer = json.loads(
            _get(url.rstrip("/") + "/graphql", timeout_s, {"query": WORKSPACE_QUERY})
        )
    except (OSError, ValueError) as exc:
        return Check("dagster", False, f"{shown(url)}/graphql: {exc}")
    data = answer.get("data") or {}
    workspace = data.get("workspaceOrError") or {}
    if workspace.get("__typename") != "Workspace":
        problem = workspace.get("message") or answer.get("errors") or "no workspace"
        return Check("dagster", False, f"GraphQL answered without a workspace: {problem}")
    entries = {e["name"]: e for e in workspace["locationEntries"]}
    entry = entries.get(location)
    if entry is None:
        return Check("dagster", False, f"no code location {location!r} (has {sorted(entries)})")
    loaded = entry.get("locationOrLoadError") or {}
    if loaded.get("__typename") != "RepositoryLocation":
        why = (loaded.get("message") or entry["loadStatus"]).strip().splitlines()
        return Check("dagster", False, f"code location {location!r} not loaded: {why[-1]}")
    repositories = loaded["repositories"]
    jobs = sum(len(r["jobs"]) for r in repositories)
    assets = sum(len(r["assetNodes"]) for r in repositories)
    if not assets:
        return Check("dagster", False, f"code location {location!r} loaded with no assets")
    return Check(
        "dagster",
        True,
        f"Dagster {data.get('version')}, code location {location!r} loaded: "
        f"{assets} assets, {jobs} jobs",
    )


def check_mlflow(url: str, timeout_s: float = 15.0) -> Check:
    """MLflow's server answers its health check."""
    try:
        body = _get(url.rstrip("/") + "/health", timeout_s).strip()
    except OSError as exc:
        return Check("mlflow", False, f"{shown(url)}/health: {exc}")
    if body != "OK":
        return Check("mlflow", False, f"{shown(url)}/health answered {body[:80]!r}, not 'OK'")
    return Check("mlflow", True, f"{shown(url)}/health is OK")


_METRIC_NAME = re.compile(r"^(?:# TYPE )?([a-zA-Z_:][a-zA-Z0-9_:]*)")


def metric_names(text: str) -> set[str]:
    """Names of the metric families and samples of a Prometheus text page."""
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE ") or (line and not line.startswith("#")):
            match = _METRIC_NAME.match(line)
            if match:
                names.add(match.group(1))
    return names


def check_metrics(url: str, prefix: str = METRIC_PREFIX, timeout_s: float = 15.0) -> Check:
    """The metrics endpoint serves metrics named `prefix...`."""
    try:
        text = _get(url, timeout_s)
    except OSError as exc:
        return Check("metrics", False, f"{shown(url)}: {exc}")
    ours = sorted(n for n in metric_names(text) if n.startswith(prefix))
    if not ours:
        return Check("metrics", False, f"{shown(url)} serves no {prefix}* metric")
    return Check("metrics", True, f"{shown(url)} serves {len(ours)} {prefix}* names")


def run_checks(
    checks: dict[str, Callable[[], Check]], wait_s: float, pause_s: float = 3.0
) -> list[Check]:
    """Run every check; retry the failing ones until they pass or `wait_s` has passed."""
    deadline = time.monotonic() + wait_s
    results = {name: check() for name, check in checks.items()}
    while not all(r.ok for r in results.values()) and time.monotonic() < deadline:
        time.sleep(pause_s)
        for name, result in results.items():
            if not result.ok:
                results[name] = checks[name]()
    return list(results.values())


def main(argv: Sequence[str] | None = None) -> int:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dagster", default=env("SMOKE_DAGSTER_URL") or "http://127.0.0.1:3000")
    parser.add_argument("--mlflow", default=env("SMOKE_MLFLOW_URL") or "http://127.0.0.1:5000")
    parser.add_argument(
        "--metrics", default=env("SMOKE_METRICS_URL") or "http://127.0.0.1:9108/metrics"
    )
    parser.add_argument("--location", default=LOCATION, help="the code location to expect")
    parser.add_argument(
        "--wait",
        type=float,
        default=float(env("SMOKE_WAIT_SECONDS") or 120),
        help="seconds to keep retrying failing checks",
    )
    args = parser.parse_args(argv)
    results = run_checks(
        {
            "dagster": lambda: check_dagster(args.dagster, args.location),
            "mlflow": lambda: check_mlflow(args.mlflow),
            "metrics": lambda: check_metrics(args.metrics),
        },
        args.wait,
    )
    for result in results:
        print(result.line(), flush=True)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
