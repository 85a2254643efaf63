"""Row-level validation of raw market frames: split a frame into clean rows and quarantine rows.

Nothing is lost and nothing is fixed: every input row ends up either in `clean` (values as
given, only parsed to the contract's dtypes) or in `quarantine` (once per failed rule, with
the original row as JSON text). File-level problems (missing columns, unreadable files)
raise `IngestError` instead. The rules are vectorised numpy over columns because the
order-book frame has about 1.4 million rows a day; pandera (schemas.py) supplies the dtypes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from quant_assets.market import rules
from quant_assets.market.contract.columns import LEVELS
from quant_assets.market.contract.schemas import CONTRACT, column_types, dtype_schema
from quant_assets.market.validation.screen_kernels import (
    NAT,
    book_suspects,
    strictly_increasing_per_symbol,
    time_flags,
)
from quant_assets.memory import on_normal_pages

KINDS = tuple(CONTRACT)

# What each rule means; the keys are the values of the quarantine's `rule` column.
RULES: dict[str, str] = {
    "wrong_type": "a value that cannot be parsed to the column's dtype",
    "missing_value": "a required value is empty",
    "unknown_symbol": "symbol not in the known universe",
    "bad_price": "price NaN or <= 0 (order book: a level with a price but no size or vice versa)",
    "negative_volume": "volume, size or amount below zero",
    "bad_value": "a value outside its domain (side, sentiment, ratios, board)",
    "ohlc_inconsistent": "high below max(open, close) or low above min(open, close)",
    "suspended_inconsistent": "suspended bar with volume or with prices other than preclose",
    "crossed_book": "best bid >= best ask (crossed or locked book)",
    "non_monotone_levels": "bids not strictly decreasing or asks not strictly increasing",
    "duplicate": "a repeat of an earlier row (same key or identical values)",
    "out_of_order": "timestamp earlier than a previous row of the same symbol",
    "outside_session": "timestamp outside the trading sessions and auction prints",
    "in_future": "timestamp or date after `now`",
    "not_on_trading_date": "timestamp or date not on the file's trading date",
    "non_trading_day": "date not in the trading calendar",
    "outside_price_limit": "price beyond the day's limit-up/limit-down prices",
    "ex_before_announce": "corporate action whose ex-date precedes its announcement",
    "empty_title": "news item without a title",
    "undecodable_text": "text with U+FFFD, invalid bytes or mojibake",
}

QUARANTINE_COLUMNS = [
    "row_number",
    "symbol",
    "rule",
    "detail",
    "row_json",
    "source_file",
    "kind",
    "trading_date",
]

_SESSIONS = rules.session_windows_ns()
_TS_DTYPE = pd.DatetimeTZDtype("ns", rules.TZ)
_NULL_TEXT = {"", "nan", "null", "none", "nat", "na", "n/a"}
_PRICE_COLS = {
    "bars": ["open", "high", "low", "close"],
    "trades": ["price"],
    "order_book": [],
}
_NEWS_TEXT = ("title", "body", "source")
_BID_PX = [f"bid_px_{i}" for i in range(1, LEVELS + 1)]
_BID_SZ = [f"bid_sz_{i}" for i in range(1, LEVELS + 1)]
_ASK_PX = [f"ask_px_{i}" for i in range(1, LEVELS + 1)]
_ASK_SZ = [f"ask_sz_{i}" for i in range(1, LEVELS + 1)]
_BOOK_COLS = (_BID_PX, _BID_SZ, _ASK_PX, _ASK_SZ)

# Mojibake: UTF-8 bytes decoded as Latin-1/cp1252 turn every multi-byte character into a lead
# byte U+00C2..U+00F4 followed by continuation bytes (U+0080..U+00BF, or cp1252's € ‚ ƒ ... ™
# for 0x80..0x9F). Chinese 平安 becomes "å¹³å®‰". C1 controls (U+0080..U+009F) never occur in
# real text; U+FFFD is what a decoder leaves for invalid bytes; lone surrogates come from
# `surrogateescape` decoding.
_CP1252_HIGH = "€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ"
_BAD_TEXT = f"[\ufffd\ud800-\udfff\u0080-\u009f]|[\u00c2-\u00f4][\u00a0-\u00bf{_CP1252_HIGH}]"


class IngestError(ValueError):
    """A file-level problem (empty, truncated, unreadable, missing columns): nothing ingested."""

    def __init__(self, source: str, reason: str):
        self.source = str(source)
        self.reason = reason
        super().__init__(f"{self.source}: {reason}")


@dataclass
class ValidationResult:
    """Outcome of `validate`: clean rows, quarantine rows and per-rule counts."""

    kind: str
    clean: pd.DataFrame
    quarantine: pd.DataFrame
    counts: dict[str, int]
    n_input: int
    skipped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def n_quarantined(self) -> int:
        """Distinct input rows that failed at least one rule."""
        return int(self.quarantine["row_number"].nunique())

    @property
    def bad_share(self) -> float:
        """Share of input rows quarantined (0.0 for an empty input)."""
        return self.n_quarantined / self.n_input if self.n_input else 0.0


# ---------------------------------------------------------------------------------------------
# parsing (dtype coercion of parseable values; everything else is flagged, never guessed)


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


def _parse_float(s: pd.Series) -> tuple[pd.Series, np.ndarray]:
    if s.dtype == "float64":
        return s, np.zeros(len(s), bool)
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        return s.astype("float64"), np.zeros(len(s), bool)
    null = _nullish(s)
    out = pd.to_numeric(s.astype(object).where(~null), errors="coerce").astype("float64")
    return out, out.isna().to_numpy() & ~null


def _parse_int(s: pd.Series) -> tuple[pd.Series, np.ndarray]:
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


def _parse_bool(s: pd.Series) -> tuple[pd.Series, np.ndarray]:
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


def _parse_str(s: pd.Series) -> tuple[pd.Series, np.ndarray]:
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


def _parse_ts(s: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Exchange-local timestamps; naive values and strings without an offset are local time."""
    if s.dtype == _TS_DTYPE:
        return s, np.zeros(len(s), bool)
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        return s.dt.tz_convert(rules.TZ).dt.as_unit("ns"), np.zeros(len(s), bool)
    if pd.api.types.is_datetime64_dtype(s.dtype):
        out = _in_ns_bounds(s).astype("datetime64[ns]").dt.tz_localize(rules.TZ)
        return out, out.isna().to_numpy() & s.notna().to_numpy()
    null = _nullish(s)
    txt = (
        s.astype(object).where(~null).map(lambda v: v if v is None else str(v), na_action="ignore")
    )
    has_offset = txt.str.contains(r"(?:[zZ]|[+-]\d{2}:?\d{2})$", regex=True, na=False).to_numpy()
    out = pd.Series(pd.NaT, index=s.index, dtype=f"datetime64[ns, {rules.TZ}]")
    if has_offset.any():
        aware = pd.to_datetime(txt[has_offset], format="ISO8601", utc=True, errors="coerce")
        out[has_offset] = _in_ns_bounds(aware).dt.tz_convert(rules.TZ).dt.as_unit("ns")
    naive_rows = ~has_offset & ~null
    if naive_rows.any():
        naive = _in_ns_bounds(pd.to_datetime(txt[naive_rows], format="ISO8601", errors="coerce"))
        out[naive_rows] = naive.astype("datetime64[ns]").dt.tz_localize(rules.TZ)
    return out, out.isna().to_numpy() & ~null


