"""Engine fast paths give the same numbers as the general ones.

* the dense-grid transpose (every (date, symbol) cell has a row) vs the position-table
  scatter (a row missing), with and without ``start`` and one or two symbol chunks;
* element-wise operators writing into an input panel nobody else needs (shared subtrees,
  roots that are also inputs of other roots) vs each formula evaluated on its own.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quant_assets.factors.engine import evaluate_expression, evaluate_many

FORMULAS = [
    "Mean($close, 5)/$close",
    "Mean($close, 5)",
    "Abs($close/Ref($close, 1)-1)*$volume",
    "Std(Abs($close/Ref($close, 1)-1)*$volume, 5)/(Mean(Abs($close/Ref($close, 1)-1)*$volume, 5)+1e-12)",
    "($close-Min($low, 10))/(Max($high, 10)-Min($low, 10)+1e-12)",
    "Greater($close-Ref($close, 1), 0)",
    "Sum(Greater($close-Ref($close, 1), 0), 5)/(Sum(Abs($close-Ref($close, 1)), 5)+1e-12)",
    "-$close + 2*$open",
    "Log($volume+1)",
    "Rank($close, 10)",
]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("start", [None, 150])
def test_dense_transpose_matches_scatter(synth, threads, start):
    bars = synth(n_symbols=9, n_days=200, quirks=False)
    dates = np.sort(bars["date"].unique())
    start = None if start is None else dates[start]
    dense = evaluate_many(FORMULAS, bars, start=start, threads=threads)
    # dropping one early row forces the position-table scatter
    sparse_bars = bars.drop(index=bars.index[3])
    sparse = evaluate_many(FORMULAS, sparse_bars, start=start, threads=threads)
    if start is None:
        # the dropped cell only changes its own symbol; compare the other symbols
        dropped = bars.iloc[3]["symbol"]
        keep_d = dense.index.get_level_values("symbol") != dropped
        keep_s = sparse.index.get_level_values("symbol") != dropped
        pd.testing.assert_frame_equal(dense[keep_d], sparse[keep_s])
    else:
        pd.testing.assert_frame_equal(dense, sparse)
    assert len(dense) == (len(bars) if start is None else 9 * 50)


@pytest.mark.parametrize("threads", [1, 2])
def test_inplace_elementwise_matches_single_formulas(synth, threads):
    bars = synth(n_symbols=8, n_days=160)
    together = evaluate_many(FORMULAS, bars, threads=threads)
    for f in FORMULAS:
        alone = evaluate_expression(f, bars)
        np.testing.assert_array_equal(together[f].to_numpy(), alone.to_numpy(), err_msg=f)
