"""The API service's configuration: where its data lives and its security settings.

`ApiConfig` holds every knob with an explicit default, so tests build one by hand.
`config_from_settings()` is the one place that reads the environment, through the project's
declared settings (resources/settings.py: the stores' and the API's `QUANT_API_*`).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from resources.market import KINDS

DEFAULT_RATE_LIMIT = 600  # requests per minute per key (or client address) and route
DEFAULT_TOKEN_TTL_S = 15 * 60


@dataclass
class ApiConfig:
    """What `create_app` needs. Store locations default to the embedded stack's."""

    clickhouse_dsn: str
    database: str = "quant"
    redis_url: str | None = None  # the cache and the rate limiter on Redis; None: in process
    mlflow_tracking_uri: str | None = None
    dagster_home: Path | None = None  # None: DAGSTER_HOME (DagsterInstance.get())
    reports_dir: Path | None = None  # the performance pages (<day>.html)
    token_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    key_pepper: str = field(default="", repr=False)
    token_ttl_s: int = DEFAULT_TOKEN_TTL_S
    rate_limit_per_minute: int = DEFAULT_RATE_LIMIT
    cors_origins: tuple[str, ...] = ()
    # how long a request waits for the embedded store while a run holds it (then 503)
    store_wait_s: float = 30.0
    # a key's record is used from memory for at most this long: re-read off the request
    # path every half of it, read before use when older (and at once when the api_keys
    # table's cache generation changes: a revocation through the same cache). The bound on
    # how long a key revoked from another process keeps working.
    key_recheck_s: float = 30.0
    # audit rows are written in batches this often: each write opens the embedded store
    # (~0.1 s of a core, in the store agent's process), so not more often than a few times
    # a minute
    audit_flush_s: float = 10.0
    audit_spill_dir: Path | None = None  # audit rows that could not be written wait here
    health_cache_s: float = 5.0
    models_cache_s: float = 30.0
    docs: bool = False  # Swagger UI at /docs (loads its scripts from a CDN: off by default)
    read_cache: bool = True  # False: every answer read from ClickHouse (to measure, to debug)
    # the kinds of data the market delivers (QUANT_MARKET_KINDS), shown with the run health
    market_kinds: tuple[str, ...] = KINDS

    def __post_init__(self) -> None:
        if not 60 <= self.token_ttl_s <= 86_400:
            raise ValueError(f"token_ttl_s must be within 60..86400, got {self.token_ttl_s}")
        if self.rate_limit_per_minute < 1:
            raise ValueError("rate_limit_per_minute must be at least 1")
        if len(self.token_secret) < 16:
            raise ValueError("the token secret must be at least 16 characters")


def config_from_settings() -> ApiConfig:
    """The configuration of this deployment: the project's settings for the stores (as the
    pipeline sees them), the `QUANT_API_*` variables for the API's own knobs."""
    from resources.market import parse_kinds
    from resources.settings import data_dir, setting

    home = os.environ.get("DAGSTER_HOME", "").strip()
    kwargs: dict[str, object] = {
        "read_cache": setting("QUANT_API_READ_CACHE"),
        "token_ttl_s": setting("QUANT_API_TOKEN_TTL"),
        "rate_limit_per_minute": setting("QUANT_API_RATE_LIMIT"),
    }
    if secret := setting("QUANT_API_TOKEN_SECRET"):
        kwargs["token_secret"] = secret
    if pepper := setting("QUANT_API_KEY_PEPPER"):
        kwargs["key_pepper"] = pepper
    if origins := setting("QUANT_API_CORS_ORIGINS"):
        kwargs["cors_origins"] = tuple(o.strip() for o in origins.split(",") if o.strip())
    return ApiConfig(
        clickhouse_dsn=setting("QUANT_CLICKHOUSE_DSN"),
        database=setting("QUANT_CLICKHOUSE_DATABASE"),
        redis_url=setting("QUANT_REDIS_URL"),
        mlflow_tracking_uri=setting("MLFLOW_TRACKING_URI"),
        dagster_home=Path(home) if home else None,
        reports_dir=data_dir() / "reports",
        audit_spill_dir=data_dir() / "api_audit_spill",
        market_kinds=parse_kinds(setting("QUANT_MARKET_KINDS")),
        **kwargs,
    )
