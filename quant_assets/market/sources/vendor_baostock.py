"""baostock as a vendor of daily bars (optional: ``pip install -e '.[vendor]'``).

baostock (www.baostock.com) serves unadjusted A-share daily bars with the exchange's ex-rights
`preclose`, a trading-status flag and an ST flag: everything the BARS contract needs. Its rows
arrive as text, with an empty string for a missing value. The adapter maps them onto the
contract's columns without parsing a value, writes them as the day's CSV landing file, and the
common reader and validation parse them: a value baostock sends malformed is quarantined like
any vendor's. It provides bars only; the other kinds still come through the landing zone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd

from quant_assets.market.contract import columns as C

DAILY_FIELDS = (
    "date,code,open,high,low,close,preclose,volume,amount,adjustflag,turn,tradestatus,pctChg,isST"
)
UNADJUSTED = "3"  # baostock's adjustflag: 1 backward, 2 forward, 3 none


def baostock_to_symbol(code: pd.Series) -> pd.Series:
    """baostock ``sh.600000`` -> ``600000.SH``."""
    parts = code.astype(str).str.split(".", n=1, expand=True)
    return (parts[1] + "." + parts[0].str.upper()).astype("str")


def symbol_to_baostock(symbol: str) -> str:
    """``600000.SH`` -> baostock ``sh.600000``."""
    code, exchange = symbol.split(".")
    return f"{exchange.lower()}.{code}"


def bars_from_baostock(raw: pd.DataFrame) -> pd.DataFrame:
    """baostock daily rows (its text, or numbers read from a saved file) as BARS columns.

    tradestatus 0 -> is_suspended; isST 1 -> is_st. On some suspended days where nothing
    traded baostock leaves volume and amount empty: the contract says 0 for a suspended day,
    so those become 0. Every other value is passed on as given, empty ones as missing.
    """
    raw = raw.replace("", np.nan)
    suspended = pd.to_numeric(raw["tradestatus"], errors="coerce").eq(0)
    return pd.DataFrame(
        {
            "date": raw["date"],
            "symbol": baostock_to_symbol(raw["code"]),
            "open": raw["open"],
            "high": raw["high"],
            "low": raw["low"],
            "close": raw["close"],
            "preclose": raw["preclose"],
            "volume": raw["volume"].where(~suspended | raw["volume"].notna(), 0),
            "amount": raw["amount"].where(~suspended | raw["amount"].notna(), 0),
            "is_suspended": suspended,
            "is_st": pd.to_numeric(raw["isST"], errors="coerce").eq(1),
        }
    )[C.BARS]


def fetch_daily_bars(
    day: pd.Timestamp,
    symbols: Iterable[str],
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """The unadjusted bars of `symbols` on `day` from baostock's service (one query per
    symbol, as its API wants), as BARS columns of text."""
    try:
        import baostock as bs
    except ImportError as exc:
        raise RuntimeError(
            "the baostock source needs the optional package: pip install -e '.[vendor]'"
        ) from exc
    symbols = list(symbols)
    when = pd.Timestamp(day).strftime("%Y-%m-%d")
    login = bs.login()
    if login.error_code != "0":
        raise RuntimeError(f"baostock login failed: {login.error_msg}")
    frames = []
    try:
        for i, symbol in enumerate(symbols, 1):
            rs = bs.query_history_k_data_plus(
                symbol_to_baostock(symbol),
                DAILY_FIELDS,
                start_date=when,
                end_date=when,
                frequency="d",
                adjustflag=UNADJUSTED,
            )
            if rs.error_code != "0":
                raise RuntimeError(f"baostock {symbol} {when}: {rs.error_msg}")
            rows = []
            while rs.next():
                rows.append(rs.get_row_data())
            frames.append(pd.DataFrame(rows, columns=rs.fields, dtype=object))
            if progress is not None and (i % 50 == 0 or i == len(symbols)):
                progress(f"baostock bars {when}: {i}/{len(symbols)} symbols")
    finally:
        bs.logout()
    frames = [f for f in frames if len(f)]
    if not frames:  # nothing traded or listed on that day for these symbols
        return pd.DataFrame(columns=C.BARS)
    return bars_from_baostock(pd.concat(frames, ignore_index=True))
