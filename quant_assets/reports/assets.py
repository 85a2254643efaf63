"""Report stage: the day's recommendations (table, CSV, JSON) and the performance report of the
paper book (one HTML page with plots, stored in the report folder and in MLflow)."""

import functools
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    MetadataValue,
    Output,
    asset,
)

from quant_assets.calendar import TRADING_DAYS, next_trading_day
from quant_assets.day_range import Pending, by_day, pending_png
from quant_assets.market.sources.delivery import inputs_note
from quant_assets.plotting import draw
from quant_assets.reports.book_history import (
    book_history,
    industry_exposure,
    model_quality,
    universe_returns,
)
from quant_assets.reports.performance_page import (
    ANNUALISED,
    ReportData,
    key_figures,
    write_report,
)
from quant_assets.reports.recommendations import SHOWN, build, write_files
from quant_assets.reports.tables import PERFORMANCE, RECOMMENDATIONS
from quant_assets.wiring import RANGE_IN_RUNS, daily_table, partition_day, same_day, window
from resources.market import MarketDataResource
from resources.mlflow_reports import ReportArtifact
from resources.settings import data_dir

TRACK_RECORD_DAYS = 250
REPORT_INS = {"performance": AssetIn()}


def report_path(day: pd.Timestamp) -> Path:
    """Where the day's performance page is written."""
    return data_dir() / "reports" / f"{day:%Y-%m-%d}.html"


@daily_table(
    RECOMMENDATIONS,
    group="reports",
    kinds=("csv", "json"),
    ins={
        "paper_book": same_day(),
        "signals": same_day(columns=["symbol", "rank", "score", "probability", "confidence"]),
        "universe": same_day(columns=["symbol", "name", "industry", "board"]),
    },
    check_specs=[
        AssetCheckSpec(
            "matches_target",
            asset="recommendations",
            blocking=True,
            description="Every name of the target portfolio is published once, named, with "
            "its weight; the weights sum to the invested share.",
        )
    ],
)
def recommendations(
    context: AssetExecutionContext,
    paper_book: pd.DataFrame,
    signals: pd.DataFrame,
    universe: pd.DataFrame,
) -> Iterator:
    """What to hold and trade at the next open: the book's target with the model's figures,
    the reason for each trade and the risk notes; "no trade" and why when it was rejected."""
    day = partition_day(context)
    for_day = next_trading_day(day)
    recs, status = build(day, for_day, paper_book, signals, universe)
    key = f"{day:%Y-%m-%d}"
    csv, js = write_files(recs, data_dir() / "reports" / "recommendations", key)
    shown = recs[SHOWN]
    yield Output(recs, metadata={
        "for_date": str(for_day.date()),
        "status": status,
        "recommendations": MetadataValue.md(shown.to_markdown(index=False, floatfmt=".4f")),
        "csv": MetadataValue.path(str(csv)),
        "json": MetadataValue.path(str(js)),
        "positions": int((recs["weight"] > 0).sum()),
    })  # fmt: skip
    target = paper_book[paper_book["kind"] == "target"]
    named = recs["name"].fillna("").astype(str).str.len().gt(0)
    ok = (set(target["symbol"]) <= set(recs["symbol"]) and recs["symbol"].is_unique
          and bool(named.all()) and abs(recs["weight"].sum() - target["weight"].sum()) < 1e-9)  # fmt: skip
    yield AssetCheckResult(passed=bool(ok), metadata={"rows": len(recs), "target": len(target)})


