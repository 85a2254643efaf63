"""The ClickHouse IO manager through real Dagster materialisations on the embedded engine:
windows of partitions, pushed-down columns, missing and changed partitions, the start of the
stored history, chains, slices of a shared table and schema migration."""

import pandas as pd
import pytest
from dagster import AssetExecutionContext, DagsterInstance, materialize

from quant_assets.calendar import trading_days
from quant_assets.wiring import daily_table, previous_day, same_day, window
from resources.clickhouse import SchemaMismatch, TableSpec
from resources.clickhouse_io import ClickHouseIOManager, table_metadata

PRICES = TableSpec(
    name="prices",
    columns={
        "date": "Date",
        "symbol": "LowCardinality(String)",
        "close": "Float64",
        "volume": "Float64",
        "ts": "DateTime64(3, 'Asia/Shanghai')",
        "halted": "Bool",
    },
    order_by=("symbol", "date"),
)
SEEN = TableSpec(
    name="seen",
    columns={"date": "Date", "symbol": "LowCardinality(String)", "n": "UInt32"},
    order_by=("symbol", "date"),
)
DAYS = [d.strftime("%Y-%m-%d") for d in trading_days("2024-03-04", "2024-03-15")]  # 10 days


def _price_frame(day: str) -> pd.DataFrame:
    d = pd.Timestamp(day)
    return pd.DataFrame(
        {
            "date": d,
            "symbol": ["A", "B", "C"],
            "close": [d.day + 0.1, d.day + 0.2, d.day + 0.3],
            "volume": [100.0, 200.0, 300.0],
            "ts": pd.Timestamp(f"{day} 15:00", tz="Asia/Shanghai"),
            "halted": [False, True, False],
        }
    )


@daily_table(PRICES, group="t")
def prices(context: AssetExecutionContext) -> pd.DataFrame:
    return _price_frame(context.partition_key)


captured: dict[str, pd.DataFrame] = {}


@daily_table(SEEN, group="t", ins={"prices": window(4, columns=["date", "symbol", "close"])})
def seen(context: AssetExecutionContext, prices: pd.DataFrame) -> pd.DataFrame:
    captured[context.partition_key] = prices
    n = prices.groupby("symbol").size()
    return pd.DataFrame({"symbol": n.index, "n": n.to_numpy()})


@daily_table(
    TableSpec(name="whole", columns=SEEN.columns, order_by=SEEN.order_by),
    group="t",
    ins={"prices": same_day()},
)
def whole(context: AssetExecutionContext, prices: pd.DataFrame) -> pd.DataFrame:
    captured[f"whole-{context.partition_key}"] = prices
    return pd.DataFrame({"symbol": ["A"], "n": [len(prices)]})


@pytest.fixture
def io(clickhouse):
    captured.clear()
    return {"clickhouse_io": ClickHouseIOManager(clickhouse=clickhouse), "clickhouse": clickhouse}


def _run(assets, day, io, instance=None, selection=None):
    return materialize(
        assets,
        partition_key=day,
        resources=io,
        instance=instance or DagsterInstance.ephemeral(),
        selection=selection,
        raise_on_error=False,
    )


def _failure(result) -> str:
    """The error messages of the run's failed steps."""
    return "\n".join(
        e.step_failure_data.error.to_string() for e in result.all_events if e.is_step_failure
    )


def test_a_window_reads_exactly_its_days_and_only_the_asked_columns(io):
    for day in DAYS[:6]:
        assert _run([prices], day, io).success
    assert _run([prices, seen], DAYS[5], io, selection=[seen.key]).success
    frame = captured[DAYS[5]]
    assert list(frame.columns) == ["date", "symbol", "close"]
    assert sorted(frame["date"].dt.strftime("%Y-%m-%d").unique()) == DAYS[2:6]
    assert frame["date"].dtype == "datetime64[ns]"
    assert frame[["date", "symbol"]].equals(
        frame.sort_values(["date", "symbol"])[["date", "symbol"]]
    )
    expected = pd.concat([_price_frame(d) for d in DAYS[2:6]])["close"].to_numpy()
    assert frame["close"].to_numpy().tolist() == pytest.approx(expected.tolist())


