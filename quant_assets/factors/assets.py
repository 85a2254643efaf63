"""Factor stage: the factor sets of each day (a daily formula set, Alpha158, microstructure,
news), their screening against the labels over a validation window, with plots of the
strongest, and the active set the model trains on."""

from collections.abc import Iterator

import numpy as np
import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    MetadataValue,
    Output,
)
from pydantic import Field

from quant_assets.day_range import Pending
from quant_assets.factors import alpha158
from quant_assets.factors.alpha158 import BAR_COLUMNS
from quant_assets.factors.daily_set import LOOKBACK_DAYS, compute_daily_factors
from quant_assets.factors.microstructure import daily_microstructure
from quant_assets.factors.microstructure_prep import book_summary_sql
from quant_assets.factors.news_set import LOOKBACK_DAYS as NEWS_LOOKBACK
from quant_assets.factors.news_set import news_factors
from quant_assets.factors.panel import factor_panel, last_days, wide
from quant_assets.factors.plots import write_report_plots
from quant_assets.factors.screening import quality, rank_ic_table, screen
from quant_assets.factors.tables import (
    ACTIVE_FACTORS,
    ALPHA158_VALUES,
    DAILY_FACTOR_VALUES,
    FACTOR_SCREENING,
    MICROSTRUCTURE_VALUES,
    NEWS_FACTOR_VALUES,
)
from quant_assets.market.labels import labels_by_date
from quant_assets.plotting import draw
from quant_assets.wiring import RANGE_IN_ONE_RUN, daily_table, partition_day, same_day, window
from resources.clickhouse import TableSpec, empty_frame
from resources.market import MarketDataResource
from resources.settings import data_dir

MAX_NAN_SHARE = 0.2
MIN_COVERAGE = 0.9
ALPHA158_LOOKBACK = 80  # trading days: the longest Alpha158 window is 60, plus warm-up
SCREENING_WINDOW = 60  # trading days of factors and labels the screening reads
BOOK_SUMMARY_SQL = book_summary_sql()


def _quality_checks(
    values: pd.DataFrame, expected: int, short_history: bool, asset: str, strict: bool = True
) -> tuple[pd.DataFrame, list[AssetCheckResult]]:
    """Coverage, NaN share and constant-factor checks of one day's values; with less history
    than the lookback gaps are expected, and a set that is sparse by nature (`strict=False`),
    so the checks warn instead of failing."""
    q = quality(values, expected)
    warn = short_history or not strict
    severity = AssetCheckSeverity.WARN if warn else AssetCheckSeverity.ERROR
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


def _skipped(context: AssetExecutionContext, spec: TableSpec, asset: str, why: str) -> Iterator:
    """A factor set whose inputs the market does not deliver: no values (an empty partition,
    so screening and the models see the set as absent, not as zeros), the reason in the
    metadata and on each quality check."""
    context.log.info(f"{asset} skipped: {why}")
    skipped = {"skipped": why}
    yield Output(empty_frame(spec), metadata={"symbols": 0, **skipped})
    for check in ("coverage", "nan_share", "not_constant"):
        yield AssetCheckResult(asset_key=asset, check_name=check, passed=True, metadata=skipped)


def _checks(asset: str) -> list[AssetCheckSpec]:
    return [
        AssetCheckSpec(
            "coverage",
            asset=asset,
            description=f"Every factor has a value for at least {MIN_COVERAGE:.0%} of the "
            "symbols that traded on the day.",
        ),
        AssetCheckSpec(
            "nan_share",
            asset=asset,
            description=f"No factor is NaN for more than {MAX_NAN_SHARE:.0%} of its rows.",
        ),
        AssetCheckSpec(
            "not_constant",
            asset=asset,
            description="No factor has the same value for every symbol (it could not rank).",
        ),
    ]


def _traded(bars: pd.DataFrame, day: pd.Timestamp) -> int:
    today = bars[bars["date"] == day]
    return int((~today["is_suspended"].astype(bool)).sum())


