"""Market stage: the daily universe, the five raw tables (validated, bad rows quarantined) and
what derives from them once for every later stage: minute bars, point-in-time adjustment
factors, adjusted bars, news by trading day and the labels (forward returns) each close reveals.
"""

import functools
from collections.abc import Iterator

import numpy as np
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
    TableColumn,
    TableRecord,
    TableSchema,
    multi_asset,
)

from quant_assets.calendar import TRADING_DAYS, TZ, previous_trading_day, trading_days
from quant_assets.day_range import by_day
from quant_assets.market.adjustment import adjusted_day, adjustment_of_day
from quant_assets.market.contract.dagster_types import contract_type
from quant_assets.market.contract.schemas import empty_rows
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
from quant_assets.market.labels import LAGS, LOOKBACK, labels_known_on
from quant_assets.market.news_days import news_to_trading_days
from quant_assets.market.sources.delivery import land, reference_universe
from quant_assets.market.validation import RULES, IngestError, rules_by_kind
from quant_assets.market.validation.audit import audit
from quant_assets.market.validation.ingest import clean_rows, ingest_file, quarantine_rows
from quant_assets.wiring import (
    IO_MANAGER,
    RANGE_IN_ONE_RUN,
    RANGE_IN_RUNS,
    daily_table,
    partition_day,
    previous_day,
    same_day,
    window,
)
from resources.clickhouse import empty_frame
from resources.clickhouse_io import table_metadata, withhold
from resources.market import MarketDataResource

# Corporate actions are announced days to weeks before their ex-date (the simulated market:
# 5-20 trading days); a day's factor looks for them in this many days of deliveries.
ACTIONS_WINDOW = 60


@daily_table(
    UNIVERSE,
    group="market",
    backfill_policy=RANGE_IN_ONE_RUN,
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
    absent = market.not_delivered(kind)
    if absent is not None:
        yield from _not_delivered(context, kind, name, absent)
        return
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
            "delivered": True,
            "source_file": MetadataValue.path(str(path)),
            "rows_in_file": result.n_input,
            "rows_quarantined": result.n_quarantined,
            "rules_skipped": ", ".join(result.skipped) or "none",
            **held,
        },
    )
    quarantined = quarantine_rows(result, day)
    yield _quarantine_check(kind, quarantined)
    yield Output(
        quarantined,
        output_name=f"{kind}_quarantine",
        metadata={
            "rows_quarantined": result.n_quarantined,
            "rules": _rule_counts_table(kind, result.counts),
            "rules_hit": MetadataValue.json(verdict.counts),
            **held,
        },
    )


def _not_delivered(context: AssetExecutionContext, kind: str, name: str, why: str) -> Iterator:
    """A kind the market does not deliver: an empty partition (so every later stage finds
    its input and knows there is nothing in it) whose metadata says why, and checks that
    pass saying the same. Nothing is read; no file is expected."""
    context.log.info(f"{name} skipped: {why}")
    skipped = {"delivered": False, "skipped": why}
    yield AssetCheckResult(asset_key=name, check_name="bad_share", passed=True, metadata=skipped)
    yield Output(empty_rows(kind), output_name=name, metadata=skipped)
    yield AssetCheckResult(
        asset_key=f"{kind}_quarantine", check_name="rules_of_kind", passed=True, metadata=skipped
    )
    yield Output(empty_frame(QUARANTINE), output_name=f"{kind}_quarantine", metadata=skipped)


_RULE_TABLE = TableSchema(
    columns=[
        TableColumn("rule", "string", description="the quarantine's `rule` value"),
        TableColumn("rows", "int", description="rows of the day's file that broke it"),
        TableColumn("meaning", "string"),
    ]
)


def _rule_counts_table(kind: str, counts: dict[str, int]) -> MetadataValue:
    """Rows per rule the kind is checked against, zeros included: the quarantine's page
    shows what was checked and that nothing broke it, not only what did."""
    listed = rules_by_kind()[kind]
    extra = [r for r in counts if r not in listed]  # a rule not declared for the kind
    return MetadataValue.table(
        records=[
            TableRecord({"rule": r, "rows": int(counts.get(r, 0)), "meaning": RULES.get(r, "?")})
            for r in [*listed, *extra]
        ],
        schema=_RULE_TABLE,
    )