def _parse_date(s: pd.Series) -> tuple[pd.Series, np.ndarray]:
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


_PARSERS: dict[str, Callable[[pd.Series], tuple[pd.Series, np.ndarray]]] = {
    "float": _parse_float,
    "int": _parse_int,
    "bool": _parse_bool,
    "str": _parse_str,
    "ts": _parse_ts,
    "date": _parse_date,
}


def parse_column(s: pd.Series, family: str) -> tuple[pd.Series, np.ndarray]:
    """Parse a column to a dtype family; returns (parsed, mask of values that did not parse).

    Nulls are not parse failures (the caller decides whether the column may be null). Int and
    bool columns come back as float64 when they held anything but their own dtype, so that
    unparseable values can be NaN until the bad rows are gone.
    """
    return _PARSERS[family](s)


def text_problems(s: pd.Series) -> np.ndarray:
    """True where a text cell is not valid text: undecodable bytes, U+FFFD, surrogates, mojibake."""
    obj = s.astype(object)
    present = obj.notna().to_numpy()
    not_str = present & ~obj.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
    txt = obj.where(~not_str)
    bad = txt.str.contains(_BAD_TEXT, regex=True, na=False).to_numpy(dtype=bool)
    return not_str | bad


# ---------------------------------------------------------------------------------------------
# flag bookkeeping


Detail = str | Callable[[np.ndarray], Iterable[str]]