@daily_table(
    DAILY_FACTOR_VALUES,
    group="factors",
    backfill_policy=RANGE_IN_ONE_RUN,
    kinds=("numba",),
    ins={"adjusted_bars": window(LOOKBACK_DAYS + 1)},
    check_specs=_checks("daily_factor_values"),
)
def daily_factor_values(context: AssetExecutionContext, adjusted_bars: pd.DataFrame) -> Iterator:
    """A small daily formula set (returns, volatility, moving-average gap, volume ratio, ...)
    for one day from its lookback window of adjusted bars."""
    day = partition_day(context)
    values = compute_daily_factors(adjusted_bars, day)
    history = int(adjusted_bars["date"].nunique())
    stats, checks = _quality_checks(
        values, _traded(adjusted_bars, day), history <= LOOKBACK_DAYS, "daily_factor_values"
    )
    yield Output(
        values,
        metadata={
            "history_days": history,
            "factors": MetadataValue.md(stats.round(4).to_markdown()),
        },
    )
    yield from checks


@daily_table(
    ALPHA158_VALUES,
    group="factors",
    backfill_policy=RANGE_IN_ONE_RUN,
    kinds=("numba",),
    ins={
        "adjusted_bars": window(
            ALPHA158_LOOKBACK + 1,
            columns=[
                "date",
                "symbol",
                "open",
                "high",
                "low",
                "close",
                "volume",
                "vwap",
                "is_suspended",
            ],
        )
    },
    check_specs=_checks("alpha158_values"),
)
def alpha158_values(context: AssetExecutionContext, adjusted_bars: pd.DataFrame) -> Iterator:
    """Qlib's Alpha158 (same names and definitions) for one day, from the minimal history."""
    day = partition_day(context)
    traded = adjusted_bars[~adjusted_bars["is_suspended"].astype(bool)]
    wide = alpha158(traded[BAR_COLUMNS], start=day)
    values = wide.reset_index()
    history = int(adjusted_bars["date"].nunique())
    _, checks = _quality_checks(
        values, int(wide.shape[0]), history <= ALPHA158_LOOKBACK, "alpha158_values"
    )
    yield Output(values, metadata={"history_days": history, "factors": int(wide.shape[1])})
    yield from checks


@daily_table(
    MICROSTRUCTURE_VALUES,
    group="factors",
    kinds=("numba",),
    ins={
        "raw_trades": same_day(columns=["ts", "symbol", "price", "volume", "side"]),
        # the book's 40 level columns reduced where they are stored (13 columns are read)
        "raw_order_book": same_day(
            columns=["ts", "symbol", "bid_px_1", "ask_px_1"], computed=BOOK_SUMMARY_SQL
        ),  # fmt: skip
        "raw_daily_bars": same_day(columns=["symbol", "preclose"]),
    },
    check_specs=_checks("microstructure_values"),
)
def microstructure_values(
    context: AssetExecutionContext,
    market: MarketDataResource,
    raw_trades: pd.DataFrame,
    raw_order_book: pd.DataFrame,
    raw_daily_bars: pd.DataFrame,
) -> Iterator:
    """Order-book, spread, order-flow, volatility, liquidity and auction factors of the day
    (none, saying why, for a market that delivers no trades or order books)."""
    day = partition_day(context)
    absent = market.not_delivered("trades", "order_book")
    if absent is not None:
        yield from _skipped(context, MICROSTRUCTURE_VALUES, "microstructure_values", absent)
        return
    wide = daily_microstructure(
        raw_trades,
        raw_order_book,
        day,
        preclose=raw_daily_bars.set_index("symbol")["preclose"],
    )
    values = wide.reset_index()
    values.insert(0, "date", day)
    stats, checks = _quality_checks(
        values, int(raw_trades["symbol"].nunique()), False, "microstructure_values"
    )
    yield Output(
        values,
        metadata={
            "symbols": int(wide.shape[0]),
            "factors": MetadataValue.md(stats.round(4).to_markdown()),
        },
    )
    yield from checks


