"""Orders to a broker, and the paper broker that fills them with the backtest's execution model.

A real broker implements `Broker.execute` the same way (orders in; fills and the orders it
could not fill out); none is called here. The paper broker fills one day's orders at that
day's open or VWAP with `execution.py`, sells first so that their cash pays for the buys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import pandas as pd

from quant_assets.market.rules import board_of, limit_pct, price_limits
from quant_assets.strategy.costs import Costs
from quant_assets.strategy.execution import (
    BLOCK_REASONS,
    BUY,
    NO_CASH,
    SELL,
    T_PLUS_ONE,
    blocked,
    buy_quantity,
    fees_cents,
    fill_price_cents,
    sell_quantity,
)

ORDER_COLUMNS = ["symbol", "side", "shares", "reason"]  # unfilled orders carry the same
FILL_COLUMNS = ("symbol", "side", "shares", "price", "value", "commission", "stamp_duty",
                "transfer_fee", "reason")  # fmt: skip


@dataclass
class Account:
    """Cash in cents (whole cents) and shares by symbol, with the shares bought today (T+1)."""

    cash_cents: float
    shares: dict[str, float]
    bought_today: dict[str, float]

    @property
    def cash(self) -> float:
        return float(self.cash_cents) / 100.0


class Broker(Protocol):
    def execute(
        self, orders: pd.DataFrame, bars: pd.DataFrame, day: pd.Timestamp, account: Account
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Fill `orders` (ORDER_COLUMNS) on `day`, updating `account`; returns the fills
        (FILL_COLUMNS) and the orders not filled with their reason."""
        ...


@dataclass(frozen=True)
class PaperBroker:
    """Fills at the day's open (or VWAP) under the A-share rules and `costs`."""

    costs: Costs = Costs()
    execution: Literal["open", "vwap"] = "open"

    def execute(
        self, orders: pd.DataFrame, bars: pd.DataFrame, day: pd.Timestamp, account: Account
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        b = bars.set_index("symbol")
        stamp = float(self.costs.stamp_rates(pd.DatetimeIndex([day]))[0])
        c = self.costs
        fills, unfilled = [], []
        ordered = orders.assign(_sell=orders["side"].eq("sell")).sort_values(
            "_sell", ascending=False
        )
        for o in ordered.itertuples(index=False):
            side = SELL if o.side == "sell" else BUY
            why, price = self._blocked(b, o.symbol, side)
            held = account.shares.get(o.symbol, 0.0)
            today = account.bought_today.get(o.symbol, 0.0)
            if why == 0 and side == SELL:
                q = sell_quantity(held, today, float(o.shares), True, True)
                why = 0 if q > 0 else T_PLUS_ONE
            elif why == 0:  # the ordered lots if the cash pays for them, else fewer
                px = fill_price_cents(price, BUY, c.slippage, True)
                q = float(o.shares)
                cost = q * px + sum(fees_cents(q * px, BUY, c.commission, c.min_commission * 100.0,
                                               0.0, c.transfer_fee))  # fmt: skip
                if cost > account.cash_cents:
                    q = buy_quantity(account.cash_cents, px, c.commission, c.transfer_fee,
                                     c.min_commission * 100.0, True)  # fmt: skip
                why = 0 if q > 0 else NO_CASH
            if why:
                unfilled.append((o.symbol, o.side, o.shares, BLOCK_REASONS[why]))
                continue
            px = fill_price_cents(price, side, c.slippage, True)
            value = q * px
            comm, duty, transfer = fees_cents(value, side, c.commission, c.min_commission * 100.0,
                                              stamp, c.transfer_fee)  # fmt: skip
            if side == SELL:
                account.cash_cents += value - comm - duty - transfer
                account.shares[o.symbol] = held - q
            else:
                account.cash_cents -= value + comm + duty + transfer
                account.shares[o.symbol] = held + q
                account.bought_today[o.symbol] = today + q
            fills.append((o.symbol, o.side, q, px / 100, value / 100, comm / 100, duty / 100,
                          transfer / 100, o.reason))  # fmt: skip
        account.shares = {s: v for s, v in account.shares.items() if v > 1e-9}
        return (
            pd.DataFrame(fills, columns=list(FILL_COLUMNS)),
            pd.DataFrame(unfilled, columns=ORDER_COLUMNS),
        )

    def _blocked(self, b: pd.DataFrame, symbol: str, side: int) -> tuple[int, float]:
        """The reason an order cannot fill today (0 when it can) and the raw fill price."""
        if symbol not in b.index:
            return blocked(side, False, np.nan, np.nan, np.nan, np.nan, np.nan, True), np.nan
        r = b.loc[symbol]
        suspended = bool(r["is_suspended"]) or not r["volume"] > 0
        pct = limit_pct(board_of(symbol), bool(r["is_st"]))
        up, down = price_limits(float(r["preclose"]), pct)
        if self.execution == "open":
            price = low = high = float(r["open"])
        else:
            price = float(r["amount"]) / float(r["volume"]) if r["volume"] > 0 else np.nan
            low, high = float(r["low"]), float(r["high"])
        return blocked(side, not suspended, price, low, high, float(up), float(down), True), price
