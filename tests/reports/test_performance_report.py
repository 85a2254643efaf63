"""The paper book's ledger round trip, its history, the recommendations and the report page."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quant_assets.reports.book_history import book_history, model_quality, universe_returns
from quant_assets.reports.performance_page import (
    ANNUALISE_MIN_DAYS,
    ReportData,
    key_figures,
    write_report,
)
from quant_assets.reports.recommendations import build, write_files
from quant_assets.strategy.book import BookConfig, book_day
from quant_assets.strategy.broker import PaperBroker
from quant_assets.strategy.costs import Costs
from quant_assets.strategy.ledger import from_ledger, to_ledger
from quant_assets.strategy.risk import RiskLimits

SYMBOLS = ["600000.SH", "600001.SH", "600002.SH", "000001.SZ", "000002.SZ", "600003.SH"]
NAMES = ["浦发银行", "长江电力", "中国石化", "平安银行", "万科Ａ", "新华保险"]
UNIVERSE = pd.DataFrame({"symbol": SYMBOLS, "name": NAMES, "board": "main",
                         "industry": ["bank", "power", "energy", "bank", "property", "insurance"]})  # fmt: skip


def run_book(days: int, seed: int = 0):
    """A book over `days` simulated days; returns the ledger, the bars and the scores."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2024-01-02", periods=days)
    close = np.round(10 * np.exp(np.cumsum(rng.normal(0, 0.015, (days, 6)), axis=0)), 2)
    pre = np.vstack([close[:1], close[:-1]])
    cfg = BookConfig(top_n=3, limits=RiskLimits(max_stock_weight=0.5, max_industry_weight=0.7))
    ledger, prev, bars_all, scores = [], pd.DataFrame(), [], []
    for k, day in enumerate(dates):
        bars = pd.DataFrame({"date": day, "symbol": SYMBOLS, "open": pre[k], "high": close[k],
                             "low": pre[k], "close": close[k], "preclose": pre[k], "volume": 1e6,
                             "amount": 1e6 * close[k], "is_suspended": False, "is_st": False})  # fmt: skip
        bars["high"] = bars[["open", "close"]].max(axis=1)
        bars["low"] = bars[["open", "close"]].min(axis=1)
        sig = pd.DataFrame({"score": rng.normal(size=6), "buyable": True, "holdable": True},
                           index=SYMBOLS)  # fmt: skip
        acct, pending, peak = from_ledger(prev, cfg.initial_cash)
        info = UNIVERSE.set_index("symbol")[["industry", "board"]].assign(adv=1e9)
        out = book_day(day, acct, pending, peak, bars, pd.DataFrame(columns=["symbol"]), sig, info,
                       pd.DataFrame(), cfg, PaperBroker(Costs()))  # fmt: skip
        prev = to_ledger(day, out, bars.set_index("symbol")["close"])
        ledger.append(prev)
        bars_all.append(bars)
        scores.append(sig.assign(date=day).rename_axis("symbol").reset_index())
    return pd.concat(ledger, ignore_index=True), pd.concat(bars_all), pd.concat(scores)


def test_the_ledger_round_trip_keeps_cash_to_the_cent_and_the_history_adds_up():
    ledger, bars, _ = run_book(30)
    h = book_history(ledger)
    assert len(h.returns) == 29 and h.fees.sum() > 0
    # equity = cash + positions at the close, every day
    for _, g in ledger.groupby("date"):
        cash = g.loc[g["kind"] == "cash", "value"].iloc[0]
        assert round(cash, 2) == pytest.approx(cash, abs=1e-9)
        pos = g.loc[g["kind"] == "position", "value"].sum()
        assert g.loc[g["kind"] == "equity", "value"].iloc[0] == pytest.approx(cash + pos)
    # before costs is above after costs by the fees
    assert (h.returns_before_costs >= h.returns - 1e-15).all()
    assert (h.returns_before_costs > h.returns).sum() == (h.fees.iloc[1:] > 0).sum()
    bench = universe_returns(bars)
    assert bench.index.equals(pd.DatetimeIndex(sorted(bars["date"].unique())))


