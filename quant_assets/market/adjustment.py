"""Backward adjustment for corporate actions (后复权), point in time.

On an ex-date the exchange sets preclose = (close_prev - cash) / ((1 + bonus) * split), so a
stock's backward-adjustment factor grows by close_prev / preclose that day; prices times the
factor then move only with the market. Nothing here reads the future: a day's factor uses
only actions announced by that day.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from quant_assets.market.contract.columns import CORPORATE_ACTIONS

_PRICE_COLS = ("open", "high", "low", "close", "preclose", "vwap")


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


# A preclose further than half a tick from the previous close is an ex-rights gap.
GAP_TOLERANCE = 0.005


def adjustment_of_day(
    bars: pd.DataFrame, actions: pd.DataFrame, previous: pd.DataFrame, day: object
) -> pd.DataFrame:
    """Backward-adjustment factor of each symbol with a bar on `day`, as known that day.

    `bars`: raw bars of the previous trading day and of `day`; `actions`: corporate actions
    delivered so far (those with ex-date `day` and announced by then count); `previous`: the
    factors of the previous trading day (symbol, factor), empty at the start of the stored
    history (the chain starts at 1). The day's step is the actions' (close_prev over the
    theoretical ex-rights price). Where no action is known but the exchange's preclose shows an
    ex-rights gap, the gap's own step is used and the row says so (`basis` "preclose"): the
    exchange's price is the authority, and vendors' action tables are often incomplete (the
    CSI300 set has none). Returns date, symbol, factor, step, step_from_preclose, basis.
    """
    day = pd.Timestamp(day)
    bars = bars.assign(date=pd.to_datetime(bars["date"]).astype("datetime64[ns]"))
    today = bars[bars["date"] == day].set_index("symbol")
    earlier = bars[bars["date"] < day].sort_values("date").groupby("symbol")["close"].last()
    a = actions.copy()
    for col in ("announce_date", "ex_date"):
        a[col] = pd.to_datetime(a[col]).astype("datetime64[ns]")
    a = a[(a["ex_date"] == day) & (a["announce_date"] <= day)]
    stepped = adjustment_factors(a, bars, as_of=day)
    step_actions = stepped[stepped["date"] == day].set_index("symbol")["factor"]
    step_actions = step_actions.reindex(today.index).fillna(1.0)
    prev_close = earlier.reindex(today.index)
    from_preclose = (prev_close / today["preclose"]).where(lambda r: np.isfinite(r) & (r > 0))
    gap = (prev_close - today["preclose"]).abs() > GAP_TOLERANCE
    has_action = today.index.isin(a["symbol"])
    use_preclose = gap.to_numpy() & ~has_action & from_preclose.notna().to_numpy()
    step = np.where(use_preclose, from_preclose.fillna(1.0), step_actions)
    basis = np.select([has_action, use_preclose], ["actions", "preclose"], "none")
    before = previous.set_index("symbol")["factor"].reindex(today.index).fillna(1.0)
    return pd.DataFrame(
        {
            "date": day,
            "symbol": today.index.to_numpy(),
            "factor": before.to_numpy() * step,
            "step": step,
            "step_from_preclose": from_preclose.fillna(1.0).to_numpy(),
            "basis": basis,
        }
    )


def adjusted_day(raw: pd.DataFrame, factors: pd.DataFrame) -> pd.DataFrame:
    """One day's bars backward-adjusted with that day's factors: prices times the factor,
    volume divided by it (amount unchanged), `vwap` = amount / adjusted volume (the close when
    nothing traded). Every bar must have a factor."""
    out = raw.merge(factors[["symbol", "factor"]], on="symbol", how="left", validate="1:1")
    if out["factor"].isna().any():
        lacking = out.loc[out["factor"].isna(), "symbol"].tolist()[:5]
        raise ValueError(f"{int(out['factor'].isna().sum())} bars have no factor, e.g. {lacking}")
    f = out["factor"]
    for col in ("open", "high", "low", "close", "preclose"):
        out[col] = out[col] * f
    out["volume"] = out["volume"] / f
    traded = out["volume"] > 0
    out["vwap"] = (out["amount"] / out["volume"].where(traded)).where(traded, out["close"])
    return out.sort_values("symbol", ignore_index=True)


def backward_adjusted(raw: pd.DataFrame, actions: pd.DataFrame | None = None) -> pd.DataFrame:
    """Adjusted bars of a whole history in memory, day by day exactly as the pipeline's
    `adjustment_factors` and `adjusted_bars` assets compute them (for research and tests on
    bars that are not in the tables); sorted by (date, symbol)."""
    if actions is None:
        actions = pd.DataFrame(columns=CORPORATE_ACTIONS)
    days = pd.DatetimeIndex(raw["date"].unique()).sort_values()
    previous = pd.DataFrame({"symbol": [], "factor": []})
    out = []
    for i, day in enumerate(days):
        window = raw[raw["date"].isin(days[max(0, i - 1) : i + 1])]
        factors = adjustment_of_day(window, actions, previous, day)
        out.append(adjusted_day(raw[raw["date"] == day], factors))
        previous = factors[["symbol", "factor"]]
    return pd.concat(out, ignore_index=True).sort_values(["date", "symbol"], ignore_index=True)
