"""Frames as JSON: records with missing numbers as null, and a page of a list."""

from __future__ import annotations

import json
import math

import pandas as pd
from fastapi.responses import Response

from quant_assets.api.params import page_of


def records(frame: pd.DataFrame) -> list[dict]:
    """The rows as plain Python values; NaN and infinities become None (JSON has neither)."""
    out = frame.astype(object).to_dict("records")
    for row in out:
        for k, v in row.items():
            if isinstance(v, float) and not math.isfinite(v) or v is pd.NA or v is pd.NaT:
                row[k] = None
    return out


def encoded(body: object) -> bytes:
    """JSON bytes as FastAPI's JSONResponse writes them (UTF-8, no NaN, compact)."""
    return json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def json_answer(body: bytes) -> Response:
    """An encoded answer as a response."""
    return Response(body, media_type="application/json")


def paged_body(frame: pd.DataFrame, page: int, page_size: int, **extra: object) -> bytes:
    """One page of `frame` with the paging figures and `extra` fields, encoded."""
    rows = frame.iloc[page_of(len(frame), page, page_size)]
    return encoded(
        {**extra, "page": page, "page_size": page_size, "total": len(frame), "items": records(rows)}
    )


def paged(frame: pd.DataFrame, page: int, page_size: int, **extra: object) -> Response:
    """One page of `frame` with the paging figures and `extra` fields."""
    return json_answer(paged_body(frame, page, page_size, **extra))
