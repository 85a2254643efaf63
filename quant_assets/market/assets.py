"""Market stage: the daily universe, the five raw tables (validated, with quarantine) and their
normalised forms (minute bars, point-in-time adjustment factors, news by trading day)."""

import pandas as pd
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    AssetsDefinition,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    Output,
    TimeWindowPartitionMapping,
    asset,
    asset_check,
)

from quant_assets.calendar import TRADING_DAYS, previous_trading_day, trading_days
from quant_assets.market.contract.dagster_types import contract_type
from quant_assets.market.contract.tables import (
    ADJUSTMENT_FACTORS,
    MINUTE_BARS,
    NEWS_ITEMS,
    QUARANTINE,
    RAW_TABLES,
    UNIVERSE_DAILY,
)
from quant_assets.market.normalise import (
    adjustment_factors as action_factors,
)
from quant_assets.market.normalise import (
    compare_daily_bars,
    news_to_trading_days,
    trades_to_daily_bars,
    trades_to_minute_bars,
)
from quant_assets.market.queries import read_daily_bars
from quant_assets.market.validation import IngestError
from quant_assets.market.validation.ingest import clean_rows, ingest_file, quarantine_rows
from resources.clickhouse import ClickHouseResource
from resources.market import MarketDataResource


class IngestConfig(Config):
    # Share of a file's rows that may be quarantined; None takes the kind's default.
    max_bad_share: float | None = None


# Vendor order-book files carry call-auction and after-close snapshots (locked or one-sided
# books, quarantined by design): about 2% of a real day, so books get a wider default.
DEFAULT_MAX_BAD_SHARE = {"order_book": 0.05}


def _day(context: AssetExecutionContext) -> pd.Timestamp:
    return pd.Timestamp(context.partition_key)


@asset(
    partitions_def=TRADING_DAYS,
    group_name="market",
    check_specs=[AssetCheckSpec("not_empty", asset="universe", blocking=True)],
)
def universe(
    context: AssetExecutionContext, clickhouse: ClickHouseResource, market: MarketDataResource
) -> MaterializeResult:
    """Point-in-time universe: symbols listed on the day, with name, industry, board and ST flag."""
    day = _day(context)
    uni = market.universe()
    frame = uni[uni["list_date"] <= day].assign(date=day)[list(UNIVERSE_DAILY.columns)]
    with clickhouse.client() as client:
        rows = clickhouse.replace_partition(client, UNIVERSE_DAILY, frame, day)
    return MaterializeResult(
        metadata={"rows": rows, "industries": int(frame["industry"].nunique())},
        check_results=[AssetCheckResult(passed=rows > 0, metadata={"rows": rows})],
    )


def _examples(quarantine: pd.DataFrame, n: int = 5) -> str:
    if quarantine.empty:
        return "none"
    shown = quarantine.groupby("rule").head(1).head(n)[["rule", "symbol", "detail", "row_number"]]
    return shown.to_markdown(index=False)


