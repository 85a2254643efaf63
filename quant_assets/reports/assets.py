"""Report stage: the published recommendations and the daily HTML report with the track record."""

from collections.abc import Iterator

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    MetadataValue,
    Output,
)

from quant_assets.calendar import next_trading_day
from quant_assets.day_range import Pending, pending_png
from quant_assets.plotting import draw
from quant_assets.reports.daily_report import write_daily_report
from quant_assets.reports.performance import realised_returns
from quant_assets.reports.tables import RECOMMENDATIONS
from quant_assets.strategy import performance_summary
from quant_assets.wiring import daily_table, partition_day, same_day, window
from resources.settings import data_dir

TRACK_RECORD_DAYS = 250


@daily_table(
    RECOMMENDATIONS,
    group="reports",
    kinds=("html",),
    ins={
        "signals": window(TRACK_RECORD_DAYS),
        "labels": window(TRACK_RECORD_DAYS, columns=["date", "symbol", "open_ret"]),
        "universe": same_day(columns=["symbol", "name", "industry"]),
        "raw_daily_bars": same_day(columns=["symbol", "close"]),
    },
    check_specs=[
        AssetCheckSpec(
            "matches_signals",
            asset="recommendations",
            blocking=True,
            description="Every signal of the day is published, with the stock's name.",
        )
    ],
)
def recommendations(
    context: AssetExecutionContext,
    signals: pd.DataFrame,
    labels: pd.DataFrame,
    universe: pd.DataFrame,
    raw_daily_bars: pd.DataFrame,
) -> Iterator:
    """Tomorrow's buy list with names and industries, stored and rendered as an HTML report
    with the realised track record of the past recommendations (next-open execution)."""
    day = partition_day(context)
    for_day = next_trading_day(day)
    today = signals[signals["date"] == day]
    recs = (
        today.merge(universe, on="symbol", how="left")
        .merge(raw_daily_bars, on="symbol", how="left")
        .assign(for_date=for_day)
        .sort_values("rank")[list(RECOMMENDATIONS.columns)]
    )
    perf = realised_returns(signals, labels)
    summary = performance_summary(perf["portfolio"], perf["universe"]) if len(perf) >= 2 else {}
    shown = recs[["rank", "symbol", "name", "industry", "close", "score", "weight"]]
    key = f"{day:%Y-%m-%d}"
    report = data_dir() / "reports" / f"{key}.html"
    drawn = draw(write_daily_report, report, key, str(for_day.date()), shown, perf, summary)
    plot = {"track_record_plot": pending_png(drawn, "track record")} if len(perf) >= 2 else {}
    yield Output(
        recs.reset_index(drop=True),
        metadata={
            "for_date": str(for_day.date()),
            "recommendations": MetadataValue.md(shown.to_markdown(index=False, floatfmt=".4f")),
            # once the drawing process has written it
            "report": Pending(drawn, lambda _: MetadataValue.path(str(report))),
            "track_record_days": len(perf),
            "positions": len(recs),
            "mean_score": float(recs["score"].mean()) if len(recs) else float("nan"),
            **plot,
            **{f"track_{k}": float(v) for k, v in summary.items()},
        },
    )
    named = recs["name"].fillna("").astype(str).str.len().gt(0)
    yield AssetCheckResult(
        passed=bool(len(recs) == len(today) > 0 and named.all()),
        metadata={"rows": len(recs), "signals": len(today)},
    )
