"""Row rules of tick-by-tick trades: price, volume, side and trade id, then the time,
duplicate, price-limit and storage rules."""

from __future__ import annotations

import numpy as np

from quant_assets.market.validation.flags import Ctx, DayInputs, value_detail
from quant_assets.market.validation.rules_common import duplicates, negative, positive_price
from quant_assets.market.validation.rules_limits import day_limits, limit_rule, per_row
from quant_assets.market.validation.rules_storage import storage_rules
from quant_assets.market.validation.rules_time import time_rules

# An empty price is a bad_price (NaN or <= 0), not a missing_value.
PRICES = ["price"]


# The rules `check` applies besides the parse, symbol and storage rules every kind gets
# (core.rules_by_kind, the README's table).
APPLIES = (
    "bad_price",
    "negative_volume",
    "bad_value",
    "outside_session",
    "not_on_trading_date",
    "in_future",
    "out_of_order",
    "duplicate",
    "outside_price_limit",
)


def _trade_rules(ctx: Ctx) -> None:
    positive_price(ctx, PRICES)
    negative(ctx, ["volume"])
    side, trade_id = ctx.arr("side"), ctx.arr("trade_id")
    ctx.flags.add(
        "bad_value",
        ~np.isnan(side) & ~np.isin(side, (-1, 0, 1)),
        value_detail(ctx.p["side"], "side not in -1/0/1"),
    )
    with np.errstate(invalid="ignore"):
        ctx.flags.add(
            "bad_value", trade_id < 0, value_detail(ctx.p["trade_id"], "negative trade_id")
        )


def check(ctx: Ctx, day: DayInputs) -> None:
    """Every rule of a trades frame, in the order their hits are reported."""
    _trade_rules(ctx)
    time_rules(ctx, day.trading_date, day.now, sessions=True, order=True)
    duplicates(ctx, ["symbol", "trade_id"], "symbol and trade_id", full=True)
    limits = day_limits(ctx, day)
    if limits is not None:
        limit_rule(ctx, PRICES, per_row(ctx.codes, limits))
    storage_rules(ctx)