@daily_table(
    PERFORMANCE,
    group="reports",
    kinds=("html",),
    check_specs=[
        AssetCheckSpec(
            "figures_finite",
            asset="performance",
            description="The book has an equity every day of the window and its figures are "
            "numbers.",
        )
    ],
    ins={
        "paper_book": window(TRACK_RECORD_DAYS),
        "recommendations": same_day(),
        "raw_daily_bars": window(
            TRACK_RECORD_DAYS, columns=["date", "symbol", "close", "preclose", "is_suspended"]
        ),  # fmt: skip
        "predictions": window(TRACK_RECORD_DAYS, columns=["date", "symbol", "score"]),
        "labels": window(TRACK_RECORD_DAYS, columns=["date", "symbol", "label"]),
        "universe": same_day(columns=["symbol", "name", "industry"]),
    },
)
def performance(
    context: AssetExecutionContext,
    market: MarketDataResource,
    paper_book: pd.DataFrame,
    recommendations: pd.DataFrame,
    raw_daily_bars: pd.DataFrame,
    predictions: pd.DataFrame,
    labels: pd.DataFrame,
    universe: pd.DataFrame,
) -> Iterator:
    """The paper book's key figures after costs, and its track record as a page a PM reads
    (written to the report folder): cumulative return against the universe after and before
    costs, drawdown, monthly returns, rolling Sharpe, turnover, industry exposure, the model's
    IC and quantile returns, today's positions and recommendations."""
    day = partition_day(context)
    key = f"{day:%Y-%m-%d}"
    history = book_history(paper_book)
    u = universe.set_index("symbol")
    today = paper_book[
        (pd.to_datetime(paper_book["date"]) == day) & (paper_book["kind"] == "position")
    ]
    holdings = today.set_index("symbol")["weight"]
    holdings.index = [f"{u['name'].get(s, '')} ({s})" for s in holdings.index]
    ic, quantiles = model_quality(predictions, labels)
    notes = paper_book.loc[(pd.to_datetime(paper_book["date"]) == day)
                           & (paper_book["kind"] == "note"), "reason"].tolist()  # fmt: skip
    inputs = inputs_note(market)  # a bars-only market says what its days go without
    notes += [inputs] if inputs else []
    data = ReportData(
        day=key, for_day=str(next_trading_day(day).date()),
        status=str(recommendations["status"].iloc[0]) if len(recommendations) else "no trade",
        history=history, benchmark=universe_returns(raw_daily_bars), ic=ic, quantiles=quantiles,
        exposure=industry_exposure(history.positions, u["industry"]),
        recommendations=recommendations[SHOWN], holdings=holdings, notes=notes,
    )  # fmt: skip
    table, figures, short = key_figures(data)
    path = report_path(day)
    drawn = draw(write_report, path, data)
    rows = pd.DataFrame({"figure": list(figures), "value": [float(v) for v in figures.values()]})
    plot = (
        {"cumulative_return": pending_png(drawn, "cumulative return")}
        if len(history.returns) >= 2
        else {}
    )
    yield Output(rows.assign(date=day), metadata={
        "report": Pending(drawn, lambda _: MetadataValue.path(str(path))),
        "key_figures": MetadataValue.md(table.to_markdown(index=False)),
        "history_days": len(history.returns),
        # each figure as a number too, for the metrics endpoint (annualised ones, such as the
        # Sharpe ratio, only once the history is long enough, as on the page)
        **{k: float(v) for k, v in figures.items()
           if np.isfinite(v) and not (short and k in ANNUALISED)},
        **({"short_history": short} if short else {}),
        **plot,
    })  # fmt: skip
    ok = len(rows) == 0 or bool(np.isfinite(rows["value"].to_numpy()).any())
    yield AssetCheckResult(passed=bool(ok and history.equity.notna().all()), metadata={
        "book_days": len(history.equity), "figures": len(rows)})  # fmt: skip


@asset(
    partitions_def=TRADING_DAYS,
    group_name="reports",
    io_manager_key="mlflow_report_io",
    kinds={"html", "mlflow"},
    ins=REPORT_INS,
    backfill_policy=RANGE_IN_RUNS,
    check_specs=[
        AssetCheckSpec(
            "page_complete",
            asset="performance_report",
            description="The day's page holds its figures and plots.",
        )
    ],  # fmt: skip
)
@functools.partial(by_day, ins=REPORT_INS, own="performance_report")
def performance_report(context: AssetExecutionContext, performance: pd.DataFrame) -> Iterator:
    """The day's performance page and key figures kept in MLflow (a run per day, the page
    under report/), beside the copy in the report folder."""
    day = partition_day(context)
    page = report_path(day)
    figures = dict(zip(performance["figure"], performance["value"].astype(float), strict=True))
    yield Output(ReportArtifact(page, figures))
    text = page.read_text(encoding="utf-8") if page.exists() else ""
    yield AssetCheckResult(passed="Key figures" in text and "</html>" in text,
                           metadata={"bytes": len(text), "plots": text.count("<img")})  # fmt: skip