def _quarantine_check(kind: str, quarantined: pd.DataFrame) -> AssetCheckResult:
    """`rules_of_kind`: every quarantined row names a rule the kind is checked against, its
    file and the row as delivered, so each row can be traced and the README's rule table holds."""
    listed = set(rules_by_kind()[kind])
    unknown = sorted(set(quarantined["rule"]) - listed)
    untraced = int(
        (
            quarantined["source_file"].astype(str).eq("")
            | quarantined["row_json"].astype(str).eq("")
        ).sum()
    )
    return AssetCheckResult(
        asset_key=f"{kind}_quarantine",
        check_name="rules_of_kind",
        passed=not unknown and untraced == 0,
        metadata={
            "rows": len(quarantined),
            "rules_not_of_kind": ", ".join(unknown) or "none",
            "rows_without_file_or_row": untraced,
        },
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


def _ingest_checks(kind: str, name: str) -> list[AssetCheckSpec]:
    return [
        AssetCheckSpec(
            "rules_of_kind",
            asset=f"{kind}_quarantine",
            description=f"Every quarantined row names a rule {kind} rows are checked against "
            "(the README's rule table), the file it came from and the row as delivered.",
        ),
        AssetCheckSpec(
            "bad_share",
            asset=name,
            blocking=True,
            description="The share of the file's rows that went to quarantine is within "
            "max_bad_share (1%, 5% for order books), or fewer rows than min_bad_rows are bad; "
            "counts per rule and examples attached. A failing day is not published.",
        ),
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
        check_specs=_ingest_checks(kind, name),
        # the history's kinds in one run; intraday files, heavier, in runs of a few days
        backfill_policy=RANGE_IN_RUNS if with_bars else RANGE_IN_ONE_RUN,
    )
    @functools.partial(by_day, ins=ins, own=name)
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


# End-of-minute labels of the two sessions (09:30-11:30 and 13:00-15:00, auctions included).
MORNING = (pd.Timedelta(hours=9, minutes=31), pd.Timedelta(hours=11, minutes=30))
AFTERNOON = (pd.Timedelta(hours=13, minutes=1), pd.Timedelta(hours=15))


def _outside_sessions(labels: pd.Series, day: pd.Timestamp) -> pd.Series:
    """Which end-of-minute labels are not a minute of `day`'s sessions (local time)."""
    tod = labels.dt.tz_convert(TZ).dt.tz_localize(None) - day
    morning = tod.between(*MORNING)
    afternoon = tod.between(*AFTERNOON)
    return ~(morning | afternoon)


@daily_table(
    MINUTE_BARS,
    group="market",
    ins={"raw_trades": same_day()},
    check_specs=[
        AssetCheckSpec(
            "volumes_and_sessions",
            asset="minute_bars",
            description="Every bar is a minute of the day's sessions (labels 09:31-11:30 and "
            "13:01-15:00 on the partition's day), with a non-negative volume, at least one "
            "trade and low <= open, close <= high.",
        )
    ],
)
def minute_bars(context: AssetExecutionContext, raw_trades: pd.DataFrame) -> Iterator:
    """1-minute bars from the day's trades, each labelled by the minute's end."""
    day = partition_day(context)
    bars = trades_to_minute_bars(raw_trades)
    outside = _outside_sessions(bars["ts"], day)
    negative = bars["volume"] < 0
    no_trades = bars["n_trades"] < 1
    ohlc = (bars["low"] > bars[["open", "close"]].min(axis=1)) | (
        bars["high"] < bars[["open", "close"]].max(axis=1)
    )
    yield Output(
        bars,
        metadata={
            "symbols": int(bars["symbol"].nunique()),
            "bars_per_symbol": float(len(bars) / max(bars["symbol"].nunique(), 1)),
        },
    )
    yield AssetCheckResult(
        passed=not bool((outside | negative | no_trades | ohlc).any()),
        metadata={
            "bars_outside_sessions": int(outside.sum()),
            "negative_volumes": int(negative.sum()),
            "bars_without_trades": int(no_trades.sum()),
            "ohlc_inconsistent": int(ohlc.sum()),
            "examples": MetadataValue.md(
                bars[outside | negative | no_trades | ohlc].head(5).to_markdown(index=False)
                or "none"
            ),
        },
    )


@daily_table(
    ADJUSTMENT_FACTORS,
    group="market",
    backfill_policy=RANGE_IN_ONE_RUN,
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
    backfill_policy=RANGE_IN_ONE_RUN,
    ins={
        "raw_daily_bars": same_day(),
        "adjustment_factors": same_day(columns=["symbol", "factor"]),
    },
    check_specs=[
        AssetCheckSpec(
            "prices_positive",
            asset="adjusted_bars",
            blocking=True,
            description="Every bar has a finite positive factor and positive adjusted prices "
            "with low <= open, close <= high: a zero, negative or missing factor would corrupt "
            "every factor and label computed from the day.",
        )
    ],
)
def adjusted_bars(raw_daily_bars: pd.DataFrame, adjustment_factors: pd.DataFrame) -> Iterator:
    """The day's bars backward-adjusted with its factors (prices x factor, volume / factor,
    vwap): the one adjusted price series every factor, label and report reads."""
    frame = adjusted_day(raw_daily_bars, adjustment_factors)[list(ADJUSTED_BARS.columns)]
    prices = frame[["open", "high", "low", "close"]].astype("float64")
    bad_factor = ~(frame["factor"].astype("float64") > 0) | ~np.isfinite(frame["factor"])
    bad_price = ~(prices > 0).all(axis=1)
    slack = 1e-9 * prices["high"].abs()
    ohlc = (prices["low"] > prices[["open", "close"]].min(axis=1) + slack) | (
        prices["high"] < prices[["open", "close"]].max(axis=1) - slack
    )
    bad = bad_factor | bad_price | ohlc
    yield Output(
        frame,
        metadata={
            "adjusted_symbols": int((frame["factor"] != 1).sum()),
            "min_factor": float(frame["factor"].min()) if len(frame) else float("nan"),
        },
    )
    yield AssetCheckResult(
        passed=not bool(bad.any()),
        metadata={
            "bad_factors": int(bad_factor.sum()),
            "non_positive_prices": int(bad_price.sum()),
            "ohlc_inconsistent": int(ohlc.sum()),
            "symbols": ", ".join(frame.loc[bad, "symbol"][:10]) or "none",
        },
    )


@daily_table(
    NEWS_ITEMS,
    group="market",
    backfill_policy=RANGE_IN_ONE_RUN,
    ins={"raw_news": window(2)},
    check_specs=[
        AssetCheckSpec(
            "of_the_day",
            asset="news_items",
            blocking=True,
            description="Every item's trading date is the partition, it was published after "
            "the previous trading day's 15:00 close and before this day's, and no news id "
            "repeats (an item redelivered with the next day's file would count twice).",
        )
    ],
)
def news_items(context: AssetExecutionContext, raw_news: pd.DataFrame) -> Iterator:
    """News by the trading day it can first act on: yesterday's items after 15:00 and today's
    before 15:00 (a news item after the close belongs to the next trading day)."""
    day = partition_day(context)
    if raw_news.empty:
        today = pd.DataFrame(columns=list(NEWS_ITEMS.columns))
    else:
        dated = news_to_trading_days(raw_news, trading_days(day - pd.Timedelta(days=20), day))
        today = dated[dated["trading_date"] == day].drop(columns="date")
        today = today.rename(columns={"trading_date": "date"})[list(NEWS_ITEMS.columns)]
    yield Output(
        today,
        metadata={
            "items": len(today),
            "symbols_with_news": int(today["symbol"].nunique()),
        },
    )
    yield _news_of_the_day(today, day)


def _news_of_the_day(items: pd.DataFrame, day: pd.Timestamp) -> AssetCheckResult:
    """The `of_the_day` check: dates, publication times against the two closes, unique ids."""
    close = pd.Timedelta(hours=15)
    opened = (previous_trading_day(day) + close).tz_localize(TZ)
    closed = (day + close).tz_localize(TZ)
    ts = pd.to_datetime(items["ts"])
    ts = ts.dt.tz_localize(TZ) if ts.dt.tz is None else ts.dt.tz_convert(TZ)
    wrong_date = pd.to_datetime(items["date"]).dt.normalize() != day
    out_of_window = (ts < opened) | (ts >= closed)
    repeated = items["news_id"].duplicated(keep=False)
    return AssetCheckResult(
        passed=not bool((wrong_date | out_of_window | repeated).any()),
        metadata={
            "items": len(items),
            "wrong_date": int(wrong_date.sum()),
            "published_outside_window": int(out_of_window.sum()),
            "repeated_ids": int(repeated.sum()),
            "window": f"{opened:%Y-%m-%d %H:%M} .. {closed:%Y-%m-%d %H:%M} (Asia/Shanghai)",
        },
    )


@daily_table(
    LABELS,
    group="market",
    backfill_policy=RANGE_IN_ONE_RUN,
    ins={
        "adjusted_bars": window(
            LOOKBACK + 1, columns=["date", "symbol", "open", "close", "is_suspended"]
        )
    },
    check_specs=[
        AssetCheckSpec(
            "returns_possible",
            asset="labels",
            blocking=True,
            description="One row per symbol, every return finite or missing (NaN where a bar "
            "is suspended or too young) and above -100%: a return at or below -1 or infinite "
            "means a broken price or adjustment, and it would poison training and screening.",
        )
    ],
)
def labels(context: AssetExecutionContext, adjusted_bars: pd.DataFrame) -> Iterator:
    """Forward returns the day's close reveals (1, 5 and 10-day returns, Qlib's label and the
    next-open return of a portfolio formed two days ago): stored on the day they are known."""
    frame = labels_known_on(adjusted_bars, partition_day(context))
    returns = frame[list(LAGS)].astype("float64")
    impossible = (returns <= -1) | np.isinf(returns)
    repeated = frame["symbol"].duplicated(keep=False)
    yield Output(
        frame,
        metadata={
            "labelled_symbols": int(frame["label"].notna().sum()),
            "mean_ret_1d": float(returns["ret_1d"].mean()) if len(frame) else float("nan"),
        },
    )
    yield AssetCheckResult(
        passed=not bool(impossible.to_numpy().any() or repeated.any()),
        metadata={
            "impossible_returns": int(impossible.to_numpy().sum()),
            "repeated_symbols": int(repeated.sum()),
            "symbols": ", ".join(frame.loc[impossible.any(axis=1), "symbol"][:10]) or "none",
        },
    )
