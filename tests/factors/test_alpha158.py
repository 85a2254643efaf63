"""Alpha158: names and formulas as Qlib's, parity with Qlib's own engine, real-data smoke."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quant_assets.factors import alpha158, alpha158_formulas

REPO = Path(__file__).resolve().parents[2]
QLIB_PYTHON = REPO / ".venv-qlib" / "bin" / "python"
SHARED_DATA = REPO.parent / "shared" / "data"
ROLLING = ["ROC", "MA", "STD", "BETA", "RSQR", "RESI", "MAX", "MIN", "QTLU", "QTLD", "RANK",
           "RSV", "IMAX", "IMIN", "IMXD", "CORR", "CORD", "CNTP", "CNTN", "CNTD", "SUMP", "SUMN",
           "SUMD", "VMA", "VSTD", "WVMA", "VSUMP", "VSUMN", "VSUMD"]  # fmt: skip


def test_names_in_qlib_order():
    names = list(alpha158_formulas())
    kbar = ["KMID", "KLEN", "KMID2", "KUP", "KUP2", "KLOW", "KLOW2", "KSFT", "KSFT2"]
    price = ["OPEN0", "HIGH0", "LOW0", "VWAP0"]
    rolling = [f"{p}{d}" for p in ROLLING for d in (5, 10, 20, 30, 60)]
    assert names == kbar + price + rolling
    assert len(names) == 158


def test_selected_formulas_verbatim():
    f = alpha158_formulas()
    assert f["KMID2"] == "($close-$open)/($high-$low+1e-12)"
    assert f["RSV5"] == "($close-Min($low, 5))/(Max($high, 5)-Min($low, 5)+1e-12)"
    assert f["CORD10"] == "Corr($close/Ref($close,1), Log($volume/Ref($volume, 1)+1), 10)"
    assert f["VSUMD60"] == (
        "(Sum(Greater($volume-Ref($volume, 1), 0), 60)-Sum(Greater(Ref($volume, 1)-$volume, 0), 60))"
        "/(Sum(Abs($volume-Ref($volume, 1)), 60)+1e-12)"
    )
    assert f["WVMA5"] == (
        "Std(Abs($close/Ref($close, 1)-1)*$volume, 5)/(Mean(Abs($close/Ref($close, 1)-1)*$volume, 5)+1e-12)"
    )


def test_shape_and_tail(bars):
    full = alpha158(bars)
    assert full.shape == (len(bars), 158)
    assert full.index.names == ["date", "symbol"]
    assert full.dtypes.eq(np.float32).all()
    last = bars.date.max()
    tail = alpha158(bars, start=last)
    pd.testing.assert_frame_equal(tail, full[full.index.get_level_values("date") == last])


@pytest.fixture(scope="module")
def qlib_reference(tmp_path_factory, synth_module):
    if not QLIB_PYTHON.exists():
        pytest.skip(
            f"Qlib venv absent ({QLIB_PYTHON}): python3.11 -m venv .venv-qlib && "
            ".venv-qlib/bin/pip install pyqlib==0.9.7 pyarrow"
        )
    tmp = tmp_path_factory.mktemp("qlib")
    bars = synth_module(n_symbols=20, n_days=300, seed=7)
    bars.to_parquet(tmp / "bars.parquet")
    proc = subprocess.run(
        [str(QLIB_PYTHON), str(REPO / "bench" / "qlib_alpha158.py"), str(tmp / "bars.parquet"),
         str(tmp / "qlib.parquet")],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    return bars, pd.read_parquet(tmp / "qlib.parquet"), info


def _mismatches(ours: pd.DataFrame, ref: pd.DataFrame, rtol: float, atol: float) -> dict:
    ref = ref.reindex(ours.index)
    bad = {}
    for col in ours.columns:
        a = ours[col].to_numpy(np.float64)
        b = ref[col].to_numpy(np.float64)
        nan_diff = int((np.isnan(a) != np.isnan(b)).sum())
        m = ~np.isnan(a) & ~np.isnan(b)
        far = int((~np.isclose(a[m], b[m], rtol=rtol, atol=atol)).sum())
        if nan_diff or far:
            bad[col] = (nan_diff, far)
    return bad


@pytest.mark.qlib
def test_matches_qlib_with_float32_fields(qlib_reference):
    """Loading fields as float32 reproduces Qlib's numerics: all 158 columns agree."""
    bars, ref, _ = qlib_reference
    ours = alpha158(bars, field_dtype=np.float32)
    assert list(ref.columns) == list(ours.columns)
    assert _mismatches(ours, ref, rtol=1e-5, atol=1e-6) == {}


@pytest.mark.qlib
def test_matches_qlib_in_float64(qlib_reference):
    """In float64 (the default) only columns sensitive to Qlib's float32 rounding of
    close/Ref(close,1) and log-volume differ, and by less than 1e-3 relative."""
    bars, ref, _ = qlib_reference
    ours = alpha158(bars)
    bad = _mismatches(ours, ref, rtol=1e-5, atol=1e-6)
    assert set(bad) <= {f"{p}{d}" for p in ("CORR", "CORD", "WVMA") for d in (5, 10, 20, 30, 60)}
    assert all(nan_diff == 0 for nan_diff, _ in bad.values())
    assert _mismatches(ours, ref, rtol=1e-3, atol=1e-5) == {}


def test_real_csi300_smoke():
    path = SHARED_DATA / "cn_csi300_daily_2021_2024" / "bars.csv.gz"
    if not path.exists():
        pytest.skip(f"real data absent: {path}")
    raw = pd.read_csv(path, usecols=["date", "code", "open", "high", "low", "close", "volume",
                                     "amount", "tradestatus"])  # fmt: skip
    raw = raw[raw["tradestatus"] == 1]
    bars = raw.rename(columns={"code": "symbol"}).assign(
        date=lambda d: pd.to_datetime(d["date"]),
        vwap=lambda d: d["amount"] / d["volume"].where(d["volume"] > 0),
    )[["date", "symbol", "open", "high", "low", "close", "volume", "vwap"]]
    out = alpha158(bars)
    assert out.shape == (len(bars), 158)
    late = out[out.index.get_level_values("date") >= "2021-06-01"]
    coverage = late.notna().mean()
    assert coverage.min() > 0.95, coverage.sort_values().head()
    assert np.isfinite(late.to_numpy(np.float64)[late.notna().to_numpy()]).all()
    for col, lo, hi in (("RSQR20", 0, 1), ("RANK10", 0, 1), ("KLEN", 0, np.inf)):
        values = late[col].dropna()
        assert values.between(lo - 1e-6, hi + 1e-6).all(), col


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
