"""What a ClickHouse column type can store: its range of values and its precision.

`storable()` reads a type string as the table specs write it (`"UInt32 CODEC(T64)"`,
`"DateTime64(3, 'Asia/Shanghai') CODEC(DoubleDelta, LZ4)"`, `"Nullable(Decimal(18, 4))"`) so
that validation can quarantine, row by row, the values an insert would reject (an integer too
wide, a negative in an unsigned column) or change silently (a sub-millisecond time in a
DateTime64(3), a date past 2149 in a Date), instead of failing the whole insert or storing
something else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from quant_assets.market.rules import DAY_NS

_NS_PER_S = 1_000_000_000
_INT = re.compile(r"^(U?)Int(8|16|32|64|128|256)$")
_DECIMAL = re.compile(r"^Decimal(32|64|128|256)?\((.*)\)$")
_DECIMAL_DIGITS = {"32": 9, "64": 18, "128": 38, "256": 76}
_DATETIME64 = re.compile(r"^DateTime64\((\d+)(?:\s*,.*)?\)$")
_WRAPPERS = re.compile(r"^(?:Nullable|LowCardinality)\((.*)\)$")
FLOAT32_MAX = 3.4028234663852886e38


def _ns(day: str) -> int:
    return pd.Timestamp(day).value


# Ranges from the ClickHouse manual, as UTC; times past 2262 (the end of Date32 and DateTime64,
# 2299) do not fit pandas' nanoseconds, so those types have no upper bound here.
_TEMPORAL = {
    "Date": (_ns("1970-01-01"), _ns("2149-06-06"), DAY_NS),
    "Date32": (_ns("1900-01-01"), None, DAY_NS),
    "DateTime": (0, (2**32 - 1) * _NS_PER_S, _NS_PER_S),
}
_DATETIME64_LOW = _ns("1900-01-01")


@dataclass(frozen=True)
class Storable:
    """Values a column type holds: within [low, high] (None: no bound on that side) and on a
    grid of `step` (None: any value of the frame's dtype). Temporal types (`temporal`) give
    bounds and step in nanoseconds since 1970 UTC; Decimal gives its step as 10**-scale."""

    name: str  # the base type, without codec or wrappers
    low: int | float | None = None
    high: int | float | None = None
    step: int | float | None = None
    temporal: bool = False

    @property
    def bounded(self) -> bool:
        return self.low is not None or self.high is not None


def base_type(ch_type: str) -> str:
    """The value type of a column definition: without CODEC/DEFAULT clauses (the text after the
    first space outside parentheses) and without Nullable(...) or LowCardinality(...)."""
    depth, end = 0, len(ch_type)
    for i, ch in enumerate(ch_type):
        depth += (ch == "(") - (ch == ")")
        if ch.isspace() and depth == 0:
            end = i
            break
    t = ch_type[:end].strip()
    while m := _WRAPPERS.match(t):
        t = m.group(1).strip()
    return t


def storable(ch_type: str) -> Storable:
    """The range and precision of a ClickHouse column type (see `Storable`); types without a
    limit a frame's values can reach (String, Bool, Float64, ...) have none."""
    t = base_type(ch_type)
    if m := _INT.match(t):
        bits = int(m.group(2))
        if m.group(1):  # unsigned
            return Storable(t, 0, 2**bits - 1)
        return Storable(t, -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    if t == "Float32":
        return Storable(t, -FLOAT32_MAX, FLOAT32_MAX)
    if m := _DECIMAL.match(t):
        args = [int(a) for a in m.group(2).split(",")]
        precision, scale = (_DECIMAL_DIGITS[m.group(1)], args[0]) if m.group(1) else args
        top = 10 ** (precision - scale) - 10.0**-scale  # the largest value with `scale` digits
        return Storable(t, -top, top, 10.0**-scale)
    if t in _TEMPORAL:
        low, high, step = _TEMPORAL[t]
        return Storable(t, low, high, step, temporal=True)
    if m := _DATETIME64.match(t):
        digits = int(m.group(1))
        return Storable(t, _DATETIME64_LOW, None, 10 ** max(9 - digits, 0), temporal=True)
    return Storable(t)
