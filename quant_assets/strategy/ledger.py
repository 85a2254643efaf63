"""The paper book's day as ledger rows (the `paper_book` table), and the book read back from
the previous day's rows: the one state the next day starts from."""

from __future__ import annotations

import numpy as np
import pandas as pd

from quant_assets.strategy.book import BookDay
from quant_assets.strategy.broker import ORDER_COLUMNS, Account
from quant_assets.strategy.risk import Breach
from quant_assets.strategy.tables import PAPER_BOOK

LEDGER_COLUMNS = [c for c in PAPER_BOOK.columns if c != "date"]


def _rows(kind: str, frame: pd.DataFrame, **fixed) -> pd.DataFrame:
    out = frame.assign(kind=kind, **fixed)
    return out.reindex(columns=LEDGER_COLUMNS)


def to_ledger(day: pd.Timestamp, out: BookDay, close: pd.Series) -> pd.DataFrame:
    """Every fact of the book's day as rows of the `paper_book` table."""
    acct = out.account
    held = pd.Series(acct.shares, dtype=float)
    price = close.reindex(held.index)
    positions = pd.DataFrame({"symbol": held.index, "shares": held.to_numpy(),
                              "price": price.to_numpy(), "value": (held * price).to_numpy()})  # fmt: skip
    positions["weight"] = positions["value"] / out.equity if out.equity else np.nan
    target = out.target.assign(reason=out.target["action"])
    breaches = pd.DataFrame([{"symbol": b.subject, "reason": b.rule, "value": b.value,
                              "price": b.limit, "side": "hard" if b.hard else "soft"}
                             for b in out.breaches])  # fmt: skip
    parts = [
        _rows("position", positions),
        _rows("cash", pd.DataFrame({"value": [acct.cash]})),
        _rows("equity", pd.DataFrame({"value": [out.equity], "price": [out.peak_equity]})),
        _rows("fill", out.fills),
        _rows("unfilled", out.unfilled),
        _rows("target", target),
        _rows("order", out.orders),
        _rows("status", pd.DataFrame({"reason": [out.status]})),
        _rows("breach", breaches),
        _rows("note", pd.DataFrame({"reason": out.notes})),
    ]
    rows = pd.concat([p for p in parts if len(p)], ignore_index=True)
    for col in ("symbol", "side", "reason"):
        rows[col] = rows[col].fillna("").astype(str)
    num = [c for c in LEDGER_COLUMNS if c not in ("kind", "symbol", "side", "reason")]
    rows[num] = rows[num].astype(float)
    rows.insert(0, "date", day)
    return rows


def read_breaches(rows: pd.DataFrame) -> list[Breach]:
    """The breaches recorded in ledger rows, as `to_ledger` wrote them."""
    b = rows[rows["kind"] == "breach"]
    return [Breach(r.reason, r.symbol, float(r.value), float(r.price), r.side == "hard")
            for r in b.itertuples(index=False)]  # fmt: skip


def from_ledger(previous: pd.DataFrame, initial_cash: float) -> tuple[Account, pd.DataFrame, float]:
    """The account, the orders to fill today and the peak equity after the previous day's
    ledger rows (a new book of `initial_cash` when there are none)."""
    if previous.empty:
        return (
            Account(initial_cash * 100.0, {}, {}),
            pd.DataFrame(columns=ORDER_COLUMNS),
            initial_cash,
        )
    by = {k: g for k, g in previous.groupby("kind")}
    pos = by.get("position", pd.DataFrame(columns=["symbol", "shares"]))
    cash = float(by["cash"]["value"].iloc[0])
    peak = float(by["equity"]["price"].iloc[0])
    orders = by.get("order", pd.DataFrame(columns=ORDER_COLUMNS))[ORDER_COLUMNS]
    shares = dict(zip(pos["symbol"], pos["shares"].astype(float), strict=True))
    return Account(round(cash * 100.0), shares, {}), orders.reset_index(drop=True), peak
