"""Microstructure and liquidity factors from one day's tick trades and order-book snapshots.

`daily_microstructure` turns a day's TRADES and ORDER_BOOK frames (all symbols; the contracts
of `quant_assets.market.contract.columns`) into one row of factors per symbol. The individual factors
are pure functions in `microstructure_book` (imbalance, spreads, depth, OFI, realised moments)
and `microstructure_trades` (effective spread, activity, Amihud, Kyle's lambda, closing
auction), re-exported here; each documents its formula and units.

Conventions: times are exchange-local; only continuous-session snapshots (09:30-11:30,
13:00-14:57) count as quotes; duplicated (symbol, ts) snapshots keep the last row; a
suspended symbol (absent from both frames) gets no row unless `symbols` asks for it, then an
all-NaN row. A symbol with a book but no trades has trade factors NaN (intensity 0).
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from quant_assets.factors.microstructure_book import (
    DEPTHS,
    depth_notional,
    mid_on_grid,
    ofi_increments,
    order_book_imbalance,
    order_flow_imbalance,
    quoted_spread,
    realized_moments,
)
from quant_assets.factors.microstructure_prep import (
    BookArrays,
    DateLike,
    TradeArrays,
    prepare,
    prepare_book,
    prepare_trades,
)
from quant_assets.factors.microstructure_trades import (
    amihud_illiquidity,
    closing_auction_stats,
    effective_spread,
    kyle_lambda,
    trade_activity,
)

COLUMNS = [
    *(f"imbalance_{k}_mean" for k in DEPTHS),
    *(f"imbalance_{k}_close" for k in DEPTHS),
    "quoted_spread",
    "effective_spread",
    "depth5_bid",
    "depth5_ask",
    "ofi",
    "realized_vol",
    "realized_skew",
    "trade_intensity",
    "buy_volume_share",
    "avg_trade_size",
    "amihud",
    "kyle_lambda",
    "auction_volume_share",
    "closing_auction_return",
    "last30_return",
    "last30_volume_share",
]


def daily_microstructure(
    trades: pd.DataFrame,
    book: pd.DataFrame,
    date: DateLike,
    preclose: pd.Series | None = None,
    symbols: Iterable[str] | None = None,
    rv_minutes: int = 1,
    lambda_minutes: int = 5,
) -> pd.DataFrame:
    """All microstructure factors of trading day `date`, indexed by symbol (`COLUMNS`).

    `book` is the day's ORDER_BOOK frame or its per-snapshot summary (`SUMMARY_COLUMNS` of
    `microstructure_prep`, what the asset reads, computed by ClickHouse).

    Rows: the sorted union of the symbols in `trades` and `book` on that day, or `symbols`
    when given (missing ones -> NaN rows). `preclose` (per symbol, the exchange's previous
    close) makes Amihud's return close-to-close; without it the open-to-close return is used.
    Realised moments use `rv_minutes` bars, Kyle's lambda `lambda_minutes` bars.
    """
    t, b = prepare(trades, book, date)
    parts = [
        order_book_imbalance(b),
        quoted_spread(b),
        effective_spread(t, b),
        depth_notional(b),
        order_flow_imbalance(b),
        realized_moments(b, minutes=rv_minutes),
        trade_activity(t),
        amihud_illiquidity(t, preclose=preclose),
        kyle_lambda(t, b, minutes=lambda_minutes),
        closing_auction_stats(t),
    ]
    out = pd.concat(parts, axis=1)[COLUMNS]
    out.index.name = "symbol"
    if symbols is not None:
        out = out.reindex(pd.Index(symbols, name="symbol"))
    return out


__all__ = [
    "COLUMNS",
    "BookArrays",
    "TradeArrays",
    "amihud_illiquidity",
    "closing_auction_stats",
    "daily_microstructure",
    "depth_notional",
    "effective_spread",
    "kyle_lambda",
    "mid_on_grid",
    "ofi_increments",
    "order_book_imbalance",
    "order_flow_imbalance",
    "prepare",
    "prepare_book",
    "prepare_trades",
    "quoted_spread",
    "realized_moments",
    "trade_activity",
]