def test_a_same_day_input_keeps_the_table_types(io):
    assert _run([prices], DAYS[0], io).success
    assert _run([prices, whole], DAYS[0], io, selection=[whole.key]).success
    frame = captured[f"whole-{DAYS[0]}"]
    assert list(frame.columns) == list(PRICES.columns)
    assert str(frame["ts"].dtype) == "datetime64[ns, Asia/Shanghai]"
    assert frame["halted"].dtype == bool and frame["halted"].tolist() == [False, True, False]
    assert frame["ts"].iloc[0] == pd.Timestamp(f"{DAYS[0]} 15:00", tz="Asia/Shanghai")


def test_a_missing_partition_inside_the_history_fails_with_the_days_to_backfill(io):
    for day in DAYS[:6]:
        if day != DAYS[3]:
            assert _run([prices], day, io).success
    result = _run([prices, seen], DAYS[5], io, selection=[seen.key])
    assert not result.success
    message = _failure(result)
    assert f"1 not materialized: {DAYS[3]}" in message
    assert f"Materialize prices for {DAYS[3]}..{DAYS[3]}" in message
    assert DAYS[5] not in captured


def test_a_window_starts_where_the_stored_history_starts(io):
    for day in DAYS[3:5]:  # nothing before DAYS[3] was ever stored
        assert _run([prices], day, io).success
    assert _run([prices, seen], DAYS[4], io, selection=[seen.key]).success
    frame = captured[DAYS[4]]
    assert sorted(frame["date"].dt.strftime("%Y-%m-%d").unique()) == DAYS[3:5]
    assert frame.attrs["window"] == {"asset": "prices", "requested": 4, "stored": 2}


def test_the_newest_day_of_a_window_is_always_required(io):
    for day in DAYS[:3]:
        assert _run([prices], day, io).success
    result = _run([prices, seen], DAYS[3], io, selection=[seen.key])
    assert not result.success and f"not materialized: {DAYS[3]}" in _failure(result)


def test_rows_changed_outside_the_pipeline_fail_the_read(io, clickhouse):
    for day in DAYS[:4]:
        assert _run([prices], day, io).success
    with clickhouse.client() as client:
        client.command(
            f"ALTER TABLE {clickhouse.database}.prices DELETE WHERE date = '{DAYS[2]}' "
            "AND symbol = 'A' SETTINGS mutations_sync = 1"
        )
    result = _run([prices, seen], DAYS[3], io, selection=[seen.key])
    assert not result.success
    assert (
        f"1 changed outside the pipeline (row counts differ from what was written): {DAYS[2]}"
        in (_failure(result))
    )


def test_a_rerun_replaces_the_day_and_the_log_keeps_one_entry(io, clickhouse):
    for _ in range(3):
        assert _run([prices], DAYS[0], io).success
    with clickhouse.client() as client:
        rows = clickhouse.query_df(client, "SELECT count() AS n FROM {db}.prices")["n"][0]
        logged = clickhouse.query_df(
            client,
            "SELECT count() AS n, sum(rows) AS r FROM {db}.stored_partitions FINAL "
            "WHERE table = 'prices'",
        )
    assert int(rows) == 3
    assert int(logged["n"][0]) == 1 and int(logged["r"][0]) == 3


AF = TableSpec(
    name="chained",
    columns={"date": "Date", "symbol": "LowCardinality(String)", "level": "Float64"},
    order_by=("symbol", "date"),
)


@daily_table(AF, group="t", ins={"previous": previous_day("chained")})
def chained(context: AssetExecutionContext, previous: pd.DataFrame) -> pd.DataFrame:
    start = previous.set_index("symbol")["level"] if len(previous) else pd.Series({"A": 1.0})
    return pd.DataFrame({"symbol": start.index, "level": start.to_numpy() * 2})


def _levels(clickhouse) -> dict[str, float]:
    with clickhouse.client() as client:
        df = clickhouse.query_df(client, "SELECT toString(date) AS d, level FROM {db}.chained")
    return dict(zip(df["d"], df["level"], strict=True))


def test_a_chain_starts_on_its_first_stored_day_and_refuses_a_gap(io, clickhouse):
    assert _run([chained], DAYS[2], io).success  # first day ever: starts from nothing
    assert _run([chained], DAYS[3], io).success
    assert _levels(clickhouse) == {DAYS[2]: 2.0, DAYS[3]: 4.0}
    result = _run([chained], DAYS[5], io)  # DAYS[4] was never materialized
    assert not result.success
    assert f"not materialized: {DAYS[4]}" in _failure(result)
    assert _run([chained], DAYS[4], io).success and _run([chained], DAYS[5], io).success
    assert _levels(clickhouse)[DAYS[5]] == 16.0


