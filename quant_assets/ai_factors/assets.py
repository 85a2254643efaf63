"""AI-factor stage: the factor mining over a window that ends on its day (an LLM or the
offline search proposes, validation admits, the test segment reports), the admitted set, and
its daily values, which the factor screening and the model read like any other set."""

from collections.abc import Iterator

import numpy as np
import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    BackfillPolicy,
    Config,
    MetadataValue,
    Output,
)
from pydantic import Field

from quant_assets.ai_factors.admission import ADMITTED, AdmissionRules
from quant_assets.ai_factors.context import REGIME_DAYS, describe
from quant_assets.ai_factors.context import market_context as context_rows
from quant_assets.ai_factors.inputs import BAR_FIELDS, mining_bars
from quant_assets.ai_factors.llm_generator import LLMSettings
from quant_assets.ai_factors.mining import mine
from quant_assets.ai_factors.news_analysis import ANALYSIS_COLUMNS, TOPICS, analyse
from quant_assets.ai_factors.tables import (
    AI_FACTOR_MINING,
    AI_FACTOR_VALUES,
    AI_FACTORS,
    MARKET_CONTEXT,
    NEWS_ANALYSIS,
)
from quant_assets.ai_factors.tracking import mining_run, round_runs
from quant_assets.factors.daily_set import DAILY_FACTORS
from quant_assets.factors.engine import compile_expression, evaluate_many
from quant_assets.factors.news_set import NEWS_FACTORS, TONE_FACTORS
from quant_assets.factors.panel import factor_panel, last_days
from quant_assets.factors.parser import FormulaError
from quant_assets.market.labels import labels_by_date
from quant_assets.models.segments import default_segments
from quant_assets.wiring import daily_table, partition_day, same_day, stored_within, window
from resources.clickhouse import empty_frame
from resources.llm import LLMResource
from resources.market import MarketDataResource
from resources.tracked_tables import TrackedTable

MINING_WINDOW = 250  # trading days a mining run may read
CONTEXT_WINDOW = 60  # trading days of factor ICs the context weighs
VALUES_LOOKBACK = 80  # trading days of bars behind a day's values (admission allows 60)
BAR_COLUMNS = ["date", "symbol", "is_suspended", *BAR_FIELDS]
TEST_COLUMNS = {"ic": "test_ic", "icir": "test_icir", "t_stat": "test_t", "n_days": "test_days"}


class MiningConfig(Config):
    rounds: int = Field(default=2, description="rounds of generation, scoring and admission")
    per_round: int = Field(default=8, description="formulas asked for per round")
    generator: str = Field(
        default="auto", description="auto (the LLM when one is configured), llm or offline"
    )
    seed: int = Field(default=0, description="seed of the offline search")
    window_days: int = Field(
        default=MINING_WINDOW, description=f"trading days read (at most {MINING_WINDOW})"
    )
    valid_share: float = Field(default=0.25, description="share of the window that validates")
    test_share: float = Field(default=0.15, description="newest share, reported after selection")
    min_abs_ic: float = Field(default=0.015, description="|validation rank IC| to be admitted")
    alpha: float = Field(default=0.05, description="family-wise error (Bonferroni) of the run")
    max_corr: float = Field(default=0.7, description="|correlation| limit with factors in use")


def _in_use() -> dict[str, str]:
    """The factors a candidate must not repeat: the daily set and the news factors."""
    return {**DAILY_FACTORS, **{name: f"${name}" for name in [*NEWS_FACTORS, *TONE_FACTORS]}}


def _llm_settings(llm: LLMResource) -> LLMSettings | None:
    if not llm.enabled:
        return None
    return LLMSettings(
        model=str(llm.model),
        api_key=llm.api_key,
        api_base=llm.api_base,
        timeout=llm.timeout,
        retries=llm.retries,
        max_tokens=llm.max_tokens,
        max_cost_usd=llm.max_cost_usd,
    )


