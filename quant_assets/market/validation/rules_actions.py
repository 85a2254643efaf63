"""Row rules of corporate actions: dividend and share ratios in their domains, ex-date not
before the announcement, then the announcement-date, duplicate and storage rules."""

from __future__ import annotations

import numpy as np

from quant_assets.market.validation.flags import Ctx, DayInputs
from quant_assets.market.validation.rules_common import duplicates
from quant_assets.market.validation.rules_storage import storage_rules
from quant_assets.market.validation.rules_time import date_rules

# The rules `check` applies besides the parse, symbol and storage rules every kind gets
# (core.rules_by_kind, the README's table).
APPLIES = (
    "bad_value",
    "ex_before_announce",
    "not_on_trading_date",
    "in_future",
    "duplicate",
)


def _action_rules(ctx: Ctx) -> None:
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


def check(ctx: Ctx, day: DayInputs) -> None:
    """Every rule of a corporate-actions frame, in the order their hits are reported."""
    _action_rules(ctx)
    # announced by the file's day (not necessarily on it); no calendar rule for announcements
    date_rules(ctx, "announce_date", day.trading_date, day.now, None, same_day=False)
    duplicates(ctx, ["action_id"], "action_id")
    storage_rules(ctx)
