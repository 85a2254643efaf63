"""The factor set computed every trading day, as formulas of the factor language.

A small, fast set for the daily model. Each formula only looks backwards; the lookback is the
longest window in the set plus a margin for the adjustment and rolling warm-up.
"""

from __future__ import annotations

import pandas as pd

from quant_assets.factors import evaluate_many

DAILY_FACTORS: dict[str, str] = {
    "ret_1": "$close / Ref($close, 1) - 1",
    "ret_5": "$close / Ref($close, 5) - 1",  # short-term reversal
    "ret_20": "$close / Ref($close, 20) - 1",  # one-month momentum
    "vol_20": "Std($close / Ref($close, 1) - 1, 20)",
    "ma_gap_10": "Mean($close, 10) / $close - 1",
    "volume_ratio_5": "$volume / Mean($volume, 5)",
    "range_5": "Mean(($high - $low) / $close, 5)",
    "kmid": "($close - $open) / $open",
    "vwap_gap": "$vwap / $close - 1",
}
LOOKBACK_DAYS = 30


def compute_daily_factors(adjusted: pd.DataFrame, day: pd.Timestamp) -> pd.DataFrame:
    """Factor values of `day` (date, symbol, one column per factor) from adjusted bars covering
    the lookback window up to and including `day`. Suspended rows give no values. All formulas
    are evaluated in one pass, for the day only (shared subexpressions once)."""
    traded = adjusted[~adjusted["is_suspended"].astype(bool)]
    wide = evaluate_many(list(DAILY_FACTORS.values()), traded, names=list(DAILY_FACTORS), start=day)
    wide = wide[wide.index.get_level_values("date") == day]
    return wide.reset_index()