@daily_table(
    NEWS_ANALYSIS,
    group="factors",
    ins={
        "news_items": same_day(columns=["date", "symbol", "news_id", "title"]),
        "universe": same_day(columns=["symbol"]),
    },
    check_specs=[
        AssetCheckSpec(
            "every_item_read",
            asset="news_analysis",
            description="Every news item of the day has a row for its tagged stock, with a "
            "direction in {-1, 0, 1}, a strength in [0, 1], a known topic and its analyser.",
        )
    ],
)
def news_analysis(
    context: AssetExecutionContext,
    llm: LLMResource,
    market: MarketDataResource,
    news_items: pd.DataFrame,
    universe: pd.DataFrame,
) -> Iterator:
    """Per news item of the day and stock it concerns: direction, strength, topic, read by the
    LLM when one is configured, else by the lexicon; each row names its analyser. The
    vendor's sentiment is not read. Skipped, saying why, for a market that delivers no news."""
    absent = market.not_delivered("news")
    if absent is not None:
        context.log.info(f"news_analysis skipped: {absent}")
        yield Output(empty_frame(NEWS_ANALYSIS), metadata={"items": 0, "skipped": absent})
        yield AssetCheckResult(passed=True, metadata={"skipped": absent})
        return
    frame, usage = analyse(news_items, _llm_settings(llm), universe=set(universe["symbol"]))
    for error in usage.errors:
        context.log.warning(f"news analysis: {error}")
    yield Output(
        frame[ANALYSIS_COLUMNS],
        metadata={
            "items": int(news_items["news_id"].nunique()),
            "rows": len(frame),
            "by_analyser": MetadataValue.json(frame["analyser"].value_counts().to_dict()),
            "by_topic": MetadataValue.json(frame["topic"].value_counts().to_dict()),
            "tokens": usage.prompt_tokens + usage.completion_tokens,
            "cost_usd": usage.cost_usd,
            "errors": len(usage.errors),
        },
    )
    read = set(zip(frame["news_id"], frame["symbol"], strict=True))
    unread = [
        i for i in zip(news_items["news_id"], news_items["symbol"], strict=True) if i not in read
    ]
    bad = ~frame["direction"].isin([-1, 0, 1]) | ~frame["strength"].between(0, 1)
    bad |= ~frame["topic"].isin(TOPICS) | (frame["analyser"].str.len() == 0)
    yield AssetCheckResult(
        passed=not unread and not bool(bad.any()),
        metadata={"unread_items": len(unread), "malformed_rows": int(bad.sum())},
    )


@daily_table(
    MARKET_CONTEXT,
    group="ai_factors",
    ins={
        "adjusted_bars": window(REGIME_DAYS + 1, columns=["date", "symbol", "close"]),
        "universe": same_day(columns=["symbol", "industry"]),
        "daily_factor_values": window(CONTEXT_WINDOW),
        "news_factor_values": window(CONTEXT_WINDOW),
        "labels": window(CONTEXT_WINDOW, columns=["date", "symbol", "ret_1d"]),
    },
    check_specs=[
        AssetCheckSpec(
            "regime_known",
            asset="market_context",
            description="Every regime statistic of the day is a finite number (it warns "
            "while the stored history is shorter than the 20-day window).",
        )
    ],
)
def market_context(
    context: AssetExecutionContext,
    adjusted_bars: pd.DataFrame,
    universe: pd.DataFrame,
    daily_factor_values: pd.DataFrame,
    news_factor_values: pd.DataFrame,
    labels: pd.DataFrame,
) -> Iterator:
    """The day's regime statistics, sector moves, and which of the daily and news factors
    worked over the last weeks and which decayed lately: what the factor mining is told."""
    day = partition_day(context)
    panel, _ = factor_panel({"daily": daily_factor_values, "news": news_factor_values})
    bars = adjusted_bars.assign(date=pd.to_datetime(adjusted_bars["date"]))
    frame = context_rows(day, bars, universe, panel, labels_by_date(labels, "ret_1d"))
    yield Output(frame, metadata={"summary": MetadataValue.md("\n\n".join(describe(frame)))})
    regime = frame[frame["section"] == "regime"]
    missing = sorted(regime.loc[~np.isfinite(regime["value"]), "item"])
    yield AssetCheckResult(
        passed=not missing,
        severity=AssetCheckSeverity.WARN,
        metadata={"not_finite": ", ".join(missing) or "none", "days": int(bars["date"].nunique())},
    )


