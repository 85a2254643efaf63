"""Column contract of the raw market tables, shared by every source, validation and storage.

Every source (the simulated market, the landing zone, vendor adapters) returns frames with
exactly these columns in this order. Conventions:
- `date` is a tz-naive ``datetime64[ns]`` at midnight: the trading day.
- `ts` is a tz-aware ``datetime64[ns, Asia/Shanghai]`` timestamp (exchange local time).
- `symbol` is the exchange code with suffix, e.g. ``600000.SH``, ``000001.SZ``, ``688001.SH``.
- Prices are unadjusted CNY; volumes are in shares (not lots).
"""

from __future__ import annotations

LEVELS = 10

UNIVERSE = ["symbol", "name", "industry", "board", "list_date", "is_st"]

# Daily bars, unadjusted. `preclose` is the exchange's ex-rights previous close (it differs
# from yesterday's close on ex-dates). Suspended days keep a row with volume 0 and
# open = high = low = close = preclose.
BARS = [
    "date",
    "symbol",
    "open",
    "high",
    "low",
    "close",
    "preclose",
    "volume",
    "amount",
    "is_suspended",
    "is_st",
]

# Tick-by-tick trades. side: 1 buyer-initiated, -1 seller-initiated, 0 auction print.
# trade_id is unique and increasing per (symbol, trading day).
TRADES = ["ts", "symbol", "trade_id", "price", "volume", "side"]

# 10-level order-book snapshots: ts, symbol, then the bid prices of levels 1..10, the bid
# sizes, the ask prices and the ask sizes. Level 1 is the best price of its side.
BID_PX = [f"bid_px_{i}" for i in range(1, LEVELS + 1)]
BID_SZ = [f"bid_sz_{i}" for i in range(1, LEVELS + 1)]
ASK_PX = [f"ask_px_{i}" for i in range(1, LEVELS + 1)]
ASK_SZ = [f"ask_sz_{i}" for i in range(1, LEVELS + 1)]
ORDER_BOOK = ["ts", "symbol", *BID_PX, *BID_SZ, *ASK_PX, *ASK_SZ]

# News items as published (any time of day, weekends included); `sentiment` in [-1, 1] is
# optional (vendors that do not score news leave it NaN).
NEWS = ["news_id", "ts", "symbol", "title", "body", "source", "sentiment"]

# Corporate actions as announced. On ex_date the exchange sets
#   preclose = (close_prev - cash_dividend) / ((1 + bonus_ratio) * split_ratio)
# i.e. per share held: `cash_dividend` CNY, `bonus_ratio` new shares (送转股), `split_ratio`
# new shares per old share for a split (1.0 = no split).
CORPORATE_ACTIONS = [
    "action_id",
    "symbol",
    "announce_date",
    "ex_date",
    "cash_dividend",
    "bonus_ratio",
    "split_ratio",
]