class _Flags:
    """Collects (rule, rows, detail) hits; a rule hit twice on one row keeps one joined detail."""

    def __init__(self, n: int, rows: np.ndarray | None = None):
        self.n = n
        self.rows = rows  # for a view: the row numbers its masks refer to
        self.hits: dict[str, list[tuple[np.ndarray, list[str]]]] = {}
        self.evaluated: set[str] = set()

    def add(self, rule: str, mask: np.ndarray | pd.Series, detail: Detail) -> None:
        assert rule in RULES, rule
        self.evaluated.add(rule)
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():  # the usual case, and cheaper than flatnonzero on a long mask
            return
        idx = np.flatnonzero(mask)
        det = [detail] * len(idx) if isinstance(detail, str) else list(detail(idx))
        self.hits.setdefault(rule, []).append((idx if self.rows is None else self.rows[idx], det))

    def passed(self, rule: str) -> None:
        """Record a rule that ran and found nothing (e.g. settled by a screen)."""
        assert rule in RULES, rule
        self.evaluated.add(rule)

    def view(self, rows: np.ndarray) -> _Flags:
        """Flags for the subset `rows`: masks and detail indices are relative to the subset,
        hits land here under their row numbers."""
        sub = _Flags(len(rows), rows if self.rows is None else self.rows[rows])
        sub.hits, sub.evaluated = self.hits, self.evaluated
        return sub

    def frame(self) -> pd.DataFrame:
        parts = []
        for rule, hits in self.hits.items():
            rows = np.concatenate([h[0] for h in hits])
            det = [d for h in hits for d in h[1]]
            part = pd.DataFrame({"row_number": rows, "detail": det})
            if len(hits) > 1:
                part = part.groupby("row_number", sort=True, as_index=False)["detail"].agg(
                    "; ".join
                )
            part.insert(1, "rule", rule)
            parts.append(part)
        if not parts:
            return pd.DataFrame(
                {"row_number": np.array([], dtype="int64"), "rule": [], "detail": []}
            )
        out = pd.concat(parts, ignore_index=True)
        return out.sort_values("row_number", kind="stable", ignore_index=True)

    def counts(self) -> dict[str, int]:
        out = {rule: 0 for rule in RULES if rule in self.evaluated}
        for rule, hits in self.hits.items():
            out[rule] = int(len(np.unique(np.concatenate([h[0] for h in hits]))))
        return out


def _show(v: object) -> str:
    return str(v) if isinstance(v, (pd.Timestamp, float, int)) else repr(v)


def _values(s: pd.Series, what: str) -> Callable[[np.ndarray], list[str]]:
    """Detail text naming the offending value of one column."""
    return lambda idx: [f"{what}: {s.name}={_show(v)}" for v in s.iloc[idx].tolist()]


# ---------------------------------------------------------------------------------------------
# the rules


@dataclass
class _Ctx:
    kind: str
    raw: pd.DataFrame
    p: dict[str, pd.Series]  # parsed columns
    unparsed: dict[str, np.ndarray]
    flags: _Flags
    skipped: dict[str, str]
    notes: list[str]
    codes: np.ndarray  # symbol codes (-1 for missing symbol)
    uniques: pd.Index
    market: str

    _arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def arr(self, col: str) -> np.ndarray:
        """Column as float64 numpy (NaN for missing), computed once."""
        if col not in self._arrays:
            s = self.p[col]
            self._arrays[col] = (
                s.to_numpy()
                if s.dtype == "float64"
                else s.to_numpy(dtype="float64", na_value=np.nan)
            )
        return self._arrays[col]

    def native(self, col: str) -> np.ndarray:
        """Column as numpy in its own dtype when int64 or float64 (no conversion copy)."""
        s = self.p[col]
        return s.to_numpy() if s.dtype in ("int64", "float64") else self.arr(col)

    def subset(self, rows: np.ndarray) -> _Ctx:
        """The same rules' view of the rows `rows` only (flags map back to the full frame)."""
        return _Ctx(
            self.kind,
            self.raw.iloc[rows],
            {c: pd.Series(s.array[rows], name=c) for c, s in self.p.items()},
            {c: a[rows] for c, a in self.unparsed.items()},
            self.flags.view(rows),
            self.skipped,
            self.notes,
            self.codes[rows],
            self.uniques,
            self.market,
            {c: a[rows] for c, a in self._arrays.items()},
        )


def _symbol_rules(ctx: _Ctx, known_symbols: Iterable[str] | None) -> None:
    if known_symbols is None:
        ctx.skipped["unknown_symbol"] = "no known_symbols given"
        return
    known_u = np.asarray(ctx.uniques.isin(pd.Index(list(known_symbols))), dtype=bool)
    # code -1 (no symbol) picks the appended True: a missing symbol is missing_value's row
    mask = ~np.append(known_u, True)[ctx.codes]
    ctx.flags.add("unknown_symbol", mask, _values(ctx.p["symbol"], "not in the universe"))


def _ns(ts: pd.Series) -> np.ndarray:
    """int64 nanoseconds of a datetime Series (NaT -> int64 min)."""
    return ts.array.asi8


def _local_clock(ts: pd.Series) -> np.ndarray | int:
    """Wall-clock time of a tz-aware Series: one offset in ns to add to every row, or the
    local ns of each row. Within a day's span no zone changes its offset and changes it back,
    so when both ends have the same offset the shift is one addition instead of a zone lookup
    per row (a day of ticks; Shanghai has kept UTC+8 since 1991); longer spans take the
    lookup."""
    utc_ns = _ns(ts)
    valid = utc_ns != NAT
    if valid.any():
        lo = np.min(utc_ns, where=valid, initial=np.iinfo(np.int64).max)
        hi = np.max(utc_ns, where=valid, initial=NAT)
        first, last = (pd.Timestamp(v, unit="ns", tz="UTC").tz_convert(ts.dt.tz) for v in (lo, hi))
        if last - first < pd.Timedelta(days=1) and first.utcoffset() == last.utcoffset():
            return int(first.utcoffset().total_seconds()) * 1_000_000_000
    return ts.dt.tz_localize(None).array.asi8


