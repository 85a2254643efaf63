"""Report stage: the published recommendations and the daily HTML report."""

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    asset,
)

from quant_assets.calendar import TRADING_DAYS, next_trading_day, previous_trading_day
from quant_assets.market.queries import adjusted_bars, read_daily_bars
from quant_assets.reports.daily_report import render_daily_report
from quant_assets.reports.performance import realised_returns
from quant_assets.reports.tables import RECOMMENDATIONS
from quant_assets.strategy import performance_summary
from quant_assets.strategy.assets import signals
from resources.clickhouse import ClickHouseResource
from resources.settings import data_dir

TRACK_RECORD_DAYS = 250


@asset(
    partitions_def=TRADING_DAYS,
    group_name="reports",
    deps=[signals],
    check_specs=[AssetCheckSpec("matches_signals", asset="recommendations", blocking=True)],
)
def recommendations(
    context: AssetExecutionContext, clickhouse: ClickHouseResource
) -> MaterializeResult:
    """Tomorrow's buy list with names and industries, stored and rendered as an HTML report."""
    day = pd.Timestamp(context.partition_key)
    for_day = next_trading_day(day)
    params = {"d": day.date()}
    with clickhouse.client() as client:
        picks = clickhouse.query_df(
            client,
            "SELECT s.symbol AS symbol, s.rank AS rank, s.score AS score, s.weight AS weight, "
            "u.name AS name, u.industry AS industry, b.close AS close "
            "FROM {db}.signals AS s "
            "LEFT JOIN (SELECT * FROM {db}.universe_daily WHERE date = %(d)s) AS u "
            "  ON s.symbol = u.symbol "
            "LEFT JOIN (SELECT * FROM {db}.raw_daily_bars WHERE date = %(d)s) AS b "
            "  ON s.symbol = b.symbol "
            "WHERE s.date = %(d)s ORDER BY s.rank",
            params,
        )
        recs = picks.assign(date=day, for_date=for_day)[list(RECOMMENDATIONS.columns)]
        rows = clickhouse.replace_partition(client, RECOMMENDATIONS, recs, day)
        start = previous_trading_day(day, TRACK_RECORD_DAYS)
        history = clickhouse.query_df(
            client,
            "SELECT date, symbol, weight FROM {db}.signals WHERE date BETWEEN %(s)s AND %(d)s",
            {"s": start.date(), "d": day.date()},
        )
        bars = read_daily_bars(clickhouse, client, start, day)
    history["date"] = pd.to_datetime(history["date"]).astype("datetime64[ns]")
    perf = realised_returns(history, adjusted_bars(bars))
    summary = performance_summary(perf["portfolio"], perf["universe"]) if len(perf) >= 2 else {}
    shown = recs[["rank", "symbol", "name", "industry", "close", "score", "weight"]]
    report = data_dir() / "reports" / f"{context.partition_key}.html"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(
        render_daily_report(context.partition_key, str(for_day.date()), shown, perf, summary),
        encoding="utf-8",
    )
    return MaterializeResult(
        metadata={
            "for_date": str(for_day.date()),
            "rows": rows,
            "recommendations": MetadataValue.md(shown.to_markdown(index=False, floatfmt=".4f")),
            "report": MetadataValue.path(str(report)),
            **{f"track_{k}": float(v) for k, v in summary.items()},
        },
        check_results=[
            AssetCheckResult(
                passed=bool(rows > 0 and recs["name"].astype(bool).all()),
                metadata={"rows": rows},
            )
        ],
    )
