import numpy as np
import pandas as pd
import pytest

from resources.clickhouse import TableSpec

SPEC = TableSpec(
    name="t_values",
    columns={"date": "Date", "symbol": "LowCardinality(String)", "value": "Float64"},
    order_by=("symbol", "date"),
)


def _frame(day: str, values: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "date": pd.to_datetime([day] * len(values)),
            "symbol": [f"S{i}" for i in range(len(values))],
            "value": values,
        }
    )


def _rows(ch, client) -> pd.DataFrame:
    return ch.query_df(client, "SELECT * FROM {db}.t_values ORDER BY date, symbol")


def test_replace_partition_is_idempotent_and_leaves_other_days(clickhouse):
    with clickhouse.client() as client:
        clickhouse.replace_partition(client, SPEC, _frame("2024-01-02", [1, 2, 3]), "2024-01-02")
        clickhouse.replace_partition(client, SPEC, _frame("2024-01-03", [4, 5]), "2024-01-03")
        for _ in range(3):
            clickhouse.replace_partition(client, SPEC, _frame("2024-01-02", [7, 8]), "2024-01-02")
        rows = _rows(clickhouse, client)
    assert len(rows) == 4
    day2 = rows[pd.to_datetime(rows["date"]) == pd.Timestamp("2024-01-02")]
    assert day2["value"].tolist() == [7.0, 8.0]
    assert sorted(rows["value"])[-2:] == [7.0, 8.0]
    assert {4.0, 5.0} <= set(rows["value"])


def test_empty_frame_drops_the_day(clickhouse):
    with clickhouse.client() as client:
        clickhouse.replace_partition(client, SPEC, _frame("2024-01-02", [1, 2]), "2024-01-02")
        clickhouse.replace_partition(client, SPEC, _frame("2024-01-02", [])[:0], "2024-01-02")
        assert _rows(clickhouse, client).empty


def test_rows_of_another_day_are_refused_and_nothing_changes(clickhouse):
    with clickhouse.client() as client:
        clickhouse.replace_partition(client, SPEC, _frame("2024-01-02", [1]), "2024-01-02")
        with pytest.raises(ValueError, match="not in partition .2024-01-02."):
            clickhouse.replace_partition(client, SPEC, _frame("2024-01-03", [9]), "2024-01-02")
        assert _rows(clickhouse, client)["value"].tolist() == [1.0]


def test_failed_insert_keeps_the_old_day_and_leaves_no_staging_table(clickhouse):
    bad = _frame("2024-01-02", [1.0]).assign(value=["not a number"])
    with clickhouse.client() as client:
        clickhouse.replace_partition(client, SPEC, _frame("2024-01-02", [5, 6]), "2024-01-02")
        with pytest.raises(Exception):  # noqa: B017 - the driver's own error type
            clickhouse.replace_partition(client, SPEC, bad, "2024-01-02")
        assert _rows(clickhouse, client)["value"].tolist() == [5.0, 6.0]
        tables = clickhouse.query_df(
            client, "SELECT name FROM system.tables WHERE database = 'quant_test'"
        )
    assert tables["name"].tolist() == ["t_values"]


def test_ddl_has_partition_and_order(clickhouse):
    ddl = SPEC.ddl("db")
    assert "PARTITION BY date" in ddl and "ORDER BY (symbol, date)" in ddl


class _CrashBeforeSwap:
    """A client that dies when asked to swap the partition in (as a killed process would)."""

    def __init__(self, client):
        self._client = client

    def command(self, sql, *args, **kwargs):
        if "REPLACE PARTITION" in sql:
            raise RuntimeError("simulated crash in the middle of the write")
        return self._client.command(sql, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._client, name)


def test_crash_mid_write_keeps_the_old_day_and_a_rerun_converges(clickhouse):
    with clickhouse.client() as client:
        clickhouse.replace_partition(client, SPEC, _frame("2024-01-02", [1, 2, 3]), "2024-01-02")
        with pytest.raises(RuntimeError, match="simulated crash"):
            clickhouse.replace_partition(
                _CrashBeforeSwap(client), SPEC, _frame("2024-01-02", [9, 9]), "2024-01-02"
            )
        assert _rows(clickhouse, client)["value"].tolist() == [1.0, 2.0, 3.0]
        # A process killed after filling the staging table leaves it behind: the rerun of the
        # same partition clears it and converges to the new rows.
        client.command("CREATE TABLE quant_test.t_values__staging_20240102 AS quant_test.t_values")
        client.command(
            "INSERT INTO quant_test.t_values__staging_20240102 VALUES ('2024-01-02', 'junk', 0)"
        )
        for _ in range(2):
            clickhouse.replace_partition(client, SPEC, _frame("2024-01-02", [7, 8]), "2024-01-02")
        assert _rows(clickhouse, client)["value"].tolist() == [7.0, 8.0]
        tables = clickhouse.query_df(
            client, "SELECT name FROM system.tables WHERE database = 'quant_test'"
        )
    assert tables["name"].tolist() == ["t_values"]


