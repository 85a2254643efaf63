"""Strict query parameters: their types, bounds and patterns, and the refusal (422) of any
parameter a route does not declare or of one given twice.

A misspelt filter (`?symbl=600000.SH`) would otherwise be ignored and the whole list returned
as if it were the answer, so unknown parameters are refused rather than dropped.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator

SYMBOL = r"^\d{6}\.(SH|SZ|BJ)$"  # the exchange code with its suffix (market/contract/columns.py)
DATE = r"^\d{4}-\d{2}-\d{2}$"
INDUSTRY = r"^[^\x00-\x1f\x7f<>]{1,64}$"  # printable text, no markup
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2100, 12, 31)


def _real_day(value: str | None) -> str | None:
    if value is None:
        return None
    day = date.fromisoformat(value)  # ValueError (422) for 2024-02-30
    if not FIRST_DAY <= day <= LAST_DAY:
        raise ValueError(f"a day between {FIRST_DAY} and {LAST_DAY}")
    return value


def _moment(value: str | None) -> str | None:
    """An ISO date or date-time (UTC when it has no zone) as ClickHouse reads a UTC time."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value)
    if not FIRST_DAY <= moment.date() <= LAST_DAY:
        raise ValueError(f"a time between {FIRST_DAY} and {LAST_DAY}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


Day = Annotated[
    str | None,
    Query(pattern=DATE, description="a trading day, YYYY-MM-DD (default: the newest stored)"),
    AfterValidator(_real_day),
]
Symbol = Annotated[str | None, Query(pattern=SYMBOL, description="e.g. 600000.SH")]
Industry = Annotated[str | None, Query(pattern=INDUSTRY, description="an industry's name")]
Moment = Annotated[
    str | None,
    Query(
        pattern=r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?)?$",
        description="YYYY-MM-DD or an ISO date-time (UTC unless it names a zone)",
    ),
    AfterValidator(_moment),
]
Page = Annotated[int, Query(ge=1, le=1_000_000, description="page number, from 1")]
PageSize = Annotated[int, Query(ge=1, le=500, description="items per page (1..500)")]


def refuse(field: str, message: str) -> RequestValidationError:
    """A 422 about one query parameter."""
    return RequestValidationError(
        [{"loc": ("query", field), "msg": message, "type": "value_error"}]
    )


KNOWN_ATTR = "quant_query_params"  # a route's declared query parameters, kept on the route


def _query_names(dependant: object) -> set[str]:
    """The query parameters a route's dependant and its sub-dependencies declare."""
    names = {p.alias for p in getattr(dependant, "query_params", [])}
    for sub in getattr(dependant, "dependencies", []):
        names |= _query_names(sub)
    return names


async def reject_unknown_params(request: Request) -> None:
    """422 for a query parameter the route does not declare, or one given more than once
    (async: it only looks at the request, so it runs on the event loop, not in a thread)."""
    route = request.scope.get("route")
    known = getattr(route, KNOWN_ATTR, None)
    if known is None:
        dependant = getattr(route, "dependant", None)
        if dependant is None:
            return
        known = _query_names(dependant)
        setattr(route, KNOWN_ATTR, known)
    errors = []
    keys = [k for k, _ in request.query_params.multi_items()]
    for name in dict.fromkeys(keys):
        if name not in known:
            errors.append(
                {"loc": ("query", name[:64]), "msg": "unknown parameter", "type": "extra"}
            )
        elif keys.count(name) > 1:
            errors.append({"loc": ("query", name), "msg": "given more than once", "type": "extra"})
    if errors:
        raise RequestValidationError(errors)


def page_of(total: int, page: int, page_size: int) -> slice:
    """The rows of one page."""
    start = (page - 1) * page_size
    return slice(start, start + page_size)
