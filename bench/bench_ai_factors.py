"""AI factor mining on the simulated market: what the admitted factors add to a model, whether
the planted news alpha is found through the news factors, and what each round cost.

    .venv/bin/python bench/bench_ai_factors.py [--rounds 3] [--symbols 300] [--days 500]

Steps, with the segments of bench_zoo (60/20/20 % of the days after a 60-day warm-up):
1. News: every simulated item's title is read by the offline lexicon analyser (no LLM on
   this machine), and its score becomes the news-tone factors of the day the item can first
   act on (`news_factors`), fields a formula can read next to the bars.
   (The vendor's sentiment column is left out.)
2. `mine(..., generator="offline")` with the daily factor set as the factors in use.
3. LightGBM (`walk_forward`) on the daily set alone, then on the daily set plus the admitted
   factors: validation rank IC on the report days (early stopping never saw them; but the
   factors were admitted on validation, so the test segment is the honest comparison) and
   test rank IC, both printed.
4. The planted alphas: each admitted factor's rank correlation with the market's latent
   news and reversal signals (`SimulatedMarket.truth`).
Prints tables; figures go to .data/bench/ai_factors.json and a plot to ai_factors.png.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
OUT = Path(os.environ.get("QUANT_DATA_DIR", REPO / ".data")) / "bench"

from quant_assets.ai_factors import mine  # noqa: E402
from quant_assets.ai_factors.inputs import mining_bars  # noqa: E402
from quant_assets.ai_factors.news_analysis import analyse_offline  # noqa: E402
from quant_assets.factors.daily_set import DAILY_FACTORS  # noqa: E402
from quant_assets.factors.engine import evaluate_many  # noqa: E402
from quant_assets.factors.news_set import news_factors  # noqa: E402
from quant_assets.factors.screening import rank_ic_table  # noqa: E402
from quant_assets.market.adjustment import backward_adjusted  # noqa: E402
from quant_assets.market.sources.simulated import SimulatedMarket  # noqa: E402
from quant_assets.models import walk_forward  # noqa: E402
from quant_assets.models.segments import Segments  # noqa: E402


def market(symbols: int, days: int) -> tuple[SimulatedMarket, pd.DataFrame, pd.DataFrame]:
    """The simulated market, its adjusted bars and its news by trading day."""
    sim = SimulatedMarket(pd.bdate_range("2022-01-03", periods=days), n_symbols=symbols, seed=11)
    adjusted = backward_adjusted(sim.daily_bars())
    items = [sim.news(day).assign(date=day) for day in sim.trading_days]
    return sim, adjusted, pd.concat(items, ignore_index=True)


def news_tone(news: pd.DataFrame, bars: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    """The news factors of every day from the lexicon's scores (not the vendor's sentiment),
    and the seconds the analysis took."""
    t0 = time.perf_counter()
    analysed = analyse_offline(news)
    seconds = time.perf_counter() - t0
    days = pd.DatetimeIndex(sorted(bars["date"].unique()))
    symbols = sorted(bars["symbol"].unique())
    frames = [news_factors(news, symbols, day, analysis=analysed) for day in days]
    # the vendor's sentiment left out: the alpha is to be found through our own reading
    keep = ["date", "symbol", *[c for c in frames[0].columns if "count" in c or "tone" in c]]
    return pd.concat(frames, ignore_index=True)[keep], seconds


def segments_of(bars: pd.DataFrame) -> Segments:
    cal = pd.DatetimeIndex(sorted(bars["date"].unique()))
    a, b = int(len(cal) * 0.6), int(len(cal) * 0.8)
    return Segments((cal[60], cal[a - 1]), (cal[a], cal[b - 1]), (cal[b], cal[-1]))


def model_figures(bars: pd.DataFrame, formulas: dict[str, str], seg: Segments) -> dict[str, float]:
    """LightGBM's validation (report days) and test figures on the named formulas."""
    panel = evaluate_many(list(formulas.values()), bars, names=list(formulas))
    out = walk_forward(bars, model="lgbm", features=panel, segments=seg, seed=0)
    return {
        "valid_rank_ic": float(out.attrs["metrics"]["valid_rank_ic"]),
        "test_rank_ic": float(out.attrs["test_metrics"]["rank_ic"]),
        "test_rank_icir": float(out.attrs["test_metrics"]["rank_icir"]),
        "test_top50_excess_bp": 1e4 * float(out.attrs["test_metrics"]["top50_excess"]),
    }


