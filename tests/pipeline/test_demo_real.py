"""`python -m quant_assets.demo_real` (what `make demo-real` runs) as a user runs it, in a
subprocess on a short window of the real CSI300 set: delivered through the landing zone,
the history loaded, days scored by the champion in force between retrainings, and the
recommendations, row counts and report printed. Skips when ../shared/data lacks the set."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from quant_assets.market.sources import real_data as R

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _demo_real(tmp_path: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUANT_")}
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    env |= {"QUANT_DATA_DIR": str(tmp_path / "data"), "DAGSTER_HOME": str(home), **settings}
    return subprocess.run(
        [sys.executable, "-m", "quant_assets.demo_real"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )


def test_without_the_data_it_says_what_is_missing(tmp_path):
    done = _demo_real(tmp_path, QUANT_SHARED_DATA=str(tmp_path / "nowhere"))
    assert done.returncode == 2
    assert "make demo-real needs the CSI300 set of ../shared/data" in done.stderr
    assert str(tmp_path / "nowhere") in done.stderr
    assert not (tmp_path / "data" / "landing").exists()


@pytest.mark.skipif(
    not (R.DATA_ROOT / R.CSI300_BARS).exists(),
    reason=f"real data absent: {R.DATA_ROOT / R.CSI300_BARS}",
)
def test_a_short_real_window_runs_end_to_end(tmp_path):
    done = _demo_real(
        tmp_path,
        QUANT_DEMO_END="2024-03-29",
        QUANT_DEMO_DAYS="5",
        QUANT_DEMO_WARMUP_DAYS="45",
        QUANT_DEMO_RETRAIN_DAYS="2",
        QUANT_DEMO_DAYS_PER_RUN="2",
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    # delivered as a vendor would, up to the demo's end only
    assert "Landing zone: 265 symbols, 785 days 2021-01-04 .. 2024-03-29" in out
    assert "the market delivers: bars" in out
    assert "History load: 45 trading days" in out
    # day 1 trains; then blocks of two scored days, retrained on each block's last close
    # except the last one (it would serve no day of the demo)
    assert "[  daily   1/5] 2024-03-25" in out
    assert "[ scored   3/5] 2024-03-26..2024-03-27" in out
    assert "[retrain   3/5] 2024-03-27" in out
    assert "[ scored   5/5] 2024-03-28..2024-03-29" in out
    assert out.count("[retrain") == 1
    assert "The paper book after the close of 2024-03-29" in out
    assert "| raw_trades " in out and "| raw_daily_bars " in out
    report = tmp_path / "data" / "reports" / "2024-03-29.html"
    assert report.exists() and "Inputs of the day: bars." in report.read_text(encoding="utf-8")
    assert "A real day: " in out and "90-minute pre-market window" in out
    assert "make demo-real:" in out and "5 trading days after 45 days of history" in out