def _out_of_order(ctx: _Ctx, t: np.ndarray, valid: np.ndarray, what: str) -> None:
    """Flag rows earlier than the running maximum of their symbol (file order)."""
    if strictly_increasing_per_symbol(ctx.codes, t, len(ctx.uniques)):
        ctx.flags.passed("out_of_order")
        return
    ok = valid & (ctx.codes >= 0)
    mask = np.zeros(len(t), bool)
    if ok.any():
        tv = pd.Series(t[ok])
        cm = tv.groupby(ctx.codes[ok]).cummax().to_numpy()
        mask[ok] = tv.to_numpy() < cm
    ctx.flags.add("out_of_order", mask, f"{what} earlier than a previous row of the symbol")


def _time_rules(
    ctx: _Ctx,
    trading_date: pd.Timestamp | None,
    now: pd.Timestamp | None,
    sessions: bool,
    order: bool,
) -> None:
    ts = ctx.p["ts"]
    utc_ns = _ns(ts)
    valid = utc_ns != NAT
    news = ctx.kind == "news"  # news of earlier days may arrive in a later file; never later
    outside, off_day, future = time_flags(
        utc_ns,
        _local_clock(ts),
        _SESSIONS,
        trading_date.value // rules.DAY_NS if trading_date is not None else 0,
        news,
        now.value if now is not None else 0,
    )
    if sessions and ctx.market == "CN":
        ctx.flags.add("outside_session", outside, _values(ts, "outside the sessions"))
    elif sessions:
        ctx.skipped["outside_session"] = f"market {ctx.market}: A-share sessions do not apply"
    if trading_date is not None:
        what = "published after" if news else "not on"
        ctx.flags.add("not_on_trading_date", off_day, _values(ts, f"{what} {trading_date.date()}"))
    else:
        ctx.skipped["not_on_trading_date"] = "no trading_date given"
    if now is not None:
        ctx.flags.add("in_future", future, _values(ts, f"after now={now}"))
    else:
        ctx.skipped["in_future"] = "no now given"
    if order:
        _out_of_order(ctx, utc_ns, valid, "ts")


def _date_rules(
    ctx: _Ctx,
    col: str,
    trading_date: pd.Timestamp | None,
    now: pd.Timestamp | None,
    trading_days: pd.DatetimeIndex | None,
    same_day: bool,
) -> None:
    d = ctx.p[col]
    valid = d.notna().to_numpy()
    days = _ns(d)
    if trading_date is not None:
        td = trading_date.value
        mask = valid & ((days != td) if same_day else (days > td))
        what = (
            f"{col} not on {trading_date.date()}"
            if same_day
            else f"{col} after {trading_date.date()}"
        )
        ctx.flags.add("not_on_trading_date", mask, _values(d, what))
    else:
        ctx.skipped["not_on_trading_date"] = "no trading_date given"
    if now is not None:
        today = now.tz_convert(rules.TZ).tz_localize(None).normalize().value
        ctx.flags.add("in_future", valid & (days > today), _values(d, f"after now={now}"))
    else:
        ctx.skipped["in_future"] = "no now given"
    if trading_days is not None:
        cal = pd.DatetimeIndex(trading_days).astype("datetime64[ns]")
        off = valid & ~pd.Index(d).isin(cal)
        ctx.flags.add("non_trading_day", off, _values(d, "not a trading day"))
    elif ctx.kind == "bars":
        ctx.skipped["non_trading_day"] = "no trading_days given"


def _positive_price(ctx: _Ctx, cols: Iterable[str], nullable: Iterable[str] = ()) -> None:
    nullable = set(nullable)
    for col in cols:
        x = ctx.arr(col)
        with np.errstate(invalid="ignore"):
            mask = (x <= 0) if col in nullable else ~(x > 0)
        mask &= ~ctx.unparsed[col]
        ctx.flags.add("bad_price", mask, _values(ctx.p[col], "NaN or <= 0"))


def _negative(ctx: _Ctx, cols: Iterable[str]) -> None:
    for col in cols:
        with np.errstate(invalid="ignore"):
            mask = ctx.arr(col) < 0
        ctx.flags.add("negative_volume", mask, _values(ctx.p[col], "negative"))


