"""Administration over HTTP (scope `admin`): the audit log and the API keys."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from quant_assets.api.auth import audit_context, require_admin
from quant_assets.api.keys import MAX_EXPIRY_DAYS, NAME
from quant_assets.api.params import Moment, Page, PageSize, reject_unknown_params
from quant_assets.api.responses import paged
from quant_assets.api.schemas import AuditPage, CreatedKey, KeysPage, RevokedKey
from quant_assets.api.tables import API_AUDIT

router = APIRouter(
    prefix="/v1/admin",
    tags=["administration"],
    dependencies=[Depends(require_admin), Depends(reject_unknown_params)],
)
KeyId = Annotated[str, Path(pattern=r"^k[0-9a-f]{16}$")]


class NewKey(BaseModel):
    """A key to create."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=f"^{NAME.pattern}$", max_length=64)  # pydantic searches
    scope: Literal["read", "admin"] = "read"
    expires_days: int = Field(default=90, ge=1, le=MAX_EXPIRY_DAYS)


@router.get(
    "/audit", responses={200: {"model": AuditPage, "description": "a page of the audit log"}}
)
def audit(
    request: Request,
    since: Moment = None,
    until: Moment = None,
    key_id: Annotated[str | None, Query(pattern=r"^k[0-9a-f]{16}$")] = None,
    status: Annotated[int | None, Query(ge=100, le=599)] = None,
    page: Page = 1,
    page_size: PageSize = 100,
) -> JSONResponse:
    """Audit rows, newest first (times in UTC), filtered by time, key and status. Rows still
    queued are written first, so the answer includes every request answered before it."""
    s = request.app.state.services
    s.audit.flush()
    where, params = ["1"], {}
    if since:
        where.append("ts >= toDateTime64(%(since)s, 3, 'UTC')")
        params["since"] = since
    if until:
        where.append("ts < toDateTime64(%(until)s, 3, 'UTC')")
        params["until"] = until
    if key_id:
        where.append("key_id = %(key)s")
        params["key"] = key_id
    if status:
        where.append("status = %(status)s")
        params["status"] = status
    with s.store.client() as client:
        s.store.ensure(client, API_AUDIT)
        frame = s.store.query(
            client,
            "SELECT concat(replaceOne(toString(ts), ' ', 'T'), 'Z') AS ts, request_id, key_id, "
            "method, route, params, status, latency_ms, client FROM {db}.api_audit "
            f"WHERE {' AND '.join(where)} ORDER BY ts DESC, request_id",
            params,
        )
    return paged(frame, page, page_size)


@router.get("/keys", responses={200: {"model": KeysPage, "description": "a page of the keys"}})
def list_keys(request: Request, page: Page = 1, page_size: PageSize = 100) -> JSONResponse:
    """Every key: id, name, scope, creation, expiry, revocation (never a secret or hash)."""
    import pandas as pd

    keys = request.app.state.services.keys.list()
    return paged(pd.DataFrame([k.public() for k in keys]), page, page_size)


@router.post(
    "/keys",
    status_code=201,
    responses={201: {"model": CreatedKey, "description": "the new key (shown once)"}},
)
def create_key(request: Request, body: NewKey) -> JSONResponse:
    """A new key. Its `key` is in this answer only: it is stored hashed."""
    record, key = request.app.state.services.keys.create(body.name, body.scope, body.expires_days)
    audit_context(request)["params"] = {"name": body.name, "scope": body.scope}
    return JSONResponse(
        {**record.public(), "key": key}, status_code=201, headers={"Cache-Control": "no-store"}
    )


@router.delete(
    "/keys/{key_id}",
    responses={200: {"model": RevokedKey, "description": "the key is revoked"}},
)
def revoke_key(request: Request, key_id: KeyId) -> JSONResponse:
    """Revoke a key: it and the tokens issued to it stop working."""
    if not request.app.state.services.keys.revoke(key_id):
        raise HTTPException(404, "no such key")
    return JSONResponse({"key_id": key_id, "revoked": True})
