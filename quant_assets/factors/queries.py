"""Reads of the factor table shared by the model and strategy stages."""

from __future__ import annotations

import pandas as pd
from clickhouse_connect.driver.client import Client

from resources.clickhouse import ClickHouseResource


def read_factor_panel(
    ch: ClickHouseResource,
    client: Client,
    start: pd.Timestamp,
    end: pd.Timestamp,
    factors: list[str] | None = None,
) -> pd.DataFrame:
    """Factor values with dates in [start, end] as a wide frame indexed by (date, symbol)."""
    where = "date BETWEEN %(start)s AND %(end)s"
    params: dict = {"start": pd.Timestamp(start).date(), "end": pd.Timestamp(end).date()}
    if factors is not None:
        where += " AND factor IN %(factors)s"
        params["factors"] = tuple(factors)
    long = ch.query_df(
        client,
        f"SELECT date, symbol, factor, value FROM {{db}}.factor_values WHERE {where}",
        params,
    )
    if long.empty:
        return pd.DataFrame(index=pd.MultiIndex.from_arrays([[], []], names=["date", "symbol"]))
    long["date"] = pd.to_datetime(long["date"]).astype("datetime64[ns]")
    # (date, symbol, factor) is unique: unstack is several times faster than pivot_table.
    wide = long.set_index(["date", "symbol", "factor"])["value"].unstack("factor")
    wide.columns.name = None
    return wide.sort_index()
