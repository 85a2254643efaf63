"""OAuth2 client-credentials access tokens: short-lived HS256 JWTs naming the key and its scopes.

A token is only as good as its key: the API checks on every request that the key it names is
still usable (through the key store's memory), so revoking a key ends its tokens within the
key store's recheck interval, not only when they expire.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import jwt

ISSUER = "quant-assets"
AUDIENCE = "quant-api"
ALGORITHM = "HS256"


@dataclass(frozen=True)
class TokenClaims:
    """What a valid token says: the key it was issued to and the scopes it carries."""

    key_id: str
    scopes: tuple[str, ...]
    expires_at: int


def issue(key_id: str, scopes: tuple[str, ...], secret: str, ttl_s: int) -> tuple[str, int]:
    """A signed token for `key_id` with `scopes`, and its lifetime in seconds."""
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": key_id,
        "scope": " ".join(scopes),
        "iat": now,
        "nbf": now,
        "exp": now + ttl_s,
        "jti": secrets.token_hex(8),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM), ttl_s


def verify(token: str, secret: str) -> TokenClaims | None:
    """The token's claims when its signature, issuer, audience and times hold, else None."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "scope"]},
            leeway=5,
        )
    except jwt.PyJWTError:
        return None
    scopes = tuple(str(claims["scope"]).split())
    return TokenClaims(str(claims["sub"]), scopes, int(claims["exp"]))
