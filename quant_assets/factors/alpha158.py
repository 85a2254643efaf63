"""Qlib's Alpha158 feature set written in the formula language, with Qlib's names.

Formulas follow ``Alpha158DL.get_feature_config`` with its default config (kbar, price
windows [0] for OPEN/HIGH/LOW/VWAP, rolling windows 5/10/20/30/60, nothing excluded), in
Qlib's column order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .engine import evaluate_many

WINDOWS = (5, 10, 20, 30, 60)

_KBAR = {
    "KMID": "($close-$open)/$open",
    "KLEN": "($high-$low)/$open",
    "KMID2": "($close-$open)/($high-$low+1e-12)",
    "KUP": "($high-Greater($open, $close))/$open",
    "KUP2": "($high-Greater($open, $close))/($high-$low+1e-12)",
    "KLOW": "(Less($open, $close)-$low)/$open",
    "KLOW2": "(Less($open, $close)-$low)/($high-$low+1e-12)",
    "KSFT": "(2*$close-$high-$low)/$open",
    "KSFT2": "(2*$close-$high-$low)/($high-$low+1e-12)",
}
_PRICE = {f"{f.upper()}0": f"${f}/$close" for f in ("open", "high", "low", "vwap")}

_UP = "Greater({x}-Ref({x}, 1), 0)"
_DOWN = "Greater(Ref({x}, 1)-{x}, 0)"
_ABS = "Abs({x}-Ref({x}, 1))"
_RET_VOL = "Abs($close/Ref($close, 1)-1)*$volume"

# name prefix -> formula template in the window d
_ROLLING = {
    "ROC": "Ref($close, {d})/$close",
    "MA": "Mean($close, {d})/$close",
    "STD": "Std($close, {d})/$close",
    "BETA": "Slope($close, {d})/$close",
    "RSQR": "Rsquare($close, {d})",
    "RESI": "Resi($close, {d})/$close",
    "MAX": "Max($high, {d})/$close",
    "MIN": "Min($low, {d})/$close",
    "QTLU": "Quantile($close, {d}, 0.8)/$close",
    "QTLD": "Quantile($close, {d}, 0.2)/$close",
    "RANK": "Rank($close, {d})",
    "RSV": "($close-Min($low, {d}))/(Max($high, {d})-Min($low, {d})+1e-12)",
    "IMAX": "IdxMax($high, {d})/{d}",
    "IMIN": "IdxMin($low, {d})/{d}",
    "IMXD": "(IdxMax($high, {d})-IdxMin($low, {d}))/{d}",
    "CORR": "Corr($close, Log($volume+1), {d})",
    "CORD": "Corr($close/Ref($close,1), Log($volume/Ref($volume, 1)+1), {d})",
    "CNTP": "Mean($close>Ref($close, 1), {d})",
    "CNTN": "Mean($close<Ref($close, 1), {d})",
    "CNTD": "Mean($close>Ref($close, 1), {d})-Mean($close<Ref($close, 1), {d})",
    "SUMP": f"Sum({_UP}, {{d}})/(Sum({_ABS}, {{d}})+1e-12)",
    "SUMN": f"Sum({_DOWN}, {{d}})/(Sum({_ABS}, {{d}})+1e-12)",
    "SUMD": f"(Sum({_UP}, {{d}})-Sum({_DOWN}, {{d}}))/(Sum({_ABS}, {{d}})+1e-12)",
    "VMA": "Mean($volume, {d})/($volume+1e-12)",
    "VSTD": "Std($volume, {d})/($volume+1e-12)",
    "WVMA": f"Std({_RET_VOL}, {{d}})/(Mean({_RET_VOL}, {{d}})+1e-12)",
    "VSUMP": f"Sum({_UP}, {{d}})/(Sum({_ABS}, {{d}})+1e-12)",
    "VSUMN": f"Sum({_DOWN}, {{d}})/(Sum({_ABS}, {{d}})+1e-12)",
    "VSUMD": f"(Sum({_UP}, {{d}})-Sum({_DOWN}, {{d}}))/(Sum({_ABS}, {{d}})+1e-12)",
}


# The bars Alpha158 reads (adjusted prices), as the contract of `alpha158` says.
BAR_COLUMNS = ["date", "symbol", "open", "high", "low", "close", "volume", "vwap"]


def alpha158_formulas() -> dict[str, str]:
    """The 158 Alpha158 features as {name: formula}, in Qlib's order."""
    formulas = dict(_KBAR) | dict(_PRICE)
    for prefix, template in _ROLLING.items():
        # the price-change families use $close, the V* families $volume
        x = "$volume" if prefix.startswith("VSUM") else "$close"
        for d in WINDOWS:
            formulas[f"{prefix}{d}"] = template.replace("{x}", x).format(d=d)
    return formulas


def alpha158(
    bars: pd.DataFrame, *, start=None, dtype=np.float32, field_dtype=np.float64
) -> pd.DataFrame:
    """Alpha158 on a long bars table (date, symbol, open, high, low, close, volume, vwap).

    Returns one float32 column per feature (Qlib stores float32 too), indexed by
    (date, symbol). ``start`` computes only dates >= start from the minimal history;
    ``field_dtype=np.float32`` reproduces Qlib's float32 arithmetic (see ``evaluate_many``)."""
    formulas = alpha158_formulas()
    return evaluate_many(
        list(formulas.values()),
        bars,
        names=list(formulas),
        start=start,
        dtype=dtype,
        field_dtype=field_dtype,
    )
