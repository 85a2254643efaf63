"""Row rules that several kinds share: known symbols, positive prices, non-negative volumes and
duplicate keys or rows."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from quant_assets.market.validation.flags import Ctx, value_detail
from quant_assets.market.validation.rules_time import ns
from quant_assets.market.validation.screen_kernels import strictly_increasing_per_symbol


def symbol_rules(ctx: Ctx, known_symbols: Iterable[str] | None) -> None:
    """Flag symbols outside `known_symbols` (skipped, and said so, when None)."""
    if known_symbols is None:
        ctx.skipped["unknown_symbol"] = "no known_symbols given"
        return
    known_u = np.asarray(ctx.uniques.isin(pd.Index(list(known_symbols))), dtype=bool)
    # code -1 (no symbol) picks the appended True: a missing symbol is missing_value's row
    mask = ~np.append(known_u, True)[ctx.codes]
    ctx.flags.add("unknown_symbol", mask, value_detail(ctx.p["symbol"], "not in the universe"))


def positive_price(ctx: Ctx, cols: Iterable[str], nullable: Iterable[str] = ()) -> None:
    """Prices must be > 0; NaN too is a bad price unless the column is `nullable`."""
    nullable = set(nullable)
    for col in cols:
        x = ctx.arr(col)
        with np.errstate(invalid="ignore"):
            mask = (x <= 0) if col in nullable else ~(x > 0)
        mask &= ~ctx.unparsed[col]
        ctx.flags.add("bad_price", mask, value_detail(ctx.p[col], "NaN or <= 0"))


def negative(ctx: Ctx, cols: Iterable[str]) -> None:
    """Volumes, sizes and amounts must not be below zero."""
    for col in cols:
        with np.errstate(invalid="ignore"):
            mask = ctx.arr(col) < 0
        ctx.flags.add("negative_volume", mask, value_detail(ctx.p[col], "negative"))


def duplicates(ctx: Ctx, key: list[str], what: str, full: bool = False) -> None:
    """Later repeats of a key (and, if `full`, of a whole row) are duplicates; the first stays."""

    def col(c: str) -> np.ndarray:  # hashable numpy (datetimes as int64: no Timestamp objects)
        if c == "symbol":
            return ctx.codes
        s = ctx.p[c]
        return (
            ns(s)
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
