"""Strategy: selection, risk and sizing of portfolios, and their performance statistics."""

from quant_assets.strategy.metrics import performance_summary

__all__ = ["performance_summary"]
