"""Landing-zone files: round trips in every format, file-level errors, day discovery, and
one file per day and kind (two formats of the same day are an error naming both)."""

from __future__ import annotations

import gzip
import os

import numpy as np
import pandas as pd
import pytest
from dagster import AssetSelection, DagsterInstance, load_assets_from_modules, materialize

from quant_assets.calendar import trading_days
from quant_assets.market import assets as market_assets
from quant_assets.market.sources.landing import (
    FORMATS,
    available_days,
    complete_days,
    find_landing_file,
    landing_conflicts,
    landing_path,
    read_landing_file,
    read_reference_universe,
    write_landing_file,
)
from quant_assets.market.sources.simulated import SimulatedMarket
from quant_assets.market.validation import IngestError, validate
from resources import ClickHouseIOManager, ClickHouseResource, MarketDataResource
from tests.market.test_validation import DAY, SYMS, make_bars, make_book, make_news, make_trades

FRAMES = {"trades": make_trades, "order_book": make_book, "bars": make_bars, "news": make_news}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("kind", list(FRAMES))
def test_round_trip_gives_the_column_contract(tmp_path, kind, fmt):
    df = FRAMES[kind]()
    if kind == "order_book":
        df.loc[1, "ask_px_10"] = np.nan  # an empty level survives the trip
        df.loc[1, "ask_sz_10"] = 0
    path = write_landing_file(df, tmp_path, kind, DAY, fmt)
    assert path == landing_path(tmp_path, kind, DAY, fmt) == tmp_path / kind / f"{DAY}.{fmt}"
    back = read_landing_file(path, kind)
    pd.testing.assert_frame_equal(back, df, check_dtype=False)
    assert str(back.dtypes.iloc[0]) == str(df.dtypes.iloc[0])  # ts/date dtype restored
    res = validate(kind, back, known_symbols=SYMS, trading_date=DAY, source_file=str(path))
    assert res.quarantine.empty


def test_empty_file_raises(tmp_path):
    path = landing_path(tmp_path, "trades", DAY, "csv")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    with pytest.raises(IngestError, match=rf"{DAY}.csv: empty file"):
        read_landing_file(path, "trades")


def test_header_only_is_empty_for_trades_but_fine_for_news(tmp_path):
    p1 = write_landing_file(make_trades().iloc[:0], tmp_path, "trades", DAY, "csv")
    with pytest.raises(IngestError, match="no rows"):
        read_landing_file(p1, "trades")
    p2 = write_landing_file(make_news().iloc[:0], tmp_path, "news", DAY, "csv")
    assert read_landing_file(p2, "news").empty


def test_truncated_csv_raises_with_file_name(tmp_path):
    path = write_landing_file(make_trades(), tmp_path, "trades", DAY, "csv")
    data = path.read_bytes()
    path.write_bytes(data[: data.rstrip(b"\n").rfind(b",") - 3])  # cut inside the last line
    with pytest.raises(IngestError, match=rf"{path.name}.*truncated: last line has"):
        read_landing_file(path, "trades")


def test_truncated_gzip_raises(tmp_path):
    path = write_landing_file(make_book(200), tmp_path, "order_book", DAY, "csv.gz")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(IngestError, match="truncated or corrupt gzip"):
        read_landing_file(path, "order_book")


def test_short_last_line_inside_complete_gzip_raises(tmp_path):
    path = landing_path(tmp_path, "trades", DAY, "csv.gz")
    path.parent.mkdir(parents=True)
    text = "ts,symbol,trade_id,price,volume,side\n2024-01-02 09:30:00,600000.SH,1,10.0,100,1\n"
    path.write_bytes(gzip.compress((text + "2024-01-02 09:30:01,600000.SH,2\n").encode()))
    with pytest.raises(IngestError, match="truncated"):
        read_landing_file(path, "trades")


