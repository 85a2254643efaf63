"""Landing-zone files: round trips in every format, file-level errors, day discovery."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from quant_assets.market.sources.landing import (
    FORMATS,
    available_days,
    complete_days,
    find_landing_file,
    landing_path,
    read_landing_file,
    write_landing_file,
)
from quant_assets.market.validation import IngestError, validate
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
