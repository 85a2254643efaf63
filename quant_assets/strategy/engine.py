"""The backtest's day loop as one numba kernel over dense (date x symbol) arrays.

Each day: corporate actions change holdings before the open (ex-date); the orders decided the
day before fill (next-open or VWAP execution) with the rules of `execution.py`; the day's
scores decide the next orders (filled at once when executing at the close); holdings are
valued at the close. Sells fill before buys so that their cash pays for the buys.

Two ways to decide, both Qlib's:
- hysteresis (TopkDropout): hold `top_n` names; each day sell at most `n_drop` held names that
  rank among the `n_drop` worst of the held and the best new candidates and outside their
  top `top_n`, and buy the best new names in their place, so the book does not churn. Names that may no longer be held (turned
  ST, blacklisted) are sold whatever their rank. Held positions are not rebalanced; a new name
  gets the smaller of an equal share of the free cash and 1/top_n of the equity.
- rebalance (n_drop < 0): hold exactly the `top_n` best names at equal weights every day.

Order rules: a sell that cannot fill is kept and tried again each day until it fills; a buy
that cannot fill is cancelled (the next day's ranking decides afresh).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from quant_assets.strategy.execution import (
    BUY,
    NO_CASH,
    SELL,
    T_PLUS_ONE,
    blocked,
    buy_quantity,
    cents,
    fees_cents,
    fill_price_cents,
    sell_quantity,
)

# Why a trade was made (the `reason` column of trades).
ENTER, DROP, INELIGIBLE, REBALANCE = 1, 2, 3, 4
TRADE_REASONS = {ENTER: "entered the top-N", DROP: "dropped out of the top-N",
                 INELIGIBLE: "no longer eligible (ST or blacklisted)",
                 REBALANCE: "rebalanced to its target weight"}  # fmt: skip
_JIT = {"cache": True, "nogil": True}


@njit(**_JIT)
def top_k(score, mask, k, out):
    """Indices of the `k` highest finite scores where `mask`, best first, ties by index;
    returns how many were found (written to `out`)."""
    best = np.empty(max(k, 1))
    n = 0
    if k <= 0:
        return 0
    for i in range(score.shape[0]):
        s = score[i]
        if not mask[i] or not math.isfinite(s):
            continue
        if n == k and s <= best[n - 1]:
            continue
        pos = n if n < k else k - 1
        while pos > 0 and best[pos - 1] < s:
            if pos < k:
                best[pos] = best[pos - 1]
                out[pos] = out[pos - 1]
            pos -= 1
        best[pos] = s
        out[pos] = i
        if n < k:
            n += 1
    return n


@njit(**_JIT)
def _blocked(side, t, i, tradable, price, low, high, preclose, pct, st_applies, st, st_pct,
             limits):  # fmt: skip
    """`blocked` for symbol `i` on day `t`, its limit prices from `preclose` on the tick."""
    p = st_pct if st_applies[i] and st[t, i] else pct[i]
    base = preclose[t, i]
    up = math.floor(base * (1.0 + p) * 100.0 + 0.5 + 1e-9) / 100.0
    down = math.floor(base * (1.0 - p) * 100.0 + 0.5 + 1e-9) / 100.0
    return blocked(side, tradable[t, i], price[t, i], low[t, i], high[t, i], up, down, limits)


@njit(**_JIT)
def _rank_key(s):
    return s if math.isfinite(s) else -np.inf


@njit(**_JIT)
def dropout(score, eligible, holdable, shares, to_sell, sell_reason, top_n, n_drop, buys):
    """TopkDropout: marks the held names to sell, writes the names to buy (best first) into
    `buys` and returns their count."""
    n_sym = score.shape[0]
    held = np.empty(n_sym, np.int64)
    h = 0
    for i in range(n_sym):
        if shares[i] > 0 and not to_sell[i]:
            if not holdable[i]:
                to_sell[i] = True
                sell_reason[i] = INELIGIBLE
            else:
                held[h] = i
                h += 1
    need = max(top_n - h, 0)
    cand_mask = eligible & (shares <= 0)
    cand = np.empty(n_drop + need + 1, np.int64)
    c = top_k(score, cand_mask, n_drop + need, cand)
    # held and candidates in one ranking, held first among equals
    comb = np.empty(h + c, np.int64)
    is_held = np.empty(h + c, np.bool_)
    m = 0
    for j in range(h):
        comb[m] = held[j]
        is_held[m] = True
        m += 1
    for j in range(c):
        comb[m] = cand[j]
        is_held[m] = False
        m += 1
    for a in range(1, m):  # insertion sort, stable: a few dozen names
        x, xh = comb[a], is_held[a]
        b = a
        while b > 0 and _rank_key(score[comb[b - 1]]) < _rank_key(score[x]):
            comb[b] = comb[b - 1]
            is_held[b] = is_held[b - 1]
            b -= 1
        comb[b] = x
        is_held[b] = xh
    n_sold = 0
    # sold: held names among the n_drop worst that are also outside the top_n (no name is
    # sold without a better one to take its place)
    for j in range(max(m - n_drop, top_n, 0), m):
        if is_held[j]:
            to_sell[comb[j]] = True
            sell_reason[comb[j]] = DROP
            n_sold += 1
    n_buy = min(n_sold + need, c)
    for j in range(n_buy):
        buys[j] = cand[j]
    return n_buy


@njit(**_JIT)
def _sell(t, i, q, reason, price, slippage, lots, stamp_rate, commission, min_commission,
          transfer_fee, shares, traded, tr_i, tr_f, n_tr):  # fmt: skip
    """Fill a sell of `q` shares of `i`: returns the cash it brings and the new trade count."""
    px = fill_price_cents(price, SELL, slippage, lots)
    value = q * px
    c, s, f = fees_cents(value, SELL, commission, min_commission, stamp_rate, transfer_fee)
    traded[t] += value
    shares[i] -= q
    if shares[i] <= 1e-9:
        shares[i] = 0.0
    if n_tr < tr_i.shape[0]:
        tr_i[n_tr] = (t, i, SELL, reason)
        tr_f[n_tr] = (q, px, c, s, f)
    return value - c - s - f, n_tr + 1


@njit(**_JIT)
def _unfilled(records, n, t, i, side, why):
    """Record an order that could not fill; returns the new count."""
    if n < records.shape[0]:
        records[n] = (t, i, side, why)
    return n + 1


@njit(**_JIT)
def simulate(
    score, eligible, holdable, price, low, high, close, preclose, tradable, active, pct,
    st_applies, st, st_pct, infer_actions, growth, cash_per_share, stamp, whole_shares, top_n,
    n_drop, same_day, lots, t1, limits, commission, min_commission, transfer_fee, slippage,
    initial_cash, capacity,
):  # fmt: skip
    """Run the book over every date; money in cents. Returns equity, cash, traded value and
    the equal-weighted return of the `active` stocks per day, and the trades, positions and
    unfilled orders as record arrays with their counts (a count above `capacity` means the
    records overflowed: call again with more). Limit prices come from `preclose` and each
    symbol's `pct` (`st_pct` for an ST share where `st_applies`); holding changes from
    `growth` and `cash_per_share`, or inferred from `preclose` when `infer_actions`."""
    n_days, n_sym = score.shape
    last = np.full(n_sym, np.nan)  # the last known close: what a holding is valued at
    bench = np.full(n_days, np.nan)
    shares = np.zeros(n_sym)
    bought_today = np.zeros(n_sym)
    to_sell = np.zeros(n_sym, np.bool_)
    sell_reason = np.zeros(n_sym, np.int64)
    buys = np.empty(n_sym, np.int64)
    n_buys = 0
    has_orders = False
    cash = initial_cash
    equity = np.zeros(n_days)
    cash_out = np.zeros(n_days)
    traded = np.zeros(n_days)
    # trades: day, symbol, side, reason | shares, price, commission, stamp, transfer
    tr_i = np.zeros((capacity, 4), np.int64)
    tr_f = np.zeros((capacity, 5))
    n_tr = 0
    pos_i = np.zeros((capacity, 2), np.int64)  # day, symbol
    pos_f = np.zeros((capacity, 2))  # shares, value
    n_pos = 0
    un = np.zeros((capacity, 4), np.int64)  # day, symbol, side, reason
    n_un = 0
    rebalance = n_drop < 0
    for t in range(n_days):
        # 1. ex-date: bonus and split shares, cash dividends (before the open)
        for i in range(n_sym):
            bought_today[i] = 0.0
            if shares[i] > 0:
                if infer_actions:
                    g = last[i] / preclose[t, i] if preclose[t, i] > 0 else 1.0
                    if abs(g - 1.0) > 1e-6:
                        shares[i] *= g
                else:
                    if cash_per_share[t, i] != 0.0:
                        cash += cents(shares[i] * cash_per_share[t, i] * 100.0)
                    g = growth[t, i]
                    if g != 1.0:
                        shares[i] = (
                            math.floor(shares[i] * g + 1e-9) if whole_shares else shares[i] * g
                        )
        for phase in range(2):
            # phase 0: fill yesterday's orders (next-day execution); phase 1: decide from
            # today's scores, and fill at once when executing at the close
            if phase == 1:
                if t == n_days - 1 and not same_day:
                    break
                if rebalance:
                    n_buys = top_k(score[t], eligible[t], top_n, buys)
                    keep = np.zeros(n_sym, np.bool_)
                    for j in range(n_buys):
                        keep[buys[j]] = True
                    for i in range(n_sym):
                        if shares[i] > 0 and not keep[i]:
                            to_sell[i] = True
                            sell_reason[i] = DROP
                else:
                    n_buys = dropout(score[t], eligible[t], holdable[t], shares, to_sell,
                                      sell_reason, top_n, n_drop, buys)  # fmt: skip
                has_orders = True
                if not same_day:
                    continue
            elif same_day or not has_orders:
                continue
            # the standing orders fill on day t: sells first, then (rebalance) trims, then buys
            value_now = cash
            for i in range(n_sym):
                if shares[i] > 0:
                    p = price[t, i] if math.isfinite(price[t, i]) else last[i]
                    value_now += shares[i] * p * 100.0
            target = value_now / max(n_buys, 1) if rebalance else value_now / top_n
            for i in range(n_sym):
                if not (to_sell[i] and shares[i] > 0):
                    continue
                why = _blocked(SELL, t, i, tradable, price, low, high, preclose, pct, st_applies,
                               st, st_pct, limits)  # fmt: skip
                q = (
                    sell_quantity(shares[i], bought_today[i], shares[i], lots, t1)
                    if why == 0
                    else 0.0
                )
                if q <= 0:
                    n_un = _unfilled(un, n_un, t, i, SELL, why if why else T_PLUS_ONE)
                    continue
                got, n_tr = _sell(t, i, q, sell_reason[i], price[t, i], slippage, lots, stamp[t],
                                  commission, min_commission, transfer_fee, shares, traded,
                                  tr_i, tr_f, n_tr)  # fmt: skip
                cash += got
                if shares[i] == 0.0:
                    to_sell[i] = False
            if rebalance:
                for j in range(n_buys):
                    i = buys[j]
                    if shares[i] <= 0 or _blocked(SELL, t, i, tradable, price, low, high, preclose,
                                                  pct, st_applies, st, st_pct, limits):  # fmt: skip
                        continue
                    excess = shares[i] - target / (price[t, i] * 100.0)
                    q = sell_quantity(shares[i], bought_today[i], excess, lots, t1)
                    if q > 0:
                        got, n_tr = _sell(t, i, q, REBALANCE, price[t, i], slippage, lots,
                                          stamp[t], commission, min_commission, transfer_fee,
                                          shares, traded, tr_i, tr_f, n_tr)  # fmt: skip
                        cash += got
            for j in range(n_buys):
                i = buys[j]
                why = _blocked(BUY, t, i, tradable, price, low, high, preclose, pct, st_applies,
                               st, st_pct, limits)  # fmt: skip
                px = fill_price_cents(price[t, i], BUY, slippage, lots)
                if rebalance:
                    budget = min(target - shares[i] * px, cash)
                    if budget <= (px * 100.0 if lots else 0.0):
                        continue  # at (or within a lot of) its weight
                else:
                    budget = min(cash / (n_buys - j), target)
                q = (
                    buy_quantity(budget, px, commission, transfer_fee, min_commission, lots)
                    if why == 0
                    else 0.0
                )
                if q <= 0:
                    n_un = _unfilled(un, n_un, t, i, BUY, why if why else NO_CASH)
                    continue
                value = q * px
                c, s, f = fees_cents(value, BUY, commission, min_commission, 0.0, transfer_fee)
                cash -= value + c + s + f
                traded[t] += value
                held_before = shares[i] > 0
                shares[i] += q
                bought_today[i] += q
                if n_tr < capacity:
                    tr_i[n_tr] = (t, i, BUY, REBALANCE if held_before else ENTER)
                    tr_f[n_tr] = (q, px, c, s, f)
                n_tr += 1
            n_buys = 0
            has_orders = False
        # the close: value the book
        value = cash
        total, count = 0.0, 0
        for i in range(n_sym):
            c = close[t, i]
            if math.isfinite(c):
                last[i] = c
                if active[t, i] and preclose[t, i] > 0:
                    total += c / preclose[t, i] - 1.0
                    count += 1
            if shares[i] > 0:
                v = shares[i] * last[i] * 100.0
                value += v
                if n_pos < capacity:
                    pos_i[n_pos] = (t, i)
                    pos_f[n_pos] = (shares[i], v)
                n_pos += 1
        equity[t] = value
        cash_out[t] = cash
        if count:
            bench[t] = total / count
    return (equity, cash_out, traded, bench, tr_i, tr_f, n_tr, pos_i, pos_f, n_pos, un, n_un)
