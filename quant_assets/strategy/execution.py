"""The A-share execution model of one order, shared by the backtest and the paper broker.

Money is counted in cents (float64 holding whole numbers when the rules are on, so sums stay
exact). A fill happens at the day's execution price moved against the trader by the slippage
and, under the rules, rounded to the 0.01 CNY tick. The rules of a fill:

- a suspended stock (or one without a bar) does not trade;
- a buy does not fill when the stock cannot be bought below its limit-up price (at the open:
  it opens there; at the VWAP: its low is there, sealed all day; at the close: it closes
  there), a sell likewise at limit-down;
- buys are whole lots of 100 shares; a sell may be an odd lot only when it sells the whole
  position (what the exchanges allow);
- T+1: shares bought today cannot be sold today.
"""

from __future__ import annotations

import math

from numba import njit

from quant_assets.market.rules import LOT_SIZE

BUY, SELL = 1, -1
# Why an order was not filled (the `unfilled` records of a backtest or a broker day).
SUSPENDED, AT_LIMIT, NO_CASH, T_PLUS_ONE = 1, 2, 3, 4
BLOCK_REASONS = {SUSPENDED: "suspended", AT_LIMIT: "at the price limit",
                 NO_CASH: "not enough cash for one lot", T_PLUS_ONE: "T+1: bought today"}  # fmt: skip
_JIT = {"cache": True, "nogil": True}


@njit(**_JIT)
def cents(x: float) -> float:
    """Round an amount in cents half up to a whole cent."""
    return math.floor(x + 0.5 + 1e-9)


@njit(**_JIT)
def fill_price_cents(price: float, side: int, slippage: float, tick: bool) -> float:
    """The fill price in cents: `price` (CNY) moved against the trader, on the tick when asked."""
    p = price * 100.0 * (1.0 + side * slippage)
    return cents(p) if tick else p


@njit(**_JIT)
def fees_cents(
    value: float,
    side: int,
    commission: float,
    min_commission: float,
    stamp_rate: float,
    transfer_fee: float,
) -> tuple[float, float, float]:
    """Commission (with its minimum, in cents), stamp duty (sells only) and transfer fee of
    an order worth `value` cents, each rounded to the cent."""
    if value <= 0:
        return 0.0, 0.0, 0.0
    comm = cents(max(value * commission, min_commission)) if commission > 0 else 0.0
    stamp = cents(value * stamp_rate) if side == SELL and stamp_rate > 0 else 0.0
    transfer = cents(value * transfer_fee) if transfer_fee > 0 else 0.0
    return comm, stamp, transfer


@njit(**_JIT)
def blocked(side: int, tradable: bool, price: float, low: float, high: float,
            up: float, down: float, limits: bool) -> int:  # fmt: skip
    """0 when an order of `side` can fill at `price`, else the reason. `low`/`high` are the
    range the price could be met in (the open alone, or the day's low and high for a VWAP)."""
    if not tradable or not math.isfinite(price):
        return SUSPENDED
    if limits:
        eps = 1e-6
        if side == BUY and math.isfinite(up) and low >= up - eps:
            return AT_LIMIT
        if side == SELL and math.isfinite(down) and high <= down + eps:
            return AT_LIMIT
    return 0


@njit(**_JIT)
def sell_quantity(held: float, bought_today: float, wanted: float, lots: bool, t1: bool) -> float:
    """Shares a sell of `wanted` may take: not today's buys under T+1, whole lots unless it
    empties the position."""
    free = held - bought_today if t1 else held
    q = min(wanted, free)
    if q <= 0:
        return 0.0
    if lots and q < held:
        q = math.floor(q / LOT_SIZE + 1e-9) * LOT_SIZE
    return q


@njit(**_JIT)
def buy_quantity(budget: float, price: float, commission: float, transfer_fee: float,
                 min_commission: float, lots: bool) -> float:  # fmt: skip
    """Shares that `budget` cents buy at `price` cents with the fees, in whole lots when asked."""
    if budget <= 0 or price <= 0:
        return 0.0
    unit = price * (1.0 + commission + transfer_fee)
    q = budget / unit
    if commission > 0 and q * price * commission < min_commission:
        q = max(budget - min_commission, 0.0) / (price * (1.0 + transfer_fee))
    if lots:
        q = math.floor(q / LOT_SIZE + 1e-9) * LOT_SIZE
        # the minimum commission can make the last lot unaffordable
        while q > 0:
            c, s, t = fees_cents(q * price, BUY, commission, min_commission, 0.0, transfer_fee)
            if q * price + c + s + t <= budget + 1e-9:
                break
            q -= LOT_SIZE
    return max(q, 0.0)