def test_large_frames_take_the_arrow_path_with_local_timestamps(clickhouse):
    spec = TableSpec(
        name="t_ticks",
        columns={
            "date": "Date",
            "ts": "DateTime64(3, 'Asia/Shanghai')",
            "symbol": "LowCardinality(String)",
            "price": "Float64",
        },
        order_by=("symbol", "ts"),
    )
    n = 60_000  # above the Arrow threshold
    ts = pd.date_range("2024-01-02 09:30", periods=n, freq="100ms", tz="Asia/Shanghai")
    df = pd.DataFrame(
        {"date": pd.Timestamp("2024-01-02"), "ts": ts, "symbol": "600000.SH", "price": 10.0}
    )
    with clickhouse.client() as client:
        assert clickhouse.replace_partition(client, spec, df, "2024-01-02") == n
        first, last, count = client.query(
            "SELECT toString(min(ts)), toString(max(ts)), count() FROM quant_test.t_ticks"
        ).result_rows[0]
    assert (first, count) == ("2024-01-02 09:30:00.000", n)
    assert last == ts[-1].strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def test_partitions_by_day_and_kind_are_replaced_independently(clickhouse):
    spec = TableSpec(
        name="t_quarantine",
        columns={"date": "Date", "kind": "LowCardinality(String)", "rule": "String"},
        order_by=("kind", "rule"),
        partition_by="(date, kind)",
    )

    def q(kind: str, rules: list[str]) -> pd.DataFrame:
        return pd.DataFrame({"date": pd.Timestamp("2024-01-02"), "kind": kind, "rule": rules})

    with clickhouse.client() as client:
        clickhouse.replace_partition(
            client, spec, q("trades", ["a", "b"]), "2024-01-02", kind="trades"
        )
        clickhouse.replace_partition(client, spec, q("news", ["c"]), "2024-01-02", kind="news")
        clickhouse.replace_partition(client, spec, q("trades", ["d"]), "2024-01-02", kind="trades")
        rows = clickhouse.query_df(client, "SELECT kind, rule FROM {db}.t_quarantine ORDER BY rule")
        with pytest.raises(ValueError, match="not in partition"):
            clickhouse.replace_partition(
                client, spec, q("news", ["x"]), "2024-01-02", kind="trades"
            )
    assert rows.values.tolist() == [["news", "c"], ["trades", "d"]]


