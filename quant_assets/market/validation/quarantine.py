"""The quarantine: one row per (rejected input row, failed rule), with the original row as JSON.

Its columns are those of the QUARANTINE table (contract/tables.py), the one place they are
listed; the frame `validate()` returns names the table's partition day `trading_date`, and
`table_rows` turns it into the table's rows for one (day, kind) partition.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from quant_assets.market.contract.tables import QUARANTINE

# The frame's names for table columns it names otherwise: the partition day is the file's
# trading date (NaT for a multi-day history).
_FRAME_NAMES = {"date": "trading_date"}
QUARANTINE_COLUMNS = [_FRAME_NAMES.get(c, c) for c in QUARANTINE.columns]


def _json_values(s: pd.Series) -> list:
    """A column as JSON-ready Python values: NaN/NaT -> null, timestamps -> ISO text."""
    if s.dtype.kind == "M" or isinstance(s.dtype, pd.DatetimeTZDtype):
        return [None if pd.isna(t) else t.isoformat() for t in s.tolist()]
    obj = s.astype(object)
    return obj.where(obj.notna(), None).tolist()


def _rows_json(raw: pd.DataFrame) -> list[str]:
    """The original rows as JSON objects, values exact (Python's shortest float repr)."""
    cols = [str(c) for c in raw.columns]
    columns = [_json_values(raw[c]) for c in raw.columns]
    out = []
    for values in zip(*columns, strict=False):
        text = json.dumps(dict(zip(cols, values, strict=False)), ensure_ascii=False, default=str)
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:  # lone surrogates: keep them as \ud8xx escapes
                row = dict(zip(cols, values, strict=True))
                text = json.dumps(row, ensure_ascii=True, default=str)
        out.append(text)
    return out


def quarantine_frame(
    hits: pd.DataFrame,
    raw: pd.DataFrame,
    symbols: pd.Series,
    *,
    source_file: str,
    kind: str,
    trading_date: pd.Timestamp | None,
) -> pd.DataFrame:
    """The quarantine of `hits` (`Flags.frame()`: row_number, rule, detail), in the columns
    `QUARANTINE_COLUMNS`: each hit with its row's parsed symbol (missing where it is not text)
    and the row of `raw` (positions = row numbers) as JSON."""
    rows = hits["row_number"].to_numpy()
    json_by_row: dict[int, str] = {}
    if len(rows):  # the usual case is none; even no rows cost a pass over every column
        bad_rows = np.unique(rows)
        json_by_row = dict(zip(bad_rows.tolist(), _rows_json(raw.iloc[bad_rows]), strict=False))
    sym = pd.Series(symbols.iloc[rows].astype(object).to_numpy(), dtype=object)
    values = {
        "row_number": hits["row_number"].astype("int64"),
        "symbol": sym.where(sym.map(lambda v: isinstance(v, str)), None).astype("str"),
        "rule": hits["rule"].astype("str"),
        "detail": hits["detail"].astype("str"),
        "row_json": hits["row_number"].map(json_by_row).astype("str"),
        "source_file": source_file,
        "kind": kind,
        "trading_date": pd.Series([trading_date] * len(hits), dtype="datetime64[ns]"),
    }
    return pd.DataFrame({c: values[c] for c in QUARANTINE_COLUMNS})


def table_rows(quarantine: pd.DataFrame, kind: str, day: pd.Timestamp) -> pd.DataFrame:
    """Quarantine rows in the QUARANTINE table's shape for the (day, kind) partition."""
    q = quarantine.assign(date=day, kind=kind)
    q["symbol"] = q["symbol"].fillna("").astype(str)
    q["source_file"] = q["source_file"].fillna("").astype(str)
    return q[list(QUARANTINE.columns)].reset_index(drop=True)
