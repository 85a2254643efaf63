"""Intraday detail of the simulated market: tick trades and 10-level order-book snapshots.

Pure numpy on flat arrays. All prices are integer cents (so the 0.01 tick and the limit prices
compare exactly) and all sizes integer board lots; conversion to CNY and shares happens when
the frames are built. Times are integer milliseconds after local midnight.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time

import numpy as np

from quant_assets.market.rules import AFTERNOON, CLOSE_AUCTION, MORNING, OPEN_AUCTION, tod_ns


def _ms(t: time) -> int:
    return tod_ns(t) // 1_000_000


OPEN_MS = _ms(OPEN_AUCTION)
CLOSE_MS = _ms(CLOSE_AUCTION)
AM_START, AM_END = _ms(MORNING[0]), _ms(MORNING[1])
PM_START, PM_END = _ms(AFTERNOON[0]), _ms(AFTERNOON[1])
AM_LEN = AM_END - AM_START
CONTINUOUS_MS = AM_LEN + (PM_END - PM_START)  # 14,220,000 ms of continuous trading


@dataclass
class DayTrades:
    """Trades of one day for m symbols as flat arrays, symbol-major, in time order per symbol."""

    counts: np.ndarray  # trades per symbol, the opening and closing auction prints included
    starts: np.ndarray  # offset of each symbol's first trade
    clock_ms: np.ndarray  # ms after midnight, strictly increasing per symbol
    price_c: np.ndarray  # cents
    lots: np.ndarray  # board lots (volume = 100 * lots)
    side: np.ndarray  # 1 buyer-initiated, -1 seller-initiated, 0 auction print


def _segment_cumsum(x: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Cumulative sum restarting at every segment (one segment per symbol)."""
    c = np.cumsum(x)
    return c - np.repeat(c[starts] - x[starts], counts)


def simulate_trades(
    rng: np.random.Generator,
    open_c: np.ndarray,
    close_c: np.ndarray,
    up_c: np.ndarray,
    down_c: np.ndarray,
    n_trades: np.ndarray,
    lot_scale: np.ndarray,
    sigma: np.ndarray,
) -> DayTrades:
    """Trades of one day that open at `open_c` (09:25 auction) and close at `close_c` (15:00).

    In between, trade times are uniform over continuous trading time and log prices follow a
    Brownian bridge from the open to the close with daily volatility `sigma`, rounded to the
    tick and clipped to the limits. The bars are aggregated from these arrays, so they agree
    with the trades by construction.
    """
    m = len(open_c)
    counts = np.asarray(n_trades, dtype=np.int64)
    starts = np.cumsum(counts) - counts
    total = int(counts.sum())
    seg = np.repeat(np.arange(m), counts)
    j = np.arange(total) - starts[seg]
    first = j == 0
    last = j == counts[seg] - 1
    last_cont = j == counts[seg] - 2

    # Uniform order statistics from normalised cumulative exponential gaps: u = 0 at the open
    # print, 1 at the close print, sorted in between, without sorting.
    gaps = rng.standard_exponential(total)
    gaps[first] = 0.0
    cum = _segment_cumsum(gaps, starts, counts)
    u = cum / cum[starts + counts - 1][seg]

    # Millisecond clock, made strictly increasing per symbol: max-accumulate of (t - j)
    # restores order after flooring; the segment offset keeps symbols independent.
    offset = seg.astype(np.int64) * (4 * CONTINUOUS_MS)
    cont = np.floor(u * CONTINUOUS_MS).astype(np.int64) - j + offset
    cont = np.maximum.accumulate(cont) - offset + j
    cont = np.minimum(cont, CONTINUOUS_MS - 1)
    clock = np.where(cont < AM_LEN, AM_START + cont, PM_START + cont - AM_LEN)
    clock[first] = OPEN_MS
    clock[last] = CLOSE_MS

    # Brownian bridge in continuous-trading time from log(open) to log(close).
    du = np.diff(u, prepend=0.0)
    du[first] = 0.0
    w = _segment_cumsum(np.sqrt(np.maximum(du, 0.0)) * rng.standard_normal(total), starts, counts)
    bridge = w - u * w[starts + counts - 1][seg]
    lo, lc = np.log(open_c.astype(float)), np.log(close_c.astype(float))
    logp = lo[seg] + u * (lc - lo)[seg] + sigma[seg] * bridge
    up, down = up_c[seg], down_c[seg]
    price = np.clip(np.rint(np.exp(logp)).astype(np.int64), down, up)
    price[first] = open_c
    price[last] = close_c
    # The book at the end of continuous trading sits at a limit exactly when the close does
    # (the closing imbalance of a limit close is then +-1 by construction).
    at_up, at_down = (close_c == up_c)[seg], (close_c == down_c)[seg]
    inner = np.clip(price, down + 1, up - 1)
    price = np.where(last_cont, np.where(at_up | at_down, close_c[seg], inner), price)

    # Tick rule for the aggressor side; unchanged prices get a coin flip.
    move = np.sign(np.diff(price, prepend=price[:1]))
    coin = np.where(rng.random(total) < 0.5, 1, -1)
    side = np.where(move == 0, coin, move).astype(np.int64)
    side[first | last] = 0

    # Lognormal trade sizes (mean `lot_scale` lots); the auctions print larger blocks.
    size = lot_scale[seg] * np.exp(0.9 * rng.standard_normal(total) - 0.405)
    auction = lot_scale[seg] * (5.0 + 20.0 * rng.random(total))
    lots = np.ceil(np.where(first | last, auction, size)).astype(np.int64)
    return DayTrades(counts, starts, clock, price, np.maximum(lots, 1), side)


