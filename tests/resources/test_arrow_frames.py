import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from resources.arrow_frames import arrow_type, record_batches

TYPES = {
    "date": "Date",
    "ts": "DateTime64(3, 'Asia/Shanghai')",
    "symbol": "LowCardinality(String)",
    "px": "Float64",
    "score": "Nullable(Float64)",
    "size": "UInt32",
    "note": "Nullable(String)",
}


def _frame(n: int = 5) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ts": pd.date_range("2024-01-02 09:30", periods=n, freq="1500ms", tz="Asia/Shanghai"),
            "symbol": ["600000.SH", "000001.SZ"] * (n // 2) + ["600000.SH"] * (n % 2),
            "px": [10.0, np.nan, 10.02, 10.01, np.nan][:n],
            "score": [0.5, np.nan, 0.1, np.nan, 0.2][:n],
            "size": np.array([100, 0, 300, 4_000_000_000, 0][:n], dtype=np.int64),
            "note": ["a", None, "c", "d", None][:n],
        }
    )


@pytest.mark.parametrize(
    ("ch_type", "expected", "nullable"),
    [
        ("Float64", pa.float64(), False),
        ("Nullable(Float64)", pa.float64(), True),
        ("UInt32", pa.uint32(), False),
        ("Date", pa.date32(), False),
        ("DateTime64(3, 'Asia/Shanghai')", pa.timestamp("ms", tz="Asia/Shanghai"), False),
        ("DateTime64(6)", pa.timestamp("us"), False),
        ("LowCardinality(String)", pa.dictionary(pa.int32(), pa.string()), False),
        ("LowCardinality(Nullable(String))", pa.dictionary(pa.int32(), pa.string()), True),
        ("Array(Float64)", None, False),
    ],
)
def test_clickhouse_types_map_to_the_arrow_types_read_without_conversion(
    ch_type, expected, nullable
):
    assert arrow_type(ch_type) == (expected, nullable)


def test_values_arrive_unchanged_nan_kept_and_null_only_where_nullable():
    (batch,) = record_batches(_frame(), TYPES, {"date": pd.Timestamp("2024-01-02")})
    got = batch.to_pydict()
    # NaN in a Float64 column stays NaN (an empty book level), it does not become null
    assert batch.column("px").null_count == 0
    assert np.isnan(got["px"][1]) and got["px"][2] == 10.02
    assert batch.column("score").null_count == 2 and got["score"][0] == 0.5
    assert got["note"] == ["a", None, "c", "d", None]
    assert got["size"][3] == 4_000_000_000 and batch.schema.field("size").type == pa.uint32()
    assert batch.schema.field("symbol").type == pa.dictionary(pa.int32(), pa.string())
    assert got["symbol"] == _frame()["symbol"].tolist()
    assert got["date"] == [pd.Timestamp("2024-01-02").date()] * 5
    ts = batch.column("ts").cast(pa.int64()).to_pylist()
    assert ts == [t.value // 1_000_000 for t in _frame()["ts"]]  # ms since epoch, UTC
    assert not batch.schema.field("px").nullable and batch.schema.field("score").nullable


def test_a_value_that_does_not_fit_raises_instead_of_wrapping():
    too_big = _frame().assign(size=np.array([1, 2, 3, 2**32, 5], dtype=np.int64))
    with pytest.raises(pa.ArrowInvalid):
        list(record_batches(too_big, TYPES))
    negative = _frame().assign(size=np.array([1, -2, 3, 4, 5], dtype=np.int64))
    with pytest.raises(pa.ArrowInvalid):
        list(record_batches(negative, TYPES))


def test_a_missing_value_in_a_column_that_is_not_nullable_raises():
    missing = _frame().assign(symbol=["600000.SH", None, "x", "y", "z"])
    with pytest.raises(ValueError, match="'symbol': 1 missing values"):
        list(record_batches(missing, TYPES))


def test_batches_cover_every_row_once_in_order():
    df = _frame(5)
    batches = list(record_batches(df, TYPES, {"date": pd.Timestamp("2024-01-02")}, 2))
    assert [b.num_rows for b in batches] == [2, 2, 1]
    sizes = [v for b in batches for v in b.column("size").to_pylist()]
    assert sizes == df["size"].tolist()
