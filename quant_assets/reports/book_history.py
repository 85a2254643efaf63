"""The paper book's history from a window of its ledger, with what the report compares it to:
the equal-weighted universe, the model's daily rank IC and its quantile returns.

Returns after costs are the equity's daily change; before costs add the day's fees back (the
slippage stays in the fill prices). Every series uses only partitions up to the report day.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from quant_assets.market.labels import labels_by_date
from quant_assets.models.metrics import daily_rank_ic

FEES = ["commission", "stamp_duty", "transfer_fee"]
QUANTILES = 5


@dataclass
class BookHistory:
    equity: pd.Series
    returns: pd.Series  # after costs
    returns_before_costs: pd.Series
    fees: pd.Series  # by day, CNY
    turnover: pd.Series  # traded value over twice the previous equity
    positions: pd.DataFrame  # date, symbol, shares, value, weight
    trades: pd.DataFrame  # date, symbol, side, shares, price, value, fees, reason


def book_history(ledger: pd.DataFrame) -> BookHistory:
    """The book's series from `paper_book` rows of several days."""
    days = pd.DatetimeIndex(sorted(pd.to_datetime(ledger["date"]).unique()))
    kind = ledger["kind"]
    equity = ledger[kind == "equity"].set_index("date")["value"].rename("equity")
    equity.index = pd.DatetimeIndex(equity.index)
    equity = equity.reindex(days)
    trades = ledger[kind == "fill"].drop(columns=["kind", "weight"]).reset_index(drop=True)
    trades["date"] = pd.to_datetime(trades["date"])
    fees = trades.groupby("date")[FEES].sum().sum(axis=1).reindex(days, fill_value=0.0)
    traded = trades.groupby("date")["value"].sum().reindex(days, fill_value=0.0)
    prev = equity.shift(1)
    returns = (equity / prev - 1.0).iloc[1:].rename("after costs")
    before = ((equity + fees) / prev - 1.0).iloc[1:].rename("before costs")
    positions = ledger[kind == "position"][["date", "symbol", "shares", "value", "weight"]]
    positions = positions.assign(date=pd.to_datetime(positions["date"])).reset_index(drop=True)
    return BookHistory(equity, returns, before, fees.rename("fees"),
                       (traded / (2 * prev)).iloc[1:].rename("turnover"), positions, trades)  # fmt: skip


def universe_returns(bars: pd.DataFrame) -> pd.Series:
    """The equal-weighted close/preclose - 1 of the stocks trading each day: the benchmark."""
    live = bars[~bars["is_suspended"].astype(bool)]
    r = live["close"] / live["preclose"] - 1.0
    out = r.groupby(pd.to_datetime(live["date"])).mean().rename("universe")
    return out.sort_index()


def industry_exposure(positions: pd.DataFrame, industries: pd.Series) -> pd.DataFrame:
    """Weight per industry each day (days x industries)."""
    if positions.empty:
        return pd.DataFrame()
    ind = positions["symbol"].map(industries).fillna("unknown")
    return positions.assign(industry=ind).pivot_table(
        index="date", columns="industry", values="weight", aggfunc="sum", fill_value=0.0
    )


def model_quality(predictions: pd.DataFrame, labels: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """The scores' daily rank IC against the label (Qlib's, known two days later) and the mean
    label of each score quintile (1 = lowest scores), over the days whose label is known."""
    label = labels_by_date(labels, "label")
    score = predictions.set_index(["date", "symbol"])["score"]
    score.index = score.index.set_levels(pd.to_datetime(score.index.levels[0]), level=0)
    both = pd.concat([score.rename("score"), label.rename("label")], axis=1, join="inner").dropna()
    if both.empty:
        return pd.Series(dtype=float, name="rank_ic"), pd.Series(dtype=float, name="quantile")
    ic = daily_rank_ic(both["score"], both["label"], min_names=10).rename("rank_ic")
    q = both.groupby(level="date")["score"].transform(
        lambda s: pd.qcut(s.rank(method="first"), QUANTILES, labels=False) + 1
        if len(s) >= QUANTILES else np.nan
    )  # fmt: skip
    per_day = both.assign(q=q).dropna().groupby([pd.Grouper(level="date"), "q"])["label"].mean()
    quant = per_day.groupby(level="q").mean().rename("mean label")
    quant.index = quant.index.astype(int)
    return ic, quant
