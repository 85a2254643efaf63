"""Frames as JSON: records with missing numbers as null, and a page of a list."""

from __future__ import annotations

import math

import pandas as pd
from fastapi.responses import JSONResponse

from quant_assets.api.params import page_of


def records(frame: pd.DataFrame) -> list[dict]:
    """The rows as plain Python values; NaN and infinities become None (JSON has neither)."""
    out = frame.astype(object).to_dict("records")
    for row in out:
        for k, v in row.items():
            if isinstance(v, float) and not math.isfinite(v) or v is pd.NA or v is pd.NaT:
                row[k] = None
    return out


def paged(frame: pd.DataFrame, page: int, page_size: int, **extra: object) -> JSONResponse:
    """One page of `frame` with the paging figures and `extra` fields."""
    rows = frame.iloc[page_of(len(frame), page, page_size)]
    return JSONResponse(
        {
            **extra,
            "page": page,
            "page_size": page_size,
            "total": len(frame),
            "items": records(rows),
        }
    )