def _raw_asset(kind: str, name: str, deps: list, description: str) -> AssetsDefinition:
    """A raw table's asset: land the day's file, validate it, quarantine bad rows, store the
    clean rows, and block downstream when the bad share passes the configured threshold."""
    spec = RAW_TABLES[kind]

    @asset(
        name=name,
        description=description,
        partitions_def=TRADING_DAYS,
        group_name="market",
        deps=deps,
        dagster_type=contract_type(kind),
        io_manager_key="clickhouse_io",
        metadata={"table": spec.name},
        check_specs=[AssetCheckSpec("bad_share", asset=name, blocking=True)],
    )
    def _raw(
        context: AssetExecutionContext,
        config: IngestConfig,
        clickhouse: ClickHouseResource,
        market: MarketDataResource,
    ):
        day = _day(context)
        try:
            path = market.land(kind, day)
            with clickhouse.client() as client:
                known = clickhouse.query_df(
                    client,
                    "SELECT symbol, list_date FROM {db}.universe_daily WHERE date = %(d)s",
                    {"d": day.date()},
                )
                bars = None
                if kind in ("trades", "order_book"):
                    bars = read_daily_bars(clickhouse, client, day, day)
                result = ingest_file(
                    kind,
                    path,
                    day,
                    set(known["symbol"]),
                    bars=bars,
                    # a month of calendar covers the five trading days after any listing
                    trading_days=trading_days(day - pd.Timedelta(days=31), day),
                    listings=known.set_index("symbol")["list_date"],
                )
                quarantined = quarantine_rows(result, day)
                clickhouse.replace_partition(client, QUARANTINE, quarantined, day, kind=kind)
        except IngestError as exc:
            raise Failure(
                description=f"{kind} file rejected: {exc.reason}",
                metadata={"file": exc.source, "reason": exc.reason},
            ) from exc
        counts = {rule: int(n) for rule, n in result.counts.items() if n}
        yield Output(
            clean_rows(result),
            metadata={
                "source_file": MetadataValue.path(str(path)),
                "rows_in_file": result.n_input,
                "rows_quarantined": result.n_quarantined,
                "rules_skipped": ", ".join(result.skipped) or "none",
            },
        )
        threshold = config.max_bad_share
        if threshold is None:
            threshold = DEFAULT_MAX_BAD_SHARE.get(kind, 0.01)
        yield AssetCheckResult(
            check_name="bad_share",
            passed=result.bad_share <= threshold,
            metadata={
                "bad_share": result.bad_share,
                "threshold": threshold,
                "counts": MetadataValue.json(counts),
                "examples": MetadataValue.md(_examples(result.quarantine)),
            },
        )

    return _raw


raw_daily_bars = _raw_asset(
    "bars", "raw_daily_bars", [universe], "Unadjusted daily bars (suspended days kept)."
)
raw_trades = _raw_asset("trades", "raw_trades", [universe, raw_daily_bars], "Tick-by-tick trades.")
raw_order_book = _raw_asset(
    "order_book", "raw_order_book", [universe, raw_daily_bars], "10-level order-book snapshots."
)
raw_news = _raw_asset("news", "raw_news", [universe], "News items as published.")
raw_corporate_actions = _raw_asset(
    "corporate_actions", "raw_corporate_actions", [universe], "Corporate actions as announced."
)


@asset_check(asset=raw_daily_bars, additional_deps=[raw_trades], blocking=False)
def daily_bars_match_trades(
    context: AssetCheckExecutionContext, clickhouse: ClickHouseResource
) -> AssetCheckResult:
    """The vendor's daily bars agree with the bars rebuilt from the day's trades."""
    day = pd.Timestamp(context.op_execution_context.partition_key)
    with clickhouse.client() as client:
        clickhouse.ensure_table(client, RAW_TABLES["trades"])
        trades = clickhouse.query_df(
            client, "SELECT * FROM {db}.raw_trades WHERE date = %(d)s", {"d": day.date()}
        )
        bars = read_daily_bars(clickhouse, client, day, day)
    if trades.empty:
        return AssetCheckResult(
            passed=False,
            severity=AssetCheckSeverity.WARN,
            metadata={"note": "no trades stored for the day: nothing to compare the bars with"},
        )
    mismatches = compare_daily_bars(trades_to_daily_bars(trades), bars)
    return AssetCheckResult(
        passed=bool(mismatches.empty),
        severity=AssetCheckSeverity.WARN,
        metadata={
            "mismatches": len(mismatches),
            "examples": MetadataValue.md(mismatches.head(5).to_markdown(index=False) or "none"),
        },
    )


@asset(
    partitions_def=TRADING_DAYS,
    group_name="market",
    io_manager_key="clickhouse_io",
    metadata={"table": MINUTE_BARS.name},
)
def minute_bars(raw_trades: pd.DataFrame) -> pd.DataFrame:
    """1-minute bars from the day's trades, each labelled by the minute's end."""
    return trades_to_minute_bars(raw_trades)


