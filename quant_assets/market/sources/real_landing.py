"""The CSI300 set of ``../shared/data`` delivered into a landing zone, as a vendor would.

Its bars are recorded baostock output (see SOURCES.md). They are delivered one CSV per trading
day through the baostock adapter's mapping, values as the vendor wrote them (text; empty for
missing), so the ingest reads, validates and quarantines them exactly as it would a live
delivery. The reference universe comes from the index's constituent list (names) and baostock's
CSRC industry list. The set has no corporate-actions file: the exchange's ex-rights
``preclose`` in the bars carries every dividend and bonus share, and the adjustment stage uses
it where no action was delivered. So the market it makes delivers daily bars only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from quant_assets.market.contract import columns as C
from quant_assets.market.rules import board_of
from quant_assets.market.sources.landing import find_landing_file, write_landing_file
from quant_assets.market.sources.real_data import CSI300_BARS, data_path
from quant_assets.market.sources.vendor_baostock import baostock_to_symbol, bars_from_baostock

CONSTITUENTS = "cn_csi300_daily_2021_2024/hs300_constituents_2024-08-19.csv"
INDUSTRIES = "cn_csi300_daily_2021_2024/stock_industry_csrc_2026-03-09.csv"
# What the CSI300 market delivers (QUANT_MARKET_KINDS): bars, nothing intraday, no news.
KINDS = "bars"
# baostock leaves the industry of a few codes empty; the reference file says so in words
# rather than with an empty string that would group them as one industry silently.
UNCLASSIFIED = "未分类"


@dataclass(frozen=True)
class Delivery:
    """What `land_csi300` put in the landing zone."""

    root: Path
    symbols: int
    days_written: int
    days_present: int
    first_day: str
    last_day: str


def csi300_universe(raw: pd.DataFrame) -> pd.DataFrame:
    """The reference universe (UNIVERSE columns) of the symbols in `raw` (baostock rows).

    Names from the constituent list (industry list where absent), CSRC industries, the board
    from the code. The list date is the symbol's first bar in the set: for the 249 codes
    listed before 2021 that is the set's first day, not the IPO (baostock's
    `query_stock_basic` has it; the recording does not). The ST flag is the one of the
    symbol's first bar, known then; the daily bars carry each day's own flag.
    """
    first = raw.sort_values("date").groupby("code", sort=True).first()
    members = pd.read_csv(data_path(CONSTITUENTS), dtype=str).set_index("code")["code_name"]
    industry = pd.read_csv(data_path(INDUSTRIES), dtype=str).set_index("code")
    codes = first.index
    names = members.reindex(codes).fillna(industry["code_name"].reindex(codes))
    symbols = baostock_to_symbol(pd.Series(codes, index=codes))
    return pd.DataFrame(
        {
            "symbol": symbols.to_numpy(),
            "name": names.fillna("").to_numpy(),
            "industry": industry["industry"].reindex(codes).fillna(UNCLASSIFIED).to_numpy(),
            "board": [board_of(s) for s in symbols],
            "list_date": first["date"].to_numpy(),
            "is_st": first["isST"].astype(str).eq("1").to_numpy(),
        }
    )[C.UNIVERSE]


def land_csi300(
    root: str | Path,
    end: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> Delivery:
    """Deliver the CSI300 set into the landing zone `root`: `universe.csv` and one
    `bars/YYYY-MM-DD.csv` per trading day up to `end` (the set's last day by default). A day
    whose file is already there is left as it is (a re-run delivers only what is missing).
    FileNotFoundError, naming the path, when ``../shared/data`` lacks the set."""
    root = Path(root)
    raw = pd.read_csv(data_path(CSI300_BARS), dtype=str, keep_default_na=False)
    if end is not None:
        raw = raw[raw["date"] <= end]
    root.mkdir(parents=True, exist_ok=True)
    universe = csi300_universe(raw)
    universe.to_csv(root / "universe.csv", index=False, encoding="utf-8")
    days = sorted(raw["date"].unique())
    written = 0
    for i, (day, rows) in enumerate(raw.groupby("date", sort=True), 1):
        if find_landing_file(root, "bars", day) is None:
            write_landing_file(bars_from_baostock(rows), root, "bars", day, fmt="csv")
            written += 1
        if progress is not None and (i % 100 == 0 or i == len(days)):
            progress(f"CSI300 landing: {i}/{len(days)} days ({written} written)")
    return Delivery(root, len(universe), written, len(days), days[0], days[-1])
