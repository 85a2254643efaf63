"""One landing file through the common path: read, validate, split into clean and quarantine."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from quant_assets.market.contract.columns import BARS
from quant_assets.market.contract.schemas import CONTRACT
from quant_assets.market.sources.landing import read_landing_file
from quant_assets.market.validation import ValidationResult, validate
from quant_assets.market.validation.quarantine import table_rows


def ingest_file(
    kind: str,
    path: Path,
    day: pd.Timestamp,
    known_symbols: set[str],
    bars: pd.DataFrame | None = None,
    trading_days: pd.DatetimeIndex | None = None,
    now: pd.Timestamp | None = None,
    listings: pd.Series | None = None,
) -> ValidationResult:
    """Read and validate the file of `kind` for `day`. File-level problems raise IngestError;
    row-level problems land in the result's quarantine."""
    raw = read_landing_file(path, kind)
    limits = bars[BARS] if bars is not None and len(bars) else None
    return validate(
        kind,
        raw,
        known_symbols=known_symbols,
        trading_date=day,
        now=now if now is not None else pd.Timestamp.now(tz="Asia/Shanghai"),
        source_file=str(path),
        bars_for_limits=limits,
        trading_days=trading_days,
        listings=listings,
    )


def clean_rows(result: ValidationResult) -> pd.DataFrame:
    """The clean rows in contract column order with a fresh index."""
    return result.clean[CONTRACT[result.kind]].reset_index(drop=True)


def quarantine_rows(result: ValidationResult, day: pd.Timestamp) -> pd.DataFrame:
    """Quarantine rows in the QUARANTINE table's shape for the (day, kind) partition."""
    return table_rows(result.quarantine, result.kind, day)
