"""The registered models from MLflow's registry, read-only: every version with its day, its run's
metrics, its promotion decision and whether it is the champion or the challenger."""

from __future__ import annotations

import math
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from resources.mlflow_registry import CHALLENGER, CHAMPION, DAY_TAG, TAG

VERSIONS_PER_MODEL = 100  # the newest versions of each model are listed


def _store_exists(uri: str) -> bool:
    """False for a store that is not there: reading a missing SQLite file would create it."""
    parts = urlsplit(uri)
    if parts.scheme == "sqlite":
        path = uri.split("sqlite:///", 1)[-1]
        return Path(path).is_file()
    return parts.scheme in ("http", "https", "postgresql", "mysql", "databricks")


class ModelBoard:
    """The model versions, read at most every `cache_s` seconds."""

    def __init__(self, tracking_uri: str | None, cache_s: float) -> None:
        self.tracking_uri, self.cache_s = tracking_uri, cache_s
        self._last: tuple[float, list[dict]] | None = None
        self._lock = threading.Lock()

    def read(self) -> list[dict]:
        """Versions, newest first within each model (models by name)."""
        with self._lock:
            if self._last and time.monotonic() - self._last[0] < self.cache_s:
                return self._last[1]
            rows = self._read() if self.tracking_uri and _store_exists(self.tracking_uri) else []
            self._last = (time.monotonic(), rows)
            return rows

    def _read(self) -> list[dict]:
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        rows = []
        for model in sorted(client.search_registered_models(), key=lambda m: m.name):
            name = model.name.replace("'", "\\'")
            versions = client.search_model_versions(f"name = '{name}'")
            versions = sorted(versions, key=lambda v: int(v.version), reverse=True)
            for mv in versions[:VERSIONS_PER_MODEL]:
                metrics = {}
                if mv.run_id:
                    try:
                        metrics = dict(client.get_run(mv.run_id).data.metrics)
                    except Exception:  # a deleted run: the version stays listed
                        metrics = {}
                aliases = [a for a, v in (model.aliases or {}).items() if str(v) == str(mv.version)]
                rows.append(
                    {
                        "model": model.name,
                        "version": int(mv.version),
                        "day": mv.tags.get(DAY_TAG),
                        "aliases": sorted(aliases),
                        "champion": CHAMPION in aliases,
                        "challenger": CHALLENGER in aliases,
                        "decision": mv.tags.get(f"{TAG}decision"),
                        "reason": mv.tags.get(f"{TAG}reason"),
                        "created_at": datetime.fromtimestamp(
                            mv.creation_timestamp / 1000, UTC
                        ).isoformat(),
                        "metrics": {k: v for k, v in sorted(metrics.items()) if math.isfinite(v)},
                    }
                )
        return rows
