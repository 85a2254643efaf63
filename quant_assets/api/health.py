"""Run health from the Dagster instance: each job's last run and the latest evaluation of each
asset check, with the inputs the market delivers (a bars-only market's skipped stages). Never
ClickHouse: a run holds the embedded store, and the instance already records all of this (the
metrics endpoint reads it the same way)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from dagster import DagsterInstance

from quant_assets.market.sources.delivery import skipped_stages
from resources.market import KINDS

RECENT_RUNS = 200  # the jobs shown are those among the latest runs


def _iso(seconds: float | None) -> str | None:
    return datetime.fromtimestamp(seconds, UTC).isoformat() if seconds is not None else None


class HealthReader:
    """The health document, read at most every `cache_s` seconds."""

    def __init__(
        self, dagster_home: Path | None, cache_s: float, market_kinds: Sequence[str] = KINDS
    ) -> None:
        self.dagster_home, self.cache_s = dagster_home, cache_s
        self.market_kinds = tuple(market_kinds)
        self._instance: DagsterInstance | None = None
        self._reader = None
        self._last: tuple[float, dict] | None = None
        self._lock = threading.Lock()

    def _snapshot_reader(self):
        from quant_assets.automation.monitoring.metrics import InstanceReader, MetricsSettings

        if self._reader is None:
            if self.dagster_home is not None:
                from dagster._core.instance.ref import InstanceRef

                self._instance = DagsterInstance.from_ref(
                    InstanceRef.from_dir(str(self.dagster_home))
                )
            else:
                self._instance = DagsterInstance.get()
            self._reader = InstanceReader(self._instance, MetricsSettings(recent_runs=RECENT_RUNS))
        return self._reader

    def read(self) -> dict:
        """Jobs (last run: status, start, end, duration; last success) and checks (passed,
        severity, partition, when)."""
        with self._lock:
            if self._last and time.monotonic() - self._last[0] < self.cache_s:
                return self._last[1]
            snap = self._snapshot_reader().read()
            last_run: dict[str, object] = {}
            for run in snap.recent_runs:  # newest first
                last_run.setdefault(run.job, run)
            jobs = [
                {
                    "job": job,
                    "status": run.status,
                    "start": _iso(run.start),
                    "end": _iso(run.end),
                    "duration_s": run.duration,
                    "last_success": _iso(snap.last_success.get(job)),
                }
                for job, run in sorted(last_run.items())
            ]
            checks = [
                {
                    "asset": c.asset,
                    "check": c.check,
                    "passed": c.passed,
                    "severity": c.severity,
                    "partition": c.partition,
                    "evaluated_at": _iso(c.timestamp),
                }
                for c in sorted(snap.latest_checks, key=lambda c: (c.asset, c.check))
            ]
            doc = {
                "taken_at": _iso(snap.taken_at),
                "runs_by_status": {k: v for k, v in snap.run_counts.items() if v},
                "jobs": jobs,
                "checks": checks,
                "failing_checks": sum(not c["passed"] for c in checks),
                "market_inputs": {
                    "delivered": list(self.market_kinds),
                    "skipped": skipped_stages(self.market_kinds),
                },
            }
            self._last = (time.monotonic(), doc)
            return doc

    def close(self) -> None:
        if self._instance is not None:
            self._instance.dispose()
            self._instance, self._reader = None, None
