"""Rules on time: sessions, the file's trading date, `now`, the calendar and per-symbol order.

Timestamps are compared as int64 nanoseconds; the session and day tests of a whole frame run
in one numba pass (`screen_kernels.time_flags`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from quant_assets.calendar import TZ
from quant_assets.market import rules
from quant_assets.market.validation.flags import Ctx, value_detail
from quant_assets.market.validation.screen_kernels import (
    out_of_order_rows,
    strictly_increasing_per_symbol,
    time_flags,
)

_SESSIONS = rules.session_windows_ns()


def ns(ts: pd.Series) -> np.ndarray:
    """int64 nanoseconds of a datetime Series (NaT -> int64 min)."""
    return ts.array.asi8


def out_of_order(ctx: Ctx, t: np.ndarray, valid: np.ndarray, what: str) -> None:
    """Flag the rows that break their symbol's time order (file order): the fewest rows whose
    removal leaves the rest in order (`screen_kernels.out_of_order_rows`), so that one stamp
    far off marks itself and not its neighbours."""
    if strictly_increasing_per_symbol(ctx.codes, t, len(ctx.uniques)):
        ctx.flags.passed("out_of_order")
        return
    codes = np.where(valid, ctx.codes, -1)
    mask = out_of_order_rows(codes, t, len(ctx.uniques))
    col = ctx.p[what]
    ctx.flags.add(
        "out_of_order", mask, value_detail(col, "out of order with the other rows of the symbol")
    )


def time_rules(
    ctx: Ctx,
    trading_date: pd.Timestamp | None,
    now: pd.Timestamp | None,
    sessions: bool,
    order: bool,
) -> None:
    """Rules on the `ts` column: sessions (A-shares only), trading date, future, order."""
    ts = ctx.p["ts"]
    utc_ns = ns(ts)
    valid = utc_ns != rules.NAT_NS
    news = ctx.kind == "news"  # news of earlier days may arrive in a later file; never later
    outside, off_day, future = time_flags(
        utc_ns,
        rules.local_clock(ts),
        _SESSIONS,
        trading_date.value // rules.DAY_NS if trading_date is not None else 0,
        news,
        now.value if now is not None else 0,
    )
    if sessions and ctx.market == "CN":
        ctx.flags.add("outside_session", outside, value_detail(ts, "outside the sessions"))
    elif sessions:
        ctx.skipped["outside_session"] = f"market {ctx.market}: A-share sessions do not apply"
    if trading_date is not None:
        what = "published after" if news else "not on"
        ctx.flags.add(
            "not_on_trading_date", off_day, value_detail(ts, f"{what} {trading_date.date()}")
        )
    else:
        ctx.skipped["not_on_trading_date"] = "no trading_date given"
    if now is not None:
        ctx.flags.add("in_future", future, value_detail(ts, f"after now={now}"))
    else:
        ctx.skipped["in_future"] = "no now given"
    if order:
        out_of_order(ctx, utc_ns, valid, "ts")


def date_rules(
    ctx: Ctx,
    col: str,
    trading_date: pd.Timestamp | None,
    now: pd.Timestamp | None,
    trading_days: pd.DatetimeIndex | None,
    same_day: bool,
) -> None:
    """Rules on a date column: on (or, if not `same_day`, not after) the file's trading date,
    not after `now`, and a trading day when a calendar is given."""
    d = ctx.p[col]
    valid = d.notna().to_numpy()
    days = ns(d)
    if trading_date is not None:
        td = trading_date.value
        mask = valid & ((days != td) if same_day else (days > td))
        what = (
            f"{col} not on {trading_date.date()}"
            if same_day
            else f"{col} after {trading_date.date()}"
        )
        ctx.flags.add("not_on_trading_date", mask, value_detail(d, what))
    else:
        ctx.skipped["not_on_trading_date"] = "no trading_date given"
    if now is not None:
        today = now.tz_convert(TZ).tz_localize(None).normalize().value
        ctx.flags.add("in_future", valid & (days > today), value_detail(d, f"after now={now}"))
    else:
        ctx.skipped["in_future"] = "no now given"
    if trading_days is not None:
        cal = pd.DatetimeIndex(trading_days).astype("datetime64[ns]")
        off = valid & ~pd.Index(d).isin(cal)
        ctx.flags.add("non_trading_day", off, value_detail(d, "not a trading day"))
    elif ctx.kind == "bars":
        ctx.skipped["non_trading_day"] = "no trading_days given"
