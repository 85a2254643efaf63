"""Market stage: the daily universe, the five raw tables (validated, bad rows quarantined) and
what derives from them once for every later stage: minute bars, point-in-time adjustment
factors, adjusted bars, news by trading day and the labels (forward returns) each close reveals.
"""

from collections.abc import Iterator

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetOut,
    AssetsDefinition,
    Config,
    Failure,
    MetadataValue,
    Output,
    multi_asset,
)

from quant_assets.calendar import TRADING_DAYS, trading_days
from quant_assets.market.adjustment import adjusted_day, adjustment_of_day
from quant_assets.market.contract.dagster_types import contract_type
from quant_assets.market.contract.tables import (
    ADJUSTED_BARS,
    ADJUSTMENT_FACTORS,
    LABELS,
    MINUTE_BARS,
    NEWS_ITEMS,
    QUARANTINE,
    RAW_TABLES,
    UNIVERSE,
)
from quant_assets.market.intraday import trades_to_minute_bars
from quant_assets.market.labels import LOOKBACK, labels_known_on
from quant_assets.market.news_days import news_to_trading_days
from quant_assets.market.sources.delivery import land, reference_universe
from quant_assets.market.validation import IngestError
from quant_assets.market.validation.audit import audit
from quant_assets.market.validation.ingest import clean_rows, ingest_file, quarantine_rows
from quant_assets.wiring import (
    IO_MANAGER,
    daily_table,
    partition_day,
    previous_day,
    same_day,
    window,
)
from resources.clickhouse_io import table_metadata, withhold
from resources.market import MarketDataResource

# Corporate actions are announced days to weeks before their ex-date (the simulated market:
# 5-20 trading days); a day's factor looks for them in this many days of deliveries.
ACTIONS_WINDOW = 60


@daily_table(
    UNIVERSE,
    group="market",
    check_specs=[
        AssetCheckSpec(
            "not_empty",
            asset="universe",
            blocking=True,
            description="At least one symbol is listed on the day.",
        )
    ],
)
def universe(context: AssetExecutionContext, market: MarketDataResource) -> Iterator:
    """Point-in-time universe: symbols listed on the day, with name, industry, board and ST flag."""
    day = partition_day(context)
    uni = reference_universe(market)
    frame = uni[uni["list_date"] <= day].assign(date=day)[list(UNIVERSE.columns)]
    yield Output(frame, metadata={"industries": int(frame["industry"].nunique())})
    yield AssetCheckResult(passed=len(frame) > 0, metadata={"symbols": len(frame)})


class IngestConfig(Config):
    """Thresholds of the blocking `bad_share` audit; None takes the kind's default
    (validation/audit.py: 1% of rows, 5% for order books; at least 2 to 10 bad rows)."""

    max_bad_share: float | None = None
    min_bad_rows: int | None = None


def _ingest(
    context: AssetExecutionContext,
    config: IngestConfig,
    market: MarketDataResource,
    kind: str,
    name: str,
    universe: pd.DataFrame,
    bars: pd.DataFrame | None,
) -> Iterator:
    """Land the day's file, validate and audit it, yield the check, then the clean rows and
    the quarantine. Both are staged and published together, and only when the audit passes:
    a failing file leaves the day's published tables as they were (write-audit-publish in
    the IO manager), and the step's error says why."""
    day = partition_day(context)
    try:
        path = land(market, kind, day)
        result = ingest_file(
            kind,
            path,
            day,
            set(universe["symbol"]),
            bars=bars,
            # a month of calendar covers the five trading days after any listing
            trading_days=trading_days(day - pd.Timedelta(days=31), day),
            listings=universe.set_index("symbol")["list_date"],
        )
    except IngestError as exc:
        raise Failure(
            description=f"{kind} file rejected: {exc.reason}",
            metadata={"file": exc.source, "reason": exc.reason},
        ) from exc
    verdict = audit(result, config.max_bad_share, config.min_bad_rows)
    yield AssetCheckResult(
        asset_key=name,
        check_name="bad_share",
        passed=verdict.passed,
        metadata={
            "bad_share": verdict.share,
            "threshold": verdict.max_share,
            "min_bad_rows": verdict.min_bad_rows,
            "bad_rows": verdict.bad_rows,
            "counts": MetadataValue.json(verdict.counts),
            "examples": MetadataValue.md(
                verdict.examples.to_markdown(index=False) if len(verdict.examples) else "none"
            ),
            "summary": verdict.summary,
        },
    )
    held = {} if verdict.passed else withhold(f"{path.name}: {verdict.summary}")
    yield Output(
        clean_rows(result),
        output_name=name,
        metadata={
            "source_file": MetadataValue.path(str(path)),
            "rows_in_file": result.n_input,
            "rows_quarantined": result.n_quarantined,
            "rules_skipped": ", ".join(result.skipped) or "none",
            **held,
        },
    )
    yield Output(
        quarantine_rows(result, day),
        output_name=f"{kind}_quarantine",
        metadata={"rules": MetadataValue.json(verdict.counts), **held},
    )


