"""Trade-based liquidity factors of one trading day: effective spread, activity, Amihud, Kyle's
lambda and the closing-auction statistics.

Functions take TRADES (and ORDER_BOOK where quotes are needed) frames, or the arrays from
`prepare`/`prepare_trades` to share the preparation, and return values per symbol.
Continuous trades are those inside 09:30-11:30 and 13:00-14:57; the closing call auction
prints after 14:57:00 (at 15:00), the opening one before 09:30 (at 09:25).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from quant_assets.factors.microstructure_book import grid_log_returns
from quant_assets.factors.microstructure_prep import (
    CONTINUOUS_MINUTES,
    PM_END,
    BookArrays,
    DateLike,
    TradeArrays,
    asof_positions,
    group_sum,
    in_continuous,
    last_in_group,
    prepare,
    prepare_trades,
    session_grid,
    take,
)

LAST30_START = PM_END - 30 * 60 * 1_000_000_000  # 14:27:00


def _as_trades(trades: pd.DataFrame | TradeArrays, date: DateLike | None = None) -> TradeArrays:
    return trades if isinstance(trades, TradeArrays) else prepare_trades(trades, date)


def _as_pair(
    trades: pd.DataFrame | TradeArrays,
    book: pd.DataFrame | BookArrays,
    date: DateLike | None = None,
) -> tuple[TradeArrays, BookArrays]:
    if isinstance(trades, TradeArrays) and isinstance(book, BookArrays):
        if not trades.symbols.equals(book.symbols):
            raise ValueError("trades and book were prepared over different symbol lists")
        return trades, book
    if isinstance(trades, TradeArrays) or isinstance(book, BookArrays):
        raise TypeError("pass both frames or both prepared arrays (see `prepare`)")
    return prepare(trades, book, date)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def effective_spread(
    trades: pd.DataFrame | TradeArrays,
    book: pd.DataFrame | BookArrays,
    date: DateLike | None = None,
) -> pd.Series:
    """Volume-weighted relative effective spread of the continuous trades (fraction of mid).

    ``es = 2 |price - mid| / mid`` with the mid of the last continuous snapshot strictly
    before the trade (the quote the trade hit, not the book it left behind), averaged with
    weights `volume`. Trades without a prior two-sided quote are left out.
    """
    t, b = _as_pair(trades, book, date)
    cont = in_continuous(t.tod)
    pos = asof_positions(b.key, b.code, t.key[cont], strict=True)
    mid = take(b.mid, pos)
    es = 2 * np.abs(t.price[cont] - mid) / mid
    ok = np.isfinite(es)
    n = len(t.symbols)
    code, vol = t.code[cont][ok], t.volume[cont][ok]
    out = _ratio(group_sum(code, es[ok] * vol, n), group_sum(code, vol, n))
    return pd.Series(out, index=t.symbols, name="effective_spread")


def trade_activity(
    trades: pd.DataFrame | TradeArrays, date: DateLike | None = None
) -> pd.DataFrame:
    """Continuous-session activity: intensity, buy share and size of trades.

    ``trade_intensity`` = continuous trades / 237 minutes (trades per minute);
    ``buy_volume_share`` = buyer-initiated volume / signed (side != 0) volume, in [0, 1];
    ``avg_trade_size`` = continuous volume / continuous trades (shares).
    """
    t = _as_trades(trades, date)
    n = len(t.symbols)
    cont = in_continuous(t.tod)
    code, vol, side = t.code[cont], t.volume[cont], t.side[cont]
    count = np.bincount(code, minlength=n).astype(float)
    signed = side != 0
    buy = group_sum(code[side == 1], vol[side == 1], n)
    return pd.DataFrame(
        {
            "trade_intensity": count / CONTINUOUS_MINUTES,
            "buy_volume_share": _ratio(buy, group_sum(code[signed], vol[signed], n)),
            "avg_trade_size": _ratio(group_sum(code, vol, n), count),
        },
        index=t.symbols,
    )


def amihud_illiquidity(
    trades: pd.DataFrame | TradeArrays,
    date: DateLike | None = None,
    preclose: pd.Series | None = None,
) -> pd.Series:
    """Amihud (2002) illiquidity of the day: ``|r| / amount`` (return per CNY traded).

    ``amount = sum price * volume`` over all the day's trades, auctions included (CNY);
    ``r = close / preclose - 1`` with close the last trade price (the closing auction print)
    and `preclose` the exchange's previous close per symbol. Without `preclose`, the
    open-to-close return (from the opening auction print) stands in.
    """
    t = _as_trades(trades, date)
    n = len(t.symbols)
    amount = group_sum(t.code, t.price * t.volume, n)
    close = take(t.price, last_in_group(t.code, np.ones(len(t.code), bool), n))
    if preclose is None:
        first = np.r_[True, t.code[1:] != t.code[:-1]] if len(t.code) else np.zeros(0, bool)
        base = np.full(n, np.nan)
        base[t.code[first]] = t.price[first]
    else:
        base = preclose.reindex(t.symbols).to_numpy(dtype=float)
    out = _ratio(np.abs(close / base - 1), amount)
    return pd.Series(out, index=t.symbols, name="amihud")


def kyle_lambda(
    trades: pd.DataFrame | TradeArrays,
    book: pd.DataFrame | BookArrays,
    date: DateLike | None = None,
    minutes: int = 5,
) -> pd.Series:
    """Kyle's lambda: OLS slope (with intercept) of `minutes`-bar log mid returns on the
    bar's signed volume ``q_j = sum side * volume`` (shares), per symbol-day.

    ``lambda = cov(r, q) / var(q)`` over the bars of the continuous sessions (the lunch
    break is no bar); a trade at time s belongs to the bar (g_{j-1}, g_j] holding s, matching
    the mids at or before g_{j-1} and g_j. Unit: log return per share; NaN with fewer than
    three bars or no variation in q.
    """
    t, b = _as_pair(trades, book, date)
    n = len(t.symbols)
    grid, inside = session_grid(minutes)
    r = grid_log_returns(b, minutes)  # (n, bars) over the intervals kept by `inside`
    bars = len(grid) - 1
    cont = in_continuous(t.tod) & (t.side != 0)
    j = np.searchsorted(grid, t.tod[cont], side="left") - 1  # interval (grid[j], grid[j+1]]
    ok = (j >= 0) & (j < bars)
    flat = t.code[cont][ok] * bars + j[ok]
    signed = (t.side[cont] * t.volume[cont])[ok]
    q = np.bincount(flat, weights=signed, minlength=n * bars).reshape(n, bars)[:, inside]
    valid = np.isfinite(r)
    r, q = np.where(valid, r, 0.0), np.where(valid, q, 0.0)
    k = valid.sum(axis=1)
    sq, sr = q.sum(axis=1), r.sum(axis=1)
    den = k * (q * q).sum(axis=1) - sq * sq
    num = k * (q * r).sum(axis=1) - sq * sr
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where((k >= 3) & (den > 0), num / den, np.nan)
    return pd.Series(out, index=t.symbols, name="kyle_lambda")


def closing_auction_stats(
    trades: pd.DataFrame | TradeArrays, date: DateLike | None = None
) -> pd.DataFrame:
    """Closing call auction and last half hour of continuous trading.

    ``auction_volume_share`` = volume printed after 14:57:00 (the 15:00 auction) / day volume;
    ``closing_auction_return`` = auction VWAP / last continuous trade price - 1;
    ``last30_return`` = last trade price at or before 14:57:00 / last trade price at or
    before 14:27:00 - 1 (trade prices: a limit-locked book has no mid);
    ``last30_volume_share`` = continuous volume in (14:27, 14:57] / day volume.
    """
    t = _as_trades(trades, date)
    n = len(t.symbols)
    day_vol = group_sum(t.code, t.volume, n)
    auction = t.tod > PM_END
    auc_vol = group_sum(t.code[auction], t.volume[auction], n)
    auc_px = _ratio(group_sum(t.code[auction], (t.price * t.volume)[auction], n), auc_vol)
    cont = in_continuous(t.tod)
    last_cont = take(t.price, last_in_group(t.code, cont, n))
    at_1427 = take(t.price, last_in_group(t.code, t.tod <= LAST30_START, n))
    late = cont & (t.tod > LAST30_START)
    return pd.DataFrame(
        {
            "auction_volume_share": _ratio(auc_vol, day_vol),
            "closing_auction_return": auc_px / last_cont - 1,
            "last30_return": last_cont / at_1427 - 1,
            "last30_volume_share": _ratio(group_sum(t.code[late], t.volume[late], n), day_vol),
        },
        index=t.symbols,
    )
