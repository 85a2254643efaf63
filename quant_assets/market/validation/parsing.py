"""Parsing raw columns to the contract's dtype families (float, int, bool, str, ts, date).

Parseable values are coerced; anything else comes back in a mask of values that did not parse,
never guessed, so that validation can quarantine the row. Also here: the spellings of null in
text cells and the test for text that is not valid text (undecodable bytes, mojibake).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from quant_assets.calendar import TZ

Parsed = tuple[pd.Series, np.ndarray]  # (parsed column, mask of values that did not parse)

_TS_DTYPE = pd.DatetimeTZDtype("ns", TZ)
_NULL_TEXT = {"", "nan", "null", "none", "nat", "na", "n/a"}

# Mojibake: UTF-8 bytes decoded as Latin-1/cp1252 turn every multi-byte character into a lead
# byte U+00C2..U+00F4 followed by continuation bytes (U+0080..U+00BF, or cp1252's € ‚ ƒ ... ™
# for 0x80..0x9F). Chinese 平安 becomes "å¹³å®‰". C1 controls (U+0080..U+009F) never occur in
# real text; U+FFFD is what a decoder leaves for invalid bytes; lone surrogates come from
# `surrogateescape` decoding.
_CP1252_HIGH = "€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ"
_BAD_TEXT = f"[\ufffd\ud800-\udfff\u0080-\u009f]|[\u00c2-\u00f4][\u00a0-\u00bf{_CP1252_HIGH}]"

_BOOL_TEXT = {
    "true": 1.0,
    "t": 1.0,
    "1": 1.0,
    "1.0": 1.0,
    "yes": 1.0,
    "y": 1.0,
    "false": 0.0,
    "f": 0.0,
    "0": 0.0,
    "0.0": 0.0,
    "no": 0.0,
    "n": 0.0,
}


def _nullish(s: pd.Series) -> np.ndarray:
    """Empty cells and the usual spellings of null in text columns."""
    null = s.isna().to_numpy(dtype=bool)
    if isinstance(s.dtype, pd.StringDtype):
        return null | s.str.strip().str.lower().isin(_NULL_TEXT).to_numpy(dtype=bool)
    text_null = s.astype(object).map(
        lambda v: isinstance(v, str) and v.strip().lower() in _NULL_TEXT
    )
    return null | text_null.to_numpy(dtype=bool)


def _in_ns_bounds(out: pd.Series) -> pd.Series:
    """NaT for datetimes that nanosecond resolution cannot hold (before 1677 or after 2262)."""
    naive = out.dt.tz_convert(None) if isinstance(out.dtype, pd.DatetimeTZDtype) else out
    return out.where(naive.isna() | ((naive >= pd.Timestamp.min) & (naive <= pd.Timestamp.max)))


def _parse_float(s: pd.Series) -> Parsed:
    if s.dtype == "float64":
        return s, np.zeros(len(s), bool)
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        return s.astype("float64"), np.zeros(len(s), bool)
    null = _nullish(s)
    out = pd.to_numeric(s.astype(object).where(~null), errors="coerce").astype("float64")
    return out, out.isna().to_numpy() & ~null


def _parse_int(s: pd.Series) -> Parsed:
    """Integers stay int64; anything else is parsed as float and cast after the rules."""
    if s.dtype == "int64":
        return s, np.zeros(len(s), bool)
    if pd.api.types.is_integer_dtype(s.dtype) and isinstance(s.dtype, np.dtype):
        return s.astype("int64"), np.zeros(len(s), bool)
    out, bad = _parse_float(s)
    x = out.to_numpy()
    with np.errstate(invalid="ignore"):
        bad |= ~np.isnan(x) & (x != np.round(x))
    return out, bad


def _parse_bool(s: pd.Series) -> Parsed:
    if pd.api.types.is_bool_dtype(s.dtype) and s.dtype == bool:
        return s, np.zeros(len(s), bool)
    if pd.api.types.is_numeric_dtype(s.dtype):
        out = s.astype("float64")
        bad = out.notna().to_numpy() & ~out.isin([0.0, 1.0]).to_numpy()
        return out.where(~bad), bad
    null = _nullish(s)
    out = s.astype(object).astype(str).str.strip().str.lower().map(_BOOL_TEXT).astype("float64")
    out = out.where(~null)
    return out, out.isna().to_numpy() & ~null


def _as_text(v: object) -> object:
    """A cell of a text column as str; None when it cannot be text (undecodable bytes...)."""
    if isinstance(v, str):
        try:
            v.encode("utf-8")  # lone surrogates from `surrogateescape` decoding
        except UnicodeEncodeError:
            return None
        return v
    if isinstance(v, bytes):
        try:
            return v.decode("utf-8")
        except UnicodeDecodeError:
            return None
    if isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)):
        return str(v)  # integer ids read as numbers by a CSV reader
    return None


def _parse_str(s: pd.Series) -> Parsed:
    if isinstance(s.dtype, pd.StringDtype):
        return s, np.zeros(len(s), bool)
    if pd.api.types.is_integer_dtype(s.dtype):
        return s.astype("str"), np.zeros(len(s), bool)
    obj = s.astype(object)
    null = obj.isna().to_numpy()
    values = obj.to_numpy()
    conv = [None if isnull else _as_text(v) for v, isnull in zip(values, null, strict=True)]
    out = pd.Series(conv, index=s.index, dtype=object)
    bad = out.isna().to_numpy() & ~null
    return out, bad


def _parse_ts(s: pd.Series) -> Parsed:
    """Exchange-local timestamps; naive values and strings without an offset are local time."""
    if s.dtype == _TS_DTYPE:
        return s, np.zeros(len(s), bool)
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        return s.dt.tz_convert(TZ).dt.as_unit("ns"), np.zeros(len(s), bool)
    if pd.api.types.is_datetime64_dtype(s.dtype):
        out = _in_ns_bounds(s).astype("datetime64[ns]").dt.tz_localize(TZ)
        return out, out.isna().to_numpy() & s.notna().to_numpy()
    null = _nullish(s)
    txt = (
        s.astype(object).where(~null).map(lambda v: v if v is None else str(v), na_action="ignore")
    )
    has_offset = txt.str.contains(r"(?:[zZ]|[+-]\d{2}:?\d{2})$", regex=True, na=False).to_numpy()
    out = pd.Series(pd.NaT, index=s.index, dtype=f"datetime64[ns, {TZ}]")
    if has_offset.any():
        aware = pd.to_datetime(txt[has_offset], format="ISO8601", utc=True, errors="coerce")
        out[has_offset] = _in_ns_bounds(aware).dt.tz_convert(TZ).dt.as_unit("ns")
    naive_rows = ~has_offset & ~null
    if naive_rows.any():
        naive = _in_ns_bounds(pd.to_datetime(txt[naive_rows], format="ISO8601", errors="coerce"))
        out[naive_rows] = naive.astype("datetime64[ns]").dt.tz_localize(TZ)
    return out, out.isna().to_numpy() & ~null


def _parse_date(s: pd.Series) -> Parsed:
    """Trading days: tz-naive midnight; a time of day other than midnight is a wrong type."""
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        s = s.dt.tz_localize(None)  # keep the wall-clock date as written
    if pd.api.types.is_datetime64_dtype(s.dtype):
        out = _in_ns_bounds(s).astype("datetime64[ns]")
        null = s.isna().to_numpy()
    else:
        null = _nullish(s)
        txt = s.astype(object).where(~null).map(str, na_action="ignore")
        try:
            out = pd.to_datetime(txt, format="ISO8601", errors="coerce")
        except (ValueError, TypeError):  # mixed offsets
            out = pd.to_datetime(txt, format="ISO8601", errors="coerce", utc=True)
        if isinstance(out.dtype, pd.DatetimeTZDtype):
            out = out.dt.tz_localize(None)
        out = _in_ns_bounds(out).astype("datetime64[ns]")
    bad = out.isna().to_numpy() & ~null
    bad |= (out.notna() & (out != out.dt.normalize())).to_numpy()
    return out.where(~bad), bad


_PARSERS: dict[str, Callable[[pd.Series], Parsed]] = {
    "float": _parse_float,
    "int": _parse_int,
    "bool": _parse_bool,
    "str": _parse_str,
    "ts": _parse_ts,
    "date": _parse_date,
}


def parse_column(s: pd.Series, family: str) -> Parsed:
    """Parse a column to a dtype family; returns (parsed, mask of values that did not parse).

    Nulls are not parse failures (the caller decides whether the column may be null). Int and
    bool columns come back as float64 when they held anything but their own dtype, so that
    unparseable values can be NaN until the bad rows are gone.
    """
    return _PARSERS[family](s)


def final_dtypes(clean: pd.DataFrame, types: dict[str, tuple[str, bool]]) -> pd.DataFrame:
    """Cast the clean rows to the contract's dtypes (int/bool held as float while parsing)."""
    for col, (family, _) in types.items():
        s = clean[col]
        if family == "int" and s.dtype != "int64":
            clean[col] = s.astype("int64")
        elif family == "bool" and s.dtype != bool:
            clean[col] = s.astype(bool)
        elif family == "str" and not isinstance(s.dtype, pd.StringDtype):
            clean[col] = s.astype("str")
    return clean


def text_problems(s: pd.Series) -> np.ndarray:
    """True where a text cell is not valid text: undecodable bytes, U+FFFD, surrogates, mojibake."""
    obj = s.astype(object)
    present = obj.notna().to_numpy()
    not_str = present & ~obj.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
    txt = obj.where(~not_str)
    bad = txt.str.contains(_BAD_TEXT, regex=True, na=False).to_numpy(dtype=bool)
    return not_str | bad
