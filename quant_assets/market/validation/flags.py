"""What the row rules read and where they write: the rule names (`RULES`), the per-rule hits
(`Flags`), the parsed frame with its symbol codes (`Ctx`) and the day's reference data
(`DayInputs`). Every rule module works on these, so they live apart from the rules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

# What each rule means; the keys are the values of the quarantine's `rule` column.
RULES: dict[str, str] = {
    "wrong_type": "a value that cannot be parsed to the column's dtype",
    "missing_value": "a required value is empty",
    "unknown_symbol": "symbol not in the known universe",
    "bad_price": "price NaN or <= 0 (order book: a level with a price but no size or vice versa)",
    "negative_volume": "volume, size or amount below zero",
    "bad_value": "a value outside its domain (side, trade id, sentiment, ratios, board)",
    "ohlc_inconsistent": "high below max(open, close) or low above min(open, close)",
    "suspended_inconsistent": "suspended bar with volume or with prices other than preclose",
    "crossed_book": "best bid >= best ask (crossed or locked book)",
    "non_monotone_levels": "bids not strictly decreasing or asks not strictly increasing",
    "duplicate": "a repeat of an earlier row (same key or identical values)",
    "out_of_order": "a row breaking its symbol's time order (the fewest rows whose removal "
    "leaves the others in order)",
    "outside_session": "timestamp outside the trading sessions and auction prints",
    "in_future": "timestamp or date after `now`",
    "not_on_trading_date": "timestamp or date not on the file's trading date (news and "
    "announcements: after it)",
    "non_trading_day": "date not in the trading calendar",
    "outside_price_limit": "price beyond the day's limit-up/limit-down prices",
    "ex_before_announce": "corporate action whose ex-date precedes its announcement",
    "empty_title": "news item without a title",
    "undecodable_text": "text with U+FFFD, invalid bytes or mojibake",
    "out_of_range": "a value its table column cannot store (too wide for the type, before 1970 "
    "in a Date, ...)",
    "precision_lost": "a value finer than its table column stores (sub-millisecond time in "
    "DateTime64(3), ...)",
}

# A hit's detail: one text for every flagged row, or a function of the flagged positions.
Detail = str | Callable[[np.ndarray], Iterable[str]]


class Flags:
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

    def view(self, rows: np.ndarray) -> Flags:
        """Flags for the subset `rows`: masks and detail indices are relative to the subset,
        hits land here under their row numbers."""
        sub = Flags(len(rows), rows if self.rows is None else self.rows[rows])
        sub.hits, sub.evaluated = self.hits, self.evaluated
        return sub

    def frame(self) -> pd.DataFrame:
        """One row per (row_number, rule) hit with its detail, sorted by row number."""
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
        """Distinct rows hit per rule that ran (0 for a rule that ran and found nothing)."""
        out = {rule: 0 for rule in RULES if rule in self.evaluated}
        for rule, hits in self.hits.items():
            out[rule] = int(len(np.unique(np.concatenate([h[0] for h in hits]))))
        return out


def _show(v: object) -> str:
    return str(v) if isinstance(v, (pd.Timestamp, float, int)) else repr(v)


def value_detail(s: pd.Series, what: str) -> Callable[[np.ndarray], list[str]]:
    """Detail text naming the offending value of one column."""
    return lambda idx: [f"{what}: {s.name}={_show(v)}" for v in s.iloc[idx].tolist()]


@dataclass
class Ctx:
    """The parsed frame as the rules see it; `subset` gives the same view of some rows."""

    kind: str
    raw: pd.DataFrame
    p: dict[str, pd.Series]  # parsed columns
    unparsed: dict[str, np.ndarray]
    flags: Flags
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

    def subset(self, rows: np.ndarray) -> Ctx:
        """The same rules' view of the rows `rows` only (flags map back to the full frame)."""
        return Ctx(
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


@dataclass(frozen=True)
class DayInputs:
    """The reference data `validate()` was given besides the frame; None where not given."""

    trading_date: pd.Timestamp | None  # the file's day, tz-naive midnight
    now: pd.Timestamp | None  # tz-aware, exchange time
    calendar: pd.DatetimeIndex | None  # trading days
    bars: pd.DataFrame | None  # BARS of the day, for the price limits
    listings: pd.Series | None  # symbol -> list_date
