"""Who is calling and what they may do: an API key (`X-API-Key`) or a bearer token from
`/oauth/token`, the scope a route needs, and the caller's rate limit on the route.

Every refusal says as little as possible: 401 "missing or invalid credentials" whether the
key is unknown, wrong, revoked or expired, or the token forged or expired; 403 names the scope
missing; 429 gives Retry-After. A caller without valid credentials is rate-limited by its
client address, so guessing costs a minute per `rate_limit` tries.

The check runs on the event loop when nothing in it can block (the cache and the limiter in
this process, the key's record in memory: the common case) and in the thread pool otherwise
(a key's record to read, Redis to ask), so a cached answer never waits for a thread.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Depends, HTTPException, Request
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlows
from fastapi.security import APIKeyHeader, OAuth2
from starlette.concurrency import run_in_threadpool

from quant_assets.api import tokens
from quant_assets.api.keys import NotRemembered, parse_key

AUDIT_SCOPE = "quant.audit"  # the request's audit context in the ASGI scope
UNAUTHORIZED = "missing or invalid credentials"

oauth2_scheme = OAuth2(
    flows=OAuthFlows(
        clientCredentials=OAuthFlowClientCredentials(
            tokenUrl="/oauth/token",
            scopes={"read": "read the platform's data", "admin": "manage keys, read the audit"},
        )
    ),
    scheme_name="OAuth2ClientCredentials",
    auto_error=False,
)
api_key_scheme = APIKeyHeader(name="X-API-Key", scheme_name="ApiKey", auto_error=False)


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: the key (directly or through a token) and its scopes."""

    key_id: str
    scopes: tuple[str, ...]
    via: str  # "key" or "token"


def route_template(request: Request) -> str:
    """The matched route's template (`/v1/recommendations`), never the raw path."""
    route = request.scope.get("route")
    return getattr(route, "path", None) or "unmatched"


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def audit_context(request: Request) -> dict[str, object]:
    """The mutable audit context the request-recording middleware put in the scope."""
    return request.scope.setdefault(AUDIT_SCOPE, {})


def too_many(retry_after_s: int) -> HTTPException:
    return HTTPException(429, "rate limit exceeded", headers={"Retry-After": str(retry_after_s)})


def limit_anonymous(request: Request) -> None:
    """Count a request by its client address; 429 when over the limit."""
    services = request.app.state.services
    decision = services.limiter.hit(f"addr:{client_address(request)}", route_template(request))
    if not decision.allowed:
        raise too_many(decision.retry_after_s)


def authenticate(
    request: Request, authorization: str | None, api_key: str | None, wait: bool = True
) -> Principal | None:
    """The caller, when the credentials are valid and the key usable; else None. With
    `wait=False`, NotRemembered when the key's record must be read first (nothing counted)."""
    services = request.app.state.services
    if api_key:
        parsed = parse_key(api_key)
        found = services.keys.verify(*parsed, wait=wait) if parsed else None
        return Principal(found.key_id, found.scopes, "key") if found else None
    if authorization:
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() != "bearer" or not credentials:
            return None
        claims = tokens.verify(credentials.strip(), services.config.token_secret)
        if claims is None:
            return None
        key = services.keys.get(claims.key_id, wait)  # the key behind the token is still usable
        if key is None or not key.usable():
            return None
        return Principal(key.key_id, tuple(s for s in claims.scopes if s in key.scopes), "token")
    return None


def admit(
    request: Request, scope: str, authorization: str | None, api_key: str | None, wait: bool
) -> Principal:
    """The caller if authenticated, within its rate limit and holding `scope`; else the
    refusal (401, 429 or 403). `wait` as in `authenticate`."""
    principal = authenticate(request, authorization, api_key, wait)
    if principal is None:
        limit_anonymous(request)
        raise HTTPException(401, UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"})
    audit_context(request)["key_id"] = principal.key_id
    decision = request.app.state.services.limiter.hit(
        f"key:{principal.key_id}", route_template(request)
    )
    if not decision.allowed:
        raise too_many(decision.retry_after_s)
    if scope not in principal.scopes:
        raise HTTPException(403, f"this route needs the {scope} scope")
    return principal


def require(scope: str):
    """A dependency that lets only callers holding `scope` through, within their rate limit:
    on the event loop when nothing can block, else in the thread pool (module docstring)."""

    async def dependency(
        request: Request,
        authorization: str | None = Depends(oauth2_scheme),
        api_key: str | None = Depends(api_key_scheme),
    ) -> Principal:
        if request.app.state.services.inline:
            try:
                return admit(request, scope, authorization, api_key, wait=False)
            except NotRemembered:
                pass
        return await run_in_threadpool(admit, request, scope, authorization, api_key, True)

    dependency.__name__ = f"require_{scope}"
    return dependency


require_read = require("read")
require_admin = require("admin")
