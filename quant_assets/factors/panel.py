"""Factor sets joined into one panel: what screening, the model and predictions read."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

KEYS = ["date", "symbol"]
LONG = ["date", "symbol", "factor", "value"]  # a set whose factors change (the AI factors)


def last_days(frame: pd.DataFrame, days: int) -> pd.DataFrame:
    """The rows of the `days` newest dates of `frame` (a window read may hold more)."""
    keep = pd.DatetimeIndex(frame["date"].unique()).sort_values()[-days:]
    return frame[frame["date"].isin(keep)]


def wide(frame: pd.DataFrame) -> pd.DataFrame:
    """A factor set as date, symbol and one column per factor, from either layout."""
    if list(frame.columns) != LONG:
        return frame
    out = frame.pivot_table(index=KEYS, columns="factor", values="value", aggfunc="first")
    out.columns.name = None
    return out.reset_index()


def factor_panel(
    sets: Mapping[str, pd.DataFrame], rows_of: str | None = None
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Factor-set frames (date, symbol, factors... or the `LONG` layout) as one frame indexed by (date, symbol)
    with every factor as a float64 column, and the set each factor came from. A (date, symbol)
    that one set lacks has NaN for that set's factors. The rows are those of any set, or only
    those of the set `rows_of` (e.g. the daily set's: the symbols that traded)."""
    origin: dict[str, str] = {}
    parts = []
    for name, frame in sets.items():
        frame = wide(frame)
        factors = [c for c in frame.columns if c not in KEYS]
        clash = sorted(set(factors) & set(origin))
        if clash:
            raise ValueError(f"factor set {name!r} repeats factors of another set: {clash[:5]}")
        origin.update(dict.fromkeys(factors, name))
        parts.append(frame.set_index(KEYS)[factors].astype("float64"))
    if not parts:
        return pd.DataFrame(index=pd.MultiIndex.from_arrays([[], []], names=KEYS)), origin
    panel = pd.concat(parts, axis=1, join="outer", sort=True)
    panel.index = panel.index.set_names(KEYS)
    if rows_of is not None:
        panel = panel[panel.index.isin(wide(sets[rows_of]).set_index(KEYS).index)]
    return panel, origin