def _duplicates(ctx: _Ctx, key: list[str], what: str, full: bool = False) -> None:
    """Later repeats of a key (and, if `full`, of a whole row) are duplicates; the first stays."""

    def col(c: str) -> np.ndarray:  # hashable numpy (datetimes as int64: no Timestamp objects)
        if c == "symbol":
            return ctx.codes
        s = ctx.p[c]
        return (
            _ns(s)
            if s.dtype.kind == "M" or isinstance(s.dtype, pd.DatetimeTZDtype)
            else s.to_numpy()
        )

    # rows of each symbol strictly later than the previous one cannot repeat a key
    by_time = len(key) == 2 and key[0] == "symbol" and key[1] in ("ts", "date")
    if by_time and strictly_increasing_per_symbol(ctx.codes, col(key[1]), len(ctx.uniques)):
        ctx.flags.passed("duplicate")
        return
    frame = pd.DataFrame({c: col(c) for c in key})
    mask = frame.duplicated(keep="first").to_numpy()
    if full:
        # identical rows share the key, so compare whole rows only among key collisions
        cand = frame.duplicated(keep=False).to_numpy()
        if cand.any():
            sub = pd.DataFrame({c: col(c)[cand] for c in ctx.p})
            full_dup = np.zeros(len(mask), bool)
            full_dup[np.flatnonzero(cand)] = sub.duplicated(keep="first").to_numpy()
            ctx.flags.add("duplicate", full_dup & ~mask, "identical to an earlier row")
    ctx.flags.add("duplicate", mask, f"same {what} as an earlier row")


def _day_limits(
    ctx: _Ctx,
    bars: pd.DataFrame | None,
    trading_date: pd.Timestamp | None,
    listings: pd.Series | None,
    calendar: pd.DatetimeIndex | None,
) -> tuple[np.ndarray, np.ndarray] | None:
    """Per-symbol (`ctx.uniques`) limit-up/limit-down prices from the day's bars (preclose,
    board, is_st; NaN without a bar), with the rules for the first days after listing
    (`rules.listing_limits`) when `listings` (symbol -> list_date) and a `calendar` of trading
    days reaching back over them are given."""
    if ctx.market != "CN":
        ctx.skipped["outside_price_limit"] = f"market {ctx.market}: no daily price limits"
        return None
    if bars is None:
        ctx.skipped["outside_price_limit"] = "no bars_for_limits given: price limits not checked"
        return None
    b = bars
    if "date" in b.columns and trading_date is not None:
        b = b[pd.to_datetime(b["date"]) == trading_date]
    b = b.drop_duplicates("symbol", keep="last").set_index("symbol")
    pos = b.index.get_indexer(ctx.uniques)
    have = pos >= 0
    pre = np.where(have, b["preclose"].to_numpy(dtype=float)[np.maximum(pos, 0)], np.nan)
    st = np.where(have, b["is_st"].to_numpy(dtype=bool)[np.maximum(pos, 0)], False)
    board = pd.Series([rules.board_of(str(s)) for s in ctx.uniques], dtype=object)
    pct = np.asarray(rules.limit_pct(board, pd.Series(st)), dtype=float)
    up_u, down_u = (np.asarray(v, dtype=float) for v in rules.price_limits(pre, pct))
    cal = None
    if calendar is not None and trading_date is not None:
        cal = pd.DatetimeIndex(calendar).normalize()
        cal = cal[cal <= trading_date]
    if listings is not None and cal is not None and len(cal) >= rules.NO_LIMIT_DAYS:
        _listing_limits(ctx, up_u, down_u, pre, board, listings, cal)
    else:
        ctx.notes.append(
            "outside_price_limit: no listing dates, or fewer than "
            f"{rules.NO_LIMIT_DAYS} trading days of calendar, given: new listings get usual limits"
        )
    if (~have).any():
        missing = [str(s) for s in ctx.uniques[~have]]
        ctx.notes.append(f"outside_price_limit: no bar for {len(missing)} symbols {missing[:5]}")
    return up_u, down_u


def _per_row(codes: np.ndarray, per_symbol: np.ndarray) -> np.ndarray:
    """A per-symbol value for each row (NaN for a row without a symbol: code -1 picks the
    appended NaN)."""
    return np.append(per_symbol, np.nan)[codes]


def _listing_limits(
    ctx: _Ctx,
    up: np.ndarray,
    down: np.ndarray,
    pre: np.ndarray,
    board: pd.Series,
    listings: pd.Series,
    cal: pd.DatetimeIndex,
) -> None:
    """Overwrite the per-symbol limits of shares in their first trading days (in place); `cal`
    is the trading days up to the file's day."""
    listed = pd.to_datetime(listings.reindex(ctx.uniques).to_numpy()).normalize()
    # the listing day is day 1: trading days from the listing date up to `day`, both included
    listed_day = len(cal) - cal.searchsorted(listed, side="left")
    relaxed = []
    for i, (b, when, n) in enumerate(zip(board, listed, listed_day, strict=True)):
        if pd.isna(when) or when < cal[0]:
            continue  # listed before the calendar window: long past its first days
        frac = rules.listing_limits(b, when, int(n))
        if frac is None:
            continue
        up_frac, down_frac = frac
        up[i] = np.inf if np.isinf(up_frac) else rules.round_price(pre[i] * (1 + up_frac))
        down[i] = -np.inf if np.isinf(down_frac) else rules.round_price(pre[i] * (1 - down_frac))
        relaxed.append(str(ctx.uniques[i]))
    if relaxed:
        ctx.notes.append(
            f"outside_price_limit: {len(relaxed)} new listings under listing-day limits "
            f"{relaxed[:5]}"
        )