@daily_table(
    NEWS_FACTOR_VALUES,
    group="factors",
    backfill_policy=RANGE_IN_ONE_RUN,
    ins={
        "news_items": window(NEWS_LOOKBACK, columns=["date", "symbol", "sentiment"]),
        "news_analysis": window(NEWS_LOOKBACK, columns=["date", "symbol", "score"]),
        "universe": same_day(columns=["symbol"]),
    },
    check_specs=_checks("news_factor_values"),
)
def news_factor_values(
    context: AssetExecutionContext,
    market: MarketDataResource,
    news_items: pd.DataFrame,
    news_analysis: pd.DataFrame,
    universe: pd.DataFrame,
) -> Iterator:
    """News count, mean vendor sentiment and mean analysed tone per stock over the last 1 and
    5 trading days (none, saying why, for a market that delivers no news: a count of 0 would
    claim that nothing was published)."""
    day = partition_day(context)
    absent = market.not_delivered("news")
    if absent is not None:
        yield from _skipped(context, NEWS_FACTOR_VALUES, "news_factor_values", absent)
        return
    analysis = news_analysis.assign(date=pd.to_datetime(news_analysis["date"]))
    values = news_factors(news_items, universe["symbol"], day, analysis=analysis)
    history = int(news_items["date"].nunique())
    # Sparse by nature (most stocks have no news on most days): the checks only warn.
    stats, checks = _quality_checks(
        values, len(universe), history < NEWS_LOOKBACK, "news_factor_values", strict=False
    )
    yield Output(
        values,
        metadata={
            "items": int(len(news_items[news_items["date"] == day])),
            "factors": MetadataValue.md(stats.round(4).to_markdown()),
        },
    )
    yield from checks


class ScreeningConfig(Config):
    window_days: int = Field(
        default=SCREENING_WINDOW,
        description=f"validation window in trading days (at most {SCREENING_WINDOW})",
    )
    ic_threshold: float = Field(
        default=0.02, description="|mean daily rank IC| a factor needs to be active"
    )
    min_t: float = Field(default=2.0, description="|t-stat| of the mean rank IC to be active")
    min_days: int = Field(default=20, description="days with an IC a factor needs to be active")
    plots: int = Field(default=2, description="factors with a full report and plots")


@daily_table(
    FACTOR_SCREENING,
    group="factors",
    kinds=("scipy",),
    ins={
        "daily_factor_values": window(SCREENING_WINDOW),
        "alpha158_values": window(SCREENING_WINDOW),
        "microstructure_values": window(SCREENING_WINDOW),
        "news_factor_values": window(SCREENING_WINDOW),
        "ai_factor_values": window(SCREENING_WINDOW),
        "labels": window(SCREENING_WINDOW, columns=["date", "symbol", "ret_1d"]),
        "adjusted_bars": window(SCREENING_WINDOW, columns=["date", "symbol", "close"]),
    },
    check_specs=[
        AssetCheckSpec(
            "admitted_on_evidence",
            asset="factor_screening",
            description="Every admitted factor has a finite mean rank IC beyond ic_threshold, "
            "|t| beyond min_t and at least min_days of IC, and no factor's IC counts more days "
            "than window_days (a day outside the validation window would have leaked in).",
        )
    ],
)
def factor_screening(
    context: AssetExecutionContext,
    config: ScreeningConfig,
    daily_factor_values: pd.DataFrame,
    alpha158_values: pd.DataFrame,
    microstructure_values: pd.DataFrame,
    news_factor_values: pd.DataFrame,
    ai_factor_values: pd.DataFrame,
    labels: pd.DataFrame,
    adjusted_bars: pd.DataFrame,
) -> Iterator:
    """Daily rank IC of every factor against the next-day return over the window that ends on
    the day (only labels known by its close), with reports and plots of the strongest."""
    if not 1 <= config.window_days <= SCREENING_WINDOW:
        raise ValueError(f"window_days must be within 1..{SCREENING_WINDOW}")
    sets = {
        "daily": daily_factor_values,
        "alpha158": alpha158_values,
        "micro": microstructure_values,
        "news": news_factor_values,
        "ai": wide(ai_factor_values),
    }
    panel, origin = factor_panel({k: last_days(v, config.window_days) for k, v in sets.items()})
    label = labels_by_date(labels, "ret_1d")
    summary = screen(
        rank_ic_table(panel, label), config.ic_threshold, config.min_t, config.min_days
    )
    summary.insert(0, "factor_set", summary.index.map(origin))
    prices = adjusted_bars.pivot(index="date", columns="symbol", values="close")
    folder = data_dir() / "reports" / "factors" / f"{partition_day(context):%Y-%m-%d}"
    # Reports of the strongest factors with a full window (a factor added lately has too few
    # days for quantile returns over 5 days), computed and drawn in the drawing process.
    strongest = summary.index[summary["n_days"] >= config.min_days][: config.plots]
    drawn = draw(
        write_report_plots, {name: panel[name].dropna() for name in strongest}, prices, folder
    )
    shown = summary.head(15)[["factor_set", "rank_ic_mean", "icir", "t_stat", "n_days", "active"]]
    admitted = summary[summary["active"].astype(bool)]
    yield Output(
        summary.reset_index(),
        metadata={
            # plain numbers: the asset's Plots tab draws them partition by partition
            "factors": len(summary),
            "active": len(admitted),
            "labelled_days": int(label.index.get_level_values("date").nunique()),
            "max_abs_rank_ic": float(summary["rank_ic_mean"].abs().max()) if len(summary) else 0.0,
            "mean_abs_rank_ic_admitted": float(admitted["rank_ic_mean"].abs().mean())
            if len(admitted)
            else 0.0,
            "max_abs_t_stat": float(summary["t_stat"].abs().max()) if len(summary) else 0.0,
            "top_factors": MetadataValue.md(shown.round(4).to_markdown()),
            "plots": Pending(drawn, MetadataValue.md),
            "plot_folder": MetadataValue.path(str(folder)),
        },
    )
    yield _admitted_on_evidence(summary, config)


