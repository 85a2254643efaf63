"""Reruns leave no litter: rematerialising days with identical data keeps the chDB folder the size
it had after the first run (replaced parts, dropped staging tables and the journal's small parts
are deleted, not left for a background cleanup the embedded engine never runs)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from dagster import DagsterInstance

sys.path.insert(0, str(Path(__file__).parents[1] / "market"))
import test_ingest_assets as ingest  # noqa: E402  (its Zone sets up landing zone + chDB)

from quant_assets.market.sources.simulated import SimulatedMarket  # noqa: E402

pytestmark = pytest.mark.slow
DAYS = ["2024-03-04", "2024-03-05"]


def _du(path: Path) -> int:
    """Bytes a folder holds (apparent sizes, as `du -sb` reports them)."""
    return int(subprocess.check_output(["du", "-sb", str(path)]).split()[0])


def test_rerun_keeps_the_clickhouse_folder_size(tmp_path: Path) -> None:
    sim = SimulatedMarket(ingest.DAYS, n_symbols=20, seed=1, snapshot_seconds=60)
    zone = ingest.Zone(tmp_path, sim.universe())
    (tmp_path / "dagster").mkdir()
    zone.instance = DagsterInstance.local_temp(str(tmp_path / "dagster"))
    for day in DAYS:
        zone.drop(ingest.day_frames(sim, day), day)
    sizes, rows = [], []
    for _ in range(3):  # the first run, then two reruns with the same files
        for day in DAYS:
            assert zone.materialize(day).success
        sizes.append(_du(tmp_path / "ch"))
        rows.append(zone.count("raw_order_book") + zone.count("raw_daily_bars"))
    first = sizes[0]
    assert sizes[1] <= first * 1.05, f"after a rerun {sizes[1]:,} bytes, first run {first:,}"
    assert sizes[2] <= first * 1.05, f"after two reruns {sizes[2]:,} bytes, first run {first:,}"
    parts = zone.query(
        "SELECT table, countIf(NOT active) AS inactive FROM system.parts "
        "WHERE database = '{db}' GROUP BY table HAVING inactive > 0"
    )
    assert parts.empty, f"inactive parts left on disk: {parts.to_dict('records')}"
    assert not any((tmp_path / "ch" / "metadata_dropped").iterdir()), "dropped tables kept"
    assert rows[0] > 0 and rows == [rows[0]] * 3  # the data itself is all there, once
