"""Forward returns realised on a day: the labels that factor evaluation, models and the track
record read, each known only once its last price is.

Partition D of the labels holds what the close of D reveals, one row per symbol, with the
return of an earlier day t in each column: `ret_1d`, `ret_5d`, `ret_10d` are close-to-close
returns from t to D with t 1, 5 and 10 trading days before D (alphalens' forward returns);
`label` is Qlib's `Ref($close,-2)/Ref($close,-1)-1` of t = D-2, the model's target; `open_ret`
is the open-to-open return from D-1 to D, that of a portfolio formed after the close of
t = D-2 and traded at the next open. So a label is never stored before it is known, and a
window of label partitions ending on D holds every label known at D's close.

A return whose end day finds the stock suspended is NaN (it could not be realised); `label`
and `open_ret` are NaN also when the stock is suspended on the day it would be bought.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from quant_assets.calendar import trading_days

# Trading days between a label's own day t and the day D it becomes known.
LAGS = {"ret_1d": 1, "ret_5d": 5, "ret_10d": 10, "label": 2, "open_ret": 2}
LOOKBACK = max(LAGS.values())


def labels_known_on(adjusted: pd.DataFrame, day: object) -> pd.DataFrame:
    """The labels revealed by the close of `day`, from adjusted bars of the trading days up
    to `day` (at least LOOKBACK of them before it for every column to be filled).

    Returns date (= `day`), symbol and one column per label (see the module docstring), for
    the symbols with a bar on `day`."""
    day = pd.Timestamp(day)
    days = trading_days(day - pd.Timedelta(days=LOOKBACK * 3 + 30), day)[-(LOOKBACK + 1) :]
    close = adjusted.pivot(index="date", columns="symbol", values="close").reindex(days)
    open_ = adjusted.pivot(index="date", columns="symbol", values="open").reindex(days)
    halted = (
        adjusted.pivot(index="date", columns="symbol", values="is_suspended")
        .reindex(days)
        .fillna(True)
        .astype(bool)
    )
    symbols = adjusted.loc[adjusted["date"] == day, "symbol"].sort_values().to_numpy()
    end_ok = ~halted.iloc[-1]

    def back(frame: pd.DataFrame, lag: int) -> pd.Series:
        return frame.iloc[-1 - lag] if len(frame) > lag else pd.Series(np.nan, frame.columns)

    out = {"date": day, "symbol": symbols}
    for name, lag in (("ret_1d", 1), ("ret_5d", 5), ("ret_10d", 10)):
        out[name] = (close.iloc[-1] / back(close, lag) - 1).where(end_ok)
    bought = ~back(halted.astype(float), 1).fillna(1).astype(bool)
    out["label"] = (close.iloc[-1] / back(close, 1) - 1).where(end_ok & bought)
    out["open_ret"] = (open_.iloc[-1] / back(open_, 1) - 1).where(end_ok & bought)
    frame = pd.DataFrame({k: v for k, v in out.items() if k in ("date", "symbol")})
    for name in LAGS:
        frame[name] = out[name].reindex(symbols).to_numpy(dtype=float)
    return frame


def labels_by_date(labels: pd.DataFrame, name: str) -> pd.Series:
    """One label as a Series indexed by (date, symbol) of the day it belongs to (t = the day it
    was known, `LAGS[name]` trading days back), from a window of label partitions."""
    lag = LAGS[name]
    known = pd.DatetimeIndex(labels["date"].unique()).sort_values()
    if known.empty:
        return pd.Series(
            [], dtype=float, index=pd.MultiIndex.from_arrays([[], []], names=["date", "symbol"])
        )
    calendar = trading_days(known[0] - pd.Timedelta(days=lag * 3 + 30), known[-1])
    pos = calendar.get_indexer(known)
    if (pos < lag).any() or (pos < 0).any():
        raise ValueError(f"{name}: a known-on day is not in the trading calendar")
    own = pd.Series(calendar[pos - lag], index=known)
    dates = own.reindex(pd.DatetimeIndex(labels["date"])).to_numpy()
    index = pd.MultiIndex.from_arrays(
        [dates, labels["symbol"].to_numpy()], names=["date", "symbol"]
    )
    return pd.Series(labels[name].to_numpy(dtype=float), index=index, name=name).sort_index()
