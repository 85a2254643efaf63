"""The API service: `create_app(config)` builds the FastAPI application and its services.

Routes: `/v1/...` (data, scope `read`), `/v1/admin/...` (scope `admin`), `/oauth/token`,
`/metrics`, `/openapi.json`. Every request passes the request recorder (audit row, metrics,
security headers); CORS only when origins are configured. Nothing is opened at import time:
the services are built in `create_app`; the audit writer and the key refresher start with the
application, and the audit writer writes what is queued when it stops. With an embedded store
both do their store work in a child process (`store_agent`), started at its first use and
ended after the last audit write.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from quant_assets.api.audit import AuditLog
from quant_assets.api.config import ApiConfig, config_from_settings
from quant_assets.api.data import CachedReader
from quant_assets.api.health import HealthReader
from quant_assets.api.keys import KeyStore
from quant_assets.api.model_board import ModelBoard
from quant_assets.api.rate_limit import LocalRateLimiter, RateLimiter, RedisRateLimiter
from quant_assets.api.store import Store, StoreBusy
from quant_assets.api.store_agent import StoreAgent

log = logging.getLogger(__name__)
DESCRIPTION = """The AI stock-selection platform's data for portfolio managers and tools.

Authenticate with an API key in `X-API-Key`, or exchange it for a short-lived bearer token at
`/oauth/token` (OAuth2 client credentials: `client_id` = the key's id, `client_secret` = the
key). Scopes: `read` (every `/v1` data route), `admin` (also `/v1/admin`). Lists are paginated
(`page` from 1, `page_size` 1..500); unknown or repeated query parameters are refused (422).
Rate limits per key and route answer 429 with `Retry-After`. Every request is audited.
"""


@dataclass
class Services:
    """What the routes use, built once per application."""

    config: ApiConfig
    store: Store
    cache: object  # resources.cache.CacheResource
    keys: KeyStore
    reader: CachedReader
    limiter: RateLimiter
    audit: AuditLog
    health: HealthReader
    models: ModelBoard
    registry: object  # prometheus_client.CollectorRegistry
    metrics: object  # ApiRequestMetrics
    agent: StoreAgent | None = None  # the embedded store's child process for audit and keys

    @property
    def inline(self) -> bool:
        """Whether a remembered answer or key can be used without blocking (the cache and the
        limiter in this process, not on Redis): then the event loop serves it directly."""
        return self.config.redis_url is None


def build_services(config: ApiConfig) -> Services:
    """The stores, cache, key store, limiter, audit log and readers of `config`."""
    from prometheus_client import CollectorRegistry

    from quant_assets.automation.monitoring.metrics import ApiRequestMetrics
    from resources.cache import CacheResource
    from resources.clickhouse_io import ClickHouseIOManager

    store = Store(config.clickhouse_dsn, config.database, config.store_wait_s)
    cache = CacheResource(redis_url=config.redis_url)
    # The IO manager's names for the tables' cache generations: its bumps reach these reads.
    cache_name = ClickHouseIOManager(clickhouse=store.resource, cache=cache).cache_name
    limiter: RateLimiter = (
        RedisRateLimiter(config.redis_url, config.rate_limit_per_minute)
        if config.redis_url
        else LocalRateLimiter(config.rate_limit_per_minute)
    )
    registry = CollectorRegistry(auto_describe=False)
    agent = (
        StoreAgent(config.clickhouse_dsn, config.database, config.store_wait_s)
        if store.resource.embedded
        else None
    )
    return Services(
        config=config,
        store=store,
        cache=cache,
        keys=KeyStore(
            store, cache, cache_name("api_keys"), config.key_pepper, config.key_recheck_s, agent
        ),
        reader=CachedReader(store, cache, cache_name, enabled=config.read_cache),
        limiter=limiter,
        audit=AuditLog(store, config.audit_flush_s, config.audit_spill_dir, agent=agent),
        health=HealthReader(config.dagster_home, config.health_cache_s, config.market_kinds),
        models=ModelBoard(config.mlflow_tracking_uri, config.models_cache_s),
        registry=registry,
        metrics=ApiRequestMetrics(registry),
        agent=agent,
    )


def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 naming each bad parameter and why, without echoing the value sent."""
    detail = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", "invalid"), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    return JSONResponse({"detail": detail}, status_code=422)


def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    return JSONResponse(
        {"detail": exc.detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None)
    )


def _store_busy(request: Request, exc: StoreBusy) -> JSONResponse:
    return JSONResponse(
        {"detail": "the data store is busy with a pipeline run; retry shortly"},
        status_code=503,
        headers={"Retry-After": "30"},
    )


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    """500 with an id to find the logged error; the error itself never reaches the client."""
    incident = secrets.token_hex(6)
    log.error("API error %s on %s %s", incident, request.method, request.url.path, exc_info=exc)
    from quant_assets.api.recording import SECURITY_HEADERS

    return JSONResponse(
        {"detail": "internal error", "incident": incident},
        status_code=500,
        headers=SECURITY_HEADERS,  # this answer leaves outside the request recorder
    )


def create_app(config: ApiConfig | None = None) -> FastAPI:
    """The application for `config` (default: this deployment's settings)."""
    from fastapi.middleware.cors import CORSMiddleware

    from quant_assets.api import routes_admin, routes_data, routes_oauth, routes_ops
    from quant_assets.api.recording import RequestRecorder

    config = config or config_from_settings()
    services = build_services(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services.audit.start()
        services.keys.start()
        try:
            yield
        finally:
            services.keys.stop()
            services.audit.stop()  # its last rows go through the agent: closed after it
            if services.agent is not None:
                services.agent.close()
            services.health.close()

    app = FastAPI(
        title="quant-assets API",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs" if config.docs else None,
        redoc_url=None,
    )
    app.state.services = services
    app.include_router(routes_oauth.router)
    app.include_router(routes_data.router)
    app.include_router(routes_ops.router)
    app.include_router(routes_admin.router)
    app.include_router(routes_ops.metrics_router)
    # -- the dashboard (issue 16, item 3): its router is included here ---------------------
    from quant_assets.api.dashboard import dashboard_router

    app.include_router(dashboard_router)
    # ---------------------------------------------------------------------------------------
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(StoreBusy, _store_busy)
    app.add_exception_handler(Exception, _unexpected)
    if config.cors_origins:  # closed by default: no CORS headers, browsers refuse
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(config.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type"],
            allow_credentials=False,
            max_age=600,
        )
    app.add_middleware(RequestRecorder, services=services)  # outermost: sees every answer
    return app


def app() -> FastAPI:
    """The deployment's application (for `uvicorn --factory quant_assets.api.app:app`).

    What is built up to here (the modules imported, the services) lives as long as the
    process, so it is moved out of the collector's sight (`gc.freeze`): measured under load,
    the full collections that scanned it took 0.5-1 s each, several times every 10 s, and
    every request in flight waited for them; afterwards they scan only what requests leave."""
    import gc

    application = create_app()
    gc.collect()
    gc.freeze()
    return application
