"""Settings of the market-data source: the simulated market (default) or a landing zone.

Settings only: `quant_assets.market.sources.delivery` turns them into the universe and each
day's landing files, so this package never reaches up into the domain code.
"""

from __future__ import annotations

from dagster import ConfigurableResource, EnvVar
from pydantic import Field, field_validator

SOURCES = ("simulated", "landing", "baostock")
# The kinds of data a market may deliver, one landing file per day each. Daily bars are the one
# kind every market must have; most vendors (baostock, tushare, akshare, a firm's own database)
# deliver bars and corporate actions only.
KINDS = ("bars", "trades", "order_book", "news", "corporate_actions")
REQUIRED_KINDS = ("bars",)


def parse_kinds(text: str) -> tuple[str, ...]:
    """The kinds named in `text` (comma-separated), in `KINDS` order; ValueError naming an
    unknown kind or a missing required one."""
    named = {part.strip() for part in text.split(",") if part.strip()}
    unknown = sorted(named - set(KINDS))
    if unknown:
        raise ValueError(f"unknown market data kinds {unknown}; known: {', '.join(KINDS)}")
    missing = [kind for kind in REQUIRED_KINDS if kind not in named]
    if missing:
        raise ValueError(f"a market must deliver {', '.join(missing)} (got {text!r})")
    return tuple(kind for kind in KINDS if kind in named)


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
    kinds: str = Field(
        default=",".join(KINDS),
        description="the kinds of data this market delivers, comma-separated (bars always; "
        "a bars-only market: bars,corporate_actions). The stages that need a kind it does "
        "not deliver are skipped, saying why.",
    )

    @field_validator("source", mode="before")
    @classmethod
    def _known_source(cls, value: object) -> object:
        # an EnvVar holds the variable's name: its value is checked once Dagster resolves it
        if not isinstance(value, EnvVar) and value not in SOURCES:
            raise ValueError(f"market source {value!r} is not one of {', '.join(SOURCES)}")
        return value

    @field_validator("kinds", mode="before")
    @classmethod
    def _known_kinds(cls, value: object) -> object:
        if not isinstance(value, EnvVar):
            parse_kinds(str(value))
        return value

    def delivered(self) -> tuple[str, ...]:
        """The kinds this market delivers, in `KINDS` order (read from the environment when
        the resource is used outside a run, where Dagster has not resolved its EnvVar)."""
        kinds = self.kinds
        return parse_kinds(kinds.get_value() or "" if isinstance(kinds, EnvVar) else kinds)

    def delivers(self, kind: str) -> bool:
        """Whether this market delivers `kind` (one of `KINDS`)."""
        if kind not in KINDS:
            raise ValueError(f"unknown market data kind {kind!r}; known: {', '.join(KINDS)}")
        return kind in self.delivered()

    def not_delivered(self, *kinds: str) -> str | None:
        """Why a stage that needs `kinds` has nothing to work on: None when the market
        delivers every one of them, else a sentence naming those it does not deliver."""
        absent = [kind for kind in kinds if not self.delivers(kind)]
        if not absent:
            return None
        return (
            f"this market delivers no {', '.join(absent)} (its kinds: {', '.join(self.delivered())}; "
            "QUANT_MARKET_KINDS)"
        )
