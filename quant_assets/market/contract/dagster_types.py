"""Dagster types built from the pandera models, so the UI shows each raw table's columns."""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from dagster import DagsterType, TableColumn, TableSchema, TypeCheck

from quant_assets.market.contract.schemas import SCHEMAS, dtype_schema


def _table_schema(kind: str) -> TableSchema:
    schema = SCHEMAS[kind].to_schema()
    return TableSchema(
        columns=[
            TableColumn(name=name, type=str(col.dtype), description=col.description or "")
            for name, col in schema.columns.items()
        ]
    )


def contract_type(kind: str) -> DagsterType:
    """The Dagster type of a raw table: the pandera model's columns and dtypes.

    Row rules already ran in `validate()` (with quarantine); the type check re-checks columns
    and dtypes only, which stays cheap for 1.4 million order-book rows.
    """
    checker = dtype_schema(kind)

    def check(_context, value: object) -> TypeCheck:
        if not isinstance(value, pd.DataFrame):
            return TypeCheck(False, description=f"expected a DataFrame, got {type(value)}")
        try:
            # inplace: the check converts nothing, and a copy of 1.4M rows costs ~0.6 s.
            checker.validate(value, lazy=True, inplace=True)
        except pa.errors.SchemaErrors as exc:
            return TypeCheck(False, description=str(exc.failure_cases.head(10)))
        return TypeCheck(True, metadata={"rows": len(value)})

    return DagsterType(
        type_check_fn=check,
        name=f"{SCHEMAS[kind].__name__}",
        description=f"{kind} rows as in quant_assets/market/columns.py",
        metadata={"schema": _table_schema(kind)},
        typing_type=pd.DataFrame,
    )