def test_recommendations_name_every_target_stock_with_reasons_and_files(tmp_path):
    ledger, _, scores = run_book(5)
    day = ledger["date"].max()
    today = ledger[ledger["date"] == day]
    sig = scores[scores["date"] == day].assign(
        rank=lambda d: d["score"].rank(ascending=False).astype(int), probability=0.5, confidence=0.7
    )
    recs, status = build(day, day + pd.Timedelta(days=1), today, sig, UNIVERSE)
    target = today[today["kind"] == "target"]
    assert set(target["symbol"]) <= set(recs["symbol"])
    assert recs["name"].isin(NAMES).all() and recs["reason"].str.len().gt(0).all()
    assert recs["weight"].sum() == pytest.approx(target["weight"].sum())
    csv, js = write_files(recs, tmp_path, "d")
    assert "浦发银行" in csv.read_text(encoding="utf-8-sig") or "浦发银行" not in set(recs["name"])
    assert pd.read_json(js).shape[0] == len(recs)


def test_a_short_history_is_not_annualised_and_figures_read_as_percentages(tmp_path):
    ledger, bars, scores = run_book(40)
    h = book_history(ledger)
    data = ReportData("2024-02-26", "2024-02-27", "trade", h, universe_returns(bars),
                      pd.DataFrame(), pd.Series(dtype=float), pd.Series(dtype=float),
                      pd.DataFrame({"symbol": ["600000.SH"], "name": ["浦发银行"]}),
                      pd.Series({"浦发银行 (600000.SH)": 0.3}), [])  # fmt: skip
    table, raw, note = key_figures(data)
    assert len(h.returns) < ANNUALISE_MIN_DAYS and "39 trading days" in note
    labels = set(table["Figure"])
    assert "Sharpe ratio" not in labels and "Annual return" not in labels
    assert "Total return" in labels
    total = table.set_index("Figure").loc["Total return"]
    assert total["After costs"].endswith("%") and total["Before costs"].endswith("%")
    assert raw["total_return"] == pytest.approx(h.equity.iloc[-1] / h.equity.iloc[0] - 1)
    page = tmp_path / "r.html"
    png = write_report(page, data)
    text = page.read_text(encoding="utf-8")
    assert png is not None and text.count("<img") >= 5 and "浦发银行" in text
    # the Chinese glyphs travel with the page (a cut of Noto Sans CJK SC), so a machine
    # without a Chinese font shows the names too
    assert "@font-face{font-family:'Report CJK'" in text and "class='warm'" in text
    assert "0.3043" not in text  # no raw ratios printed for people


def test_a_long_history_shows_annualised_figures_after_and_before_costs():
    ledger, bars, _ = run_book(ANNUALISE_MIN_DAYS + 5)
    h = book_history(ledger)
    data = ReportData("d", "d", "trade", h, universe_returns(bars), pd.DataFrame(),
                      pd.Series(dtype=float), pd.Series(dtype=float), pd.DataFrame(),
                      pd.Series(dtype=float), [])  # fmt: skip
    table, raw, note = key_figures(data)
    assert note is None
    sharpe = table.set_index("Figure").loc["Sharpe ratio"]
    assert float(sharpe["Before costs"]) > float(sharpe["After costs"])


def test_model_quality_reads_the_label_of_each_scored_day():
    days = pd.bdate_range("2024-01-02", periods=12)
    rng = np.random.default_rng(1)
    syms = [f"{600000 + i}.SH" for i in range(20)]
    score = pd.DataFrame({"date": np.repeat(days, 20), "symbol": np.tile(syms, 12),
                          "score": rng.normal(size=240)})  # fmt: skip
    # labels partition D holds the label of D-2: make it equal to the score of D-2
    lab = score.copy()
    lab["date"] = lab["date"].map(dict(zip(days[:-2], days[2:], strict=True)))
    lab = lab.dropna().rename(columns={"score": "label"})
    ic, quant = model_quality(score, lab)
    assert len(ic) == 10 and np.allclose(ic, 1.0)
    assert quant.index.tolist() == [1, 2, 3, 4, 5] and quant.is_monotonic_increasing
