"""The platform's data: recommendations, the paper book's positions and P&L, the active factors,
the performance figures and the day's report. All need the `read` scope.

The JSON routes are async: an answer kept in memory is returned on the event loop (`_answer`),
and only a miss, which may read ClickHouse, goes to the thread pool."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool

from quant_assets.api.auth import require_read
from quant_assets.api.data import Read, read_day, read_factors, read_performance, read_pnl
from quant_assets.api.params import (
    Day,
    Industry,
    Page,
    PageSize,
    Symbol,
    refuse,
    reject_unknown_params,
)
from quant_assets.api.responses import encoded, json_answer, paged_body, records
from quant_assets.api.schemas import (
    FactorsPage,
    Performance,
    PnlPage,
    PositionsPage,
    RecommendationsPage,
)

router = APIRouter(
    prefix="/v1",
    dependencies=[Depends(require_read), Depends(reject_unknown_params)],
    responses={401: {"description": "missing or invalid credentials"},
               403: {"description": "scope missing"}, 429: {"description": "rate limited"}},
)  # fmt: skip

RECOMMENDATION_COLUMNS = (
    "toString(date) AS date, toString(for_date) AS for_date, rank, symbol, name, industry, "
    "close, score, probability, confidence, weight, shares, action, reason, risk_note, status"
)
# The report page embeds its plots and styles; it may be framed by the API's own pages.
REPORT_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-ancestors 'self'"


def _services(request: Request):
    return request.app.state.services


async def _answer(
    request: Request,
    tables: list[str],
    parts: dict[str, object],
    read: Read,
    variant: dict[str, object],
    render: Callable[[pd.DataFrame], bytes],
) -> Response:
    """`CachedReader.answer` as a response: from memory on the event loop when the cache is in
    process and holds it, else computed in the thread pool."""
    s = _services(request)
    body = s.reader.remembered(tables, parts, variant) if s.inline else None
    if body is None:
        body = await run_in_threadpool(s.reader.answer, tables, parts, read, variant, render)
    return json_answer(body)


def _not_found(what: str, day: str | None) -> HTTPException:
    return HTTPException(404, f"no {what} for {day}" if day else f"no {what} stored yet")


@router.get(
    "/recommendations",
    tags=["recommendations"],
    responses={200: {"model": RecommendationsPage, "description": "a page of the recommendations"}},
)
async def recommendations(
    request: Request,
    date: Day = None,
    symbol: Symbol = None,
    industry: Industry = None,
    page: Page = 1,
    page_size: PageSize = 50,
) -> Response:
    """The day's recommendations (default: the newest day stored) for the next trading day
    (`for_date`), best first: rank, model score, probability and confidence, target weight and
    shares, the action and its reason, risk notes; filtered by symbol or industry."""
    s = _services(request)

    def render(frame: pd.DataFrame) -> bytes:
        if frame.empty:
            raise _not_found("recommendations", date)
        day, for_day = str(frame["date"].iloc[0]), str(frame["for_date"].iloc[0])
        if symbol is not None:
            frame = frame[frame["symbol"] == symbol]
        if industry is not None:
            frame = frame[frame["industry"] == industry]
        return paged_body(frame, page, page_size, date=day, for_date=for_day)

    return await _answer(
        request,
        ["recommendations"],
        {"q": "recommendations", "date": date},
        read_day(s.store, "recommendations", date, RECOMMENDATION_COLUMNS),
        {"symbol": symbol, "industry": industry, "page": page, "page_size": page_size},
        render,
    )


@router.get(
    "/positions",
    tags=["paper book"],
    responses={200: {"model": PositionsPage, "description": "a page of the positions"}},
)
async def positions(
    request: Request, date: Day = None, page: Page = 1, page_size: PageSize = 50
) -> Response:
    """The paper book at the day's close (default: the newest day): each position's shares,
    close price, value and weight of equity, largest first; with the day's cash and equity."""
    s = _services(request)

    def render(frame: pd.DataFrame) -> bytes:
        if frame.empty:
            raise _not_found("paper book", date)
        held = frame[frame["kind"] == "position"].drop(columns=["kind", "date"])
        held = held.sort_values(["value", "symbol"], ascending=[False, True], kind="stable")
        total = frame.groupby("kind")["value"].sum()
        return paged_body(
            held,
            page,
            page_size,
            date=str(frame["date"].iloc[0]),
            cash=_number(total.get("cash")),
            equity=_number(total.get("equity")),
        )

    return await _answer(
        request,
        ["paper_book"],
        {"q": "positions", "date": date},
        read_day(
            s.store,
            "paper_book",
            date,
            "toString(date) AS date, kind, symbol, shares, price, value, weight",
            "kind IN ('position', 'cash', 'equity')",
        ),
        {"page": page, "page_size": page_size},
        render,
    )