def _limit_rule(ctx: _Ctx, cols: list[str], limits: tuple[np.ndarray, np.ndarray]) -> None:
    up, down = limits
    for col in cols:
        x = ctx.arr(col)
        with np.errstate(invalid="ignore"):
            mask = (x > up + rules.PRICE_EPS) | (x < down - rules.PRICE_EPS)
        if mask.any():
            ctx.flags.add(
                "outside_price_limit",
                mask,
                lambda idx, x=x, col=col: [
                    f"{col}={x[i]} outside [{down[i]}, {up[i]}]" for i in idx
                ],
            )
        else:
            ctx.flags.add("outside_price_limit", mask, "")


def _bars_rules(ctx: _Ctx) -> None:
    o, h, lo, c, pre = (ctx.arr(k) for k in ("open", "high", "low", "close", "preclose"))
    _positive_price(ctx, ["open", "high", "low", "close", "preclose"], nullable=["preclose"])
    _negative(ctx, ["volume", "amount"])
    with np.errstate(invalid="ignore"):
        mask = (h < np.fmax(o, c)) | (lo > np.fmin(o, c)) | (h < lo)
    ctx.flags.add(
        "ohlc_inconsistent",
        mask,
        lambda idx: [f"open={o[i]} high={h[i]} low={lo[i]} close={c[i]}" for i in idx],
    )
    # Suspended days keep a row: no volume and every price equal to preclose (columns.py).
    susp = ctx.p["is_suspended"].to_numpy(dtype=float, na_value=np.nan) == 1
    vol = ctx.arr("volume")
    with np.errstate(invalid="ignore"):
        moved = (vol != 0) | (~np.isnan(pre) & ((o != pre) | (h != pre) | (lo != pre) | (c != pre)))
    ctx.flags.add(
        "suspended_inconsistent",
        susp & moved,
        lambda idx: [
            f"suspended with volume={vol[i]} open={o[i]} close={c[i]} preclose={pre[i]}"
            for i in idx
        ],
    )


def _book_rules(ctx: _Ctx) -> None:
    for px_cols, sz_cols in ((_BID_PX, _BID_SZ), (_ASK_PX, _ASK_SZ)):
        for px_col, sz_col in zip(px_cols, sz_cols, strict=False):
            px, sz = ctx.arr(px_col), ctx.arr(sz_col)
            with np.errstate(invalid="ignore"):
                empty_px = np.isnan(px) & ~ctx.unparsed[px_col]
                mask = (px <= 0) | (empty_px & (sz != 0)) | (~np.isnan(px) & (sz == 0))
            ctx.flags.add(
                "bad_price",
                mask,
                lambda idx, px=px, sz=sz, c=px_col: [f"{c}={px[i]} with size {sz[i]}" for i in idx],
            )
    _negative(ctx, _BID_SZ + _ASK_SZ)
    b1, a1 = ctx.arr("bid_px_1"), ctx.arr("ask_px_1")
    with np.errstate(invalid="ignore"):
        crossed = b1 >= a1  # NaN (an empty side) compares False
    ctx.flags.add(
        "crossed_book", crossed, lambda idx: [f"bid_px_1={b1[i]} >= ask_px_1={a1[i]}" for i in idx]
    )
    # Empty levels (NaN) are skipped: each present level must beat the best of the levels
    # above it, i.e. bids strictly below the running minimum, asks strictly above the maximum.
    for cols, better, worse_or_equal in (
        (_BID_PX, np.fmin, np.greater_equal),
        (_ASK_PX, np.fmax, np.less_equal),
    ):
        run = ctx.arr(cols[0])
        bad = np.zeros(len(run), bool)
        for col in cols[1:]:
            x = ctx.arr(col)
            with np.errstate(invalid="ignore"):
                bad |= worse_or_equal(x, run)
            run = better(run, x)
        side = "bids" if cols is _BID_PX else "asks"
        ctx.flags.add("non_monotone_levels", bad, f"{side} not strictly ordered")


def _trades_rules(ctx: _Ctx) -> None:
    _positive_price(ctx, ["price"])
    _negative(ctx, ["volume"])
    side, trade_id = ctx.arr("side"), ctx.arr("trade_id")
    ctx.flags.add(
        "bad_value",
        ~np.isnan(side) & ~np.isin(side, (-1, 0, 1)),
        _values(ctx.p["side"], "side not in -1/0/1"),
    )
    with np.errstate(invalid="ignore"):
        ctx.flags.add("bad_value", trade_id < 0, _values(ctx.p["trade_id"], "negative trade_id"))


