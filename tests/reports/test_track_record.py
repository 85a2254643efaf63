"""The realised track record: a portfolio chosen after the close of t is bought at the open of
t+1 and sold at the open of t+2, and only returns known by the report day count."""

import numpy as np
import pandas as pd
import pytest

from quant_assets.calendar import trading_days
from quant_assets.market.labels import labels_known_on
from quant_assets.reports.performance import realised_returns

DAYS = trading_days("2024-03-01", "2024-04-30")
SYMBOLS = [f"S{i:02d}" for i in range(20)]
TOP = 5


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = (len(DAYS), len(SYMBOLS))
    close = 10 * np.cumprod(1 + rng.normal(0, 0.02, n), axis=0)
    open_ = close * (1 + rng.normal(0, 0.01, n))
    return pd.DataFrame(
        {
            "date": np.repeat(DAYS, len(SYMBOLS)),
            "symbol": np.tile(SYMBOLS, len(DAYS)),
            "open": open_.ravel(),
            "close": close.ravel(),
            "is_suspended": False,
        }
    )


def _labels(bars: pd.DataFrame, upto: pd.Timestamp) -> pd.DataFrame:
    days = [d for d in DAYS if d <= upto]
    return pd.concat([labels_known_on(bars[bars["date"] <= d], d) for d in days[-25:]])


def _signals(score: pd.DataFrame) -> pd.DataFrame:
    """The TOP highest scores of each day, equally weighted (score: dates x symbols)."""
    rows = []
    for day, s in score.dropna(how="all").iterrows():
        for sym in s.nlargest(TOP).index:
            rows.append((day, sym, 1.0 / TOP))
    return pd.DataFrame(rows, columns=["date", "symbol", "weight"])


def _next_open_returns(bars: pd.DataFrame, shift: int = 0) -> pd.DataFrame:
    """open(t+1+shift) -> open(t+2+shift), by signal day t (dates x symbols), straight from
    the prices."""
    opened = bars.pivot(index="date", columns="symbol", values="open")
    return opened.shift(-2 - shift) / opened.shift(-1 - shift) - 1


def test_the_track_record_is_the_next_open_to_open_return_of_each_day_s_picks(bars):
    report_day = DAYS[-1]
    truth = _next_open_returns(bars)
    signals = _signals(truth)  # perfect foresight of the traded return: the best possible
    perf = realised_returns(signals, _labels(bars, report_day))
    # only signal days whose sale at the open is known by the report day: t <= report day - 2
    assert perf.index.max() == DAYS[-3]
    expected = truth.apply(lambda r: r.nlargest(TOP).mean(), axis=1).reindex(perf.index)
    np.testing.assert_allclose(perf["portfolio"], expected, rtol=1e-12)
    np.testing.assert_allclose(perf["universe"], truth.mean(axis=1).reindex(perf.index))
    # prices shifted by one day give other numbers: the test would catch a one-day slip
    shifted = _next_open_returns(bars, shift=1)
    slipped = shifted.apply(lambda r: r.nlargest(TOP).mean(), axis=1).reindex(perf.index)
    assert not np.allclose(perf["portfolio"], slipped, rtol=1e-3)
    slipped_close = bars.pivot(index="date", columns="symbol", values="close").pct_change()
    close_based = slipped_close.shift(-1).apply(lambda r: r.nlargest(TOP).mean(), axis=1)
    assert not np.allclose(perf["portfolio"], close_based.reindex(perf.index), rtol=1e-3)


def test_a_score_known_at_the_close_earns_nothing_from_that_close(bars):
    """Picking the day's own winners (known at the close) must not earn the day's move: the
    portfolio only starts at the next open."""
    close = bars.pivot(index="date", columns="symbol", values="close")
    same_day = close.pct_change()
    perf = realised_returns(_signals(same_day), _labels(bars, DAYS[-1]))
    earned = same_day.apply(lambda r: r.nlargest(TOP).mean(), axis=1).reindex(perf.index)
    assert earned.mean() > 0.02  # what a close-execution track record would have shown
    assert abs(perf["portfolio"].mean()) < 0.01


def test_a_suspended_pick_counts_as_cash(bars):
    halted = bars.copy()
    day = DAYS[-5]
    truth = _next_open_returns(bars)
    signals = _signals(truth)
    pick = signals[signals["date"] == day]["symbol"].iloc[0]
    halted.loc[(halted["date"] == DAYS[-4]) & (halted["symbol"] == pick), "is_suspended"] = True
    perf = realised_returns(signals, _labels(halted, DAYS[-1]))
    others = signals[(signals["date"] == day) & (signals["symbol"] != pick)]["symbol"]
    assert perf.loc[day, "portfolio"] == pytest.approx(truth.loc[day, others].sum() / TOP)
