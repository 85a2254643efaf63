"""Plots of a trained model for its asset page."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from quant_assets.plotting import set_margins, to_png


def importance_png(importance: pd.Series, top: int = 25) -> bytes:
    """Horizontal bars of the `top` largest feature importances, largest on top; the axis is
    labelled with the Series' name (the measure: `splits`, `gain`)."""
    shown = importance.sort_values().tail(top)
    fig, ax = plt.subplots(figsize=(7, 0.25 * len(shown) + 1.2))
    ax.barh(shown.index.astype(str), shown.to_numpy(), color="steelblue")
    ax.set_xlabel(str(importance.name or "importance"))
    ax.set_title(f"Feature importance (top {len(shown)} of {len(importance)})")
    # room for the longest feature name (about 0.09 in a character at the default 10 pt)
    set_margins(fig, left=0.3 + 0.09 * max((len(str(n)) for n in shown.index), default=4))
    return to_png(fig)