def _news_rules(ctx: _Ctx) -> None:
    title = ctx.p["title"]
    blank = (title.isna() | (title.astype(object).str.strip() == "")).to_numpy(dtype=bool)
    ctx.flags.add("empty_title", blank & ~ctx.unparsed["title"], "title is empty")
    for col in _NEWS_TEXT:
        mask = text_problems(ctx.p[col]) & ~ctx.unparsed[col]
        ctx.flags.add("undecodable_text", mask, _values(ctx.p[col], "undecodable text"))
    s = ctx.arr("sentiment")
    with np.errstate(invalid="ignore"):
        ctx.flags.add(
            "bad_value", (s < -1) | (s > 1), _values(ctx.p["sentiment"], "not in [-1, 1]")
        )


def _actions_rules(ctx: _Ctx) -> None:
    cash, bonus, split = ctx.arr("cash_dividend"), ctx.arr("bonus_ratio"), ctx.arr("split_ratio")
    with np.errstate(invalid="ignore"):
        mask = (cash < 0) | (bonus < 0) | (split <= 0)
    ctx.flags.add(
        "bad_value",
        mask,
        lambda idx: [
            f"cash_dividend={cash[i]} bonus_ratio={bonus[i]} split_ratio={split[i]}" for i in idx
        ],
    )
    ex, ann = ctx.p["ex_date"], ctx.p["announce_date"]
    ctx.flags.add(
        "ex_before_announce",
        (ex < ann).to_numpy(dtype=bool),
        lambda idx: [
            f"ex_date {ex.iloc[i].date()} < announce_date {ann.iloc[i].date()}" for i in idx
        ],
    )


def _universe_rules(ctx: _Ctx) -> None:
    board = ctx.p["board"].astype(object)
    expected = (
        ctx.p["symbol"]
        .astype(object)
        .map(lambda s: rules.board_of(s) if isinstance(s, str) else None)
    )
    mask = board.notna() & (~board.isin(rules.BOARDS) | (board != expected))
    ctx.flags.add(
        "bad_value",
        mask.to_numpy(dtype=bool),
        lambda idx: [f"board={board.iloc[i]!r}, code says {expected.iloc[i]!r}" for i in idx],
    )


# ---------------------------------------------------------------------------------------------
# assembling the result


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


def _empty_quarantine() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "row_number": pd.Series([], dtype="int64"),
            "symbol": pd.Series([], dtype="str"),
            "rule": pd.Series([], dtype="str"),
            "detail": pd.Series([], dtype="str"),
            "row_json": pd.Series([], dtype="str"),
            "source_file": pd.Series([], dtype="str"),
            "kind": pd.Series([], dtype="str"),
            "trading_date": pd.Series([], dtype="datetime64[ns]"),
        }
    )


def _final_dtypes(clean: pd.DataFrame, types: dict[str, tuple[str, bool]]) -> pd.DataFrame:
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


def _timestamp(x: object, tz: bool) -> pd.Timestamp | None:
    if x is None:
        return None
    t = pd.Timestamp(x)
    if tz:
        return t.tz_localize(rules.TZ) if t.tzinfo is None else t.tz_convert(rules.TZ)
    return (t.tz_localize(None) if t.tzinfo is not None else t).normalize().as_unit("ns")


