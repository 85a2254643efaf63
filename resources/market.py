"""Settings of the market-data source: the simulated market (default) or a landing zone.

Settings only: `quant_assets.market.sources.delivery` turns them into the universe and each
day's landing files, so this package never reaches up into the domain code.
"""

from __future__ import annotations

from dagster import ConfigurableResource, EnvVar
from pydantic import Field, field_validator

SOURCES = ("simulated", "landing", "baostock")


class MarketDataResource(ConfigurableResource):
    """The market-data source. `simulated`: a seeded A-share market whose truth is known, built
    once per process with its days generated on demand. `landing`: files a vendor dropped in
    `landing_dir` (plus a reference `universe.parquet` or `universe.csv` there). `baostock`:
    daily bars fetched from baostock into the landing zone, the other kinds from the zone."""

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
