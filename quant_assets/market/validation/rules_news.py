"""Row rules of news items: a title, readable text and a sentiment in [-1, 1], then the time
and duplicate rules (news may be of earlier days, never of later ones) and what the table
can store."""

from __future__ import annotations

import numpy as np

from quant_assets.market.validation.flags import Ctx, DayInputs, value_detail
from quant_assets.market.validation.parsing import text_problems
from quant_assets.market.validation.rules_common import duplicates
from quant_assets.market.validation.rules_storage import storage_rules
from quant_assets.market.validation.rules_time import time_rules

# Text columns: a value that is not text is undecodable_text rather than wrong_type.
TEXT = ("title", "body", "source")


# The rules `check` applies besides the parse, symbol and storage rules every kind gets
# (core.rules_by_kind, the README's table).
APPLIES = (
    "empty_title",
    "undecodable_text",
    "bad_value",
    "not_on_trading_date",
    "in_future",
    "duplicate",
)


def _news_rules(ctx: Ctx) -> None:
    title = ctx.p["title"]
    blank = (title.isna() | (title.astype(object).str.strip() == "")).to_numpy(dtype=bool)
    ctx.flags.add("empty_title", blank & ~ctx.unparsed["title"], "title is empty")
    for col in TEXT:
        mask = text_problems(ctx.p[col]) & ~ctx.unparsed[col]
        ctx.flags.add("undecodable_text", mask, value_detail(ctx.p[col], "undecodable text"))
    s = ctx.arr("sentiment")
    with np.errstate(invalid="ignore"):
        ctx.flags.add(
            "bad_value", (s < -1) | (s > 1), value_detail(ctx.p["sentiment"], "not in [-1, 1]")
        )


def check(ctx: Ctx, day: DayInputs) -> None:
    """Every rule of a news frame, in the order their hits are reported."""
    _news_rules(ctx)
    time_rules(ctx, day.trading_date, day.now, sessions=False, order=False)
    duplicates(ctx, ["news_id"], "news_id")
    storage_rules(ctx)
