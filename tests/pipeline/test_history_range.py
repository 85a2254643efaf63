"""A range of the history in one run (single-run backfill, quant_assets/day_range.py) stores
exactly what one run per day stores: every history table compared row for row, on the real
embedded engine, through real materialisations of the code location's assets."""

from __future__ import annotations

import pandas as pd
import pytest
from dagster import DagsterInstance, materialize
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from quant_assets.automation.jobs import HISTORY_ASSETS, history_load
from quant_assets.calendar import trading_days
from quant_assets.definitions import defs

pytestmark = pytest.mark.slow

# 2024-02-05 .. 2024-02-23 spans the Spring Festival closure (the calendar, not weekdays)
DAYS = list(trading_days("2024-02-05", "2024-02-23").strftime("%Y-%m-%d"))
ALL_ASSETS = [*defs.assets, *defs.asset_checks]


def _tables(resources) -> dict[str, pd.DataFrame]:
    ch = resources["clickhouse"]
    out = {}
    with ch.client() as client:
        tables = {n for n in HISTORY_ASSETS if not n.endswith("quarantine")}
        for table in (*sorted(tables), "quarantine", "stored_partitions"):
            final = " FINAL" if table == "stored_partitions" else ""
            frame = ch.query_df(client, f"SELECT * FROM {{db}}.{table}{final}")
            if table == "stored_partitions":  # who wrote it and when differ by design
                frame = frame.drop(columns=["run_id", "written_at"])
                frame = frame[frame["table"].isin([*HISTORY_ASSETS, "quarantine"])]
            out[table] = frame.sort_values(list(frame.columns)).reset_index(drop=True)
    return out


def test_a_range_run_stores_what_the_day_by_day_runs_store(stack):
    instance = DagsterInstance.ephemeral()
    for day in DAYS:
        assert materialize(
            ALL_ASSETS,
            selection=history_load.selection,
            partition_key=day,
            resources=stack,
            instance=instance,
        ).success, day
    by_day = _tables(stack)
    assert all(len(by_day[t]) for t in ("raw_daily_bars", "adjustment_factors", "labels"))

    result = materialize(
        ALL_ASSETS,
        selection=history_load.selection,
        resources=stack,
        instance=instance,
        tags={ASSET_PARTITION_RANGE_START_TAG: DAYS[0], ASSET_PARTITION_RANGE_END_TAG: DAYS[-1]},
    )
    assert result.success
    # one step per asset for all the days: the run materialised every day of every asset
    materialised = result.get_asset_materialization_events()
    assert {e.partition for e in materialised} == set(DAYS)
    steps = {e.step_key for e in result.all_events if e.event_type_value == "STEP_SUCCESS"}
    assert len(steps) == len({*HISTORY_ASSETS} - {n for n in HISTORY_ASSETS if "quarantine" in n})

    in_one_run = _tables(stack)
    for table, expected in by_day.items():
        pd.testing.assert_frame_equal(in_one_run[table], expected, obj=table)
