"""AI factors: market context and news analysis, the factor-mining loop with an LLM or an
offline genetic search, and honest admission (pure logic; Dagster wiring in ``assets.py``)."""

from .admission import AdmissionRules
from .mining import MiningResult, mine

__all__ = ["AdmissionRules", "MiningResult", "mine"]