def test_corrupt_parquet_raises(tmp_path):
    path = write_landing_file(make_trades(), tmp_path, "trades", DAY, "parquet")
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(IngestError, match="unreadable Parquet"):
        read_landing_file(path, "trades")


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_missing_column_raises(tmp_path, fmt):
    path = write_landing_file(make_trades().drop(columns=["side"]), tmp_path, "trades", DAY, fmt)
    with pytest.raises(IngestError, match=r"missing columns \['side'\]"):
        read_landing_file(path, "trades")


def test_bad_values_are_left_for_validation_to_quarantine(tmp_path):
    path = landing_path(tmp_path, "trades", DAY, "csv")
    path.parent.mkdir(parents=True)
    path.write_text(
        "ts,symbol,trade_id,price,volume,side\n"
        "2024-01-02T09:30:00,600000.SH,1,10.00,100,1\n"
        "2024-01-02T09:30:01+08:00,600000.SH,2,ten,100,1\n"
        "not a time,600000.SH,3,10.01,100,-1\n"
    )
    df = read_landing_file(path, "trades")
    res = validate("trades", df, known_symbols=SYMS, trading_date=DAY, source_file=str(path))
    assert sorted(res.quarantine["row_number"]) == [1, 2]
    assert set(res.quarantine["rule"]) == {"wrong_type"}
    assert len(res.clean) == 1 and res.clean["ts"].dt.hour.iloc[0] == 9


def test_invalid_utf8_bytes_in_news_become_quarantine_rows(tmp_path):
    path = landing_path(tmp_path, "news", DAY, "csv")
    path.parent.mkdir(parents=True)
    head = "news_id,ts,symbol,title,body,source,sentiment\n"
    good = "n1,2024-01-02 08:00:00,600000.SH,浦发银行公告,正文,sina,0.1\n"
    bad = b"n2,2024-01-02 09:00:00,600000.SH," + b"\xc6\xbd\xb0\xb2" + b",x,gbk,\n"
    path.write_bytes(head.encode() + good.encode() + bad)
    df = read_landing_file(path, "news")
    res = validate("news", df, known_symbols=SYMS, trading_date=DAY, source_file=str(path))
    assert res.quarantine["rule"].tolist() == ["undecodable_text"]
    assert res.clean["title"].tolist() == ["浦发银行公告"]


def test_available_and_complete_days_ignore_temporary_files(tmp_path):
    for kind in ("bars", "trades", "order_book", "news", "corporate_actions"):
        write_landing_file(pd.DataFrame({"x": [1]}), tmp_path, kind, DAY, "parquet")
    write_landing_file(make_trades(), tmp_path, "trades", "2024-01-03", "csv.gz")
    (tmp_path / "bars" / ".2024-01-03.parquet.tmp").write_bytes(b"partial")
    (tmp_path / "bars" / "notes.txt").write_text("vendor readme")
    days = available_days(tmp_path)
    assert list(days) == [pd.Timestamp(DAY).date(), pd.Timestamp("2024-01-03").date()]
    assert days[pd.Timestamp("2024-01-03").date()] == {"trades"}
    assert complete_days(tmp_path) == [pd.Timestamp(DAY).date()]
    assert complete_days(tmp_path, kinds=["trades"]) == list(days)
    assert find_landing_file(tmp_path, "trades", "2024-01-03").name == "2024-01-03.csv.gz"
    assert find_landing_file(tmp_path, "news", "2024-01-03") is None


def test_one_file_per_day_and_kind_is_found_whatever_its_format(tmp_path):
    for kind, fmt in zip(FRAMES, FORMATS + ("parquet",), strict=True):
        write_landing_file(FRAMES[kind](), tmp_path, kind, DAY, fmt)
        assert find_landing_file(tmp_path, kind, DAY) == landing_path(tmp_path, kind, DAY, fmt)
    assert landing_conflicts(tmp_path) == {}
    assert available_days(tmp_path) == {pd.Timestamp(DAY).date(): set(FRAMES)}


