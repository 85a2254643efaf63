"""Row rules of 10-level order-book snapshots: levels (price with size), crossed books and
level order, then the time, duplicate, price-limit and storage rules.

A day is about 1.4 million snapshots, almost all good: the level, limit and size-range rules
run only on the rows that a one-pass numba screen (`screen_kernels.book_suspects`) picks out,
with the same results as on the whole frame.
"""

from __future__ import annotations

import numpy as np

from quant_assets.market.contract.columns import ASK_PX, ASK_SZ, BID_PX, BID_SZ
from quant_assets.market.validation.flags import Ctx, DayInputs
from quant_assets.market.validation.rules_common import duplicates, negative
from quant_assets.market.validation.rules_limits import day_limits, limit_rule, per_row
from quant_assets.market.validation.rules_storage import highest_storable, storage_rules
from quant_assets.market.validation.rules_time import time_rules
from quant_assets.market.validation.screen_kernels import book_suspects

SIZES = BID_SZ + ASK_SZ


# The rules `check` applies besides the parse, symbol and storage rules every kind gets
# (core.rules_by_kind, the README's table).
APPLIES = (
    "bad_price",
    "negative_volume",
    "crossed_book",
    "non_monotone_levels",
    "outside_session",
    "not_on_trading_date",
    "in_future",
    "out_of_order",
    "duplicate",
    "outside_price_limit",
)


def _book_rules(ctx: Ctx) -> None:
    for px_cols, sz_cols in ((BID_PX, BID_SZ), (ASK_PX, ASK_SZ)):
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
    negative(ctx, BID_SZ + ASK_SZ)
    b1, a1 = ctx.arr("bid_px_1"), ctx.arr("ask_px_1")
    with np.errstate(invalid="ignore"):
        crossed = b1 >= a1  # NaN (an empty side) compares False
    ctx.flags.add(
        "crossed_book", crossed, lambda idx: [f"bid_px_1={b1[i]} >= ask_px_1={a1[i]}" for i in idx]
    )
    # Empty levels (NaN) are skipped: each present level must beat the best of the levels
    # above it, i.e. bids strictly below the running minimum, asks strictly above the maximum.
    for side, cols, better, worse_or_equal in (
        ("bids", BID_PX, np.fmin, np.greater_equal),
        ("asks", ASK_PX, np.fmax, np.less_equal),
    ):
        run = ctx.arr(cols[0])
        bad = np.zeros(len(run), bool)
        for col in cols[1:]:
            x = ctx.arr(col)
            with np.errstate(invalid="ignore"):
                bad |= worse_or_equal(x, run)
            run = better(run, x)
        ctx.flags.add("non_monotone_levels", bad, f"{side} not strictly ordered")


def check(ctx: Ctx, day: DayInputs) -> None:
    """Every rule of an order-book frame, in the order their hits are reported."""
    limits = day_limits(ctx, day)
    levels = ([ctx.native(c) for c in cols] for cols in (BID_PX, BID_SZ, ASK_PX, ASK_SZ))
    suspects = book_suspects(
        *levels,
        None if limits is None else (ctx.codes, *limits),
        size_max=highest_storable(ctx.kind, SIZES),
    )
    screened = ctx.subset(np.flatnonzero(suspects))
    _book_rules(screened)
    time_rules(ctx, day.trading_date, day.now, sessions=True, order=True)
    duplicates(ctx, ["symbol", "ts"], "symbol and ts", full=True)
    if limits is not None:
        limit_rule(screened, BID_PX + ASK_PX, per_row(screened.codes, limits))
    storage_rules(screened, SIZES)
    storage_rules(ctx, [c for c in ctx.p if c not in SIZES])
