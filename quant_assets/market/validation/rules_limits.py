"""The daily price-limit rule of A-shares: limit-up/limit-down prices from a preclose, the board
and the ST flag, relaxed for the first days after a listing, and the prices beyond them.

Trades and order books take each symbol's preclose and ST flag from the day's bars
(`day_limits`); daily bars are checked against their own preclose (`bar_limits`). Both go through
`limit_prices`, the one place the limits are computed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from quant_assets.market import rules
from quant_assets.market.validation.flags import Ctx, DayInputs

Limits = tuple[np.ndarray, np.ndarray]  # (limit-up, limit-down) prices


def _limits_apply(ctx: Ctx) -> bool:
    """Daily price limits are an A-share rule; other markets skip it (and say so)."""
    if ctx.market != "CN":
        ctx.skipped["outside_price_limit"] = f"market {ctx.market}: no daily price limits"
        return False
    return True


def day_limits(ctx: Ctx, day: DayInputs) -> Limits | None:
    """Per-symbol (`ctx.uniques`) limit-up/limit-down prices from the day's bars (preclose,
    board, is_st; NaN without a bar), with the rules for the first days after listing when
    `day.listings` and `day.calendar` are given (`limit_prices`). None (and said so) where they
    do not apply.
    """
    if not _limits_apply(ctx):
        return None
    if day.bars is None:
        ctx.skipped["outside_price_limit"] = "no bars_for_limits given: price limits not checked"
        return None
    b = day.bars
    if "date" in b.columns and day.trading_date is not None:
        b = b[pd.to_datetime(b["date"]) == day.trading_date]
    b = b.drop_duplicates("symbol", keep="last").set_index("symbol")
    pos = b.index.get_indexer(ctx.uniques)
    have = pos >= 0
    pre = np.where(have, b["preclose"].to_numpy(dtype=float)[np.maximum(pos, 0)], np.nan)
    st = np.where(have, b["is_st"].to_numpy(dtype=bool)[np.maximum(pos, 0)], False)
    codes = np.arange(len(ctx.uniques))
    days = None
    if day.trading_date is not None:
        days = np.full(len(codes), day.trading_date.value, dtype="datetime64[ns]")
    limits = limit_prices(ctx, codes, pre, st, days, day)
    if (~have).any():
        missing = [str(s) for s in ctx.uniques[~have]]
        ctx.notes.append(f"outside_price_limit: no bar for {len(missing)} symbols {missing[:5]}")
    return limits


def bar_limits(ctx: Ctx, day: DayInputs) -> Limits | None:
    """Per-row limit-up/limit-down prices of daily bars around each bar's own preclose, with
    its board, ST flag and date (NaN where the bar has no preclose or no symbol)."""
    if not _limits_apply(ctx):
        return None
    pre = ctx.arr("preclose")
    pre = np.where(ctx.codes >= 0, pre, np.nan)
    st = ctx.arr("is_st") == 1  # NaN (did not parse) is missing_value's row
    days = ctx.p["date"].to_numpy(dtype="datetime64[ns]")
    no_pre = int((np.isnan(pre) & (ctx.codes >= 0)).sum())
    if no_pre:
        ctx.notes.append(f"outside_price_limit: {no_pre} bars without preclose: not checked")
    return limit_prices(ctx, ctx.codes, pre, st, days, day)


def limit_prices(
    ctx: Ctx,
    codes: np.ndarray,
    pre: np.ndarray,
    st: np.ndarray,
    days: np.ndarray | None,
    day: DayInputs,
) -> Limits:
    """Limit-up/limit-down prices of items (symbols or rows) with symbol codes `codes` (into
    `ctx.uniques`, -1 for none), preclose `pre`, ST flag `st` and trading day `days`
    (datetime64[ns], NaT where unknown; None for none at all): the board's limit
    (`rules.limit_pct`) around preclose, relaxed for shares in their first trading days
    (`rules.listing_limits`) when `day.listings` (symbol -> list_date) and a `day.calendar`
    reaching five trading days back are given."""
    board_u = np.array([rules.board_of(str(s)) for s in ctx.uniques] + ["main"], dtype=object)
    board = board_u[codes]  # code -1 picks the appended "main": its preclose is NaN anyway
    pct = np.asarray(rules.limit_pct(pd.Series(board), pd.Series(st)), dtype=float)
    up, down = (np.asarray(v, dtype=float) for v in rules.price_limits(pre, pct))
    cal = None if day.calendar is None else pd.DatetimeIndex(day.calendar).normalize()
    # an item's first days after listing can be told only with five trading days of calendar
    # up to its day (a listing before the calendar is then long past them)
    deep = np.zeros(len(codes), bool)
    if cal is not None and days is not None:
        deep = ~np.isnat(days) & (cal.searchsorted(days, side="right") >= rules.NO_LIMIT_DAYS)
    if day.listings is not None and deep.any():
        _listing_limits(ctx, codes, up, down, pre, board, days, deep, day.listings, cal)
    known = np.ones(len(codes), bool) if days is None else ~np.isnat(days)
    shallow = int((known & ~deep).sum())
    if day.listings is None or shallow:
        why = (
            "no listing dates given"
            if day.listings is None
            else f"{shallow} of {len(codes)} without {rules.NO_LIMIT_DAYS} trading days of "
            "calendar up to their day"
        )
        ctx.notes.append(f"outside_price_limit: {why}: new listings get usual limits")
    return up, down


def per_row(codes: np.ndarray, limits: Limits) -> Limits:
    """The per-symbol limits for each row (NaN for a row without a symbol: code -1 picks the
    appended NaN)."""
    up, down = limits
    return np.append(up, np.nan)[codes], np.append(down, np.nan)[codes]


def _listing_limits(
    ctx: Ctx,
    codes: np.ndarray,
    up: np.ndarray,
    down: np.ndarray,
    pre: np.ndarray,
    board: np.ndarray,
    days: np.ndarray,
    deep: np.ndarray,
    listings: pd.Series,
    cal: pd.DatetimeIndex,
) -> None:
    """Overwrite the limits of items in their first trading days (in place), among the items
    `deep` whose day has at least five trading days of `cal` up to it."""
    listed_u = pd.to_datetime(listings.reindex(ctx.uniques).to_numpy()).normalize()
    listed = np.append(listed_u.to_numpy(dtype="datetime64[ns]"), np.datetime64("NaT"))[codes]
    # the listing day is day 1: trading days from the listing date up to the item's day
    listed_day = cal.searchsorted(days, side="right") - cal.searchsorted(listed, side="left")
    # listed before the calendar's window: long past its first days
    early = deep & ~np.isnat(listed) & (listed >= cal[0].to_datetime64())
    relaxed = set()
    for i in np.flatnonzero(early & (listed_day >= 1) & (listed_day <= rules.NO_LIMIT_DAYS)):
        frac = rules.listing_limits(board[i], listed[i], int(listed_day[i]))
        if frac is None:
            continue
        up_frac, down_frac = frac
        up[i] = np.inf if np.isinf(up_frac) else rules.round_price(pre[i] * (1 + up_frac))
        down[i] = -np.inf if np.isinf(down_frac) else rules.round_price(pre[i] * (1 - down_frac))
        relaxed.add(str(ctx.uniques[codes[i]]))
    if relaxed:
        names = sorted(relaxed)
        ctx.notes.append(
            f"outside_price_limit: {len(names)} new listings under listing-day limits {names[:5]}"
        )


def limit_rule(ctx: Ctx, cols: list[str], limits: Limits) -> None:
    """Flag prices of `cols` beyond the per-row limits (up, down), within `rules.PRICE_EPS`."""
    up, down = limits
    for col in cols:
        x = ctx.arr(col)
        with np.errstate(invalid="ignore"):
            mask = (x > up + rules.PRICE_EPS) | (x < down - rules.PRICE_EPS)
        if mask.any():
            ctx.flags.add(
                "outside_price_limit",
                mask,
                lambda idx, x=x, col=col: [
                    f"{col}={x[i]} outside [{down[i]}, {up[i]}]" for i in idx
                ],
            )
        else:
            ctx.flags.add("outside_price_limit", mask, "")
