"""Models and run health (scope `read`), and the service's own Prometheus metrics.

`/metrics` needs no credentials: it holds request counts and latencies by route template and
status only (no data, no key ids), and Prometheus scrapes it as it scrapes the pipeline's
metrics; keep it off the public side of the TLS proxy if that matters.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from quant_assets.api.auth import require_read
from quant_assets.api.params import Page, PageSize, reject_unknown_params
from quant_assets.api.responses import paged
from quant_assets.api.schemas import Health, ModelsPage

router = APIRouter(
    prefix="/v1", dependencies=[Depends(require_read), Depends(reject_unknown_params)]
)
metrics_router = APIRouter(dependencies=[Depends(reject_unknown_params)])


@router.get(
    "/models",
    tags=["models"],
    responses={200: {"model": ModelsPage, "description": "a page of the model versions"}},
)
def models(request: Request, page: Page = 1, page_size: PageSize = 100) -> JSONResponse:
    """Registered model versions from MLflow's registry, newest first per model: the day each
    was trained for, its run's metrics, its promotion decision and reason, and whether it is
    the `champion` or the `challenger`."""
    import pandas as pd

    rows = request.app.state.services.models.read()
    frame = pd.DataFrame(rows)
    champions = {r["model"]: r["version"] for r in rows if r["champion"]}
    challengers = {r["model"]: r["version"] for r in rows if r["challenger"]}
    return paged(frame, page, page_size, champions=champions, challengers=challengers)


@router.get(
    "/health",
    tags=["operations"],
    responses={200: {"model": Health, "description": "the runs and checks"}},
)
def health(request: Request) -> JSONResponse:
    """The Dagster instance's view: each job's last run (status, start, end, duration, last
    success) and each asset check's latest evaluation (passed, severity, partition)."""
    return JSONResponse(request.app.state.services.health.read())


@metrics_router.get(
    "/metrics",
    tags=["operations"],
    response_class=Response,
    responses={
        200: {
            "description": "the metrics (Prometheus text format 0.0.4)",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
def metrics(request: Request) -> Response:
    """The API's request counts and latencies in the Prometheus text format."""
    return Response(
        generate_latest(request.app.state.services.registry), media_type=CONTENT_TYPE_LATEST
    )
