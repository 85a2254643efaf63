"""What the market resource's settings deliver: the reference universe and each day's files.

The resource (`resources.market.MarketDataResource`) holds settings only; this module turns
them into data. Every source ends in the landing zone: the simulated market acts as a vendor
and writes its day's files there, baostock's daily bars are fetched into it, and a landing
zone delivered by a real vendor is read as it is. So one reading and validation path serves
all of them, and the raw file stays next to what was ingested.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import pandas as pd
from dagster import get_dagster_logger

from quant_assets.calendar import trading_days
from quant_assets.market.sources.landing import (
    find_landing_file,
    read_reference_universe,
    write_landing_file,
)
from quant_assets.market.sources.simulated import SimulatedMarket
from quant_assets.market.validation import IngestError
from resources.market import MarketDataResource


@lru_cache(maxsize=4)
def _simulated(
    seed: int, n_symbols: int, start: str, end: str, snapshot_seconds: int
) -> SimulatedMarket:
    return SimulatedMarket(
        trading_days(start, end),
        n_symbols=n_symbols,
        seed=seed,
        snapshot_seconds=snapshot_seconds,
    )


def simulated_market(market: MarketDataResource) -> SimulatedMarket:
    """The simulated market of these settings (built once per process, days on demand)."""
    if market.source != "simulated":
        raise ValueError(f"the market source is {market.source!r}, not the simulated market")
    return _simulated(
        market.seed, market.n_symbols, market.sim_start, market.sim_end, market.snapshot_seconds
    )


def reference_universe(market: MarketDataResource) -> pd.DataFrame:
    """Reference data of every symbol (the UNIVERSE columns)."""
    if market.source == "simulated":
        return simulated_market(market).universe()
    return read_reference_universe(Path(market.landing_dir))


def land(market: MarketDataResource, kind: str, day: pd.Timestamp) -> Path:
    """The landing file of `kind` for `day`. If it is missing, the simulated vendor writes it,
    or baostock's bars are fetched into it; a landing zone without it is an error."""
    root = Path(market.landing_dir)
    found = find_landing_file(root, kind, day)
    if found is not None:
        return found
    if market.source == "baostock" and kind == "bars":
        from quant_assets.market.sources.vendor_baostock import fetch_daily_bars

        symbols = reference_universe(market)["symbol"]
        frame = fetch_daily_bars(day, symbols, progress=get_dagster_logger().info)
        return write_landing_file(frame, root, kind, day, fmt="csv")
    if market.source != "simulated":
        raise IngestError(str(root / kind), f"no {kind} file for {day.date()} in the landing zone")
    frame = simulated_market(market).delivery(kind, day)
    return write_landing_file(frame, root, kind, day, fmt="parquet")


def deliver_ahead(market: MarketDataResource, kinds: Sequence[str], days: Sequence[str]) -> int:
    """Land the files of `kinds` for `days` that are not there yet, day by day: the simulated
    vendor delivering ahead of the pipeline (run in a process of its own, it keeps the second
    core busy while the pipeline ingests). Each file appears atomically and holds what
    `land` would write for it (a simulated day depends only on the seed and the date), so
    either side may write a day first. Returns how many files it wrote."""
    written = 0
    for day in days:
        for kind in kinds:
            if find_landing_file(Path(market.landing_dir), kind, pd.Timestamp(day)) is None:
                land(market, kind, pd.Timestamp(day))
                written += 1
    return written


# The stages each kind feeds beyond its raw table: what a market without it goes without.
STAGES_OF_KIND = {
    "trades": "minute bars, microstructure factors",
    "order_book": "microstructure factors",
    "news": "news analysis, news factors",
    "corporate_actions": "announced actions (adjustment from the ex-rights preclose instead)",
}


def skipped_stages(kinds: Sequence[str]) -> dict[str, str]:
    """Kind -> the stages skipped without it, for each kind a market delivering `kinds` lacks."""
    return {kind: stages for kind, stages in STAGES_OF_KIND.items() if kind not in kinds}


def inputs_note(market: MarketDataResource) -> str | None:
    """One sentence saying which inputs the market's days have and what was skipped for the
    kinds it does not deliver; None when it delivers every kind."""
    absent = skipped_stages(market.delivered())
    if not absent:
        return None
    skipped = "; ".join(f"{kind.replace('_', ' ')}: {stages}" for kind, stages in absent.items())
    have = ", ".join(kind.replace("_", " ") for kind in market.delivered())
    return f"Inputs of the day: {have}. Not delivered by this market, so skipped ({skipped})."