def _admitted_on_evidence(summary: pd.DataFrame, config: ScreeningConfig) -> AssetCheckResult:
    """The `admitted_on_evidence` check: the admission rule re-read from the stored summary,
    and the window: a factor with more IC days than asked for saw data outside it."""
    active = summary["active"].astype(bool)
    mean, t = summary["rank_ic_mean"], summary["t_stat"]
    weak = active & ~(
        np.isfinite(mean)
        & np.isfinite(t)
        & (mean.abs() > config.ic_threshold)
        & (t.abs() > config.min_t)
        & (summary["n_days"] >= config.min_days)
    )
    too_long = summary["n_days"] > config.window_days
    return AssetCheckResult(
        passed=not bool((weak | too_long).any()),
        metadata={
            "admitted": int(active.sum()),
            "admitted_without_evidence": ", ".join(summary.index[weak][:10]) or "none",
            "factors_beyond_window": ", ".join(summary.index[too_long][:10]) or "none",
            "max_ic_days": int(summary["n_days"].max()) if len(summary) else 0,
            "window_days": config.window_days,
        },
    )


@daily_table(
    ACTIVE_FACTORS,
    group="factors",
    ins={"factor_screening": same_day()},
    check_specs=[
        AssetCheckSpec(
            "has_factors",
            asset="active_factors",
            description="At least one factor passes the screening (else the model falls back "
            "to the daily set).",
        )
    ],
)
def active_factors(factor_screening: pd.DataFrame) -> Iterator:
    """The factors whose rank IC on the validation window passes the threshold: the model's
    inputs for the day, strongest first."""
    active = factor_screening[factor_screening["active"].astype(bool)]
    active = active.reindex(active["t_stat"].abs().sort_values(ascending=False).index)
    frame = active[list(ACTIVE_FACTORS.columns)].reset_index(drop=True)
    yield Output(
        frame,
        metadata={
            "count": len(frame),
            "by_set": MetadataValue.json(frame["factor_set"].value_counts().to_dict()),
            "factors": MetadataValue.md(
                frame.drop(columns="date").round(4).to_markdown(index=False) or "none"
            ),
        },
    )
    yield AssetCheckResult(
        passed=len(frame) > 0, severity=AssetCheckSeverity.WARN, metadata={"count": len(frame)}
    )