def _raw_outs(kind: str, name: str, description: str) -> dict[str, AssetOut]:
    together = [name, f"{kind}_quarantine"]  # one publication: they never disagree
    return {
        name: AssetOut(
            description=description,
            group_name="market",
            dagster_type=contract_type(kind),
            io_manager_key=IO_MANAGER,
            metadata=table_metadata(RAW_TABLES[kind], publish_with=together),
            kinds={"clickhouse", "pandas"},
        ),
        f"{kind}_quarantine": AssetOut(
            description=f"Rows of the day's {kind} file that broke a rule: the rule, a detail, "
            "the row as delivered (JSON) and the file. Nothing is fixed or dropped silently.",
            group_name="quarantine",
            io_manager_key=IO_MANAGER,
            metadata=table_metadata(QUARANTINE, publish_with=together, kind=kind),
            kinds={"clickhouse", "pandas"},
        ),
    }


def _bad_share(name: str) -> list[AssetCheckSpec]:
    return [
        AssetCheckSpec(
            "bad_share",
            asset=name,
            blocking=True,
            description="The share of the file's rows that went to quarantine is within "
            "max_bad_share (1%, 5% for order books), or fewer rows than min_bad_rows are bad; "
            "counts per rule and examples attached. A failing day is not published.",
        )
    ]


def _raw_asset(kind: str, name: str, description: str, with_bars: bool = False) -> AssetsDefinition:
    """The raw table of `kind` and its quarantine, from the day's landing file. Intraday kinds
    (`with_bars`) check prices against the day's limits, which come from its daily bars."""
    ins = {"universe": same_day(columns=["symbol", "list_date"])}
    if with_bars:
        ins["raw_daily_bars"] = same_day()

    @multi_asset(
        name=name,  # the step (and its run config) keeps the raw table's name
        partitions_def=TRADING_DAYS,
        outs=_raw_outs(kind, name, description),
        ins=ins,
        check_specs=_bad_share(name),
    )
    def _assets(
        context: AssetExecutionContext,
        config: IngestConfig,
        market: MarketDataResource,
        universe: pd.DataFrame,
        **bars: pd.DataFrame,
    ) -> Iterator:
        yield from _ingest(
            context, config, market, kind, name, universe, bars.get("raw_daily_bars")
        )

    return _assets


raw_daily_bars = _raw_asset(
    "bars", "raw_daily_bars", "Unadjusted daily bars as the vendor sent them (suspended days kept)."
)
raw_trades = _raw_asset("trades", "raw_trades", "Tick-by-tick trades of the day.", True)
raw_order_book = _raw_asset(
    "order_book", "raw_order_book", "10-level order-book snapshots of the day.", True
)
raw_news = _raw_asset("news", "raw_news", "News items as published, delivered with the day.")
raw_corporate_actions = _raw_asset(
    "corporate_actions",
    "raw_corporate_actions",
    "Corporate actions (dividends, bonus shares, splits) as announced, delivered with the day.",
)


