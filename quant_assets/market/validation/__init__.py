"""Validation of landing files: parsing to the contract, row rules, quarantine assembly.

`core.validate()` is the entry point and `core.rules_by_kind()` the rules each kind gets;
`parsing` holds the dtype parsing, `flags` the rule names and the hits the rules write,
`rules_*` the rules (shared ones, time, price limits, what the tables can store, one module per
kind), `storage_types` the ranges of ClickHouse column types, `screen_kernels` the numba
passes, `quarantine` the quarantine's shape and `rules_table` the README's table of rules. `ingest` (one landing file end to end) is not
imported here: it reads files through `sources.landing`, which imports this package.
"""

from quant_assets.market.validation.core import (
    KINDS,
    RULES,
    IngestError,
    ValidationResult,
    rules_by_kind,
    validate,
)
from quant_assets.market.validation.parsing import parse_column, text_problems
from quant_assets.market.validation.quarantine import QUARANTINE_COLUMNS

__all__ = [
    "KINDS",
    "QUARANTINE_COLUMNS",
    "RULES",
    "IngestError",
    "ValidationResult",
    "parse_column",
    "rules_by_kind",
    "text_problems",
    "validate",
]
