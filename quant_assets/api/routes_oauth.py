"""`POST /oauth/token`: OAuth2 client credentials (RFC 6749, section 4.4).

The client is an API key: `client_id` its id, `client_secret` the key as it was shown (or its
secret part), in the form body or as HTTP Basic credentials. The answer is a bearer token
signed with the server's secret, carrying the key's scopes (or the subset asked for in
`scope`), valid `expires_in` seconds. Errors follow the RFC's shape; an unknown, wrong,
revoked or expired key is one answer, 401 `invalid_client`.
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import parse_qsl, unquote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from quant_assets.api import tokens
from quant_assets.api.auth import UNAUTHORIZED, audit_context, limit_anonymous
from quant_assets.api.keys import KEY_ID, parse_key
from quant_assets.api.schemas import AccessToken

router = APIRouter(tags=["authentication"])
MAX_BODY = 4096
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

_FORM = {
    "type": "object",
    "required": ["grant_type"],
    "properties": {
        "grant_type": {"type": "string", "enum": ["client_credentials"]},
        "client_id": {"type": "string", "pattern": KEY_ID.pattern},
        "client_secret": {"type": "string", "maxLength": 200},
        "scope": {"type": "string", "maxLength": 100, "description": "read, admin or both"},
    },
}


def _error(status: int, error: str, description: str, **headers: str) -> JSONResponse:
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers={**NO_STORE, **headers},
    )


def _basic(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (unquote(user), unquote(password)) if sep else None


@router.post(
    "/oauth/token",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/x-www-form-urlencoded": {"schema": _FORM}},
        }
    },
    responses={
        200: {"model": AccessToken, "description": "an access token"},
        400: {"description": "invalid_request, unsupported_grant_type or invalid_scope"},
        401: {"description": "invalid_client"},
        429: {"description": "rate limited"},
    },
)
async def token(request: Request) -> JSONResponse:
    """An access token for an API key (client credentials)."""
    limit_anonymous(request)
    if request.query_params:
        return _error(400, "invalid_request", "parameters belong in the body")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return _error(400, "invalid_request", "the body must be application/x-www-form-urlencoded")
    body = await request.body()
    if len(body) > MAX_BODY:
        return _error(400, "invalid_request", "the body is too large")
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError):
        return _error(400, "invalid_request", "the body is not a form")
    names = [k for k, _ in pairs]
    form = dict(pairs)
    if len(names) != len(form) or set(form) - set(_FORM["properties"]):
        return _error(400, "invalid_request", "unknown or repeated fields")
    client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
    audit_context(request)["params"] = {
        "grant_type": form.get("grant_type", "")[:40],
        "client_id": client_id[:40],
        "scope": form.get("scope", "")[:100],
    }
    if form.get("grant_type") != "client_credentials":
        return _error(400, "unsupported_grant_type", "only client_credentials is supported")
    basic = _basic(request.headers.get("authorization"))
    if basic and not (client_id or secret):
        client_id, secret = basic
    parsed = parse_key(secret)
    if parsed is not None:  # the key as shown: its id must be the client's
        key_id, secret = parsed
        if key_id != client_id:
            secret = ""
    services = request.app.state.services
    key = services.keys.verify(client_id, secret) if KEY_ID.fullmatch(client_id) else None
    if key is None:
        return _error(401, "invalid_client", UNAUTHORIZED, **{"WWW-Authenticate": "Basic"})
    audit_context(request)["key_id"] = key.key_id
    asked = tuple(dict.fromkeys(form.get("scope", "").split())) or key.scopes
    if not set(asked) <= set(key.scopes):
        return _error(400, "invalid_scope", "the key does not hold the scope asked for")
    access, ttl = tokens.issue(
        key.key_id, asked, services.config.token_secret, services.config.token_ttl_s
    )
    return JSONResponse(
        {
            "access_token": access,
            "token_type": "bearer",
            "expires_in": ttl,
            "scope": " ".join(asked),
        },
        headers=NO_STORE,
    )
