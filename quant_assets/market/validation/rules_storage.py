"""Rules on what the stored table can hold: `out_of_range` and `precision_lost`.

A clean row goes into its raw table; a value the column's ClickHouse type cannot hold would
fail the whole day's insert without naming the row (a 5e9-share trade in a UInt32 `volume`), or
be changed on the way in (a sub-millisecond time truncated by DateTime64(3), which can make two
distinct (symbol, ts) keys one). The limits come from the table specs' type strings
(`storage_types.storable`) and the frame's own dtypes (int64 for integers), never per column
by hand. Values the contract's domain rules already reject (a negative volume: the schema's
`ge=0`, reported as negative_volume) are left to those rules, so a row is not reported twice
for one value.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd

from quant_assets.market.contract.schemas import CONTRACT, SCHEMAS, column_types
from quant_assets.market.contract.tables import RAW_TABLES, UNIVERSE
from quant_assets.market.rules import DAY_NS, NAT_NS
from quant_assets.market.validation.flags import Ctx, value_detail
from quant_assets.market.validation.rules_time import ns
from quant_assets.market.validation.storage_types import Storable, storable

# The table each kind's clean rows are stored in.
STORED_TABLES = {**RAW_TABLES, "universe": UNIVERSE}

_I64 = np.iinfo(np.int64)
_EPS = float(np.finfo(np.float64).eps)
# The grid the parsed frame already holds a family's values on (0: any float): a column type
# whose step is coarser than this can lose precision.
_RESOLUTION = {"ts": 1, "date": DAY_NS, "int": 1, "float": 0}
_LOWER_CHECKS = ("greater_than", "greater_than_or_equal_to", "in_range", "isin")
_UPPER_CHECKS = ("less_than", "less_than_or_equal_to", "in_range", "isin")


@dataclass(frozen=True)
class ColumnCheck:
    """What the storage rules test on one column: values below `low` or above `high` are
    out_of_range (None: nothing to test on that side), values off a grid of `step` are
    precision_lost (None: no test)."""

    column: str
    family: str  # the contract's dtype family (ts, date, int, float, ...)
    stored: Storable
    low: int | float | None
    high: int | float | None
    step: int | float | None


def _domain(kind: str, col: str) -> tuple[float | None, float | None]:
    """The bounds the contract's schema puts on a numeric column (ge/gt/le/lt/isin), which its
    row rules enforce; None where it sets none."""
    column = SCHEMAS[kind].to_schema().columns[col]
    lows, highs = [], []
    for check in column.checks:
        stats = check.statistics or {}
        values = stats.get("allowed_values")
        numeric = values is not None and all(isinstance(v, (int, float)) for v in values)
        if check.name in _LOWER_CHECKS:
            lows.append(min(values) if numeric else stats.get("min_value"))
        if check.name in _UPPER_CHECKS:
            highs.append(max(values) if numeric else stats.get("max_value"))
    lows = [v for v in lows if isinstance(v, (int, float))]
    highs = [v for v in highs if isinstance(v, (int, float))]
    return (max(lows) if lows else None), (min(highs) if highs else None)


@cache
def column_checks(kind: str) -> dict[str, ColumnCheck]:
    """The storage checks of a kind's contract columns that can find anything, by column."""
    table = STORED_TABLES.get(kind)
    if table is None:
        return {}
    types = column_types(kind)
    out = {}
    for col in CONTRACT[kind]:
        if col not in table.columns:
            continue
        stored, family = storable(table.columns[col]), types[col][0]
        low, high = stored.low, stored.high
        if family == "int":  # the frame holds int64 whatever the column's type
            low = _I64.min if low is None else max(low, int(_I64.min))
            high = _I64.max if high is None else min(high, int(_I64.max))
        dom_low, dom_high = _domain(kind, col) if family in ("int", "float") else (None, None)
        if low is not None and dom_low is not None and dom_low >= low:
            low = None  # below `low` is below the domain: the domain's rule reports it
        if high is not None and dom_high is not None and dom_high <= high:
            high = None
        step = stored.step
        if step is not None and not (family in _RESOLUTION and step > _RESOLUTION[family]):
            step = None
        if low is not None or high is not None or step is not None:
            out[col] = ColumnCheck(col, family, stored, low, high, step)
    return out


def storage_rule_names(kind: str) -> set[str]:
    """The storage rules that apply to a kind (those that can find anything in its columns)."""
    checks = column_checks(kind).values()
    names = set()
    if any(c.low is not None or c.high is not None for c in checks):
        names.add("out_of_range")
    if any(c.step is not None for c in checks):
        names.add("precision_lost")
    return names


def highest_storable(kind: str, cols: Iterable[str]) -> float:
    """The lowest upper bound the range rule tests on `cols` (inf for none): one number for a
    screen that picks the rows that may break it."""
    checks = column_checks(kind)
    highs = [checks[c].high for c in cols if c in checks and checks[c].high is not None]
    return float(min(highs)) if highs else np.inf


def _as_float_bound(bound: int | float, side: str) -> float:
    """The float nearest to an integer bound on its inner side, so float comparisons are exact."""
    f = float(bound)
    if side == "high" and f > bound:
        return float(np.nextafter(f, -np.inf))
    if side == "low" and f < bound:
        return float(np.nextafter(f, np.inf))
    return f


def _show(check: ColumnCheck, bound: int | float | None) -> str:
    if bound is None:
        return "..."
    if check.family in ("ts", "date"):
        return str(pd.Timestamp(int(bound), unit="ns"))
    return str(bound)


def unstorable(x: np.ndarray, check: ColumnCheck) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the values of `x` (int64, ns for times, or float64 with NaN) that break
    `check`: (out of range, precision lost). Missing values (NaN, NaT) break neither."""
    floats = x.dtype.kind == "f"
    valid = ~np.isnan(x) if floats else (x != NAT_NS if check.family in ("ts", "date") else None)
    out = np.zeros(len(x), bool)
    with np.errstate(invalid="ignore"):
        if check.low is not None:
            out |= x < (_as_float_bound(check.low, "low") if floats else check.low)
        if check.high is not None:
            out |= x > (_as_float_bound(check.high, "high") if floats else check.high)
        if check.step is None:
            lost = np.zeros(len(x), bool)
        elif floats:  # a Decimal's scale: off its grid by more than float noise
            scaled = x / check.step
            lost = np.abs(scaled - np.rint(scaled)) > 1e-6 + np.abs(scaled) * 4 * _EPS
        else:
            lost = x % check.step != 0
    if valid is not None:
        out &= valid
        lost &= valid
    return out, lost


def storage_rules(ctx: Ctx, cols: Iterable[str] | None = None) -> None:
    """Flag values of `cols` (default: every checked column of the kind) that their table
    column cannot store (out_of_range) or would store rounded (precision_lost)."""
    checks = column_checks(ctx.kind)
    for col in checks if cols is None else [c for c in cols if c in checks]:
        check, s = checks[col], ctx.p[col]
        x = ns(s) if check.family in ("ts", "date") else ctx.native(col)
        out, lost = unstorable(x, check)
        name = check.stored.name
        if check.low is not None or check.high is not None:
            bounds = f"[{_show(check, check.low)}, {_show(check, check.high)}]"
            ctx.flags.add("out_of_range", out, value_detail(s, f"beyond {name} {bounds}"))
        if check.step is not None:
            ctx.flags.add("precision_lost", lost, value_detail(s, f"finer than {name} stores"))
