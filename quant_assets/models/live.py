"""The champion's live record: how the scores of past days ranked the labels that became
known afterwards (the drift signal the operations stage alerts on)."""

from __future__ import annotations

import pandas as pd

from quant_assets.models.metrics import daily_rank_ic


def live_rank_ic(predictions: pd.DataFrame, label: pd.Series, days: int) -> pd.DataFrame:
    """One row per scored day whose label is known (at most the last `days`): `scored_day`,
    `rank_ic` of that day's scores against its label, `names` compared, and `model_uri` of
    the model that scored it. `label` is indexed by (date, symbol) of the day it belongs to."""
    scores = predictions.assign(date=pd.to_datetime(predictions["date"])).set_index(
        ["date", "symbol"]
    )
    both = scores.join(label.rename("label"), how="inner").dropna(subset=["score", "label"])
    if both.empty:
        return pd.DataFrame(
            {"scored_day": pd.Series(dtype="datetime64[ns]"), "rank_ic": pd.Series(dtype=float),
             "names": pd.Series(dtype="int64"), "model_uri": pd.Series(dtype=str)}
        )  # fmt: skip
    ic = daily_rank_ic(both["score"], both["label"]).dropna().tail(days)
    by_day = both.groupby(level="date")
    return pd.DataFrame(
        {
            "scored_day": ic.index,
            "rank_ic": ic.to_numpy(),
            "names": by_day.size().reindex(ic.index).to_numpy(),
            "model_uri": by_day["model_uri"].first().reindex(ic.index).to_numpy(),
        }
    )
