"""Daily bars as dense (date x symbol) arrays: what the execution model reads each day.

Built once per backtest from long bars in the daily landing file's columns; bars sorted by
(date, symbol) with every symbol on every date are viewed in place, without a copy. Holding
changes on an ex-date come from a corporate-actions table when one is given (cash per share,
bonus and split ratios); otherwise the execution model infers them from the exchange's
ex-rights `preclose`: the holding grows by close_prev / preclose, which keeps its value and
its exposure but cannot tell a cash dividend from bonus shares (pass `actions` for exact
cash and share counts).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from quant_assets.market.rules import board_of, limit_pct

LONG_LISTED = 1_000_000  # listed-day count of a stock already trading on the first date


def _codes(values: pd.Series) -> tuple[pd.Index, np.ndarray]:
    """Sorted distinct values and each row's position among them (fast for categoricals and
    for sorted values)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        cats = values.cat.categories
        order = np.argsort(np.asarray(cats, dtype=object).astype(str), kind="stable")
        rank = np.empty(len(cats), np.int64)
        rank[order] = np.arange(len(cats))
        return pd.Index(np.asarray(cats)[order]), rank[values.cat.codes.to_numpy()]
    arr = values.to_numpy()
    if len(arr) and arr.dtype.kind == "M" and not np.isnat(arr).any():
        step = arr[1:] != arr[:-1]
        if (arr[1:] >= arr[:-1]).all():
            codes = np.concatenate([[0], np.cumsum(step)])
            return pd.Index(arr[np.concatenate([[True], step])]), codes
    codes, uniques = pd.factorize(values, sort=True)
    return pd.Index(uniques), codes


@dataclass
class MarketPanel:
    """Arrays shaped (dates, symbols); prices in CNY, NaN where a symbol has no bar."""

    dates: pd.DatetimeIndex
    symbols: pd.Index
    bars: pd.DataFrame = field(repr=False)
    rows: np.ndarray | None = field(repr=False)  # flat cell of each bar; None: bars fill in order
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.dates), len(self.symbols)

    def column(self, name: str, fill=np.nan, dtype=float) -> np.ndarray:
        """The dense array of one bar column (`has_bar` for the cells holding a bar)."""
        key = (name, dtype)
        if key not in self._cache:
            values = True if name == "has_bar" else self.bars[name].to_numpy(dtype=dtype)
            if self.rows is None and name != "has_bar":
                out = values.reshape(self.shape)
            else:
                out = np.full(self.shape, fill, dtype=dtype)
                if self.rows is None:
                    out[...] = values
                else:
                    out.reshape(-1)[self.rows] = values
            self._cache[key] = out
        return self._cache[key]

    @property
    def has_bar(self) -> np.ndarray:
        return self.column("has_bar", False, bool)

    @property
    def suspended(self) -> np.ndarray:
        """Suspended, or a bar without volume: nothing can trade."""
        if "suspended" not in self._cache:
            flag = self.column("is_suspended", False, bool)
            vol = self.column("volume")
            self._cache["suspended"] = flag | (self.has_bar & ~(vol > 0))
        return self._cache["suspended"]

    @property
    def st(self) -> np.ndarray:
        return self.column("is_st", False, bool)

    @property
    def vwap(self) -> np.ndarray:
        if "vwap" not in self._cache:
            vol, amount, close = self.column("volume"), self.column("amount"), self.column("close")
            with np.errstate(invalid="ignore", divide="ignore"):
                self._cache["vwap"] = np.where(vol > 0, amount / vol, close)
        return self._cache["vwap"]

    def locate(self, index: pd.MultiIndex) -> tuple[np.ndarray, np.ndarray]:
        """Row and column of each (date, symbol); -1 where the panel does not hold it. Looks
        up the index's levels, not every row."""
        dates = pd.DatetimeIndex(index.levels[0])
        d = self.dates.get_indexer(dates)[index.codes[0]]
        s = self.symbols.get_indexer(index.levels[1].astype(str))[index.codes[1]]
        return d, s

    def listed_days(self, list_dates: pd.Series | None = None) -> np.ndarray:
        """Trading days since listing, counting today (1 on the listing day); a stock trading
        on the first date (or listed before it, by `list_dates`) counts as long listed."""
        days = np.cumsum(self.has_bar, axis=0, dtype=np.int64)
        if list_dates is None:
            before = self.has_bar[0]
        else:
            before = (pd.to_datetime(list_dates.reindex(self.symbols)) < self.dates[0]).to_numpy()
        return np.where(before, LONG_LISTED, 0) + days

    def limit_pcts(self, boards: pd.Series | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Each symbol's daily limit fraction by board, and whether the tighter ST limit
        applies to it when it is ST (main board only)."""
        board = (
            boards.reindex(self.symbols).fillna("main")
            if boards is not None
            else pd.Series([board_of(s) for s in self.symbols], index=self.symbols)
        )
        return board.map(lambda b: limit_pct(b)).to_numpy(dtype=float), (board == "main").to_numpy()

    def actions_arrays(self, actions: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Share growth and cash per share on each ex-date from a corporate-actions table; an
        ex-date without a bar (suspended) takes effect on the next panel date."""
        growth = np.ones(self.shape)
        cash = np.zeros(self.shape)
        a = actions[actions["symbol"].astype(str).isin(self.symbols)]
        d = self.dates.searchsorted(pd.to_datetime(a["ex_date"]))
        keep = d < len(self.dates)
        s = self.symbols.get_indexer(a["symbol"].astype(str))[keep]
        g = ((1 + a["bonus_ratio"].fillna(0)) * a["split_ratio"].fillna(1)).to_numpy()[keep]
        np.multiply.at(growth, (d[keep], s), g)
        np.add.at(cash, (d[keep], s), a["cash_dividend"].fillna(0).to_numpy()[keep])
        return growth, cash


def market_panel(bars: pd.DataFrame) -> MarketPanel:
    """The dense view of `bars` (one row per date and symbol, else a clear error)."""
    dates, di = _codes(pd.Series(pd.to_datetime(bars["date"]).to_numpy()))
    symbols, si = _codes(bars["symbol"])
    dates = pd.DatetimeIndex(dates)
    n_sym = len(symbols)
    cell = di.astype(np.int64) * n_sym + si
    in_order = len(cell) == len(dates) * n_sym and bool((cell[1:] > cell[:-1]).all())
    if not in_order and (np.bincount(cell, minlength=len(dates) * n_sym) > 1).any():
        raise ValueError("bars hold more than one row for a (date, symbol)")
    return MarketPanel(dates, pd.Index(symbols.astype(str)), bars, None if in_order else cell)
