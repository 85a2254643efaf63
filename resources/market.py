"""Where raw market data comes from: the simulated market (default) or a landing zone.

Both deliver files in the landing-zone format (quant_assets/market/landing.py): the simulated
market acts as a vendor and drops its day's files there first, so every source goes through the
same reading and validation path, and the raw file is kept next to what was ingested.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd
from dagster import ConfigurableResource, EnvVar
from pydantic import Field, field_validator


@lru_cache(maxsize=4)
def _simulated(seed: int, n_symbols: int, start: str, end: str, snapshot_seconds: int):
    from quant_assets.calendar import trading_days
    from quant_assets.market.sources.simulated import SimulatedMarket

    return SimulatedMarket(
        trading_days(start, end),
        n_symbols=n_symbols,
        seed=seed,
        snapshot_seconds=snapshot_seconds,
    )


SOURCES = ("simulated", "landing", "baostock")


class MarketDataResource(ConfigurableResource):
    """The market-data source. `simulated`: a seeded A-share market whose truth is known, built
    once per process with its days generated on demand. `landing`: files a vendor dropped in
    `landing_dir` (plus a reference `universe.parquet` or `universe.csv` there)."""

    source: str = Field(
        default="simulated",
        description="simulated, landing, or baostock (daily bars from baostock's service; "
        "the other kinds from the landing zone)",
    )
    landing_dir: str = Field(default="", description="root of the landing zone")
    seed: int = Field(default=7, description="seed of the simulated market")
    n_symbols: int = Field(default=100, description="size of the simulated universe")
    sim_start: str = Field(default="2023-01-03", description="first day of the simulated market")
    sim_end: str = Field(default="2026-12-31", description="last day of the simulated market")
    snapshot_seconds: int = Field(
        default=3, description="order-book snapshot interval (divides 60)"
    )

    @field_validator("source", mode="before")
    @classmethod
    def _known_source(cls, value: object) -> object:
        # an EnvVar holds the variable's name: its value is checked once Dagster resolves it
        if not isinstance(value, EnvVar) and value not in SOURCES:
            raise ValueError(f"market source {value!r} is not one of {', '.join(SOURCES)}")
        return value

    def simulated(self):
        """The simulated market (cached per process for these settings)."""
        if self.source != "simulated":
            raise ValueError(f"the market source is {self.source!r}, not the simulated market")
        return _simulated(
            self.seed, self.n_symbols, self.sim_start, self.sim_end, self.snapshot_seconds
        )

    def universe(self) -> pd.DataFrame:
        """Reference data of every symbol (UNIVERSE columns)."""
        if self.source == "simulated":
            return self.simulated().universe()
        from quant_assets.market.sources.landing import read_reference_universe

        return read_reference_universe(Path(self.landing_dir))

    def land(self, kind: str, day: pd.Timestamp) -> Path:
        """The landing file of `kind` for `day`. If it is missing, the simulated vendor writes it,
        or baostock's bars are fetched into it; a landing zone without it is an error."""
        from quant_assets.market.sources.landing import find_landing_file, write_landing_file
        from quant_assets.market.validation import IngestError

        root = Path(self.landing_dir)
        found = find_landing_file(root, kind, day)
        if found is not None:
            return found
        if self.source == "baostock" and kind == "bars":
            from dagster import get_dagster_logger

            from quant_assets.market.sources.vendor_baostock import fetch_daily_bars

            symbols = self.universe()["symbol"]
            frame = fetch_daily_bars(day, symbols, progress=get_dagster_logger().info)
            return write_landing_file(frame, root, kind, day, fmt="csv")
        if self.source != "simulated":
            raise IngestError(
                str(root / kind), f"no {kind} file for {day.date()} in the landing zone"
            )
        sim = self.simulated()
        frame = {
            "bars": lambda: sim.daily_bars(day, day),
            "trades": lambda: sim.trades(day),
            "order_book": lambda: sim.order_book(day),
            "news": lambda: sim.news(day),
            "corporate_actions": lambda: sim.corporate_actions(day),
        }[kind]()
        return write_landing_file(frame, root, kind, day, fmt="parquet")