@on_normal_pages  # its temporaries are written once and freed
def validate(
    kind: str,
    df: pd.DataFrame,
    *,
    known_symbols: Iterable[str] | None,
    trading_date: object | None,
    now: object | None = None,
    source_file: str | None = None,
    bars_for_limits: pd.DataFrame | None = None,
    trading_days: Iterable[object] | None = None,
    listings: pd.Series | None = None,
    market: str = "CN",
) -> ValidationResult:
    """Split a raw frame of `kind` into clean rows and quarantine rows (see `RULES`).

    `trading_date` is the day the file is for (None for multi-day histories: that rule is
    skipped); `now` (naive = Shanghai time) bounds timestamps; `bars_for_limits` (BARS of the
    day) enables the price-limit rule for trades and order books; `trading_days` enables the
    calendar rule for bars and, with `listings` (symbol -> list_date) and at least the last
    five trading days, the limits of the first days after listing; `market` other than "CN"
    skips A-share sessions and limits. Rules that could not run are listed in `.skipped` with
    the reason. `clean` keeps the input row positions as its index so that a row can be traced
    back to its file.
    """
    if kind not in CONTRACT:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    src = source_file or "<frame>"
    cols = CONTRACT[kind]
    if df.columns.duplicated().any():
        raise IngestError(
            src, f"duplicate column names {list(df.columns[df.columns.duplicated()])}"
        )
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise IngestError(src, f"missing columns {missing} for {kind}")
    df = df.reset_index(drop=True)  # positions are the row numbers (lazy copy under CoW)
    td = _timestamp(trading_date, tz=False)
    now_ts = _timestamp(now, tz=True)
    n = len(df)
    flags, skipped, notes = _Flags(n), {}, []
    extra = [c for c in df.columns if c not in cols]
    if extra:
        notes.append(f"columns not in the contract, ignored: {extra}")

    types = column_types(kind)
    parsed: dict[str, pd.Series] = {}
    unparsed: dict[str, np.ndarray] = {}
    as_given = True  # every column already had its dtype (df[col] is a new Series each time)
    for col in cols:
        family, nullable = types[col]
        given = df[col]
        out, bad = parse_column(given, family)
        parsed[col], unparsed[col] = out, bad
        as_given &= out is given
        rule = "undecodable_text" if kind == "news" and col in _NEWS_TEXT else "wrong_type"
        flags.add(rule, bad, _values(given, f"not a {family}"))
        exempt = col in _PRICE_COLS.get(kind, []) or (kind == "news" and col == "title")
        if not nullable and not exempt:
            flags.add("missing_value", out.isna().to_numpy() & ~bad, f"{col} is empty")

    codes, uniques = pd.factorize(parsed["symbol"])
    ctx = _Ctx(
        kind,
        df,
        parsed,
        unparsed,
        flags,
        skipped,
        notes,
        np.asarray(codes),
        pd.Index(uniques),
        market,
    )
    _symbol_rules(ctx, known_symbols)
    cal = None if trading_days is None else pd.DatetimeIndex(list(trading_days))

    if kind == "bars":
        _bars_rules(ctx)
        _date_rules(ctx, "date", td, now_ts, cal, same_day=True)
        _duplicates(ctx, ["symbol", "date"], "symbol and date")
        _out_of_order(ctx, _ns(parsed["date"]), parsed["date"].notna().to_numpy(), "date")
    elif kind == "trades":
        _trades_rules(ctx)
        _time_rules(ctx, td, now_ts, sessions=True, order=True)
        _duplicates(ctx, ["symbol", "trade_id"], "symbol and trade_id", full=True)
        limits = _day_limits(ctx, bars_for_limits, td, listings, cal)
        if limits is not None:
            _limit_rule(ctx, ["price"], tuple(_per_row(ctx.codes, x) for x in limits))
    elif kind == "order_book":
        # The book and limit rules run on the rows a one-pass screen picks (screen_kernels).
        limits = _day_limits(ctx, bars_for_limits, td, listings, cal)
        suspects = np.flatnonzero(
            book_suspects(
                *([ctx.native(c) for c in cs] for cs in _BOOK_COLS),
                None if limits is None else (ctx.codes, *limits),
            )
        )
        screened = ctx.subset(suspects)
        _book_rules(screened)
        _time_rules(ctx, td, now_ts, sessions=True, order=True)
        _duplicates(ctx, ["symbol", "ts"], "symbol and ts", full=True)
        if limits is not None:
            per_row = tuple(_per_row(screened.codes, x) for x in limits)
            _limit_rule(screened, _BID_PX + _ASK_PX, per_row)
    elif kind == "news":
        _news_rules(ctx)
        _time_rules(ctx, td, now_ts, sessions=False, order=False)
        _duplicates(ctx, ["news_id"], "news_id")
    elif kind == "corporate_actions":
        _actions_rules(ctx)
        _date_rules(ctx, "announce_date", td, now_ts, None, same_day=False)
        _duplicates(ctx, ["action_id"], "action_id")
    else:  # universe
        _universe_rules(ctx)
        _duplicates(ctx, ["symbol"], "symbol")

    q = flags.frame()
    bad_rows = np.unique(q["row_number"].to_numpy())
    if len(q):
        json_by_row = dict(zip(bad_rows.tolist(), _rows_json(df.iloc[bad_rows]), strict=False))
        sym = parsed["symbol"].iloc[q["row_number"].to_numpy()].astype(object).to_numpy()
        q = pd.DataFrame(
            {
                "row_number": q["row_number"].astype("int64"),
                "symbol": pd.Series(sym, dtype=object)
                .where(pd.Series(sym, dtype=object).map(lambda v: isinstance(v, str)), None)
                .astype("str"),
                "rule": q["rule"].astype("str"),
                "detail": q["detail"].astype("str"),
                "row_json": q["row_number"].map(json_by_row).astype("str"),
                "source_file": src,
                "kind": kind,
                "trading_date": pd.Series([td] * len(q), dtype="datetime64[ns]"),
            }
        )
    else:
        q = _empty_quarantine()

    keep = np.ones(n, bool)
    keep[bad_rows] = False
    if keep.all() and as_given:
        clean = df[cols]  # nothing parsed, nothing dropped: no copy (copy-on-write)
    elif keep.all():
        clean = pd.DataFrame(parsed)
    else:  # column by column: much faster than a row take on the consolidated 2-D blocks
        clean = pd.DataFrame({c: s.array[keep] for c, s in parsed.items()}, copy=False)
    clean = _final_dtypes(clean, types)
    clean.index = pd.Index(np.flatnonzero(keep), dtype="int64")
    dtype_schema(kind).validate(clean, inplace=True)  # checks only (no coercion): no copy
    return ValidationResult(kind, clean, q, flags.counts(), n, skipped, notes)
