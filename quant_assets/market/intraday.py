"""Intraday trades turned into bars: end-labelled minute bars, daily bars, and the comparison
of bars rebuilt from trades with a vendor's daily bars."""

from __future__ import annotations

import numpy as np
import pandas as pd

from quant_assets.calendar import TZ

MINUTE_BAR_COLUMNS = [
    "ts",
    "symbol",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "amount",
    "n_trades",
]
DAILY_BAR_COLUMNS = ["date", *MINUTE_BAR_COLUMNS[1:]]
_MIN = pd.Timedelta(minutes=1)


def _ohlcv(trades: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    t = trades.assign(amount=trades["price"] * trades["volume"])
    g = t.groupby(keys, sort=True)
    return g.agg(
        open=("price", "first"),
        high=("price", "max"),
        low=("price", "min"),
        close=("price", "last"),
        volume=("volume", "sum"),
        amount=("amount", "sum"),
        n_trades=("price", "size"),
    ).reset_index()


def _in_time_order(trades: pd.DataFrame) -> pd.DataFrame:
    return trades.sort_values(["symbol", "ts", "trade_id"], kind="stable")


def minute_label(ts: pd.Series) -> pd.Series:
    """End-of-minute label of each trade, A-share vendor style (240 bars a day).

    A bar is labelled by the END of its minute: trades in [09:30:00, 09:31:00) form the 09:31
    bar. This is the convention of Wind, TDX and most Chinese vendors, so our bars join theirs,
    and a bar's label is the moment its data is complete: using the label as availability time
    cannot leak a trade into an earlier bar. The 09:25 opening-auction print joins the 09:31
    bar, a print at 11:30:00 joins 11:30, and the 15:00 closing-auction print joins 15:00.
    """
    local = ts.dt.tz_convert(TZ).dt.tz_localize(None)
    day = local.dt.normalize()
    label = local.dt.floor("min") + _MIN
    tod = label - day
    first, noon, close = (pd.Timedelta(hours=h, minutes=m) for h, m in ((9, 31), (11, 30), (15, 0)))
    tod = tod.where(tod >= first, first)
    tod = tod.where(~((tod > noon) & (tod <= pd.Timedelta(hours=13))), noon)
    tod = tod.where(tod <= close, close)
    return (day + tod).dt.tz_localize(TZ)


def trades_to_minute_bars(trades: pd.DataFrame) -> pd.DataFrame:
    """1-minute bars (end-labelled, see `minute_label`) from validated trades.

    Minutes without trades get no bar (vendors fill them with the last close and volume 0;
    that is a presentation choice left to the consumer).
    """
    t = _in_time_order(trades)
    t = t.assign(ts=minute_label(t["ts"]))
    return _ohlcv(t, ["symbol", "ts"])[MINUTE_BAR_COLUMNS]


def trades_to_daily_bars(trades: pd.DataFrame) -> pd.DataFrame:
    """Daily OHLCV from validated trades: open = first print (the opening auction), close = last."""
    t = _in_time_order(trades)
    t = t.assign(
        date=t["ts"].dt.tz_convert(TZ).dt.tz_localize(None).dt.normalize().astype("datetime64[ns]")
    )
    return _ohlcv(t, ["symbol", "date"])[DAILY_BAR_COLUMNS]


def compare_daily_bars(
    from_trades: pd.DataFrame, vendor_bars: pd.DataFrame, tol: float | dict[str, float] = 1e-4
) -> pd.DataFrame:
    """Where bars built from trades and the vendor's daily bars disagree (empty = they agree).

    `tol` is a relative tolerance, one for all fields or per field (open, high, low, close,
    volume, amount). Rows present on one side only are reported with field ``missing``,
    except vendor bars of suspended days, which have no trades by definition.
    """
    fields = ["open", "high", "low", "close", "volume", "amount"]
    tols = {f: (tol.get(f, 1e-4) if isinstance(tol, dict) else tol) for f in fields}
    m = from_trades.merge(
        vendor_bars,
        on=["date", "symbol"],
        how="outer",
        suffixes=("_trades", "_vendor"),
        indicator=True,
    )
    out = []
    suspended = m["is_suspended"].fillna(False).astype(bool) if "is_suspended" in m else False
    only_vendor = (m["_merge"] == "right_only") & ~suspended
    only_trades = m["_merge"] == "left_only"
    for mask, side in ((only_vendor, "no trades"), (only_trades, "no vendor bar")):
        if mask.any():
            out.append(
                pd.DataFrame(
                    {
                        "date": m.loc[mask, "date"],
                        "symbol": m.loc[mask, "symbol"],
                        "field": "missing",
                        "from_trades": np.nan,
                        "vendor": np.nan,
                        "rel_diff": np.nan,
                        "note": side,
                    }
                )
            )
    both = m[m["_merge"] == "both"]
    for f in fields:
        if f"{f}_vendor" not in both:
            continue
        a = both[f"{f}_trades"].astype(float)
        b = both[f"{f}_vendor"].astype(float)
        rel = (a - b).abs() / b.abs().where(b.abs() > 0, 1.0)
        bad = (rel > tols[f]) & b.notna()
        if bad.any():
            out.append(
                pd.DataFrame(
                    {
                        "date": both.loc[bad, "date"],
                        "symbol": both.loc[bad, "symbol"],
                        "field": f,
                        "from_trades": a[bad],
                        "vendor": b[bad],
                        "rel_diff": rel[bad],
                        "note": "",
                    }
                )
            )
    cols = ["date", "symbol", "field", "from_trades", "vendor", "rel_diff", "note"]
    if not out:
        return pd.DataFrame({c: [] for c in cols})
    return pd.concat(out, ignore_index=True)[cols].sort_values(
        ["date", "symbol", "field"], ignore_index=True
    )


def minute_bars_to_daily(minute_bars: pd.DataFrame) -> pd.DataFrame:
    """Daily OHLCV from a day's minute bars: the same bars as `trades_to_daily_bars`, from
    ~240 rows a symbol instead of every trade (minute bars are complete aggregations)."""
    m = minute_bars.sort_values(["symbol", "ts"], kind="stable")
    m = m.assign(
        date=m["ts"].dt.tz_convert(TZ).dt.tz_localize(None).dt.normalize().astype("datetime64[ns]")
    )
    g = m.groupby(["symbol", "date"], sort=True)
    daily = g.agg(
        open=("open", "first"),
        high=("high", "max"),
        low=("low", "min"),
        close=("close", "last"),
        volume=("volume", "sum"),
        amount=("amount", "sum"),
        n_trades=("n_trades", "sum"),
    ).reset_index()
    return daily[DAILY_BAR_COLUMNS]