def truth_correlations(sim, bars: pd.DataFrame, formulas: dict[str, str]) -> pd.DataFrame:
    truth = sim.truth().set_index(["date", "symbol"]).sort_index()
    latent = truth[["news_sentiment", "reversal_5d", "closing_imbalance"]]
    # the news drift of day t+1 comes from the sentiment of days t-3..t (loadings 1..0.2)
    values = evaluate_many(list(formulas.values()), bars, names=list(formulas))
    rows = {}
    for name, col in values.items():
        rows[name] = rank_ic_table(latent.reindex(col.index), col).mean()
    news_drift = truth["mu_news"]
    for name, col in values.items():
        rows[name]["mu_news"] = rank_ic_table(news_drift.reindex(col.index).to_frame(), col)[
            "mu_news"
        ].mean()
    return pd.DataFrame(rows).T


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--symbols", type=int, default=300)
    parser.add_argument("--days", type=int, default=500)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("quant_assets.ai_factors").setLevel(logging.INFO)
    OUT.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    sim, adjusted, news = market(args.symbols, args.days)
    print(f"market: {args.symbols} stocks, {args.days} days, {len(news)} news items "
          f"({time.perf_counter() - t0:.0f} s)")  # fmt: skip
    factors, analysis_s = news_tone(news, adjusted)
    bars = mining_bars(adjusted, factors)
    seg = segments_of(bars)
    print(f"news analysed by the lexicon in {analysis_s:.1f} s; segments train "
          f"{seg.train[0].date()}..{seg.train[1].date()}, valid ..{seg.valid[1].date()}, "
          f"test ..{seg.test[1].date()}")  # fmt: skip
    result = mine(bars, seg, rounds=args.rounds, generator="offline", seed=0, in_use=DAILY_FACTORS)
    pd.set_option("display.width", 200)
    pd.set_option("display.max_colwidth", 70)
    print("\nrounds:\n" + result.rounds.drop(columns=["errors", "note"]).round(3).to_string())
    adm = result.admitted[["name", "formula", "train_ic", "valid_ic", "valid_p", "tests"]]
    print("\nadmitted:\n" + adm.round(5).to_string(index=False))
    test = result.test.rename(columns={"ic": "test_ic", "icir": "test_icir"})
    print("\ntest figures of the admitted set (after selection):\n"
          + test[["formula", "test_ic", "test_icir", "n_days"]].round(4).to_string())  # fmt: skip
    corr = truth_correlations(sim, bars, result.formulas).round(3)
    print("\nrank correlation with the market's latent signals:\n" + corr.to_string())
    news_found = [
        n for n, f in result.formulas.items() if "$news_" in f and abs(corr.at[n, "mu_news"]) > 0.3
    ]
    base = model_figures(bars, DAILY_FACTORS, seg)
    plus = model_figures(bars, {**DAILY_FACTORS, **result.formulas}, seg)
    table = pd.DataFrame({"daily set": base, "daily set + AI factors": plus}).T
    print("\nLightGBM on the daily set, with and without the admitted factors:\n"
          + table.round(4).to_string())  # fmt: skip
    figures = {
        "rounds": result.rounds.to_dict(orient="records"),
        "admitted": result.admitted.to_dict(orient="records"),
        "test": result.test.reset_index().to_dict(orient="records"),
        "truth_correlation": corr.reset_index().to_dict(orient="records"),
        "news_alpha_found_by": news_found,
        "model": table.reset_index().to_dict(orient="records"),
        "news_analysis_seconds": analysis_s,
    }
    (OUT / "ai_factors.json").write_text(json.dumps(figures, indent=1, default=str))
    _plot(table, result, OUT / "ai_factors.png")
    print(f"\nnews alpha found through the news factors by: {news_found or 'none'}")
    print(f"figures: {OUT / 'ai_factors.json'}, plot: {OUT / 'ai_factors.png'}; "
          f"total {time.perf_counter() - t0:.0f} s")  # fmt: skip


def _plot(table: pd.DataFrame, result, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    x = np.arange(len(table))
    a.bar(x - 0.2, table["valid_rank_ic"], 0.4, label="valid (report days)")
    a.bar(x + 0.2, table["test_rank_ic"], 0.4, label="test")
    a.set_xticks(x, table.index)
    a.set_title("LightGBM rank IC")
    a.legend()
    adm = result.admitted
    if len(adm):
        test_ic = result.test["ic"].reindex(adm["name"]).to_numpy()
        b.scatter(adm["valid_ic"], test_ic)
        lim = np.nanmax(np.abs(np.r_[adm["valid_ic"], test_ic])) * 1.1
        b.plot([-lim, lim], [-lim, lim], lw=0.5, color="grey")
    b.set_xlabel("validation IC (where admitted)")
    b.set_ylabel("test IC (after selection)")
    b.set_title("admitted factors")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