@daily_table(
    AI_FACTOR_MINING,
    group="ai_factors",
    kinds=("mlflow",),
    io_manager_key="tracked_table_io",
    backfill_policy=BackfillPolicy.multi_run(max_partitions_per_run=1),
    ins={
        "adjusted_bars": window(MINING_WINDOW, columns=BAR_COLUMNS),
        "news_factor_values": window(MINING_WINDOW),
        "news_items": window(3, columns=["date", "symbol", "title"]),
        "market_context": same_day(),
    },
    check_specs=[
        AssetCheckSpec(
            "admitted_on_validation",
            asset="ai_factor_mining",
            description="Every admitted formula passed validation as the rule says (|IC|, "
            "sign of train, Bonferroni-corrected p, correlation with the factors in use), and "
            "no test-segment figure exists for a formula that was not admitted.",
        )
    ],
)
def ai_factor_mining(
    context: AssetExecutionContext,
    config: MiningConfig,
    llm: LLMResource,
    adjusted_bars: pd.DataFrame,
    news_factor_values: pd.DataFrame,
    news_items: pd.DataFrame,
    market_context: pd.DataFrame,
) -> Iterator:
    """Rounds of factor mining on the window ending on the day: every candidate with its
    evidence and decision, the admitted ones with their test figures (after selection)."""
    if not 1 <= config.window_days <= MINING_WINDOW:
        raise ValueError(f"window_days must be within 1..{MINING_WINDOW}")
    day = partition_day(context)
    bars = last_days(mining_bars(adjusted_bars, news_factor_values), config.window_days)
    if not 0 < config.valid_share + config.test_share < 1:
        raise ValueError("valid_share + test_share must lie between 0 and 1")
    train_share = 1 - config.valid_share - config.test_share
    segments = default_segments(
        pd.DatetimeIndex(bars["date"].unique()).sort_values(),
        (train_share, config.valid_share, config.test_share),
    )
    settings = _llm_settings(llm)
    generator = config.generator
    if generator == "auto":
        generator = "llm" if settings is not None else "offline"
    rules = AdmissionRules(
        min_abs_ic=config.min_abs_ic, alpha=config.alpha, max_corr=config.max_corr
    )
    titles = [str(t) for t in news_items.sort_values("date")["title"].tail(40)]
    notes = [*describe(market_context), *titles]
    params = {
        "generator": generator,
        "model": settings.model if settings else "none",
        **config.model_dump(exclude={"generator"}),
        **{f"{k}_segment": f"{a.date()}..{b.date()}" for k, (a, b) in vars(segments).items()},
    }

    def on_round(row: dict, frame: pd.DataFrame) -> None:
        context.log.info(
            f"round {row['round']} ({row['generator']}): {row['candidates']} candidates, "
            f"{row['admitted']} admitted, {row['seconds']:.1f} s"
        )

    result = mine(
        bars,
        segments,
        rounds=config.rounds,
        generator=generator,
        seed=config.seed,
        in_use=_in_use(),
        rules=rules,
        per_round=config.per_round,
        llm=settings,
        notes=notes,
        on_round=on_round,
    )
    log = result.candidates.join(
        result.test[list(TEST_COLUMNS)].rename(columns=TEST_COLUMNS), on="name"
    )
    log.insert(0, "date", day)
    admitted = result.admitted
    rounds = result.rounds
    label = f"{day:%Y-%m-%d}"
    table = TrackedTable(
        log[list(AI_FACTOR_MINING.columns)],
        mining_run(label, params, result),
        round_runs(label, result),
    )
    yield Output(
        table,
        metadata={
            "generator": result.generator,
            "fallback": result.fallback or "none",
            "candidates": len(log),
            "admitted": len(admitted),
            "valid_tests": int(rounds["valid_tests"].sum()),
            "tokens": int(rounds["prompt_tokens"].sum() + rounds["completion_tokens"].sum()),
            "cost_usd": float(rounds["cost_usd"].sum()),
            "seconds": float(rounds["seconds"].sum()),
            "segments": MetadataValue.json(
                {k: str(v) for k, v in params.items() if k.endswith("_segment")}
            ),
            "rounds": MetadataValue.md(
                rounds.drop(columns=["errors"]).round(4).to_markdown(index=False)
            ),
            "admitted_factors": MetadataValue.md(
                log[log["status"] == ADMITTED][
                    ["name", "formula", "train_ic", "valid_ic", "valid_p", "tests", "test_ic"]
                ]
                .round(4)
                .to_markdown(index=False)
                or "none"
            ),
        },
    )
    yield _admitted_on_validation(log, rules)


def _admitted_on_validation(log: pd.DataFrame, rules: AdmissionRules) -> AssetCheckResult:
    """The admission rule re-read from the stored log, and the test-segment discipline."""
    admitted = log["status"] == ADMITTED
    passes = (
        (log["valid_ic"].abs() >= rules.min_abs_ic)
        & (np.sign(log["valid_ic"]) == np.sign(log["train_ic"]))
        & (log["valid_p"] * log["tests"] < rules.alpha)
        & (log["closest_corr"].fillna(0.0) < rules.max_corr)
    )
    unearned = admitted & ~passes
    tested_early = ~admitted & log["test_ic"].notna()
    return AssetCheckResult(
        passed=not bool(unearned.any() or tested_early.any()),
        metadata={
            "admitted": int(admitted.sum()),
            "admitted_without_evidence": ", ".join(log.loc[unearned, "name"]) or "none",
            "test_figures_of_unselected": int(tested_early.sum()),
        },
    )