QUARANTINE_LIKE = TableSpec(
    name="shared",
    columns={"date": "Date", "kind": "LowCardinality(String)", "row": "UInt32"},
    order_by=("kind", "row"),
    partition_by="(date, kind)",
)


def _slice_asset(kind: str, n: int):
    from dagster import asset

    from quant_assets.calendar import TRADING_DAYS

    @asset(
        name=f"shared_{kind}",
        partitions_def=TRADING_DAYS,
        io_manager_key="clickhouse_io",
        metadata=table_metadata(QUARANTINE_LIKE, kind=kind),
    )
    def _a() -> pd.DataFrame:
        return pd.DataFrame({"row": list(range(n))})

    return _a


def test_slices_of_a_shared_table_are_written_and_read_apart(io, clickhouse):
    a, b = _slice_asset("a", 2), _slice_asset("b", 5)

    @daily_table(SEEN, group="t", ins={"shared_b": same_day()})
    def seen(shared_b: pd.DataFrame) -> pd.DataFrame:
        captured["slice"] = shared_b
        return pd.DataFrame({"symbol": ["x"], "n": [len(shared_b)]})

    for _ in range(2):
        assert _run([a, b], DAYS[0], io).success
    assert _run([a, b, seen], DAYS[0], io, selection=[seen.key]).success
    assert len(captured["slice"]) == 5 and set(captured["slice"]["kind"]) == {"b"}
    with clickhouse.client() as client:
        counts = clickhouse.query_df(
            client, "SELECT kind, count() AS n FROM {db}.shared GROUP BY kind ORDER BY kind"
        )
    assert counts["n"].tolist() == [2, 5]


def _old_table(clickhouse, columns: str) -> None:
    with clickhouse.client() as client:
        client.command(
            f"CREATE TABLE {clickhouse.database}.prices ({columns}) ENGINE = MergeTree "
            "PARTITION BY date ORDER BY (symbol, date)"
        )
        client.command(
            f"INSERT INTO {clickhouse.database}.prices (date, symbol, close) "
            "VALUES ('2024-03-01', 'A', 1.5)"
        )


def test_an_older_table_gains_the_new_columns_and_keeps_its_rows(io, clickhouse):
    _old_table(clickhouse, "date Date, symbol LowCardinality(String), close Float64")
    assert _run([prices], DAYS[0], io).success
    with clickhouse.client() as client:
        described = [r[0] for r in client.query("DESCRIBE TABLE quant_test.prices").result_rows]
        old = clickhouse.query_df(client, "SELECT * FROM {db}.prices WHERE date = '2024-03-01'")
    assert described == list(PRICES.columns)
    assert old["close"].tolist() == [1.5]


def test_a_changed_column_type_is_refused_and_nothing_is_dropped(io, clickhouse):
    _old_table(clickhouse, "date Date, symbol LowCardinality(String), close String")
    result = _run([prices], DAYS[0], io)
    assert not result.success
    message = _failure(result)
    assert "column close is String, the spec wants Float64" in message
    assert "Nothing was changed" in message
    with clickhouse.client() as client:
        left = clickhouse.query_df(client, "SELECT close FROM {db}.prices")
    assert left["close"].tolist() == ["1.5"]


def test_a_dropped_column_without_default_is_refused_one_with_a_default_is_kept(clickhouse):
    spec = TableSpec(name="narrow", columns={"date": "Date", "x": "Float64"}, order_by=("date",))
    with clickhouse.client() as client:
        client.command(
            f"CREATE TABLE {clickhouse.database}.narrow (date Date, x Float64, old Float64, "
            "kept Float64 DEFAULT nan) ENGINE = MergeTree PARTITION BY date ORDER BY date"
        )
        with pytest.raises(SchemaMismatch, match="column old .Float64. is no longer written"):
            clickhouse.ensure_table(client, spec)
        client.command(f"ALTER TABLE {clickhouse.database}.narrow DROP COLUMN old")
        clickhouse.ensure_table(client, spec)  # `kept` reads NaN for new rows: allowed


def test_a_different_sort_key_is_refused(clickhouse):
    with clickhouse.client() as client:
        client.command(
            f"CREATE TABLE {clickhouse.database}.prices (date Date, symbol String, close Float64,"
            " volume Float64, ts DateTime64(3, 'Asia/Shanghai'), halted Bool) ENGINE = MergeTree"
            " PARTITION BY date ORDER BY date"
        )
        with pytest.raises(SchemaMismatch, match=r"ORDER BY is \(date\)"):
            clickhouse.ensure_table(client, PRICES)
