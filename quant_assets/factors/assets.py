"""Factor stage: factor values per day (the daily set, Alpha158, microstructure), their
screening over a validation window with plots, and the active set the model trains on."""

import base64

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
)

from quant_assets.calendar import TRADING_DAYS, previous_trading_day
from quant_assets.factors import alpha158, factor_report
from quant_assets.factors.daily_set import LOOKBACK_DAYS, compute_daily_factors, long_form
from quant_assets.factors.microstructure import daily_microstructure
from quant_assets.factors.plots import report_pngs
from quant_assets.factors.queries import read_factor_panel
from quant_assets.factors.screening import quality, rank_ic_table, screen
from quant_assets.factors.tables import FACTOR_SCREENING, FACTOR_VALUES
from quant_assets.market.assets import raw_daily_bars
from quant_assets.market.queries import adjusted_bars, read_daily_bars
from quant_assets.models.dataset import next_day_labels
from resources.clickhouse import ClickHouseResource
from resources.settings import data_dir

MAX_NAN_SHARE = 0.2
MIN_COVERAGE = 0.9
ALPHA158_LOOKBACK = 80  # trading days: the longest Alpha158 window is 60, plus warm-up


def _quality_checks(values: pd.DataFrame, expected: int, short_history: bool, asset: str):
    """Coverage, NaN share and constant-factor checks of one day's values; with less history
    than the lookback, gaps are expected, so the checks warn instead of failing."""
    q = quality(values, expected)
    severity = AssetCheckSeverity.WARN if short_history else AssetCheckSeverity.ERROR
    worst_cov = float(q["coverage"].min()) if len(q) else 0.0
    worst_nan = float(q["nan_share"].max()) if len(q) else 1.0
    constant = sorted(q.index[q["constant"]])
    return q, [
        AssetCheckResult(
            asset_key=asset,
            check_name="coverage",
            passed=worst_cov >= MIN_COVERAGE,
            severity=severity,
            metadata={"worst_coverage": worst_cov, "expected_symbols": expected},
        ),
        AssetCheckResult(
            asset_key=asset,
            check_name="nan_share",
            passed=worst_nan <= MAX_NAN_SHARE,
            severity=severity,
            metadata={"worst_nan_share": worst_nan, "short_history": short_history},
        ),
        AssetCheckResult(
            asset_key=asset,
            check_name="not_constant",
            passed=not constant or short_history,
            severity=severity,
            metadata={"constant_factors": ", ".join(constant[:20]) or "none"},
        ),
    ]


def _checks(asset: str) -> list[AssetCheckSpec]:
    return [AssetCheckSpec(n, asset=asset) for n in ("coverage", "nan_share", "not_constant")]


def _store(ch: ClickHouseResource, client, values: pd.DataFrame, day, factor_set: str) -> int:
    frame = values.assign(factor_set=factor_set)[list(FACTOR_VALUES.columns)]
    return ch.replace_partition(client, FACTOR_VALUES, frame, day, factor_set=factor_set)


@asset(
    partitions_def=TRADING_DAYS,
    group_name="factors",
    deps=[raw_daily_bars],
    check_specs=_checks("factor_values"),
)
def factor_values(context: AssetExecutionContext, clickhouse: ClickHouseResource):
    """The daily factor set for one day from a lookback window of stored bars (only the new
    day's values are written; history is not recomputed)."""
    day = pd.Timestamp(context.partition_key)
    with clickhouse.client() as client:
        raw = read_daily_bars(clickhouse, client, previous_trading_day(day, LOOKBACK_DAYS), day)
        values = compute_daily_factors(adjusted_bars(raw), day)
        rows = _store(clickhouse, client, values, day, "daily")
    traded = int((~raw.loc[raw["date"] == day, "is_suspended"].astype(bool)).sum())
    history = int(raw["date"].nunique())
    stats, checks = _quality_checks(values, traded, history <= LOOKBACK_DAYS, "factor_values")
    yield MaterializeResult(
        metadata={
            "rows": rows,
            "history_days": history,
            "factors": MetadataValue.md(stats.round(4).to_markdown()),
        },
        check_results=checks,
    )


@asset(
    partitions_def=TRADING_DAYS,
    group_name="factors",
    deps=[raw_daily_bars],
    check_specs=_checks("alpha158_values"),
)
def alpha158_values(context: AssetExecutionContext, clickhouse: ClickHouseResource):
    """Qlib's Alpha158 for one day, computed from the minimal history it needs."""
    day = pd.Timestamp(context.partition_key)
    with clickhouse.client() as client:
        raw = read_daily_bars(clickhouse, client, previous_trading_day(day, ALPHA158_LOOKBACK), day)
        bars = adjusted_bars(raw[~raw["is_suspended"].astype(bool)])
        wide = alpha158(
            bars[["date", "symbol", "open", "high", "low", "close", "volume", "vwap"]], start=day
        )
        values = long_form(wide.astype("float64"))
        rows = _store(clickhouse, client, values, day, "alpha158")
    history = int(raw["date"].nunique())
    stats, checks = _quality_checks(
        values, int(wide.shape[0]), history <= ALPHA158_LOOKBACK, "alpha158_values"
    )
    yield MaterializeResult(
        metadata={"rows": rows, "history_days": history, "factors": len(wide.columns)},
        check_results=checks,
    )


