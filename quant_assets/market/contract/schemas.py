"""Pandera models of the raw market tables: dtypes and column-level constraints.

They follow `columns.py` column for column and in order. The wiring uses them as Dagster
types; `validation.py` reads their dtypes (one source of truth) and applies the row-level
rules with numpy instead of pandera checks, which are too slow for the order-book frame.
"""

from __future__ import annotations

from typing import Annotated

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from quant_assets.calendar import TZ
from quant_assets.market.contract import columns as C
from quant_assets.market.rules import BOARDS

# `ts` is exchange-local time with nanosecond resolution (pandas 3 would otherwise infer µs).
Timestamp = Annotated[pd.DatetimeTZDtype, "ns", TZ]


def _midnight(s: pd.Series) -> pd.Series:
    return s.isna() | (s == s.dt.normalize())


class _Contract(pa.DataFrameModel):
    class Config:
        strict = True  # exactly the contract's columns ...
        ordered = True  # ... in the contract's order
        coerce = True  # integral floats etc. are accepted and cast


class UniverseSchema(_Contract):
    """One row per listed symbol (as of a day)."""

    symbol: Series[str] = pa.Field(unique=True)
    name: Series[str] = pa.Field(nullable=True)
    industry: Series[str] = pa.Field(nullable=True)
    board: Series[str] = pa.Field(isin=list(BOARDS))
    list_date: Series[pa.DateTime] = pa.Field(nullable=True)
    is_st: Series[bool]


class BarsSchema(_Contract):
    """Daily unadjusted bars; `preclose` may be NaN only where a source does not publish it."""

    date: Series[pa.DateTime]
    symbol: Series[str]
    open: Series[float] = pa.Field(gt=0)
    high: Series[float] = pa.Field(gt=0)
    low: Series[float] = pa.Field(gt=0)
    close: Series[float] = pa.Field(gt=0)
    preclose: Series[float] = pa.Field(gt=0, nullable=True)
    volume: Series[int] = pa.Field(ge=0)  # shares
    amount: Series[float] = pa.Field(ge=0, nullable=True)  # CNY; NaN where a source has none
    is_suspended: Series[bool]
    is_st: Series[bool]

    @pa.check("date")
    def date_at_midnight(cls, s: pd.Series) -> pd.Series:
        return _midnight(s)

    @pa.dataframe_check
    def ohlc_consistent(cls, df: pd.DataFrame) -> pd.Series:
        return (df["high"] >= df[["open", "close", "low"]].max(axis=1)) & (
            df["low"] <= df[["open", "close"]].min(axis=1)
        )


class TradesSchema(_Contract):
    """Tick-by-tick trades; `side` 1 buyer-initiated, -1 seller-initiated, 0 auction print."""

    ts: Series[Timestamp]
    symbol: Series[str]
    trade_id: Series[int] = pa.Field(ge=0)
    price: Series[float] = pa.Field(gt=0)
    volume: Series[int] = pa.Field(ge=0)  # shares
    side: Series[int] = pa.Field(isin=[-1, 0, 1])


class _OrderBookHead(_Contract):
    ts: Series[Timestamp]
    symbol: Series[str]


def _book_level_fields() -> dict:
    """Annotations and fields of the 40 level columns, generated in the contract's order."""
    annotations: dict = {}
    fields: dict = {}
    for col in C.ORDER_BOOK[2:]:
        if "_px_" in col:  # empty level: NaN price (and size 0)
            annotations[col] = Series[float]
            fields[col] = pa.Field(gt=0, nullable=True)
        else:
            annotations[col] = Series[int]
            fields[col] = pa.Field(ge=0)
    return {"__annotations__": annotations, **fields}


OrderBookSchema = type(
    "OrderBookSchema",
    (_OrderBookHead,),
    {
        "__module__": __name__,
        "__doc__": "10-level order-book snapshots: prices CNY (NaN = empty level), sizes shares.",
        **_book_level_fields(),
    },
)


class NewsSchema(_Contract):
    """News items as published; `sentiment` in [-1, 1] or NaN when the vendor does not score."""

    news_id: Series[str] = pa.Field(unique=True)
    ts: Series[Timestamp]
    symbol: Series[str]
    title: Series[str] = pa.Field(str_length={"min_value": 1})
    body: Series[str] = pa.Field(nullable=True)
    source: Series[str] = pa.Field(nullable=True)
    sentiment: Series[float] = pa.Field(ge=-1, le=1, nullable=True)


class CorporateActionsSchema(_Contract):
    """Corporate actions as announced (see the preclose formula in `columns.py`)."""

    action_id: Series[str] = pa.Field(unique=True)
    symbol: Series[str]
    announce_date: Series[pa.DateTime]
    ex_date: Series[pa.DateTime]
    cash_dividend: Series[float] = pa.Field(ge=0)  # CNY per share
    bonus_ratio: Series[float] = pa.Field(ge=0)  # new shares per share held
    split_ratio: Series[float] = pa.Field(gt=0)  # 1.0 = no split

    @pa.dataframe_check
    def ex_not_before_announce(cls, df: pd.DataFrame) -> pd.Series:
        return df["ex_date"] >= df["announce_date"]


SCHEMAS: dict[str, type[pa.DataFrameModel]] = {
    "universe": UniverseSchema,
    "bars": BarsSchema,
    "trades": TradesSchema,
    "order_book": OrderBookSchema,
    "news": NewsSchema,
    "corporate_actions": CorporateActionsSchema,
}

CONTRACT: dict[str, list[str]] = {
    "universe": C.UNIVERSE,
    "bars": C.BARS,
    "trades": C.TRADES,
    "order_book": C.ORDER_BOOK,
    "news": C.NEWS,
    "corporate_actions": C.CORPORATE_ACTIONS,
}


def column_types(kind: str) -> dict[str, tuple[str, bool]]:
    """Column -> (type family, nullable) with families date, ts, str, float, int, bool."""
    out = {}
    for name, col in SCHEMAS[kind].to_schema().columns.items():
        dtype = str(col.dtype)
        if dtype.startswith("datetime64") and "," in dtype:
            family = "ts"
        elif dtype.startswith("datetime64"):
            family = "date"
        elif dtype.startswith(("float",)):
            family = "float"
        elif dtype.startswith(("int",)):
            family = "int"
        elif dtype == "bool":
            family = "bool"
        else:
            family = "str"
        out[name] = (family, bool(col.nullable))
    return out


def dtype_schema(kind: str) -> pa.DataFrameSchema:
    """The kind's schema with dtype and column checks only, no value checks and no coercion.

    Cheap enough for 1.4 million order-book rows; `validate()` runs it on the clean rows as a
    guard that the row rules and the dtypes agree with the contract.
    """
    schema = SCHEMAS[kind].to_schema()
    cols = {
        name: pa.Column(col.dtype, nullable=True, coerce=False, name=name)
        for name, col in schema.columns.items()
    }
    return pa.DataFrameSchema(cols, strict=True, ordered=True, coerce=False, name=f"{kind}_dtypes")


def empty_rows(kind: str) -> pd.DataFrame:
    """No rows of `kind`, with the contract's columns and dtypes (a day with nothing of it)."""
    schema = SCHEMAS[kind].to_schema()
    return pd.DataFrame(
        {name: pd.Series([], dtype=col.dtype.type) for name, col in schema.columns.items()}
    )
