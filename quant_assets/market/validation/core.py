"""Row-level validation of raw market frames: split a frame into clean rows and quarantine rows.

Nothing is lost and nothing is fixed: every input row ends up either in `clean` (values as
given, only parsed to the contract's dtypes) or in `quarantine` (once per failed rule, with
the original row as JSON text). File-level problems (missing columns, unreadable files)
raise `IngestError` instead. The rules are vectorised numpy over columns because the
order-book frame has about 1.4 million rows a day; pandera (schemas.py) supplies the dtypes.
This module holds the entry point, `validate()`; the rules of each kind are in `rules_<kind>`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from quant_assets.calendar import TZ
from quant_assets.market.contract.schemas import CONTRACT, column_types, dtype_schema
from quant_assets.market.validation import (
    rules_actions,
    rules_bars,
    rules_book,
    rules_news,
    rules_trades,
    rules_universe,
)
from quant_assets.market.validation.flags import RULES, Ctx, DayInputs, Flags, value_detail
from quant_assets.market.validation.parsing import final_dtypes, parse_column
from quant_assets.market.validation.quarantine import quarantine_frame
from quant_assets.market.validation.rules_common import symbol_rules
from quant_assets.market.validation.rules_storage import storage_rule_names
from quant_assets.memory import on_normal_pages

__all__ = ["KINDS", "RULES", "IngestError", "ValidationResult", "rules_by_kind", "validate"]

KINDS = tuple(CONTRACT)


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


@dataclass(frozen=True)
class _KindRules:
    check: Callable[[Ctx, DayInputs], None]  # the kind's rules after the symbol rule
    applies: tuple[str, ...]  # the rules `check` applies besides the storage rules
    own_empty: tuple[str, ...] = ()  # required columns whose empty values a kind's rule reports
    text: tuple[str, ...] = ()  # columns where a value that is not text is undecodable_text


_BY_KIND: dict[str, _KindRules] = {
    "bars": _KindRules(rules_bars.check, rules_bars.APPLIES, own_empty=tuple(rules_bars.PRICES)),
    "trades": _KindRules(
        rules_trades.check, rules_trades.APPLIES, own_empty=tuple(rules_trades.PRICES)
    ),
    "order_book": _KindRules(rules_book.check, rules_book.APPLIES),
    "news": _KindRules(
        rules_news.check, rules_news.APPLIES, own_empty=("title",), text=rules_news.TEXT
    ),
    "corporate_actions": _KindRules(rules_actions.check, rules_actions.APPLIES),
    "universe": _KindRules(rules_universe.check, rules_universe.APPLIES),
}
assert set(_BY_KIND) == set(KINDS)


def rules_by_kind() -> dict[str, list[str]]:
    """Which rules each kind's rows are checked against, in `RULES` order: the parse rules its
    columns call for (wrong_type, undecodable_text for text columns, missing_value for required
    ones), unknown_symbol, the rules of its module (`APPLIES`) and the storage rules its
    table's column types call for. The README's rule table is rendered from this."""
    out = {}
    for kind in KINDS:
        by_kind = _BY_KIND[kind]
        types = column_types(kind)
        names = {"unknown_symbol", *by_kind.applies, *storage_rule_names(kind)}
        if any(c not in by_kind.text for c in CONTRACT[kind]):
            names.add("wrong_type")
        if by_kind.text:
            names.add("undecodable_text")
        if any(not types[c][1] and c not in by_kind.own_empty for c in CONTRACT[kind]):
            names.add("missing_value")
        out[kind] = [rule for rule in RULES if rule in names]
    return out


def _timestamp(x: object, tz: bool) -> pd.Timestamp | None:
    if x is None:
        return None
    t = pd.Timestamp(x)
    if tz:
        return t.tz_localize(TZ) if t.tzinfo is None else t.tz_convert(TZ)
    return (t.tz_localize(None) if t.tzinfo is not None else t).normalize().as_unit("ns")


def _check_columns(src: str, kind: str, df: pd.DataFrame) -> None:
    """Raise IngestError for duplicate column names or missing contract columns."""
    if df.columns.duplicated().any():
        raise IngestError(
            src, f"duplicate column names {list(df.columns[df.columns.duplicated()])}"
        )
    missing = [c for c in CONTRACT[kind] if c not in df.columns]
    if missing:
        raise IngestError(src, f"missing columns {missing} for {kind}")


def _parse(
    df: pd.DataFrame, kind: str, types: dict[str, tuple[str, bool]], flags: Flags
) -> tuple[dict[str, pd.Series], dict[str, np.ndarray], bool]:
    """Parse the contract's columns, flagging wrong types and missing values; returns (parsed,
    mask of unparsed values per column, whether every column already had its dtype)."""
    by_kind = _BY_KIND[kind]
    parsed: dict[str, pd.Series] = {}
    unparsed: dict[str, np.ndarray] = {}
    as_given = True  # every column already had its dtype (df[col] is a new Series each time)
    for col in CONTRACT[kind]:
        family, nullable = types[col]
        given = df[col]
        out, bad = parse_column(given, family)
        parsed[col], unparsed[col] = out, bad
        as_given &= out is given
        rule = "undecodable_text" if col in by_kind.text else "wrong_type"
        flags.add(rule, bad, value_detail(given, f"not a {family}"))
        if not nullable and col not in by_kind.own_empty:
            flags.add("missing_value", out.isna().to_numpy() & ~bad, f"{col} is empty")
    return parsed, unparsed, as_given


def _clean_rows(
    df: pd.DataFrame,
    kind: str,
    types: dict[str, tuple[str, bool]],
    parsed: dict[str, pd.Series],
    keep: np.ndarray,
    as_given: bool,
) -> pd.DataFrame:
    """The kept rows in the contract's dtypes, indexed by their input positions."""
    if keep.all() and as_given:
        clean = df[CONTRACT[kind]]  # nothing parsed, nothing dropped: no copy (copy-on-write)
    elif keep.all():
        clean = pd.DataFrame(parsed)
    else:  # column by column: much faster than a row take on the consolidated 2-D blocks
        clean = pd.DataFrame({c: s.array[keep] for c, s in parsed.items()}, copy=False)
    clean = final_dtypes(clean, types)
    clean.index = pd.Index(np.flatnonzero(keep), dtype="int64")
    dtype_schema(kind).validate(clean, inplace=True)  # checks only (no coercion): no copy
    return clean


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
    day) enables the price-limit rule for trades and order books (bars are checked against
    their own preclose); `trading_days` enables the calendar rule for bars and, with `listings`
    (symbol -> list_date) and at least the last five trading days, the limits of the first
    days after listing; `market` other than "CN" skips A-share sessions and limits.
    `rules_by_kind()` lists the rules each kind gets. Rules that could not run are listed in `.skipped` with
    the reason. `clean` keeps the input row positions as its index so that a row can be traced
    back to its file.
    """
    if kind not in CONTRACT:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    src = source_file or "<frame>"
    _check_columns(src, kind, df)
    df = df.reset_index(drop=True)  # positions are the row numbers (lazy copy under CoW)
    td = _timestamp(trading_date, tz=False)
    now_ts = _timestamp(now, tz=True)
    n = len(df)
    flags, skipped, notes = Flags(n), {}, []
    extra = [c for c in df.columns if c not in CONTRACT[kind]]
    if extra:
        notes.append(f"columns not in the contract, ignored: {extra}")

    types = column_types(kind)
    parsed, unparsed, as_given = _parse(df, kind, types, flags)
    codes, uniques = pd.factorize(parsed["symbol"])
    ctx = Ctx(
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
    symbol_rules(ctx, known_symbols)
    cal = None if trading_days is None else pd.DatetimeIndex(list(trading_days))
    _BY_KIND[kind].check(ctx, DayInputs(td, now_ts, cal, bars_for_limits, listings))

    hits = flags.frame()
    quarantine = quarantine_frame(
        hits, df, parsed["symbol"], source_file=src, kind=kind, trading_date=td
    )
    keep = np.ones(n, bool)
    keep[hits["row_number"].to_numpy()] = False
    clean = _clean_rows(df, kind, types, parsed, keep, as_given)
    return ValidationResult(kind, clean, quarantine, flags.counts(), n, skipped, notes)
