"""Loaders that map the public data sets in ``../shared/data`` (see its SOURCES.md) to the raw
column contract, so that real data goes through the same `validate()` as vendor files.

The loaders only translate (codes, units, flags); they fix nothing, so each set's quirks reach
validation. The data live outside the project and are never copied into it; set
``QUANT_SHARED_DATA`` to point elsewhere. Which sets map to which table:

- cn_csi300_daily_2021_2024 -> BARS (A-shares; baostock codes sh.600000 -> 600000.SH).
- cn_tick_5level_2020-01-02 -> ORDER_BOOK (levels 6-10 empty) and TRADES (one aggregate
  trade per snapshot interval, from the Volume/Amount deltas).
- sp500_daily_2013_2018 and the zipline Quandl sample -> BARS of US stocks (``attrs["market"]
  == "US"``: validate them with ``market="US"``; prices USD, not CNY), plus CORPORATE_ACTIONS
  and Quandl's own adjusted prices as a reference answer.
- news_financial_phrasebank: NOT mapped to NEWS. It has neither dates nor tickers, so a NEWS
  row would need an invented timestamp and symbol; it loads as (sentence, label, sentiment)
  for sentiment-model tests instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from quant_assets.calendar import TZ
from quant_assets.market.contract import columns as C
from quant_assets.market.sources.vendor_baostock import bars_from_baostock

DATA_ROOT = Path(
    os.environ.get(
        "QUANT_SHARED_DATA", Path(__file__).resolve().parents[3].parent / "shared" / "data"
    )
)

CSI300_BARS = "cn_csi300_daily_2021_2024/bars.csv.gz"
TICK_5LEVEL = "cn_tick_5level_2020-01-02"
SP500_BARS = "sp500_daily_2013_2018/bars.csv.gz"
QUANDL_SAMPLE = "us_corporate_actions_zipline/quandl_wiki_sample_2014.csv"
PHRASEBANK = "news_financial_phrasebank_v1.0"


def data_path(relative: str) -> Path:
    """Absolute path of a data set file; FileNotFoundError (with the path) when absent."""
    path = DATA_ROOT / relative
    if not path.exists():
        raise FileNotFoundError(f"real data not found: {path} (see SOURCES.md)")
    return path


def load_csi300_bars(path: str | Path | None = None) -> pd.DataFrame:
    """CSI300 daily bars (recorded baostock output, unadjusted) as BARS, through the baostock
    adapter's mapping (`vendor_baostock.bars_from_baostock`). Empty volumes on trading days
    stay empty (validation flags them)."""
    raw = pd.read_csv(path or data_path(CSI300_BARS), dtype={"code": "str", "date": "str"})
    out = bars_from_baostock(raw)
    out["date"] = pd.to_datetime(out["date"], format="%Y-%m-%d").astype("datetime64[ns]")
    out.attrs.update(
        market="CN", source="baostock (cn_csi300_daily_2021_2024)", pct_chg=raw["pctChg"].to_numpy()
    )  # the vendor's own return, as a reference
    return out


def _tick_file_symbol(path: Path) -> str:
    """``SZ000001.csv`` -> ``000001.SZ``."""
    stem = path.stem
    return f"{stem[2:]}.{stem[:2].upper()}"


def load_tick_5level(path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One wstock 5-level snapshot file as (ORDER_BOOK, TRADES).

    Order book: SP/SV ask and BP/BV bid levels 1-5 (sizes lots -> shares; the vendor's price 0
    marks an empty level -> NaN), levels 6-10 empty (NaN price, size 0). Trades: each snapshot
    with Volume > 0 becomes one trade of the interval's volume at the snapshot's last price
    (not Amount / shares: the vendor's Amount is quantised to multiples of 512 CNY, so a
    one-lot interval's VWAP can be 9 % off); volumes reconcile exactly, amounts to ~0.1 %.
    side from isBuy, 0 for the auction prints (before 09:30 and from 14:57). trade_id numbers
    the snapshots with volume, in file order.
    """
    path = Path(path)
    raw = pd.read_csv(path)
    symbol = _tick_file_symbol(path)
    ts = pd.to_datetime(raw["Time"], format="%Y-%m-%d %H:%M:%S").astype("datetime64[ns]")
    ts = ts.dt.tz_localize(TZ)
    book: dict[str, object] = {"ts": ts, "symbol": pd.Series(symbol, index=raw.index, dtype="str")}
    for side, px_prefix, sz_prefix in (("bid", "BP", "BV"), ("ask", "SP", "SV")):
        for i in range(1, C.LEVELS + 1):
            if i <= 5:
                px = raw[f"{px_prefix}{i}"].astype(float)
                book[f"{side}_px_{i}"] = px.where(px != 0)
                book[f"{side}_sz_{i}"] = (raw[f"{sz_prefix}{i}"] * 100).astype("int64")
            else:
                book[f"{side}_px_{i}"] = np.nan
                book[f"{side}_sz_{i}"] = 0
    order_book = pd.DataFrame(book)[C.ORDER_BOOK]

    traded = raw["Volume"] > 0
    t = raw[traded]
    shares = (t["Volume"] * 100).round().astype("int64")
    tod = ts[traded] - ts[traded].dt.normalize()
    auction = (tod < pd.Timedelta(hours=9, minutes=30)) | (
        tod >= pd.Timedelta(hours=14, minutes=57)
    )
    side = np.where(auction, 0, np.where(t["isBuy"] == 1, 1, -1))
    trades = pd.DataFrame(
        {
            "ts": ts[traded].to_numpy(),
            "symbol": symbol,
            "trade_id": np.arange(1, len(t) + 1, dtype="int64"),
            "price": t["Price"].to_numpy(dtype=float),
            "volume": shares.to_numpy(),
            "side": side,
        }
    )
    trades["symbol"] = trades["symbol"].astype("str")
    for frame in (order_book, trades):
        frame.attrs.update(market="CN", source=f"wstock 5-level snapshots ({path.name})")
    return order_book, trades[C.TRADES]


