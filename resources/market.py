"""Where raw market data comes from: the simulated market by default."""

from __future__ import annotations

from functools import lru_cache

from dagster import ConfigurableResource
from pydantic import Field


@lru_cache(maxsize=4)
def _simulated(seed: int, n_symbols: int, start: str, end: str):
    from quant_assets.calendar import trading_days
    from quant_assets.market.simulated import SimulatedMarket

    return SimulatedMarket(trading_days(start, end), n_symbols=n_symbols, seed=seed)


class MarketDataResource(ConfigurableResource):
    """The market-data source. `simulated` is a seeded A-share market whose truth is known;
    it is built once per process and its days are generated on demand."""

    source: str = Field(default="simulated", description="simulated")
    seed: int = Field(default=7, description="seed of the simulated market")
    n_symbols: int = Field(default=100, description="size of the simulated universe")
    sim_start: str = Field(default="2023-01-03", description="first day of the simulated market")
    sim_end: str = Field(default="2026-12-31", description="last day of the simulated market")

    def simulated(self):
        """The simulated market (cached per process for these settings)."""
        if self.source != "simulated":
            raise ValueError(f"market source {self.source!r} is not available; use 'simulated'")
        return _simulated(self.seed, self.n_symbols, self.sim_start, self.sim_end)
