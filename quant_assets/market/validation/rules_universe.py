"""Row rules of the universe: the board a symbol's code implies, one row per symbol, and
what the table can store."""

from __future__ import annotations

from quant_assets.market import rules
from quant_assets.market.validation.flags import Ctx, DayInputs
from quant_assets.market.validation.rules_common import duplicates
from quant_assets.market.validation.rules_storage import storage_rules

# The rules `check` applies besides the parse, symbol and storage rules every kind gets
# (core.rules_by_kind, the README's table).
APPLIES = (
    "bad_value",
    "duplicate",
)


def _board_rule(ctx: Ctx) -> None:
    board = ctx.p["board"].astype(object)
    expected = (
        ctx.p["symbol"]
        .astype(object)
        .map(lambda s: rules.board_of(s) if isinstance(s, str) else None)
    )
    mask = board.notna() & (~board.isin(rules.BOARDS) | (board != expected))
    ctx.flags.add(
        "bad_value",
        mask.to_numpy(dtype=bool),
        lambda idx: [f"board={board.iloc[i]!r}, code says {expected.iloc[i]!r}" for i in idx],
    )


def check(ctx: Ctx, day: DayInputs) -> None:
    """Every rule of a universe frame; none of them depends on `day`."""
    _board_rule(ctx)
    duplicates(ctx, ["symbol"], "symbol")
    storage_rules(ctx)
