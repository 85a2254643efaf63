"""The daily price-limit rule of A-shares: limit-up/limit-down prices from the day's bars
(preclose, board, ST), relaxed for the first days after a listing, and the prices beyond them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from quant_assets.market import rules
from quant_assets.market.validation.flags import Ctx, DayInputs

Limits = tuple[np.ndarray, np.ndarray]  # (limit-up, limit-down) prices


def day_limits(ctx: Ctx, day: DayInputs) -> Limits | None:
    """Per-symbol (`ctx.uniques`) limit-up/limit-down prices from the day's bars (preclose,
    board, is_st; NaN without a bar), with the rules for the first days after listing
    (`rules.listing_limits`) when `day.listings` (symbol -> list_date) and a `day.calendar` of
    trading days reaching back over them are given. None (and said so) where they do not apply.
    """
    bars, trading_date, listings, calendar = day.bars, day.trading_date, day.listings, day.calendar
    if ctx.market != "CN":
        ctx.skipped["outside_price_limit"] = f"market {ctx.market}: no daily price limits"
        return None
    if bars is None:
        ctx.skipped["outside_price_limit"] = "no bars_for_limits given: price limits not checked"
        return None
    b = bars
    if "date" in b.columns and trading_date is not None:
        b = b[pd.to_datetime(b["date"]) == trading_date]
    b = b.drop_duplicates("symbol", keep="last").set_index("symbol")
    pos = b.index.get_indexer(ctx.uniques)
    have = pos >= 0
    pre = np.where(have, b["preclose"].to_numpy(dtype=float)[np.maximum(pos, 0)], np.nan)
    st = np.where(have, b["is_st"].to_numpy(dtype=bool)[np.maximum(pos, 0)], False)
    board = pd.Series([rules.board_of(str(s)) for s in ctx.uniques], dtype=object)
    pct = np.asarray(rules.limit_pct(board, pd.Series(st)), dtype=float)
    up_u, down_u = (np.asarray(v, dtype=float) for v in rules.price_limits(pre, pct))
    cal = None
    if calendar is not None and trading_date is not None:
        cal = pd.DatetimeIndex(calendar).normalize()
        cal = cal[cal <= trading_date]
    if listings is not None and cal is not None and len(cal) >= rules.NO_LIMIT_DAYS:
        _listing_limits(ctx, up_u, down_u, pre, board, listings, cal)
    else:
        ctx.notes.append(
            "outside_price_limit: no listing dates, or fewer than "
            f"{rules.NO_LIMIT_DAYS} trading days of calendar, given: new listings get usual limits"
        )
    if (~have).any():
        missing = [str(s) for s in ctx.uniques[~have]]
        ctx.notes.append(f"outside_price_limit: no bar for {len(missing)} symbols {missing[:5]}")
    return up_u, down_u


def per_row(codes: np.ndarray, limits: Limits) -> Limits:
    """The per-symbol limits for each row (NaN for a row without a symbol: code -1 picks the
    appended NaN)."""
    up, down = limits
    return np.append(up, np.nan)[codes], np.append(down, np.nan)[codes]


def _listing_limits(
    ctx: Ctx,
    up: np.ndarray,
    down: np.ndarray,
    pre: np.ndarray,
    board: pd.Series,
    listings: pd.Series,
    cal: pd.DatetimeIndex,
) -> None:
    """Overwrite the per-symbol limits of shares in their first trading days (in place); `cal`
    is the trading days up to the file's day."""
    listed = pd.to_datetime(listings.reindex(ctx.uniques).to_numpy()).normalize()
    # the listing day is day 1: trading days from the listing date up to `day`, both included
    listed_day = len(cal) - cal.searchsorted(listed, side="left")
    relaxed = []
    for i, (b, when, n) in enumerate(zip(board, listed, listed_day, strict=True)):
        if pd.isna(when) or when < cal[0]:
            continue  # listed before the calendar window: long past its first days
        frac = rules.listing_limits(b, when, int(n))
        if frac is None:
            continue
        up_frac, down_frac = frac
        up[i] = np.inf if np.isinf(up_frac) else rules.round_price(pre[i] * (1 + up_frac))
        down[i] = -np.inf if np.isinf(down_frac) else rules.round_price(pre[i] * (1 - down_frac))
        relaxed.append(str(ctx.uniques[i]))
    if relaxed:
        ctx.notes.append(
            f"outside_price_limit: {len(relaxed)} new listings under listing-day limits "
            f"{relaxed[:5]}"
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
