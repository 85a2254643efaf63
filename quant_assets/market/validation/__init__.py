"""Validation of landing files: parsing to the contract, row rules, quarantine assembly."""

from quant_assets.market.validation.core import (
    KINDS,
    QUARANTINE_COLUMNS,
    RULES,
    IngestError,
    ValidationResult,
    parse_column,
    text_problems,
    validate,
)

__all__ = [
    "KINDS",
    "QUARANTINE_COLUMNS",
    "RULES",
    "IngestError",
    "ValidationResult",
    "parse_column",
    "text_problems",
    "validate",
]
