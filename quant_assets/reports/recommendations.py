"""The day's recommendations from the paper book's decision: what to hold tomorrow and what to
sell, with the model's score, probability and confidence, the target weight and shares, the
reason for each trade and any risk notes. A rejected portfolio is published as "no trade"
with the broken rules."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from quant_assets.reports.tables import RECOMMENDATIONS
from quant_assets.strategy.book import REJECTED
from quant_assets.strategy.ledger import read_breaches
from quant_assets.strategy.risk import Breach

SHOWN = ["rank", "symbol", "name", "industry", "action", "weight", "shares", "score",
         "probability", "confidence", "reason", "risk_note"]  # fmt: skip


def _risk_notes(breaches: list[Breach], target: pd.DataFrame, info: pd.DataFrame) -> pd.Series:
    """Each target name's breaches: its own, its industry's or board's, and the book's."""
    notes = pd.Series("", index=target["symbol"].to_numpy())
    for b in breaches:
        text = b.describe()
        if b.subject == "book":
            hit = notes.index
        elif b.subject in notes.index:
            hit = [b.subject]
        else:
            groups = info.reindex(notes.index)
            hit = notes.index[(groups["industry"] == b.subject) | (groups["board"] == b.subject)]
        notes[hit] = notes[hit].where(notes[hit].eq(""), notes[hit] + "; ") + text
    return notes


def build(day: pd.Timestamp, for_day: pd.Timestamp, ledger: pd.DataFrame, signals: pd.DataFrame,
          universe: pd.DataFrame) -> tuple[pd.DataFrame, str]:  # fmt: skip
    """The recommendations (RECOMMENDATIONS' columns) and the day's status."""
    kind = ledger["kind"]
    status = ledger.loc[kind == "status", "reason"]
    status = status.iloc[0] if len(status) else "no trade"
    target = ledger[kind == "target"][["symbol", "shares", "price", "weight", "reason"]]
    target = target.rename(columns={"reason": "action", "price": "close"})
    orders = ledger[kind == "order"].groupby("symbol")["reason"].first()
    sells = ledger[(kind == "order") & (ledger["side"] == "sell")]
    gone = sells[~sells["symbol"].isin(target["symbol"])]
    out = pd.concat([target, pd.DataFrame({"symbol": gone["symbol"], "shares": 0.0, "weight": 0.0,
                                           "action": "sell"})], ignore_index=True)  # fmt: skip
    info = universe.set_index("symbol")
    out["reason"] = (
        out["symbol"]
        .map(orders)
        .fillna(out["action"].map({"hold": "held: still in the top-N", "wait": "below one lot"}))
    )
    out["risk_note"] = _risk_notes(read_breaches(ledger), out, info).to_numpy()
    if status == REJECTED:
        out["action"] = "no trade"
        out["reason"] = "portfolio rejected by the risk rules"
    sig = signals.set_index("symbol")
    out = out.join(sig[["rank", "score", "probability", "confidence"]], on="symbol")
    out = out.join(info[["name", "industry"]], on="symbol")
    out["close"] = out["close"].fillna(out["symbol"].map(ledger[kind == "position"].set_index(
        "symbol")["price"]))  # fmt: skip
    out = out.assign(date=day, for_date=for_day, status=status)
    out["shares"] = out["shares"].fillna(0).astype("uint64")
    out["rank"] = out["rank"].fillna(0).astype("uint32")
    out = out.sort_values(["weight", "rank"], ascending=[False, True], kind="stable")
    return out[list(RECOMMENDATIONS.columns)].reset_index(drop=True), status


def write_files(recs: pd.DataFrame, folder: Path, day: str) -> tuple[Path, Path]:
    """The recommendations as CSV (UTF-8 with a byte-order mark, so spreadsheet programs show
    the Chinese names) and as JSON records."""
    folder.mkdir(parents=True, exist_ok=True)
    csv, js = folder / f"{day}.csv", folder / f"{day}.json"
    recs.to_csv(csv, index=False, encoding="utf-8-sig")
    recs.to_json(js, orient="records", date_format="iso", force_ascii=False, indent=1)
    return csv, js
