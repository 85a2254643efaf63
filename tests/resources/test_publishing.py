"""Publishing staged partitions under the journal, on the embedded engine: a publication stopped
between its swaps is rolled forward, a write stopped before its publication is dropped, and a
live run's staging is left alone."""

from __future__ import annotations

import uuid

import pandas as pd
import pytest

from resources.clickhouse import ClickHouseResource, TableSpec
from resources.publishing import PUBLICATIONS, Part, _journal, publish, recover, run_tag

CLEAN = TableSpec(
    name="clean_rows",
    columns={"date": "Date", "symbol": "String", "v": "Float64"},
    order_by=("symbol",),
)
BAD = TableSpec(
    name="bad_rows",
    columns={"date": "Date", "kind": "LowCardinality(String)", "symbol": "String"},
    order_by=("symbol",),
    partition_by="(date, kind)",
)
DAY = "2024-03-12"


@pytest.fixture()
def ch(tmp_path) -> ClickHouseResource:
    return ClickHouseResource(dsn=f"chdb://{tmp_path / 'ch'}", database="quant")


def _clean(values: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"symbol": [f"S{i}" for i in range(len(values))], "v": values})


def _bad(n: int) -> pd.DataFrame:
    return pd.DataFrame({"symbol": [f"B{i}" for i in range(n)]})


def _stage(ch, client, run: str, clean: pd.DataFrame, bad: pd.DataFrame) -> list[Part]:
    tag = run_tag(run)
    return [
        Part(ch.stage_partition(client, CLEAN, clean, DAY, tag=tag), "clean_rows", "", DAY),
        Part(
            ch.stage_partition(client, BAD, bad, DAY, tag=tag, kind="trades"),
            "bad_rows",
            "kind=trades",
            DAY,
        ),
    ]


def _state(ch, client) -> tuple[list[float], int, set[str]]:
    v = ch.query_df(client, "SELECT v FROM {db}.clean_rows ORDER BY symbol")["v"].tolist()
    n_bad = int(client.command("SELECT count() FROM quant.bad_rows"))
    staging = ch.query_df(
        client, "SELECT name FROM system.tables WHERE database = 'quant' AND name LIKE '%staging%'"
    )
    return v, n_bad, set(staging["name"])


def test_a_publication_stopped_between_its_swaps_is_rolled_forward(ch):
    with ch.client() as client:
        publish(ch, client, _stage(ch, client, str(uuid.uuid4()), _clean([1.0]), _bad(1)), "r0")
        assert _state(ch, client) == ([1.0], 1, set())
        # a run killed after the first of its two swaps: journal written, one swap done
        dead = str(uuid.uuid4())
        parts = _stage(ch, client, dead, _clean([2.0, 3.0]), _bad(4))
        _journal(ch, client, "p1", "swapping", dead, parts)
        ch.swap_in(client, parts[0].staged)
        v, n_bad, staging = _state(ch, client)
        assert (v, n_bad) == ([2.0, 3.0], 1)  # the two tables disagree: new clean, old bad
        assert len(staging) == 2

        done = recover(ch, client, alive=lambda run: False)
        assert any("rolled forward" in line for line in done)
        assert _state(ch, client) == ([2.0, 3.0], 4, set())
        journal = ch.query_df(client, f"SELECT state FROM {{db}}.{PUBLICATIONS.name} FINAL")
        assert set(journal["state"]) == {"done"}
        log = ch.query_df(
            client, "SELECT table, rows, run_id FROM {db}.stored_partitions FINAL ORDER BY table"
        )
        assert log.values.tolist() == [["bad_rows", 4, dead], ["clean_rows", 2, dead]]
        assert recover(ch, client, alive=lambda run: False) == []  # nothing left to do


def test_a_write_stopped_before_its_publication_is_dropped_and_changes_nothing(ch):
    with ch.client() as client:
        publish(ch, client, _stage(ch, client, str(uuid.uuid4()), _clean([1.0]), _bad(2)), "r0")
        _stage(ch, client, str(uuid.uuid4()), _clean([9.0, 9.0, 9.0]), _bad(7))  # then killed
        assert len(_state(ch, client)[2]) == 2
        done = recover(ch, client, alive=lambda run: False)
        assert sum("dropped the leftover staging table" in line for line in done) == 2
        assert _state(ch, client) == ([1.0], 2, set())


def test_a_live_runs_staging_and_unfinished_publication_are_left_alone(ch):
    live = str(uuid.uuid4())
    with ch.client() as client:
        parts = _stage(ch, client, live, _clean([5.0]), _bad(1))
        _journal(ch, client, "p2", "swapping", live, parts)
        ch.swap_in(client, parts[0].staged)
        assert recover(ch, client, alive=lambda run: run_tag(run) == run_tag(live)) == []
        v, n_bad, staging = _state(ch, client)
        assert (v, n_bad, len(staging)) == ([5.0], 0, 2)


def test_a_stopped_publication_never_overwrites_a_later_one(ch):
    with ch.client() as client:
        dead = str(uuid.uuid4())
        old = _stage(ch, client, dead, _clean([1.0]), _bad(1))
        _journal(ch, client, "p-old", "swapping", dead, old)
        ch.swap_in(client, old[0].staged)
        # the day is published again by a later run before anyone recovers the old one
        publish(
            ch, client, _stage(ch, client, str(uuid.uuid4()), _clean([7.0, 8.0]), _bad(3)), "r2"
        )
        done = recover(ch, client, alive=lambda run: False)
        assert any("superseded" in line for line in done)
        assert _state(ch, client) == ([7.0, 8.0], 3, set())
