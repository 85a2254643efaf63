"""Strategy: selection, risk and sizing of portfolios, the A-share execution model, the
backtest, and performance statistics."""

from quant_assets.strategy.backtest import BacktestResult, backtest
from quant_assets.strategy.metrics import performance_summary

__all__ = ["BacktestResult", "backtest", "performance_summary"]
