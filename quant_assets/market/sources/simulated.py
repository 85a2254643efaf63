"""A seeded, deterministic simulated China A-share market with planted alphas of known strength.

The default market-data source of the platform: the demo and most tests run on it, and tests
assert that the pipeline finds its alphas. Day-level state (prices, suspensions, corporate
actions, news, the latent signals) is simulated once in ``__init__``; trades and order-book
snapshots are generated per day on demand, and the daily bars are aggregated from those very
trades (see `sim_intraday`).

Every random draw of a day comes from a generator seeded by (seed, stream, date), and the walk
only looks backwards, so a market over a longer range agrees with a shorter one on their
shared first days (a corporate action whose ex-date falls after the last day is not reported).

A day's adjusted close-to-close return of stock i::

    r = mu + beta_i * market + industry + sigma_i * t4 + jump,
    mu = mu_imbalance + mu_news + mu_reversal            (the planted alphas, `AlphaStrengths`)

It moves a latent fair price; the traded close is the fair price on the 0.01 tick clipped to
the day's price limits, so a limit move is caught up on the following days.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import pandas as pd

from quant_assets.calendar import TZ
from quant_assets.market.contract import columns as C
from quant_assets.market.rules import LOT_SIZE, price_limits, round_price
from quant_assets.market.sources import sim_text
from quant_assets.market.sources.sim_intraday import (
    DayTrades,
    aggregate,
    simulate_book,
    simulate_trades,
    snapshot_times,
)
from quant_assets.market.sources.sim_universe import build_universe

# Independent random streams; every generator is seeded by [seed, stream, ...].
_UNIVERSE, _DAY, _INTRADAY, _BOOK = range(4)

MARKET_VOL = 0.011  # daily s.d. of the market factor
INTRADAY_VOL = 1.2  # intraday path volatility as a fraction of the stock's daily volatility
NEWS_DRIFT = np.array([1.0, 0.8, 0.6, 0.4, 0.2])  # news loading on trading days t+1 ... t+5
SUSPEND_PROB = 0.003  # daily chance that a suspension spell starts (mean length ~2.2 days)
ACTION_PROB = 1 / 300  # daily chance that a listed stock announces a corporate action
# Approximate population s.d. of each signal, so that a strength is the s.d. of its return.
IMBALANCE_SCALE = 0.52  # s.d. of tanh(0.7 z), z ~ N(0, 1)
NEWS_SCALE = 0.15  # daily mean sentiment, 0 on days without news
REVERSAL_SCALE = 0.045  # cross-sectionally demeaned 5-day return

TRUTH = [
    "date", "symbol", "is_suspended", "closing_imbalance", "news_sentiment", "news_count",
    "reversal_5d", "mu_imbalance", "mu_news", "mu_reversal", "expected_return",
    "market_return", "industry_return", "idio_return",
]  # fmt: skip


@dataclass(frozen=True)
class AlphaStrengths:
    """Per-day cross-sectional strengths of the planted alphas.

    Unit: the (approximate) cross-sectional standard deviation of the next-day expected return
    an alpha induces, in daily return units (0.001 = 10 bp per s.d. of the signal). Against a
    cross-sectional residual volatility near 2%, strength s gives a next-day IC of about s/0.02.
    """

    # Closing order-book imbalance (levels 1-5 of the last continuous snapshot,
    # (bid - ask) / (bid + ask)) -> next-day return.
    order_book_imbalance: float = 0.0009
    # Daily mean news sentiment -> drift over the next five trading days (the strength times
    # 1, 0.8, 0.6, 0.4, 0.2 on days t+1 ... t+5).
    news_sentiment: float = 0.0012
    # Minus the past 5-day return (cross-sectionally demeaned) -> next-day return.
    reversal: float = 0.002


def _cents(x) -> np.ndarray:
    return np.rint(np.asarray(x, dtype=float) * 100).astype(np.int64)


def _as_days(trading_days) -> pd.DatetimeIndex:
    days = pd.DatetimeIndex(trading_days)
    if days.tz is not None:
        days = days.tz_localize(None)
    days = days.astype("datetime64[ns]")
    if len(days) == 0 or not days.is_monotonic_increasing or not days.is_unique:
        raise ValueError("trading_days must be a non-empty increasing index of unique dates")
    if (days != days.normalize()).any():
        raise ValueError("trading_days must be dates (midnight timestamps)")
    return days


def _local_ts(day: pd.Timestamp, ms: np.ndarray) -> pd.DatetimeIndex:
    """Exchange-local tz-aware timestamps from milliseconds after midnight of `day`."""
    ns = day.value + ms.astype(np.int64) * 1_000_000
    return pd.DatetimeIndex(ns.view("datetime64[ns]")).tz_localize(TZ)


class SimulatedMarket:
    """A simulated A-share market over `trading_days` (see the module docstring).

    ``trades_per_day`` is the mean number of trades per symbol-day (liquid names get more);
    ``snapshot_seconds`` must divide 60 so that 14:57:00 is a snapshot.
    """

    def __init__(
        self,
        trading_days: pd.DatetimeIndex,
        n_symbols: int = 100,
        seed: int = 7,
        alphas: AlphaStrengths = AlphaStrengths(),  # noqa: B008 (frozen: a safe default)
        snapshot_seconds: int = 3,
        trades_per_day: int = 600,
    ) -> None:
        if n_symbols < 5:
            raise ValueError("n_symbols must be at least 5")
        if snapshot_seconds <= 0 or 60 % snapshot_seconds:
            raise ValueError("snapshot_seconds must divide 60 (1, 2, 3, 4, 5, 6, 10, ...)")
        if trades_per_day < 20:
            raise ValueError("trades_per_day must be at least 20")
        self.trading_days = _as_days(trading_days)
        self.n_symbols, self.seed, self.alphas = n_symbols, seed, alphas
        self.snapshot_seconds, self.trades_per_day = snapshot_seconds, trades_per_day
        self._ordinals = [d.toordinal() for d in self.trading_days]
        self._aggregates: dict[int, tuple[np.ndarray, ...]] = {}
        self._day_trades = lru_cache(maxsize=2)(self._simulate_trades)
        rng = np.random.default_rng([seed, _UNIVERSE])
        self._u = build_universe(rng, n_symbols, self.trading_days, trades_per_day)
        self._simulate_days()

    # ------------------------------------------------------------------ public API
    def universe(self) -> pd.DataFrame:
        """All symbols with name, industry, board, list date and ST flag (UNIVERSE columns).

        A few symbols list during the simulated period (no bars before their list date); one
        whose list date falls after the last trading day has no bars at all.
        """
        return self._u.frame.copy()

    def daily_bars(self, start=None, end=None) -> pd.DataFrame:
        """Unadjusted daily bars of every listed symbol in [start, end], sorted (date, symbol)."""
        parts = []
        for t in self._day_range(start, end):
            on = np.flatnonzero(self._listed[t])
            susp = self._susp[t, on]
            pre = self._i64["pre"][t, on]
            high, low = pre.copy(), pre.copy()
            volume, amount = np.zeros(len(on), np.int64), np.zeros(len(on))
            h, lo, lots, amt = self._day_aggregates(t)
            high[~susp], low[~susp], volume[~susp], amount[~susp] = h, lo, lots * LOT_SIZE, amt
            parts.append(
                {
                    "date": np.full(len(on), self.trading_days[t].to_datetime64()),
                    "symbol": self._u.symbols[on],
                    "open": self._i64["open"][t, on] / 100,
                    "high": high / 100,
                    "low": low / 100,
                    "close": self._i64["close"][t, on] / 100,
                    "preclose": pre / 100,
                    "volume": volume,
                    "amount": amount,
                    "is_suspended": susp,
                    "is_st": self._u.is_st[on],
                }
            )
        return self._frame(parts, C.BARS)

    def trades(self, date) -> pd.DataFrame:
        """Tick trades of one trading day, all symbols, in (symbol, time) order (TRADES)."""
        t = self._day_index(date)
        active, tr = self._day_trades(t)
        j = np.arange(len(tr.price_c)) - np.repeat(tr.starts, tr.counts)
        return pd.DataFrame(
            {
                "ts": _local_ts(self.trading_days[t], tr.clock_ms),
                "symbol": np.repeat(self._u.symbols[active], tr.counts),
                "trade_id": j + 1,
                "price": tr.price_c / 100,
                "volume": tr.lots * LOT_SIZE,
                "side": tr.side,
            }
        )[C.TRADES]

    def order_book(self, date, symbols=None) -> pd.DataFrame:
        """10-level snapshots every `snapshot_seconds` of the continuous sessions (ORDER_BOOK).

        Sorted (symbol, ts). An empty level (beyond the price limits, or the ask side at
        limit-up and the bid side at limit-down) has a NaN price and size 0. Suspended or
        unlisted symbols have no snapshots. `symbols` selects a subset; each symbol's book
        depends only on (seed, date, symbol), so a subset equals the filtered full book.
        """
        t = self._day_index(date)
        active, tr = self._day_trades(t)
        pos = np.arange(len(active))
        if symbols is not None:
            wanted = np.asarray(list([symbols] if isinstance(symbols, str) else symbols), str)
            unknown = sorted(set(wanted) - set(self._u.symbols))
            if unknown:
                raise ValueError(f"unknown symbols: {unknown[:5]}")
            pos = pos[np.isin(self._u.symbols[active], wanted)]
        snap = snapshot_times(self.snapshot_seconds)
        books = []
        for k in pos:
            i, sl = active[k], slice(tr.starts[k], tr.starts[k] + tr.counts[k])
            rng = np.random.default_rng([self.seed, _BOOK, self._ordinals[t], self._u.codes[i]])
            books.append(
                simulate_book(
                    rng, snap, tr.clock_ms[sl], tr.price_c[sl], tr.side[sl],
                    up=int(self._i64["up"][t, i]), down=int(self._i64["down"][t, i]),
                    depth=float(self._f["lot"][t, i]),
                    close_lots=(int(self._i64["bid5"][t, i]), int(self._i64["ask5"][t, i])),
                )
            )  # fmt: skip
        frame = pd.DataFrame(
            {
                "ts": _local_ts(self.trading_days[t], np.tile(snap, len(books))),
                "symbol": np.repeat(self._u.symbols[active[pos]], len(snap)),
            }
        )
        levels = range(1, C.LEVELS + 1)
        blocks = [frame]
        for side in ("bid", "ask"):  # blocks in the contract's order: prices, then sizes
            empty = np.zeros((0, C.LEVELS), np.int64)
            price = np.vstack([getattr(b, f"{side}_px") for b in books] or [empty])
            lots = np.vstack([getattr(b, f"{side}_lots") for b in books] or [empty])
            px = np.where(lots > 0, price / 100, np.nan)
            blocks.append(pd.DataFrame(px, columns=[f"{side}_px_{i}" for i in levels]))
            sz = lots * LOT_SIZE
            blocks.append(pd.DataFrame(sz, columns=[f"{side}_sz_{i}" for i in levels]))
        out = pd.concat(blocks, axis=1)
        assert list(out.columns) == C.ORDER_BOOK
        return out

    def news(self, date) -> pd.DataFrame:
        """News published after the previous trading day up to and including `date` (NEWS).

        Items come at any time of day, weekends included; for the first trading day the window
        is that day only. Sorted by ts; `news_id` is stable for a given seed and start day.
        """
        t = self._day_index(date)
        items = self._items[self._items["t"] == t].sort_values(["ts", "i"], kind="stable")
        titles, bodies, sources = [], [], []
        for row in items.itertuples(index=False):
            name, symbol = self._u.names[row.i], self._u.symbols[row.i]
            if row.action >= 0:
                act = self._actions[row.action]
                ex = (
                    "TBD"
                    if act.ex >= len(self._ordinals)
                    else f"{self.trading_days[act.ex]:%Y-%m-%d}"
                )
                title, body = sim_text.action_text(
                    row.lang, name, symbol, act.cash, act.bonus, act.split, ex
                )
                source = sim_text.FILING_SOURCE
            else:
                bucket = int(sim_text.sentiment_bucket(np.array([row.sentiment]))[0])
                title, body = sim_text.news_text(
                    bucket, row.lang, row.variant, name, symbol, row.number
                )
                source = sim_text.SOURCES[row.source]
            titles.append(title)
            bodies.append(body)
            sources.append(source)
        day = self.trading_days[t].strftime("%Y%m%d")
        return pd.DataFrame(
            {
                "news_id": [f"SIMN-{day}-{k:05d}" for k in range(len(items))],
                "ts": pd.DatetimeIndex(items["ts"]).astype("datetime64[ns]").tz_localize(TZ),
                "symbol": self._u.symbols[items["i"].to_numpy()],
                "title": titles,
                "body": bodies,
                "source": sources,
                "sentiment": items["sentiment"].to_numpy(float),
            }
        )[C.NEWS]

    def delivery(self, kind: str, date) -> pd.DataFrame:
        """The day's file of `kind` (bars, trades, order_book, news, corporate_actions) as the
        simulated vendor delivers it to the landing zone."""
        frames = {
            "bars": lambda: self.daily_bars(date, date),
            "trades": lambda: self.trades(date),
            "order_book": lambda: self.order_book(date),
            "news": lambda: self.news(date),
            "corporate_actions": lambda: self.corporate_actions(date),
        }
        if kind not in frames:
            raise ValueError(f"unknown kind {kind!r}; expected one of {list(frames)}")
        return frames[kind]()

    def corporate_actions(self, date) -> pd.DataFrame:
        """Corporate actions announced in the same calendar window as ``news(date)``."""
        t = self._day_index(date)
        rows = [a for a in self._actions if a.t == t and a.ex < len(self._ordinals)]
        return pd.DataFrame(
            {
                "action_id": [
                    f"SIMCA-{a.announce:%Y%m%d}-{self._u.symbols[a.i][:6]}" for a in rows
                ],
                "symbol": self._u.symbols[[a.i for a in rows]],
                "announce_date": pd.DatetimeIndex(
                    [a.announce for a in rows], dtype="datetime64[ns]"
                ),
                "ex_date": self.trading_days[[a.ex for a in rows]],
                "cash_dividend": np.array([a.cash for a in rows], dtype=float),
                "bonus_ratio": np.array([a.bonus for a in rows], dtype=float),
                "split_ratio": np.array([a.split for a in rows], dtype=float),
            }
        )[C.CORPORATE_ACTIONS]

    def truth(self, start=None, end=None) -> pd.DataFrame:
        """Latent drivers per listed (date, symbol), for tests of the planted alphas.

        Signals are as of the close of `date`: `closing_imbalance` (exactly the imbalance of
        levels 1-5 in the last continuous snapshot; NaN when suspended), `news_sentiment` (mean
        sentiment of news(date), 0 without news), `news_count`, `reversal_5d` (minus the
        compounded return of the last five bars). The ``mu_*`` columns are the expected return
        *of* `date` (previous close to close) planted by earlier signals: e.g. mu_imbalance on
        t+1 = strength * closing_imbalance(t) / IMBALANCE_SCALE. The return components add up
        to the fair-price log return: expected + market + industry + idiosyncratic (with jumps).
        """
        f = self._f
        parts = []
        for t in self._day_range(start, end):
            on = np.flatnonzero(self._listed[t])
            mu = [f[k][t, on] for k in ("mu_imb", "mu_news", "mu_rev")]
            parts.append(
                dict(
                    zip(
                        TRUTH,
                        [
                            np.full(len(on), self.trading_days[t].to_datetime64()),
                            self._u.symbols[on],
                            self._susp[t, on],
                            f["imb"][t, on],
                            f["news"][t, on],
                            self._news_count[t, on],
                            f["rev"][t, on],
                            *mu,
                            mu[0] + mu[1] + mu[2],
                            f["mkt"][t, on],
                            f["ind"][t, on],
                            f["idio"][t, on],
                        ],
                        strict=True,
                    )
                )
            )
        return self._frame(parts, TRUTH)

    # ------------------------------------------------------------------ helpers
    def _day_index(self, date) -> int:
        ts = pd.Timestamp(date)
        if ts.tzinfo is not None:
            ts = ts.tz_convert(TZ).tz_localize(None)
        t = int(self.trading_days.get_indexer([ts])[0])
        if t < 0:
            raise ValueError(
                f"{date} is not a trading day of this simulated market "
                f"({self.trading_days[0].date()} .. {self.trading_days[-1].date()})"
            )
        return t

    def _day_range(self, start, end) -> range:
        lo = 0 if start is None else self.trading_days.searchsorted(pd.Timestamp(start), "left")
        hi = len(self.trading_days)
        if end is not None:
            hi = self.trading_days.searchsorted(pd.Timestamp(end), "right")
        return range(int(lo), int(hi))

    @staticmethod
    def _frame(parts: list[dict], columns: list[str]) -> pd.DataFrame:
        if not parts:
            return pd.DataFrame({c: [] for c in columns})
        data = {c: np.concatenate([p[c] for p in parts]) for c in columns}
        frame = pd.DataFrame(data)
        frame["date"] = frame["date"].astype("datetime64[ns]")
        return frame

    def _simulate_trades(self, t: int) -> tuple[np.ndarray, DayTrades]:
        """Trades of day t for the symbols trading that day (listed, not suspended)."""
        active = np.flatnonzero(self._listed[t] & ~self._susp[t])
        rng = np.random.default_rng([self.seed, _INTRADAY, self._ordinals[t]])
        i64 = self._i64
        trades = simulate_trades(
            rng,
            i64["open"][t, active],
            i64["close"][t, active],
            i64["up"][t, active],
            i64["down"][t, active],
            i64["n"][t, active],
            self._f["lot"][t, active],
            INTRADAY_VOL * self._u.vol[active],
        )
        return active, trades

    def _day_aggregates(self, t: int) -> tuple[np.ndarray, ...]:
        if t not in self._aggregates:
            self._aggregates[t] = aggregate(self._simulate_trades(t)[1])
        return self._aggregates[t]

    # ------------------------------------------------------------------ day level
    def _simulate_days(self) -> None:
        """Walk forward one trading day at a time; the state arrays are (days, symbols)."""
        n, d_count = self.n_symbols, len(self.trading_days)
        floats = ("ret", "imb", "rev", "news", "mu_imb", "mu_news", "mu_rev", "mkt", "ind", "idio")
        self._f = {k: np.full((d_count, n), np.nan) for k in (*floats, "lot")}
        ints = ("pre", "open", "close", "up", "down", "n", "bid5", "ask5")
        self._i64 = {k: np.zeros((d_count, n), np.int64) for k in ints}
        self._susp = np.zeros((d_count, n), bool)
        self._news_count = np.zeros((d_count, n), np.int64)
        self._listed = np.arange(d_count)[:, None] >= self._u.list_idx[None, :]
        self._actions: list[_Action] = []
        walk = _Walk(
            last_close=_cents(self._u.price0),
            fair=self._u.price0.astype(float),
            susp_left=np.zeros(n, np.int64),
            pending=np.full(n, -1),
            cash=np.zeros(n),
            bonus=np.zeros(n),
            split=np.ones(n),
        )
        items = []
        for t in range(d_count):
            rng = np.random.default_rng([self.seed, _DAY, self._ordinals[t]])
            announced = self._step(t, rng, walk)
            items.append(self._news_window(t, rng, announced))
        self._items = pd.concat(items, ignore_index=True)

    def _step(self, t: int, rng: np.random.Generator, w: _Walk) -> np.ndarray:
        """Prices, suspensions, signals and corporate actions of day t; returns the announcers."""
        n, a, f, i64 = self.n_symbols, self.alphas, self._f, self._i64
        market = MARKET_VOL * rng.standard_normal()
        ind_ret = self._u.industry_vol * rng.standard_normal(len(self._u.industry_vol))
        eps = rng.standard_t(4, n) / np.sqrt(2.0)  # unit variance, fat tails
        jump = np.where(rng.random(n) < 0.003, rng.normal(0.0, 0.06, n), 0.0)
        susp_u, susp_len = rng.random(n), rng.geometric(0.45, n)
        gap_z, imb_z, act_z = rng.standard_normal((3, n))
        ipo_u, depth_u, act_u, act_kind, act_size, act_lag, act_day = rng.random((7, n))

        on, new = self._listed[t], self._u.list_idx == t
        w.last_close[new] = _cents(self._u.price0[new])
        w.fair[new] = self._u.price0[new] * np.exp(0.1 + 0.3 * ipo_u[new])  # the IPO pop
        # Ex-rights day: preclose = (close_prev - cash) / ((1 + bonus) * split) on the tick; the
        # fair price moves the same way, so the adjusted return is unaffected.
        pre = w.last_close.copy()
        ex = on & (w.pending == t)
        div = (1 + w.bonus[ex]) * w.split[ex]
        pre[ex] = _cents(round_price((w.last_close[ex] / 100 - w.cash[ex]) / div))
        w.fair[ex] = (w.fair[ex] - w.cash[ex]) / div
        w.pending[ex] = -1
        up, down = (_cents(x) for x in price_limits(pre / 100, self._u.limit_pct))

        # Suspensions come in spells; a listing day is never suspended.
        susp = on & (w.susp_left > 0)
        w.susp_left[susp] -= 1
        begin = on & ~new & ~susp & (susp_u < SUSPEND_PROB)
        w.susp_left[begin] = susp_len[begin] - 1
        susp |= begin

        # The planted alphas: signals seen at earlier closes set today's expected return.
        mu_imb = mu_news = mu_rev = np.zeros(n)
        if t >= 1:
            mu_imb = a.order_book_imbalance * np.nan_to_num(f["imb"][t - 1]) / IMBALANCE_SCALE
            rev = f["rev"][t - 1]
            if np.isfinite(rev).any():
                mu_rev = a.reversal * np.nan_to_num(rev - np.nanmean(rev)) / REVERSAL_SCALE
            k = min(t, len(NEWS_DRIFT))
            past = f["news"][t - k : t][::-1]  # days t-1, t-2, ...
            mu_news = a.news_sentiment * (NEWS_DRIFT[:k] @ np.nan_to_num(past)) / NEWS_SCALE
        industry = ind_ret[self._u.industry]
        idio = self._u.vol * eps + jump
        w.fair = np.where(
            on,
            w.fair * np.exp(mu_imb + mu_news + mu_rev + self._u.beta * market + industry + idio),
            w.fair,
        )

        close = np.where(susp, pre, np.clip(_cents(w.fair), down, up))
        gap = 0.35 * np.log(close / pre) + 0.004 * gap_z  # the open anticipates part of the day
        open_ = np.where(susp, pre, np.clip(_cents(pre / 100 * np.exp(gap)), down, up))
        ret = np.where(on, close / pre - 1, np.nan)
        f["ret"][t] = ret
        rev_signal = np.full(n, np.nan)
        if t >= 4:  # minus the compounded return of the last five bars (no listing-day return)
            ok = t - 4 > self._u.list_idx
            rev_signal[ok] = 1 - np.prod(1 + f["ret"][t - 4 : t + 1, ok], axis=0)

        # Activity: more and bigger trades on big moves; CNY turnover stable across price levels.
        activity = np.exp(0.3 * act_z) * (1 + 5 * np.abs(np.nan_to_num(ret)))
        n_trades = np.maximum(20, np.rint(self._u.n_trades * np.sqrt(activity))).astype(np.int64)
        lot = self._u.turnover * activity / (pre / 100 * LOT_SIZE * n_trades)
        # Closing book: `total` lots in levels 1-5, split between bid and ask by the latent
        # imbalance tanh(0.7 z); a limit close leaves one side empty (imbalance +-1).
        total = np.maximum(20, np.rint(10 * lot * (0.5 + depth_u))).astype(np.int64)
        bid5 = np.clip(np.rint(total * (1 + np.tanh(0.7 * imb_z)) / 2), 5, total - 5)
        imb = np.where(close == up, 1.0, np.where(close == down, -1.0, (2 * bid5 - total) / total))

        f["imb"][t] = np.where(on & ~susp, imb, np.nan)
        f["rev"][t], f["lot"][t] = rev_signal, lot
        listed_only = {
            "mu_imb": mu_imb, "mu_news": mu_news, "mu_rev": mu_rev,
            "mkt": self._u.beta * market, "ind": industry, "idio": idio,
        }  # fmt: skip
        for key, val in listed_only.items():
            f[key][t] = np.where(on, val, np.nan)
        day_ints = {
            "pre": pre, "open": open_, "close": close, "up": up, "down": down,
            "n": n_trades, "bid5": bid5, "ask5": total - bid5,
        }  # fmt: skip
        for key, val in day_ints.items():
            i64[key][t] = val
        self._susp[t] = susp
        w.last_close = np.where(on, close, w.last_close)

        # Corporate actions: announced in this day's calendar window, ex 5-20 trading days later.
        first, n_cal = self._window(t)
        announced = np.flatnonzero(on & ~new & (w.pending < 0) & (act_u < ACTION_PROB))
        for i in announced:
            # A 0.5-3% cash dividend; shares above 8 CNY may add bonus shares, and above 30 CNY
            # one action in five is a 2-for-1 split instead.
            cash, bonus, split = np.round(pre[i] * (0.05 + 0.25 * act_size[i])) / 1000, 0.0, 1.0
            if act_kind[i] < 0.2 and pre[i] > 3000:
                cash, split = 0.0, 2.0
            elif 0.2 <= act_kind[i] < 0.45 and pre[i] > 800:
                bonus = (0.2, 0.3, 0.4, 0.5, 1.0)[int(act_kind[i] * 100) % 5]
            w.pending[i] = t + 5 + int(act_lag[i] * 16)
            w.cash[i], w.bonus[i], w.split[i] = cash, bonus, split
            announce = first + pd.Timedelta(days=int(act_day[i] * n_cal))
            self._actions.append(_Action(t, announce, int(w.pending[i]), cash, bonus, split, i))
        return announced

    def _window(self, t: int) -> tuple[pd.Timestamp, int]:
        """First calendar day and length of day t's news window (previous trading day, t]."""
        day = self.trading_days[t]
        first = day if t == 0 else self.trading_days[t - 1] + pd.Timedelta(days=1)
        return first, (day - first).days + 1

    def _news_window(self, t: int, rng: np.random.Generator, announced: np.ndarray) -> pd.DataFrame:
        """News skeletons of day t's window; their text is written when news(date) is asked."""
        n, on = self.n_symbols, self._listed[t]
        first, n_cal = self._window(t)
        counts = rng.poisson(self._u.news_rate * n_cal * on)
        sym = np.repeat(np.arange(n), counts)
        m = len(sym)
        day_off = rng.integers(0, n_cal, m)
        # Time of day: 25% pre-market (07:00-09:25), 35% in trading hours, 40% in the evening
        # (15:00-23:30), when most filings come out.
        u = rng.random(m)
        sec = np.select(
            [u < 0.25, u < 0.6],
            [25200 + u / 0.25 * 8700, 34200 + (u - 0.25) / 0.35 * 19800],
            54000 + (u - 0.6) / 0.4 * 30600,
        )
        sentiment = np.clip(np.round(rng.normal(0.0, 0.45, m), 2), -1.0, 1.0) + 0.0  # no -0.0
        lang, variant, number, source = rng.random((4, m))
        ts = first + pd.to_timedelta(day_off * 86400 + np.floor(sec), unit="s")
        # Each corporate-action filing is a news item too, at 18:00-18:59 on its announce day.
        k = len(announced)
        acts = self._actions[len(self._actions) - k :]
        a_lang, a_time = rng.random((2, k))
        a_ts = [
            x.announce + pd.Timedelta(hours=18, seconds=int(3600 * v))
            for x, v in zip(acts, a_time, strict=True)
        ]
        frame = pd.DataFrame(
            {
                "t": t,
                "i": np.concatenate([sym, announced]),
                "ts": pd.DatetimeIndex(list(ts) + a_ts).astype("datetime64[ns]"),
                "sentiment": np.concatenate([sentiment, np.full(k, 0.1)]),
                "lang": np.concatenate([lang < 0.4, a_lang < 0.4]).astype(int),
                "variant": np.concatenate([np.floor(variant * 3), np.zeros(k)]).astype(int),
                "number": np.concatenate([number, np.zeros(k)]),
                "source": np.concatenate(
                    [np.floor(source * len(sim_text.SOURCES)), np.zeros(k)]
                ).astype(int),
                "action": np.concatenate(
                    [np.full(m, -1), np.arange(len(self._actions) - k, len(self._actions))]
                ),
            }
        )
        count = np.bincount(frame["i"], minlength=n)
        self._news_count[t] = count
        self._f["news"][t] = np.where(
            on,
            np.bincount(frame["i"], weights=frame["sentiment"], minlength=n) / np.maximum(count, 1),
            np.nan,
        )
        return frame


@dataclass
class _Walk:
    """Mutable per-symbol state carried from one day to the next."""

    last_close: np.ndarray  # cents
    fair: np.ndarray  # latent fair price, CNY
    susp_left: np.ndarray  # remaining days of a suspension spell
    pending: np.ndarray  # ex-day index of the announced, not yet effective, action (-1: none)
    cash: np.ndarray
    bonus: np.ndarray
    split: np.ndarray


class _Action(NamedTuple):
    t: int  # trading day whose window holds the announcement
    announce: pd.Timestamp
    ex: int  # ex-date index (may lie beyond the simulated days)
    cash: float
    bonus: float
    split: float
    i: int  # symbol index