def load_sp500_bars(path: str | Path | None = None) -> pd.DataFrame:
    """The Kaggle S&P 500 daily set as BARS of the US market (``attrs["market"] == "US"``).

    US quirks of the mapping: no preclose is published, so preclose is the symbol's previous
    row's close (NaN on its first row); no amount (NaN); no ST or suspension flags (False).
    The set's corrupt 2021 rows and the BHF row without open/high/low are passed through.
    """
    raw = pd.read_csv(path or data_path(SP500_BARS), dtype={"symbol": "str", "date": "str"})
    out = pd.DataFrame(
        {
            "date": raw["date"],
            "symbol": raw["symbol"],
            "open": raw["open"],
            "high": raw["high"],
            "low": raw["low"],
            "close": raw["close"],
            "preclose": raw.groupby("symbol", sort=False)["close"].shift(1),
            "volume": raw["volume"],
            "amount": np.nan,
            "is_suspended": False,
            "is_st": False,
        }
    )[C.BARS]
    out["date"] = pd.to_datetime(out["date"], format="%Y-%m-%d").astype("datetime64[ns]")
    out.attrs.update(market="US", currency="USD", source="Kaggle S&P 500 (sp500_daily_2013_2018)")
    return out


def load_quandl_sample(
    path: str | Path | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """zipline's Quandl WIKI 2014 sample as (BARS, CORPORATE_ACTIONS, reference adjusted bars).

    The sample has no announcement dates, so announce_date = ex_date (the latest it can have
    been known: no look-ahead). Quandl's split_ratio is new shares per old share, as ours.
    The reference holds Quandl's own split+dividend adjusted adj_open..adj_close.
    """
    raw = pd.read_csv(path or data_path(QUANDL_SAMPLE), dtype={"ticker": "str", "date": "str"})
    raw["date"] = pd.to_datetime(raw["date"], format="%Y-%m-%d").astype("datetime64[ns]")
    raw["symbol"] = raw["ticker"].astype("str")
    raw = raw.sort_values(["symbol", "date"], ignore_index=True)
    bars = pd.DataFrame(
        {
            "date": raw["date"],
            "symbol": raw["symbol"],
            "open": raw["open"],
            "high": raw["high"],
            "low": raw["low"],
            "close": raw["close"],
            "preclose": np.nan,
            "volume": raw["volume"].round().astype("int64"),
            "amount": np.nan,
            "is_suspended": False,
            "is_st": False,
        }
    )[C.BARS]
    bars.attrs.update(market="US", currency="USD", source="Quandl WIKI sample (zipline)")
    ev = raw[(raw["ex-dividend"] != 0) | (raw["split_ratio"] != 1)]
    actions = pd.DataFrame(
        {
            "action_id": ev["symbol"] + "-" + ev["date"].dt.strftime("%Y%m%d"),
            "symbol": ev["symbol"],
            "announce_date": ev["date"],
            "ex_date": ev["date"],
            "cash_dividend": ev["ex-dividend"].astype(float),
            "bonus_ratio": 0.0,
            "split_ratio": ev["split_ratio"].astype(float),
        }
    )[C.CORPORATE_ACTIONS].reset_index(drop=True)
    actions["action_id"] = actions["action_id"].astype("str")
    reference = raw[["date", "symbol", "adj_open", "adj_high", "adj_low", "adj_close"]].copy()
    return bars, actions, reference


def load_phrasebank(
    name: str = "Sentences_AllAgree.txt", encoding: str = "utf-8", errors: str = "strict"
) -> pd.DataFrame:
    """Financial PhraseBank as (sentence, label, sentiment -1/0/1); no dates, no tickers.

    ``Sentences_50Agree.txt`` is Latin-1: read it with ``encoding="latin-1"``; reading it as
    UTF-8 with ``errors="replace"`` reproduces a vendor encoding error (U+FFFD in the text).
    """
    text = data_path(f"{PHRASEBANK}/{name}").read_bytes().decode(encoding, errors=errors)
    rows = [line.rsplit("@", 1) for line in text.splitlines() if "@" in line]
    out = pd.DataFrame(rows, columns=["sentence", "label"]).astype("str")
    out["sentiment"] = out["label"].map({"negative": -1.0, "neutral": 0.0, "positive": 1.0})
    return out
