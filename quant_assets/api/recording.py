"""The outermost layer of every request: its audit row, its metrics and the security headers.

A pure ASGI middleware, so that it sees every answer, including 401s, 404s, 422s, 429s and
the 500 of an unexpected error, and learns the matched route's template from the scope after
routing (FastAPI leaves it there). Parameters are the query's and the path's, raw and cut to
a bounded size, unless the route set validated ones (the token route sets the client id and
never the secret).
"""

from __future__ import annotations

import secrets
import time
from urllib.parse import parse_qsl

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from quant_assets.api.audit import AuditRow, now_s, params_text
from quant_assets.api.auth import AUDIT_SCOPE

# Set on every answer unless the route set its own (the report page, the dashboard's files).
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
}
MAX_PARAMS = 20
MAX_VALUE = 100


def _raw_params(scope: Scope) -> dict[str, object]:
    query = scope.get("query_string", b"").decode("latin-1")[:4096]
    pairs = parse_qsl(query, keep_blank_values=True)[:MAX_PARAMS]
    params: dict[str, object] = {k[:MAX_VALUE]: v[:MAX_VALUE] for k, v in pairs}
    for k, v in (scope.get("path_params") or {}).items():
        params[f"path.{k}"] = str(v)[:MAX_VALUE]
    return params


class RequestRecorder:
    """Audits, measures and adds the security headers to every HTTP request."""

    def __init__(self, app: ASGIApp, services: object) -> None:
        self.app, self.services = app, services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        context: dict[str, object] = {"key_id": ""}
        scope[AUDIT_SCOPE] = context
        request_id = secrets.token_hex(8)
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    if name not in headers:
                        headers.append(name, value)
                headers.append("X-Request-ID", request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            seconds = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            params = context.get("params")
            self.services.audit.record(
                AuditRow(
                    ts=now_s(),
                    request_id=request_id,
                    key_id=str(context.get("key_id") or ""),
                    method=scope["method"],
                    route=route,
                    params=params_text(params if params is not None else _raw_params(scope)),
                    status=status,
                    latency_ms=round(seconds * 1000, 3),
                    client=(scope.get("client") or ("unknown",))[0],
                )
            )
            self.services.metrics.observe(scope["method"], route, status, seconds)
