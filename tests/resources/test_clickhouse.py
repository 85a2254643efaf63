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
        with pytest.raises(ValueError, match="not dated 2024-01-02"):
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