@asset(
    partitions_def=TRADING_DAYS,
    group_name="factors",
    deps=[raw_daily_bars],
    check_specs=_checks("microstructure_values"),
)
def microstructure_values(
    context: AssetExecutionContext,
    clickhouse: ClickHouseResource,
    raw_trades: pd.DataFrame,
    raw_order_book: pd.DataFrame,
):
    """Order-book, spread, order-flow, volatility, liquidity and auction factors of the day."""
    day = pd.Timestamp(context.partition_key)
    with clickhouse.client() as client:
        bars = clickhouse.query_df(
            client,
            "SELECT symbol, preclose FROM {db}.raw_daily_bars WHERE date = %(d)s",
            {"d": day.date()},
        )
        wide = daily_microstructure(
            raw_trades, raw_order_book, day, preclose=bars.set_index("symbol")["preclose"]
        )
        values = long_form(wide.assign(date=day).set_index("date", append=True).swaplevel())
        rows = _store(clickhouse, client, values, day, "micro")
    traded = int(raw_trades["symbol"].nunique())
    stats, checks = _quality_checks(values, traded, False, "microstructure_values")
    yield MaterializeResult(
        metadata={
            "rows": rows,
            "symbols": int(wide.shape[0]),
            "factors": MetadataValue.md(stats.round(4).to_markdown()),
        },
        check_results=checks,
    )


class ScreeningConfig(Config):
    window_days: int = 60  # validation window of the screening
    ic_threshold: float = 0.02  # |mean daily rank IC| a factor needs to be active
    min_t: float = 2.0
    min_days: int = 20
    plots: int = 2  # factors with a full report and plots in the metadata


def _png_md(pngs: dict[str, bytes], title: str) -> str:
    imgs = [
        f"**{title}: {name}**\n\n![{name}](data:image/png;base64,{base64.b64encode(png).decode()})"
        for name, png in pngs.items()
    ]
    return "\n\n".join(imgs)


@asset(
    partitions_def=TRADING_DAYS,
    group_name="factors",
    deps=[factor_values, alpha158_values, microstructure_values],
)
def factor_evaluation(
    context: AssetExecutionContext, config: ScreeningConfig, clickhouse: ClickHouseResource
) -> MaterializeResult:
    """Daily rank IC of every stored factor against the next-day return over the window that
    ends on the day (labels known by its close), with reports and plots of the strongest."""
    day = pd.Timestamp(context.partition_key)
    start = previous_trading_day(day, config.window_days)
    with clickhouse.client() as client:
        features = read_factor_panel(clickhouse, client, start, day)
        bars = adjusted_bars(read_daily_bars(clickhouse, client, start, day))
        labels = next_day_labels(bars)
        summary = screen(
            rank_ic_table(features, labels), config.ic_threshold, config.min_t, config.min_days
        )
        frame = summary.reset_index().assign(date=day)
        clickhouse.replace_partition(
            client, FACTOR_SCREENING, frame[list(FACTOR_SCREENING.columns)], day
        )
    prices = bars.pivot(index="date", columns="symbol", values="close")
    folder = data_dir() / "reports" / "factors" / context.partition_key
    folder.mkdir(parents=True, exist_ok=True)
    plots = []
    # Reports of the strongest factors with a full window (a factor added lately has too few
    # days for quantile returns over 5 days).
    for name in summary.index[summary["n_days"] >= config.min_days][: config.plots]:
        report = factor_report(features[name].dropna(), prices, periods=(1, 5), quantiles=5)
        pngs = report_pngs(report)
        for plot, png in pngs.items():
            (folder / f"{name}_{plot}.png").write_bytes(png)
        plots.append(_png_md(pngs, name))
    shown = summary.head(15)[["rank_ic_mean", "icir", "t_stat", "n_days", "active"]]
    return MaterializeResult(
        metadata={
            "factors": len(summary),
            "active": int(summary["active"].sum()),
            "top_factors": MetadataValue.md(shown.round(4).to_markdown()),
            "plots": MetadataValue.md("\n\n".join(plots) or "no factors"),
            "plot_folder": MetadataValue.path(str(folder)),
        }
    )


@asset(
    partitions_def=TRADING_DAYS,
    group_name="factors",
    deps=[factor_evaluation],
    check_specs=[AssetCheckSpec("has_factors", asset="active_factors")],
)
def active_factors(context: AssetExecutionContext, clickhouse: ClickHouseResource):
    """The factors whose rank IC on the validation window passes the threshold: the model's
    inputs for the day."""
    d = {"d": pd.Timestamp(context.partition_key).date()}
    with clickhouse.client() as client:
        active = clickhouse.query_df(
            client,
            "SELECT factor, rank_ic_mean, t_stat FROM {db}.factor_screening "
            "WHERE date = %(d)s AND active ORDER BY abs(t_stat) DESC",
            d,
        )
    yield MaterializeResult(
        metadata={
            "count": len(active),
            "factors": MetadataValue.md(active.round(4).to_markdown(index=False)),
        },
        check_results=[
            AssetCheckResult(
                passed=len(active) > 0,
                severity=AssetCheckSeverity.WARN,
                metadata={"count": len(active)},
            )
        ],
    )