def test_large_frames_keep_nan_in_float_columns_and_null_in_nullable_ones(clickhouse):
    """The Arrow path must store an empty book level's NaN price as NaN, not as 0.0."""
    spec = TableSpec(
        name="t_levels",
        columns={
            "date": "Date",
            "symbol": "LowCardinality(String)",
            "px": "Float64",
            "score": "Nullable(Float64)",
        },
        order_by=("symbol",),
    )
    n = 60_000  # above the threshold of the Arrow path
    px = pd.Series(10.0, index=range(n)).mask(pd.Series(range(n)) % 3 == 0)
    df = pd.DataFrame({"date": pd.Timestamp("2024-01-02"), "symbol": "S", "px": px, "score": px})
    with clickhouse.client() as client:
        clickhouse.replace_partition(client, spec, df, "2024-01-02")
        nan, zero, null = client.query(
            "SELECT countIf(isNaN(px)), countIf(px = 0), countIf(score IS NULL) "
            "FROM quant_test.t_levels"
        ).result_rows[0]
    assert (nan, zero, null) == (n // 3, 0, n // 3)


BOOK = TableSpec(
    name="t_book",
    columns={
        "date": "Date",
        "ts": "DateTime64(3, 'Asia/Shanghai')",
        "symbol": "LowCardinality(String)",
        "px": "Float64 CODEC(LZ4)",
        "size": "UInt32 CODEC(T64, LZ4)",
    },
    order_by=("symbol", "ts"),
)


def _book(n: int, size_offset: int = 0) -> pd.DataFrame:
    """`n` snapshots without a `date` column: the partition supplies it."""
    ts = pd.date_range("2024-01-02 09:30", periods=n, freq="10ms", tz="Asia/Shanghai")
    return pd.DataFrame(
        {
            "ts": ts,
            "symbol": [f"S{i % 7}" for i in range(n)],
            "px": pd.Series(range(n), dtype=float).mask(pd.Series(range(n)) % 5 == 0),
            "size": pd.Series(range(n), dtype="int64") + size_offset,
        }
    )


def test_a_large_frame_is_loaded_in_batches_by_parallel_clients_completely(clickhouse):
    n = 600_000  # three batches of 200k rows, two clients
    df = _book(n)
    with clickhouse.client() as client:
        assert clickhouse.replace_partition(client, BOOK, df, "2024-01-02") == n
        stats = client.query(
            "SELECT count(), uniqExact(ts), countIf(isNaN(px)), sum(size), min(date), max(date), "
            "count(DISTINCT _part) FROM quant_test.t_book"
        ).result_rows[0]
    count, distinct_ts, nan, total, first_day, last_day, parts = stats
    assert (count, distinct_ts, nan, total) == (n, n, n // 5, int(df["size"].sum()))
    assert str(first_day) == str(last_day) == "2024-01-02"
    assert parts == 3  # one part per batch (each an INSERT of its own)


def test_a_batch_that_fails_leaves_the_old_day_whole(clickhouse):
    n = 600_000
    with clickhouse.client() as client:
        clickhouse.replace_partition(client, BOOK, _book(n), "2024-01-02")
        # the last rows overflow UInt32: conversion of the last batch raises after the
        # first batches were loaded into the staging table
        bad = _book(n, size_offset=2**32 - n + 10)
        with pytest.raises(Exception, match="(?i)overflow|out of bounds|integer value"):
            clickhouse.replace_partition(client, BOOK, bad, "2024-01-02")
        count, total = client.query("SELECT count(), sum(size) FROM quant_test.t_book").result_rows[
            0
        ]
        tables = client.query(
            "SELECT name FROM system.tables WHERE database = 'quant_test'"
        ).result_rows
    assert (count, total) == (n, int(_book(n)["size"].sum()))
    assert tables == [("t_book",)]


def test_a_large_day_is_read_in_ranges_of_symbols_with_the_same_result(clickhouse, monkeypatch):
    import resources.clickhouse as ch_module

    n = 3000
    frame = pd.DataFrame(
        {
            "date": pd.Timestamp("2024-01-02"),
            "symbol": [f"S{i % 37:02d}" for i in range(n)],
            "value": np.arange(n, dtype=float),
        }
    )
    with clickhouse.client() as client:
        clickhouse.replace_partition(client, SPEC, frame, "2024-01-02")
        whole = clickhouse.read_days(client, SPEC, "2024-01-02", "2024-01-02", expected_rows=n)
        monkeypatch.setattr(ch_module, "READ_CHUNK_ROWS", 500)
        ranges = clickhouse._symbol_ranges(
            client, SPEC, ["date BETWEEN %(start)s AND %(end)s"],
            {"start": "2024-01-02", "end": "2024-01-02"}, n,
        )  # fmt: skip
        chunked = clickhouse.read_days(
            client, SPEC, "2024-01-02", "2024-01-02", expected_rows=n,
            columns=list(SPEC.columns), expressions={"twice": "value * 2"},
        )  # fmt: skip
    assert len(ranges) >= 6 and ranges[-1][1] is None

    # rows of one symbol come in any order (the sort key does not order them): compare sorted
    def by_key(f):
        return f.sort_values(["symbol", "value"], ignore_index=True)

    pd.testing.assert_frame_equal(by_key(chunked[list(whole.columns)]), by_key(whole))
    assert (chunked["twice"] == 2 * chunked["value"]).all()
    assert chunked["symbol"].is_monotonic_increasing


@pytest.mark.parametrize("rows_per_day", [1, 400])  # the small frame's path and the Arrow one
def test_a_range_of_more_than_a_hundred_days_is_staged_and_swapped_in_one_insert(
    clickhouse, rows_per_day
):
    # a history backfill in one run: ClickHouse refuses a block over 100 partitions by default
    days = [d.strftime("%Y-%m-%d") for d in pd.bdate_range("2023-01-02", periods=150)]
    frame = pd.concat([_frame(d, [1.0] * rows_per_day) for d in days], ignore_index=True)
    with clickhouse.client() as client:
        staged = clickhouse.stage_partitions(client, SPEC, frame, days)
        clickhouse.swap_in(client, *staged)
        stored = _rows(clickhouse, client)
    assert len(stored) == len(frame) and stored["date"].nunique() == 150