def _number(value: object) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


@router.get(
    "/pnl",
    tags=["paper book"],
    responses={200: {"model": PnlPage, "description": "a page of the daily series"}},
)
async def pnl(
    request: Request,
    start: Day = None,
    end: Day = None,
    page: Page = 1,
    page_size: PageSize = 250,
) -> Response:
    """The paper book day by day between `start` and `end` (inclusive; default: all stored
    days), oldest first: equity, cash, its peak so far, drawdown from it, the day's P&L and
    return (from the day before), fees and positions held."""
    if start and end and start > end:
        raise refuse("start", "start is after end")
    s = _services(request)
    return await _answer(
        request,
        ["paper_book"],
        {"q": "pnl", "start": start, "end": end},
        read_pnl(s.store, start, end),
        {"page": page, "page_size": page_size},
        lambda frame: paged_body(frame, page, page_size, start=start, end=end),
    )


@router.get(
    "/factors",
    tags=["factors"],
    responses={200: {"model": FactorsPage, "description": "a page of the active factors"}},
)
async def factors(
    request: Request,
    date: Day = None,
    origin: Literal["traditional", "ai"] | None = None,
    page: Page = 1,
    page_size: PageSize = 100,
) -> Response:
    """The active factor set of the day (default: the newest): each factor's set, mean rank IC
    and its t-statistic, IC std, ICIR, p-value and days over the screening window, and its
    origin, `traditional` or `ai` (AI factors, `ai_<hash>`, with their formula and hypothesis);
    strongest |IC| first. `origin` filters."""
    s = _services(request)

    def render(frame: pd.DataFrame) -> bytes:
        if frame.empty:
            raise _not_found("active factors", date)
        day = str(frame["date"].iloc[0])
        is_ai = frame["factor_set"].eq("ai") | frame["factor"].str.startswith("ai_")
        frame = frame.drop(columns=["date"]).assign(
            origin=is_ai.map({True: "ai", False: "traditional"})
        )
        if origin is not None:
            frame = frame[frame["origin"] == origin]
        order = frame["rank_ic_mean"].abs().sort_values(ascending=False, kind="stable").index
        return paged_body(frame.loc[order], page, page_size, date=day)

    return await _answer(
        request,
        ["active_factors", "factor_screening", "ai_factors"],
        {"q": "factors", "date": date},
        read_factors(s.store, date),
        {"origin": origin, "page": page, "page_size": page_size},
        render,
    )


@router.get(
    "/performance",
    tags=["performance"],
    responses={200: {"model": Performance, "description": "the day's figures"}},
)
async def performance(request: Request, date: Day = None) -> Response:
    """The performance report's key figures of the day (default: the newest), after costs, as
    `performance_summary` names them, and the link to the day's report page."""
    s = _services(request)

    def render(frame: pd.DataFrame) -> bytes:
        if frame.empty:
            raise _not_found("performance figures", date)
        day = str(frame["date"].iloc[0])
        figures = {r["figure"]: r["value"] for r in records(frame[["figure", "value"]])}
        page = _report_page(s.config.reports_dir, day)
        link = f"/v1/performance/report?date={day}" if page else None
        return encoded({"date": day, "figures": figures, "report": link})

    return await _answer(
        request,
        ["performance"],
        {"q": "performance", "date": date},
        read_performance(s.store, date),
        {},
        render,
    )


def _report_page(folder: Path | None, day: str) -> Path | None:
    """The day's page (as `quant_assets.reports.assets.report_path` writes it), if present."""
    if folder is None:
        return None
    page = folder / f"{day}.html"
    return page if page.is_file() else None


@router.get(
    "/performance/report",
    tags=["performance"],
    response_class=FileResponse,
    responses={
        200: {
            "description": "the report page",
            "content": {"text/html": {"schema": {"type": "string"}}},
        }
    },
)
def performance_report(request: Request, date: Day = None) -> FileResponse:
    """The day's performance page (HTML, plots embedded; default: the newest day with
    figures)."""
    s = _services(request)
    if date is None:
        frame = s.reader.frame(
            ["performance"], {"q": "performance", "date": None}, read_performance(s.store, None)
        )
        date = str(frame["date"].iloc[0]) if len(frame) else None
    page = _report_page(s.config.reports_dir, date) if date else None
    if page is None:
        raise _not_found("performance report", date)
    return FileResponse(
        page,
        media_type="text/html; charset=utf-8",
        headers={"Content-Security-Policy": REPORT_CSP, "X-Frame-Options": "SAMEORIGIN"},
    )