def test_two_formats_of_a_day_and_kind_are_an_error_naming_both(tmp_path):
    old = write_landing_file(make_bars(), tmp_path, "bars", DAY, "parquet")
    os.utime(old, (1_700_000_000, 1_700_000_000))  # delivered 2023-11-14 22:13:20 UTC
    corrected = make_bars().assign(volume=lambda df: df["volume"] + 100)
    new = write_landing_file(corrected, tmp_path, "bars", DAY, "csv")
    with pytest.raises(IngestError) as err:
        find_landing_file(tmp_path, "bars", DAY)
    assert err.value.source == str(tmp_path / "bars")
    assert f"2 files for bars on {DAY}: {old.name} (" in err.value.reason
    assert "modified 2023-11-14 22:13:20 UTC) and " + new.name in err.value.reason
    assert "remove those that must not be ingested" in err.value.reason
    # nothing was moved or read: both files are still where the vendor put them
    assert old.exists() and new.exists()

    day = pd.Timestamp(DAY).date()
    assert landing_conflicts(tmp_path) == {day: {"bars": [new, old]}}
    # the day still counts as complete, so its run is requested and fails visibly
    assert available_days(tmp_path) == {day: {"bars"}}
    assert complete_days(tmp_path, kinds=["bars"]) == [day]

    old.unlink()
    assert find_landing_file(tmp_path, "bars", DAY) == new
    assert landing_conflicts(tmp_path) == {}


def test_a_reference_universe_in_two_formats_is_an_error(tmp_path):
    sim = SimulatedMarket(trading_days(DAY, DAY), n_symbols=5, seed=1, snapshot_seconds=60)
    sim.universe().to_parquet(tmp_path / "universe.parquet", index=False)
    assert len(read_reference_universe(tmp_path)) == 5
    sim.universe().to_csv(tmp_path / "universe.csv", index=False)
    with pytest.raises(IngestError, match=r"2 files for the reference universe: universe\.parq"):
        read_reference_universe(tmp_path)


def test_the_ingest_step_fails_on_two_formats_and_ingests_the_one_left(tmp_path):
    """The reported defect: an old Parquet and a corrected CSV of the same day's bars. The
    run fails naming both files; once the old one is removed, the corrected values land."""
    day = "2024-03-12"
    sim = SimulatedMarket(trading_days("2024-03-04", day), n_symbols=10, seed=1)
    root = tmp_path / "landing"
    root.mkdir()
    sim.universe().to_parquet(root / "universe.parquet", index=False)
    bars = sim.daily_bars(day, day)
    old = write_landing_file(bars, root, "bars", day, "parquet")
    first = bars["symbol"].iloc[0]
    corrected = bars.copy()
    corrected.loc[0, "volume"] += 100
    corrected.loc[0, "amount"] += 100 * corrected.loc[0, "close"]
    new = write_landing_file(corrected, root, "bars", day, "csv")

    ch = ClickHouseResource(dsn=f"chdb://{tmp_path / 'ch'}", database="quant")
    resources = {
        "clickhouse": ch,
        "clickhouse_io": ClickHouseIOManager(clickhouse=ch),
        "market": MarketDataResource(source="landing", landing_dir=str(root)),
    }
    instance = DagsterInstance.ephemeral()

    def run():
        return materialize(
            load_assets_from_modules([market_assets]),
            selection=AssetSelection.assets("universe", "raw_daily_bars", "bars_quarantine"),
            partition_key=day,
            resources=resources,
            instance=instance,
            raise_on_error=False,
        )

    result = run()
    assert not result.success
    (failure,) = [e.step_failure_data.user_failure_data for e in result.get_step_failure_events()]
    assert failure.description.startswith(f"bars file rejected: 2 files for bars on {day}: ")
    assert old.name in failure.description and new.name in failure.description
    assert failure.metadata["file"].value == str(root / "bars")

    old.unlink()
    assert run().success
    with ch.client() as client:
        stored = ch.query_df(
            client,
            "SELECT volume FROM {db}.raw_daily_bars WHERE date = %(d)s AND symbol = %(s)s",
            {"d": day, "s": first},
        )
    assert stored["volume"].tolist() == [corrected.loc[0, "volume"]]
