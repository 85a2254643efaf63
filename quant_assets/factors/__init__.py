"""Factors: the formula language, the Alpha158 library and factor evaluation (pure logic).

Dagster wiring lives in ``assets.py``; everything exported here works on plain DataFrames.
"""

from .alpha158 import alpha158, alpha158_formulas
from .engine import Limits, compile_expression, evaluate_expression, evaluate_many
from .evaluation import FactorReport, factor_report
from .parser import FormulaError

__all__ = [
    "FactorReport",
    "FormulaError",
    "Limits",
    "alpha158",
    "alpha158_formulas",
    "compile_expression",
    "evaluate_expression",
    "evaluate_many",
    "factor_report",
]
