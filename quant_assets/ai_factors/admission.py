"""Who gets in: the admission rule for a candidate formula, read from its train and
validation evidence and its correlation with the factors already in use.

Validation decides, and only validation: a formula is admitted when its validation rank IC is
beyond `min_abs_ic`, has the sign it had on train, and is significant after a Bonferroni
correction for every formula tested on validation in the run (a search that tries hundreds
of formulas finds some that look good on any one segment by luck); and when its values are
not a rewrite of, nor too close to, a factor in use. The test segment plays no part.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ADMITTED = "admitted"
REJECTED = "rejected"
INVALID = "invalid"
DUPLICATE = "duplicate"
TRAIN_ONLY = "train only"  # scored on train by the search, never sent to validation


@dataclass(frozen=True)
class AdmissionRules:
    """The thresholds of admission (and the tree-size limit of a candidate)."""

    min_abs_ic: float = 0.015  # |mean daily rank IC| on validation
    alpha: float = 0.05  # family-wise error over the run's validation tests (Bonferroni)
    max_corr: float = 0.7  # |mean daily rank correlation| with any factor in use
    rewrite_corr: float = 0.95  # beyond this a candidate is the same factor written again
    min_days: int = 20  # validation days with an IC
    max_nodes: int = 30  # tree size (nodes, numbers included)
    max_lookback: int = 60  # trading days of history a value may need (the daily stage keeps 80)

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must lie in (0, 1), got {self.alpha}")
        if not 0 < self.max_corr <= self.rewrite_corr <= 1:
            raise ValueError("need 0 < max_corr <= rewrite_corr <= 1")


def decide(
    train_ic: float,
    valid_ic: float,
    valid_p: float,
    valid_days: int,
    closest: tuple[str, float] | None,
    tests_so_far: int,
    rules: AdmissionRules,
) -> tuple[str, str]:
    """(decision, reason) for one candidate. `closest` is the factor in use whose values
    correlate most with the candidate's, and that |correlation|; `tests_so_far` counts the
    validation tests of the run including this one (the Bonferroni factor)."""
    if closest is not None and np.isfinite(closest[1]):
        name, corr = closest
        if corr >= rules.rewrite_corr:
            return REJECTED, f"a rewrite of {name} (|corr| {corr:.3f} >= {rules.rewrite_corr})"
        if corr >= rules.max_corr:
            return REJECTED, f"too close to {name} (|corr| {corr:.3f} >= {rules.max_corr})"
    if not np.isfinite(valid_ic) or valid_days < rules.min_days:
        return REJECTED, f"too few validation days with an IC ({valid_days} < {rules.min_days})"
    if np.sign(valid_ic) != np.sign(train_ic):
        return REJECTED, f"validation IC {valid_ic:+.4f} has the opposite sign of train"
    if abs(valid_ic) < rules.min_abs_ic:
        return REJECTED, f"validation |IC| {abs(valid_ic):.4f} below {rules.min_abs_ic}"
    adjusted = min(1.0, valid_p * tests_so_far) if np.isfinite(valid_p) else 1.0
    if adjusted >= rules.alpha:
        return (
            REJECTED,
            f"not significant: p {valid_p:.2g} x {tests_so_far} tests = {adjusted:.2g} "
            f">= {rules.alpha}",
        )
    return ADMITTED, f"validation IC {valid_ic:+.4f}, p {valid_p:.2g} x {tests_so_far} tests"
