"""Normalisation of validated raw tables: bars from trades, adjustment factors, news by day.

Pure functions on the contract frames (columns.py). Nothing here reads the future: the
adjustment factors for a day use only corporate actions announced by that day, and a news
item is assigned to the first trading day whose close comes after its publication.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from quant_assets.market import rules

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
_PRICE_COLS = ("open", "high", "low", "close", "preclose", "vwap")
_MIN = pd.Timedelta(minutes=1)


# ---------------------------------------------------------------------------------------------
# trades -> bars


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
    local = ts.dt.tz_convert(rules.TZ).dt.tz_localize(None)
    day = local.dt.normalize()
    label = local.dt.floor("min") + _MIN
    tod = label - day
    first, noon, close = (pd.Timedelta(hours=h, minutes=m) for h, m in ((9, 31), (11, 30), (15, 0)))
    tod = tod.where(tod >= first, first)
    tod = tod.where(~((tod > noon) & (tod <= pd.Timedelta(hours=13))), noon)
    tod = tod.where(tod <= close, close)
    return (day + tod).dt.tz_localize(rules.TZ)


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
        date=t["ts"]
        .dt.tz_convert(rules.TZ)
        .dt.tz_localize(None)
        .dt.normalize()
        .astype("datetime64[ns]")
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


# ---------------------------------------------------------------------------------------------
# corporate actions -> adjustment factors


def _sorted_bars(bars: pd.DataFrame) -> pd.DataFrame:
    b = bars.sort_values(["symbol", "date"], kind="stable").reset_index(drop=True)
    return b.assign(prev_close=b.groupby("symbol")["close"].shift(1))


def _cumulate(b: pd.DataFrame, ratio: pd.Series, as_of: object | None) -> pd.DataFrame:
    factor = ratio.groupby(b["symbol"].to_numpy()).cumprod()
    out = pd.DataFrame(
        {
            "date": b["date"].to_numpy(),
            "symbol": b["symbol"].to_numpy(),
            "factor": factor.to_numpy(),
        }
    )
    out.attrs["as_of"] = None if as_of is None else pd.Timestamp(as_of)
    return out


def factors_from_preclose(bars: pd.DataFrame) -> pd.DataFrame:
    """Backward-adjustment factors from the exchange's ex-rights `preclose` alone.

    factor_t = factor_{t-1} * close_{t-1} / preclose_t, starting at 1 on a symbol's first bar:
    on an ex-date the exchange lowers preclose below yesterday's close, and the factor grows by
    exactly that gap. For sources without an action table (baostock). A row without preclose
    (e.g. a US series' first day) keeps the factor.
    """
    b = _sorted_bars(bars)
    ratio = (b["prev_close"] / b["preclose"]).where(lambda r: np.isfinite(r) & (r > 0), 1.0)
    return _cumulate(b, ratio, None)


def adjustment_factors(
    actions: pd.DataFrame, bars: pd.DataFrame, as_of: object | None = None
) -> pd.DataFrame:
    """Backward-adjustment factors (date, symbol, factor) from corporate actions, point in time.

    On an ex-date the exchange sets preclose = (close_prev - cash) / ((1 + bonus) * split), so
    the factor grows by close_prev / preclose. Only actions announced by the day are used:
    - `as_of=None`: each day's factor uses the actions announced by that day (an action
      announced late, after its ex-date, enters on its announcement day, as it would have
      been seen then);
    - `as_of=A`: the series as known on A: actions announced by A, applied on their ex-dates,
      for the days up to A.
    An ex-date that is not a bar of the symbol (holiday, suspension) applies on its next bar.
    """
    b = _sorted_bars(bars)
    if as_of is not None:
        b = b[b["date"] <= pd.Timestamp(as_of)].reset_index(drop=True)
    a = actions.copy()
    for col in ("announce_date", "ex_date"):
        a[col] = pd.to_datetime(a[col]).astype("datetime64[ns]")
    if as_of is not None:
        a = a[a["announce_date"] <= pd.Timestamp(as_of)]
        a["effective"] = a["ex_date"]
    else:
        a["effective"] = a[["ex_date", "announce_date"]].max(axis=1)
    a = a[a["symbol"].isin(b["symbol"].unique())]
    ratio = pd.Series(1.0, index=b.index)
    if len(a):
        a["growth"] = (1 + a["bonus_ratio"]) * a["split_ratio"]
        a = a.groupby(["symbol", "ex_date", "effective"], as_index=False).agg(
            cash=("cash_dividend", "sum"), growth=("growth", "prod")
        )
        keys = b[["date", "symbol", "prev_close"]].sort_values("date", kind="stable")
        at_ex = pd.merge_asof(
            a.sort_values("ex_date"),
            keys,
            left_on="ex_date",
            right_on="date",
            by="symbol",
            direction="forward",
        )
        theo = (at_ex["prev_close"] - at_ex["cash"]) / at_ex["growth"]
        if (theo <= 0).any():
            raise ValueError("a cash dividend at or above the previous close: check the actions")
        at_ex["ratio"] = (at_ex["prev_close"] / theo).fillna(1.0)  # ex on the first bar: no gap
        at_eff = pd.merge_asof(
            at_ex.drop(columns=["date", "prev_close"]).sort_values("effective"),
            keys[["date", "symbol"]],
            left_on="effective",
            right_on="date",
            by="symbol",
            direction="forward",
        )
        per_day = at_eff.dropna(subset=["date"]).groupby(["symbol", "date"])["ratio"].prod()
        idx = pd.MultiIndex.from_frame(b[["symbol", "date"]])
        ratio = pd.Series(per_day.reindex(idx).fillna(1.0).to_numpy(), index=b.index)
    return _cumulate(b, ratio, as_of)


def adjust_prices(
    bars: pd.DataFrame, factors: pd.DataFrame, how: str = "backward", as_of: object | None = None
) -> pd.DataFrame:
    """Adjusted bars: prices times the factor, volume divided by it (amount unchanged).

    - "backward" (后复权): prices scaled by the cumulative factor; old prices stay put as new
      actions arrive, so a value once computed never changes.
    - "forward" (前复权) as of A (default: the last date): prices divided by each symbol's
      factor on A, so prices on A equal the raw ones; only bars up to A are returned, and the
      factors must not know of actions announced after A (checked when they say so).
    A `factor` column is added.
    """
    if how not in ("backward", "forward"):
        raise ValueError(f"how must be 'backward' or 'forward', not {how!r}")
    known = factors.attrs.get("as_of")
    if as_of is not None and known is not None and known > pd.Timestamp(as_of):
        raise ValueError(f"factors as of {known.date()} know actions announced after {as_of}")
    if as_of is not None:
        bars = bars[bars["date"] <= pd.Timestamp(as_of)]
    out = bars.merge(factors[["date", "symbol", "factor"]], on=["date", "symbol"], how="left")
    if out["factor"].isna().any():
        raise ValueError(f"{int(out['factor'].isna().sum())} bars have no adjustment factor")
    out = out.sort_values(["symbol", "date"], kind="stable", ignore_index=True)
    f = out["factor"]
    if how == "forward":
        f = f / f.groupby(out["symbol"]).transform("last")
    for col in _PRICE_COLS:
        if col in out:
            out[col] = out[col] * f
    if "volume" in out:
        out["volume"] = out["volume"] / f
    out["factor"] = f
    return out


# ---------------------------------------------------------------------------------------------
# news -> trading days

CLOSE = pd.Timedelta(hours=15)


def news_to_trading_days(news: pd.DataFrame, trading_days: Iterable[object]) -> pd.DataFrame:
    """News items with the trading day they belong to (column `trading_date`, first).

    An item published before 15:00 local time on a trading day belongs to that day (it is
    known before the close); one published at or after 15:00, or on a non-trading day,
    belongs to the next trading day. Items after the last known trading day get NaT.
    """
    days = pd.DatetimeIndex(sorted(pd.DatetimeIndex(list(trading_days)).normalize().unique()))
    days = days.astype("datetime64[ns]")
    local = news["ts"].dt.tz_convert(rules.TZ).dt.tz_localize(None)
    day = local.dt.normalize()
    after_close = (local - day >= CLOSE).astype("int64")
    candidate = (day + after_close * pd.Timedelta(days=1)).astype("datetime64[ns]")
    pos = days.searchsorted(candidate.to_numpy(), side="left")
    inside = pos < len(days)
    td = np.full(len(news), np.datetime64("NaT"), dtype="datetime64[ns]")
    td[inside] = days.to_numpy()[pos[inside]]
    out = news.copy()
    out.insert(0, "trading_date", td)
    return out