def aggregate(trades: DayTrades) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """High and low (cents), volume (lots) and amount (CNY) per symbol."""
    s = trades.starts
    if len(s) == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty, np.zeros(0)
    high = np.maximum.reduceat(trades.price_c, s)
    low = np.minimum.reduceat(trades.price_c, s)
    lots = np.add.reduceat(trades.lots, s)
    # cents x lots = CNY exactly (price/100 * 100 shares), so the amount is an integer sum.
    amount = np.add.reduceat(trades.price_c * trades.lots, s).astype(float)
    return high, low, lots, amount


def snapshot_times(snapshot_seconds: int) -> np.ndarray:
    """Snapshot clock times (ms) over both continuous sessions, ends included (09:30 ... 14:57)."""
    step = snapshot_seconds * 1000
    return np.concatenate(
        [np.arange(AM_START, AM_END + 1, step), np.arange(PM_START, PM_END + 1, step)]
    )


@dataclass
class Book:
    """Order-book levels of one symbol-day, shape (snapshots, 10); empty levels have size 0."""

    bid_px: np.ndarray  # cents
    bid_lots: np.ndarray
    ask_px: np.ndarray
    ask_lots: np.ndarray


def simulate_book(
    rng: np.random.Generator,
    snap_ms: np.ndarray,
    trade_ms: np.ndarray,
    trade_px: np.ndarray,
    trade_side: np.ndarray,
    up: int,
    down: int,
    depth: float,
    close_lots: tuple[int, int],
    levels: int = 10,
) -> Book:
    """Snapshots around the last trade at or before each snapshot time.

    The last trade price lies in [bid_1, ask_1] (at the ask after a buyer-initiated trade, at
    the bid after a seller-initiated one); the spread widens with the price. At limit-up the
    ask side is empty and the bid queue at the limit is large ("sealed"), symmetrically at
    limit-down. In the last snapshot, levels 1-5 hold exactly `close_lots` = (bid, ask) lots,
    which plants the closing imbalance.
    """
    s = len(snap_ms)
    idx = np.searchsorted(trade_ms, snap_ms, side="right") - 1
    p = trade_px[idx]
    side = trade_side[idx]
    uni = rng.random((s, 2 + 2 * (levels - 1)), dtype=np.float32)
    z = rng.standard_normal((s, 2 * levels), dtype=np.float32)

    spread = 1 + np.floor(uni[:, 0] * (1.0 + p / 2500.0)).astype(np.int64)
    pos = np.minimum(np.floor(uni[:, 1] * (spread + 1)).astype(np.int64), spread)
    below = np.where(side == 1, spread, np.where(side == -1, 0, pos))  # ticks from bid_1 to p
    at_up, at_down = p >= up, p <= down
    bid1 = np.where(at_up, up, np.maximum(p - below, down))
    ask1 = np.where(at_down, down, np.minimum(bid1 + spread, up))

    # Gap between adjacent levels in ticks: 1 (60%), 2 (25%), 3 (10%) or 5 (5%).
    g = uni[:, 2:]
    gaps = 1 + (g > 0.6).astype(np.int64) + (g > 0.85) + 2 * (g > 0.95)
    zero = np.zeros((s, 1), dtype=np.int64)
    bid_steps = np.cumsum(np.hstack([zero, gaps[:, : levels - 1]]), axis=1)
    ask_steps = np.cumsum(np.hstack([zero, gaps[:, levels - 1 :]]), axis=1)
    bid_px = bid1[:, None] - bid_steps
    ask_px = ask1[:, None] + ask_steps
    bid_ok = (bid_px >= down) & ~at_down[:, None]
    ask_ok = (ask_px <= up) & ~at_up[:, None]

    level_scale = depth * (1.0 + 0.1 * np.arange(levels))
    size = np.ceil(np.exp(0.8 * z - 0.32) * np.tile(level_scale, 2)).astype(np.int64)
    bid_lots = np.where(bid_ok, size[:, :levels], 0)
    ask_lots = np.where(ask_ok, size[:, levels:], 0)
    bid_lots[:, 0] *= np.where(at_up, 30, 1)  # the queue sealing a limit-up
    ask_lots[:, 0] *= np.where(at_down, 30, 1)

    # Closing snapshot: split the planted totals over the top five non-empty levels.
    if not (at_up[-1] or at_down[-1]):
        for lots, ok, total in (
            (bid_lots, bid_ok, close_lots[0]),
            (ask_lots, ask_ok, close_lots[1]),
        ):
            k = int(ok[-1, :5].sum())
            weights = rng.dirichlet(np.full(k, 2.0))
            lots[-1, :5] = 0
            lots[-1, :k] = 1 + rng.multinomial(total - k, weights)
    return Book(bid_px, bid_lots, ask_px, ask_lots)
