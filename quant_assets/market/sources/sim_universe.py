"""The universe of the simulated market: symbols over boards, industries, names, ST flags, list
dates, and the per-stock parameters (beta, volatility, price level, liquidity, news flow)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from quant_assets.market.contract import columns as C
from quant_assets.market.rules import board_of, limit_pct
from quant_assets.market.sources import sim_text


@dataclass(frozen=True)
class Stocks:
    """The universe frame and per-stock arrays, in symbol order."""

    frame: pd.DataFrame  # UNIVERSE columns
    symbols: np.ndarray
    names: list[str]
    codes: list[int]  # numeric code, +1,000,000 on Shanghai: a per-symbol seed
    industry: np.ndarray  # index into sim_text.INDUSTRIES
    is_st: np.ndarray
    list_idx: np.ndarray  # trading-day index of the listing, -1 if listed before the start
    limit_pct: np.ndarray
    beta: np.ndarray
    vol: np.ndarray  # idiosyncratic daily volatility
    price0: np.ndarray  # price before the first day (the issue price of a new listing)
    turnover: np.ndarray  # CNY traded on an ordinary day
    n_trades: np.ndarray  # mean trades per day
    news_rate: np.ndarray  # news items per calendar day
    industry_vol: np.ndarray  # daily s.d. of each industry factor


def build_universe(
    rng: np.random.Generator, n: int, trading_days: pd.DatetimeIndex, trades_per_day: int
) -> Stocks:
    """Draw the universe; a few stocks list 3-60 trading days after the first day."""
    start = trading_days[0]
    # Code ranges per board (Shanghai main, Shenzhen main, ChiNext, STAR), their share of
    # the universe and the board's opening (earliest list date).
    pools = [
        (np.r_[600000:602000, 603000:604000, 605000:605600], "SH", 0.42, "1995-01-03"),
        (np.r_[1:1000, 2001:3000, 3001:3040], "SZ", 0.33, "1993-01-04"),
        (np.r_[300001:301600], "SZ", 0.15, "2009-10-30"),
        (np.r_[688001:688800], "SH", 0.10, "2019-07-22"),
    ]
    kind = rng.choice(len(pools), size=n, p=[p[2] for p in pools])
    symbols = np.empty(n, dtype=object)
    opened = np.empty(n, dtype="datetime64[ns]")
    for k, (codes, exchange, _, board_open) in enumerate(pools):
        sel = np.flatnonzero(kind == k)
        symbols[sel] = [f"{c:06d}.{exchange}" for c in rng.choice(codes, len(sel), False)]
        opened[sel] = min(pd.Timestamp(board_open), start - pd.Timedelta(days=400))
    order = np.argsort(symbols.astype(str))
    symbols = symbols[order].astype(str)
    opened = opened[order]
    board = np.array([board_of(s) for s in symbols])

    industry = np.empty(n, dtype=np.int64)
    for b in np.unique(board):
        allowed = [
            g
            for g, (name, _) in enumerate(sim_text.INDUSTRIES)
            if b == "main" or name not in sim_text.MAIN_BOARD_ONLY
        ]
        industry[board == b] = rng.choice(allowed, size=int((board == b).sum()))
    is_st = np.zeros(n, dtype=bool)
    main = np.flatnonzero(board == "main")
    is_st[rng.choice(main, min(len(main), max(1, round(0.04 * n))), replace=False)] = True
    # A few stocks list 3-60 trading days into the period (fewer days: after its end).
    list_idx = np.full(n, -1)
    new = rng.choice(np.flatnonzero(~is_st), max(1, round(0.03 * n)), replace=False)
    list_idx[new] = rng.integers(3, 60, len(new))

    # Others listed between the board's opening and 60 days before the start.
    span = (start - pd.Timedelta(days=60) - pd.DatetimeIndex(opened)).days.to_numpy()
    list_date = pd.DatetimeIndex(opened) + pd.to_timedelta(np.floor(rng.random(n) * span), unit="D")
    list_date = list_date.to_numpy(dtype="datetime64[ns]").copy()
    last = len(trading_days) - 1
    for i in new:
        d = int(list_idx[i])
        when = trading_days[min(d, last)] + pd.offsets.BDay(max(0, d - last))
        list_date[i] = when.to_datetime64()

    names = sim_text.company_names(rng, industry)
    st_prefix = np.where(rng.random(n) < 0.5, "ST", "*ST")
    names = [st_prefix[i] + nm if is_st[i] else nm for i, nm in enumerate(names)]
    frame = pd.DataFrame(
        {
            "symbol": symbols,
            "name": names,
            "industry": [sim_text.INDUSTRIES[g][0] for g in industry],
            "board": board,
            "list_date": list_date,
            "is_st": is_st,
        }
    )[C.UNIVERSE]

    # Stock parameters: beta, idiosyncratic volatility, price level, liquidity, news flow.
    growth = np.isin(board, ["chinext", "star"])
    bank = industry == 0
    code_ints = [int(s[:6]) + (10**6 if s.endswith(".SH") else 0) for s in symbols]
    pct = np.array([limit_pct(b, st) for b, st in zip(board, is_st, strict=True)])
    beta = np.clip(rng.normal(1.0, 0.2, n), 0.4, 1.6)
    vol = 0.015 * np.exp(rng.normal(0.0, 0.25, n)) * np.where(growth, 1.3, 1.0)
    vol *= np.where(bank, 0.6, 1.0) * np.where(is_st, 1.2, 1.0)
    vol = np.clip(vol, 0.007, 0.04)
    price = np.exp(rng.normal(np.log(14.0), 0.75, n)) * np.where(board == "star", 2.0, 1.0)
    price = np.where(bank, 0.4 * price, price)
    price = np.where(is_st, rng.uniform(2.5, 6.0, n), price)
    price0 = np.round(np.clip(price, 2.5, 250.0), 2)
    turnover = np.exp(rng.normal(np.log(3e8), 0.8, n))  # CNY on an ordinary day
    n_base = np.maximum(trades_per_day * np.exp(rng.normal(0.0, 0.4, n)), 20)
    news_rate = np.clip(np.exp(rng.normal(np.log(0.08), 0.5, n)), 0.02, 0.4)
    industry_vol = rng.uniform(0.006, 0.010, len(sim_text.INDUSTRIES))
    return Stocks(
        frame=frame,
        symbols=symbols,
        names=names,
        codes=code_ints,
        industry=industry,
        is_st=is_st,
        list_idx=list_idx,
        limit_pct=pct,
        beta=beta,
        vol=vol,
        price0=price0,
        turnover=turnover,
        n_trades=n_base,
        news_rate=news_rate,
        industry_vol=industry_vol,
    )