@daily_table(
    AI_FACTORS,
    group="ai_factors",
    ins={"ai_factor_mining": same_day()},
    check_specs=[
        AssetCheckSpec(
            "formulas_compute",
            asset="ai_factors",
            description="Every admitted formula compiles on the bar and news fields the "
            "daily stage has, looks only backwards and within the daily look-back.",
        )
    ],
)
def ai_factors(ai_factor_mining: pd.DataFrame) -> Iterator:
    """The formulas the day's mining admitted: the AI factor set from that day on."""
    admitted = ai_factor_mining[ai_factor_mining["status"] == ADMITTED]
    frame = admitted.assign(origin="ai:" + admitted["generator"])[list(AI_FACTORS.columns)]
    yield Output(
        frame.reset_index(drop=True),
        metadata={
            "count": len(frame),
            "factors": MetadataValue.md(
                frame[["name", "formula", "origin", "valid_ic"]].round(4).to_markdown(index=False)
                or "none"
            ),
        },
    )
    fields = [*BAR_FIELDS, *NEWS_FACTORS, *TONE_FACTORS]
    broken = {}
    for name, formula in zip(frame["name"], frame["formula"], strict=True):
        try:
            lookback = compile_expression(formula, fields).lookback()
        except FormulaError as exc:
            broken[name] = exc.message
            continue
        if lookback > VALUES_LOOKBACK:
            broken[name] = f"looks back {lookback} days, more than {VALUES_LOOKBACK}"
    yield AssetCheckResult(
        passed=not broken, metadata={"broken": MetadataValue.json(broken), "count": len(frame)}
    )


@daily_table(
    AI_FACTOR_VALUES,
    group="factors",
    ins={
        "ai_factor_mining": stored_within(
            MINING_WINDOW, columns=["date", "name", "formula", "status"]
        ),
        "adjusted_bars": window(VALUES_LOOKBACK, columns=BAR_COLUMNS),
        "news_factor_values": window(VALUES_LOOKBACK),
    },
    check_specs=[
        AssetCheckSpec(
            "values_finite",
            asset="ai_factor_values",
            description="Each AI factor has a finite value for at least 90% of the stocks "
            "that traded on the day (it warns: a new listing or a long warm-up leaves gaps).",
        )
    ],
)
def ai_factor_values(
    context: AssetExecutionContext,
    ai_factor_mining: pd.DataFrame,
    adjusted_bars: pd.DataFrame,
    news_factor_values: pd.DataFrame,
) -> Iterator:
    """The day's values of the factors the newest mining on or before the day admitted (none
    if it admitted none), one row per stock and factor; no rows before the first mining."""
    day = partition_day(context)
    empty = empty_frame(AI_FACTOR_VALUES)
    mined = pd.to_datetime(ai_factor_mining["date"])
    mined_on = mined.max() if len(mined) else None
    latest = ai_factor_mining[(mined == mined_on) & (ai_factor_mining["status"] == ADMITTED)]
    formulas = dict(zip(latest["name"], latest["formula"], strict=True))
    if not formulas:
        when = "never" if mined_on is None else f"{mined_on:%Y-%m-%d}"
        yield Output(empty, metadata={"factors": 0, "mined_on": when, "rows": 0})
        yield AssetCheckResult(passed=True, metadata={"factors": 0})
        return
    bars = mining_bars(adjusted_bars, news_factor_values)
    wide = evaluate_many(list(formulas.values()), bars, names=list(formulas), start=day)
    wide = wide[wide.index.get_level_values("date") == day]
    long = wide.stack(future_stack=True).rename("value").reset_index()
    long = long.rename(columns={long.columns[2]: "factor"})[["date", "symbol", "factor", "value"]]
    yield Output(
        long,
        metadata={"factors": len(formulas), "mined_on": f"{mined_on:%Y-%m-%d}", "rows": len(long)},
    )
    traded = int(bars.loc[bars["date"] == day, "symbol"].nunique())
    share = long.groupby("factor")["value"].apply(lambda v: np.isfinite(v).sum()) / max(traded, 1)
    thin = sorted(share.index[share < 0.9])
    yield AssetCheckResult(
        passed=not thin,
        severity=AssetCheckSeverity.WARN,
        metadata={"thin_factors": ", ".join(thin) or "none", "min_share": float(share.min())},
    )
