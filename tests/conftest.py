"""Shared fixtures: real embedded engines in temporary folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from resources import ClickHouseResource, MarketDataResource, MLflowResource, stack_resources

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# The tests' days (real 2023 data among them) need partitions from 2023 on, before the demo's
# window where the partitions start by default; set before any test imports the calendar.
os.environ.setdefault("QUANT_PARTITIONS_START", "2023-01-03")


@pytest.fixture
def clickhouse(tmp_path: Path) -> ClickHouseResource:
    """A chDB database in a fresh folder, through clickhouse-connect."""
    return ClickHouseResource(dsn=f"chdb://{tmp_path / 'clickhouse'}", database="quant_test")


def embedded_stack(
    root: Path, clickhouse: ClickHouseResource, experiment: str, seed: int
) -> dict[str, object]:
    """The embedded resource set with its MLflow store and landing zone under `root` (the
    caller points QUANT_DATA_DIR there), and a simulated market of 40 stocks."""
    (root / "mlflow").mkdir()
    return stack_resources(
        clickhouse,
        MLflowResource(
            tracking_uri=f"sqlite:///{root / 'mlflow' / 'mlflow.db'}",
            artifact_location=(root / "mlflow" / "artifacts").as_uri(),
            experiment=experiment,
        ),
        MarketDataResource(
            n_symbols=40, seed=seed, sim_end="2024-12-31", landing_dir=str(root / "landing")
        ),
    )


@pytest.fixture
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clickhouse) -> dict:
    """The embedded resource set in a temporary data folder, with a small simulated market."""
    monkeypatch.setenv("QUANT_DATA_DIR", str(tmp_path))
    return embedded_stack(tmp_path, clickhouse, "test", seed=11)
