"""Row rules of daily bars: positive prices, OHLC consistency and suspended days, then the
date, duplicate, order and price-limit rules (each bar's prices against its own preclose) and
what the table can store."""

from __future__ import annotations

import numpy as np

from quant_assets.market.validation.flags import Ctx, DayInputs
from quant_assets.market.validation.rules_common import duplicates, negative, positive_price
from quant_assets.market.validation.rules_limits import bar_limits, limit_rule
from quant_assets.market.validation.rules_storage import storage_rules
from quant_assets.market.validation.rules_time import date_rules, ns, out_of_order

# An empty price is a bad_price (NaN or <= 0), not a missing_value.
PRICES = ["open", "high", "low", "close"]


# The rules `check` applies besides the parse, symbol and storage rules every kind gets
# (core.rules_by_kind, the README's table).
APPLIES = (
    "bad_price",
    "negative_volume",
    "ohlc_inconsistent",
    "suspended_inconsistent",
    "not_on_trading_date",
    "in_future",
    "non_trading_day",
    "duplicate",
    "out_of_order",
    "outside_price_limit",
)


def _bar_rules(ctx: Ctx) -> None:
    o, h, lo, c, pre = (ctx.arr(k) for k in (*PRICES, "preclose"))
    positive_price(ctx, [*PRICES, "preclose"], nullable=["preclose"])
    negative(ctx, ["volume", "amount"])
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


def check(ctx: Ctx, day: DayInputs) -> None:
    """Every rule of a bars frame, in the order their hits are reported."""
    _bar_rules(ctx)
    date_rules(ctx, "date", day.trading_date, day.now, day.calendar, same_day=True)
    duplicates(ctx, ["symbol", "date"], "symbol and date")
    dates = ctx.p["date"]
    out_of_order(ctx, ns(dates), dates.notna().to_numpy(), "date")
    limits = bar_limits(ctx, day)
    if limits is not None:
        limit_rule(ctx, PRICES, limits)
    storage_rules(ctx)