@daily_table(MINUTE_BARS, group="market", ins={"raw_trades": same_day()})
def minute_bars(raw_trades: pd.DataFrame) -> pd.DataFrame:
    """1-minute bars from the day's trades, each labelled by the minute's end."""
    return trades_to_minute_bars(raw_trades)


@daily_table(
    ADJUSTMENT_FACTORS,
    group="market",
    ins={
        "raw_daily_bars": window(2, columns=["date", "symbol", "close", "preclose"]),
        "raw_corporate_actions": window(ACTIONS_WINDOW),
        # Each day compounds the previous day's factor: a backfill runs oldest first.
        "previous": previous_day("adjustment_factors", columns=["symbol", "factor"]),
    },
    check_specs=[
        AssetCheckSpec(
            "agrees_with_preclose",
            asset="adjustment_factors",
            description="On every ex-date with an announced action, the action's step agrees "
            "with the gap the exchange's ex-rights preclose shows (within 0.2%).",
        )
    ],
)
def adjustment_factors(
    context: AssetExecutionContext,
    raw_daily_bars: pd.DataFrame,
    raw_corporate_actions: pd.DataFrame,
    previous: pd.DataFrame,
) -> Iterator:
    """Backward-adjustment factor of each symbol as known on the day: yesterday's factor times
    the step of the actions announced by today with ex-date today (or of the exchange's
    ex-rights gap where no action was delivered)."""
    frame = adjustment_of_day(
        raw_daily_bars, raw_corporate_actions, previous, partition_day(context)
    )
    acted = frame["basis"] == "actions"
    off = acted & ((frame["step"] / frame["step_from_preclose"] - 1).abs() > 2e-3)
    yield Output(
        frame,
        metadata={
            "ex_dates": int((frame["step"] != 1).sum()),
            "steps_from_preclose": int((frame["basis"] == "preclose").sum()),
            "chain": "continues" if len(previous) else "starts (first stored day)",
        },
    )
    yield AssetCheckResult(
        passed=not bool(off.any()),
        metadata={"disagreeing_symbols": ", ".join(frame.loc[off, "symbol"][:10]) or "none"},
    )


@daily_table(
    ADJUSTED_BARS,
    group="market",
    ins={
        "raw_daily_bars": same_day(),
        "adjustment_factors": same_day(columns=["symbol", "factor"]),
    },
)
def adjusted_bars(raw_daily_bars: pd.DataFrame, adjustment_factors: pd.DataFrame) -> pd.DataFrame:
    """The day's bars backward-adjusted with its factors (prices x factor, volume / factor,
    vwap): the one adjusted price series every factor, label and report reads."""
    return adjusted_day(raw_daily_bars, adjustment_factors)[list(ADJUSTED_BARS.columns)]


@daily_table(
    NEWS_ITEMS,
    group="market",
    ins={"raw_news": window(2)},
)
def news_items(context: AssetExecutionContext, raw_news: pd.DataFrame) -> pd.DataFrame:
    """News by the trading day it can first act on: yesterday's items after 15:00 and today's
    before 15:00 (a news item after the close belongs to the next trading day)."""
    day = partition_day(context)
    if raw_news.empty:
        return pd.DataFrame(columns=list(NEWS_ITEMS.columns))
    dated = news_to_trading_days(raw_news, trading_days(day - pd.Timedelta(days=20), day))
    today = dated[dated["trading_date"] == day].drop(columns="date")
    return today.rename(columns={"trading_date": "date"})[list(NEWS_ITEMS.columns)]


@daily_table(
    LABELS,
    group="market",
    ins={
        "adjusted_bars": window(
            LOOKBACK + 1, columns=["date", "symbol", "open", "close", "is_suspended"]
        )
    },
)
def labels(context: AssetExecutionContext, adjusted_bars: pd.DataFrame) -> pd.DataFrame:
    """Forward returns the day's close reveals (1, 5 and 10-day returns, Qlib's label and the
    next-open return of a portfolio formed two days ago): stored on the day they are known."""
    return labels_known_on(adjusted_bars, partition_day(context))