@asset(
    partitions_def=TRADING_DAYS,
    group_name="market",
    deps=[
        raw_daily_bars,
        raw_corporate_actions,
        # Each day compounds the previous day's factor: backfills must run oldest first.
        AssetDep("adjustment_factors", partition_mapping=TimeWindowPartitionMapping(-1, -1)),
    ],
    io_manager_key="clickhouse_io",
    metadata={"table": ADJUSTMENT_FACTORS.name},
    check_specs=[AssetCheckSpec("agrees_with_preclose", asset="adjustment_factors")],
)
def adjustment_factors(context: AssetExecutionContext, clickhouse: ClickHouseResource):
    """Backward-adjustment factor of each symbol as known on the day: yesterday's factor times
    the step of actions announced by today with ex-date today; checked against the step the
    exchange's ex-rights preclose implies."""
    day = _day(context)
    prev = previous_trading_day(day)
    with clickhouse.client() as client:
        bars = read_daily_bars(clickhouse, client, prev, day)  # prev: the previous trading day
        actions = clickhouse.query_df(
            client,
            "SELECT * FROM {db}.raw_corporate_actions WHERE announce_date <= %(d)s "
            "AND ex_date = %(d)s",
            {"d": day.date()},
        )
        clickhouse.ensure_table(client, ADJUSTMENT_FACTORS)
        before = clickhouse.query_df(
            client,
            "SELECT symbol, factor FROM {db}.adjustment_factors WHERE date = %(p)s",
            {"p": prev.date()},
        )
    steps = action_factors(actions, bars, as_of=day)
    today = bars[bars["date"] == day].set_index("symbol")
    # positional columns below: the steps in the order of today's rows
    steps = steps[steps["date"] == day].set_index("symbol")["factor"].reindex(today.index)
    yesterday = bars[bars["date"] == prev].set_index("symbol")["close"]
    from_preclose = (yesterday.reindex(today.index) / today["preclose"]).fillna(1.0)
    factor = before.set_index("symbol")["factor"].reindex(today.index).fillna(1.0) * steps
    frame = pd.DataFrame(
        {"symbol": today.index, "factor": factor.to_numpy(), "step": steps.to_numpy()}
    ).assign(date=day, step_from_preclose=from_preclose.to_numpy())
    off = (frame["step"] / frame["step_from_preclose"] - 1).abs() > 2e-3
    yield Output(
        frame[list(ADJUSTMENT_FACTORS.columns)],
        metadata={"ex_dates": int((frame["step"] != 1).sum())},
    )
    yield AssetCheckResult(
        check_name="agrees_with_preclose",
        passed=not bool(off.any()),
        metadata={"disagreeing_symbols": ", ".join(frame.loc[off, "symbol"][:10]) or "none"},
    )


@asset(
    partitions_def=TRADING_DAYS,
    group_name="market",
    deps=[raw_news],
    io_manager_key="clickhouse_io",
    metadata={"table": NEWS_ITEMS.name},
)
def news_items(context: AssetExecutionContext, clickhouse: ClickHouseResource) -> pd.DataFrame:
    """News by the trading day it can first act on: yesterday's items after 15:00 and today's
    before 15:00 (a news item after the close belongs to the next trading day)."""
    day = _day(context)
    prev = previous_trading_day(day)
    with clickhouse.client() as client:
        news = clickhouse.query_df(
            client,
            "SELECT * FROM {db}.raw_news WHERE date IN (%(p)s, %(d)s)",
            {"p": prev.date(), "d": day.date()},
        )
    if news.empty:
        return pd.DataFrame(columns=list(NEWS_ITEMS.columns))
    dated = news_to_trading_days(news, trading_days(prev, day + pd.Timedelta(days=14)))
    today = dated[dated["trading_date"] == day].drop(columns="date")
    return today.rename(columns={"trading_date": "date"})[list(NEWS_ITEMS.columns)]
