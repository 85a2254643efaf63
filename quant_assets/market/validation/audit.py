"""The audit of one validated file: may its day be published? The figures a person who is paged
reads first: how many rows were bad, against which threshold, under which rules, two examples.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from quant_assets.market.validation.core import ValidationResult

# Share of a file's rows that may be quarantined. Vendor order-book files carry call-auction
# and after-close snapshots (locked or one-sided books, quarantined by design): about 2% of a
# real day, so books get a wider share.
MAX_BAD_SHARE = {"order_book": 0.05}
DEFAULT_MAX_BAD_SHARE = 0.01
# Fewer bad rows than this never fail a day, whatever their share: one undecodable item in a
# three-item news file is 33% of it and is not a reason to stop the pipeline.
MIN_BAD_ROWS = {"bars": 3, "trades": 10, "order_book": 10, "news": 2, "corporate_actions": 2}


@dataclass(frozen=True)
class Audit:
    """The verdict on a file and the figures behind it."""

    kind: str
    passed: bool
    bad_rows: int
    rows: int
    share: float
    max_share: float
    min_bad_rows: int
    counts: dict[str, int]
    examples: pd.DataFrame  # two example rows: rule, row_number, symbol, detail

    @property
    def summary(self) -> str:
        """One paragraph: the share, the thresholds, the top rules and two example rows."""
        verdict = "within" if self.passed else "above"
        text = (
            f"{self.kind} file: {self.bad_rows:,} of {self.rows:,} rows quarantined "
            f"({self.share:.2%}), {verdict} max_bad_share {self.max_share:.2%} "
            f"(a day fails only from {self.min_bad_rows} bad rows)."
        )
        if self.counts:
            top = sorted(self.counts.items(), key=lambda kv: -kv[1])[:5]
            text += " Top rules: " + ", ".join(f"{rule} {n:,}" for rule, n in top) + "."
        if len(self.examples):
            shown = [
                f"row {r.row_number} {r.symbol} {r.rule} ({r.detail})"
                for r in self.examples.itertuples(index=False)
            ]
            text += " Examples: " + "; ".join(shown) + "."
        return text


def audit(
    result: ValidationResult, max_share: float | None = None, min_bad_rows: int | None = None
) -> Audit:
    """Judge a validated file: it fails when its bad rows reach `min_bad_rows` and their share
    passes `max_share` (each None: the kind's default)."""
    kind = result.kind
    max_share = MAX_BAD_SHARE.get(kind, DEFAULT_MAX_BAD_SHARE) if max_share is None else max_share
    min_bad_rows = MIN_BAD_ROWS.get(kind, 1) if min_bad_rows is None else min_bad_rows
    bad = result.n_quarantined
    q = result.quarantine
    examples = (
        q.drop_duplicates("row_number").head(2)[["rule", "row_number", "symbol", "detail"]]
        if len(q)
        else pd.DataFrame(columns=["rule", "row_number", "symbol", "detail"])
    )
    return Audit(
        kind=kind,
        passed=bad < min_bad_rows or result.bad_share <= max_share,
        bad_rows=bad,
        rows=result.n_input,
        share=result.bad_share,
        max_share=max_share,
        min_bad_rows=min_bad_rows,
        counts={rule: int(n) for rule, n in result.counts.items() if n},
        examples=examples.reset_index(drop=True),
    )
