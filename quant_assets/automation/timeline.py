"""The seed's daily timeline (Asia/Shanghai, trading days only) and what each step has to run.

A partition is the trading day whose close its data describe. After the close of day T, the
chain of T runs up to the book's performance (15:00), the report (15:30) and the retraining of
the models (16:00). Before the open of the next trading day the pre-market steps look at T
again: data delivered overnight, the factors, the predictions of the champion the retraining
may have changed (09:00) and, from them, the signals and orders for the open (09:20).

A step never runs on missing data and never redoes work: at each look it asks the instance
which of its assets' partitions are missing or older than a same-day input (`plan`). What is
up to date is left alone; what is missing or stale is requested when every input outside the
step is there; otherwise the step waits (a skip that names the missing inputs) and looks
again every few minutes until its `until` time. A step still not done by then is late: the
`late_steps` sensor alerts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

import pandas as pd
from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DagsterInstance,
    DagsterRunStatus,
    RepositoryDefinition,
    RunsFilter,
)

from quant_assets.calendar import TZ, is_trading_day, next_trading_day, previous_trading_day
from quant_assets.market.sources.landing import complete_days
from resources.clickhouse_io import WINDOW_KEY
from resources.market import MarketDataResource
from resources.mlflow_io import CHAMPION_INPUT

SHANGHAI = ZoneInfo(TZ)
LOOK_EVERY_MINUTES = 5  # a waiting step looks at its inputs again this often
STEP_TAG = "quant/step"  # the run tag naming the step a run was requested by
IN_FLIGHT = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
]


@dataclass(frozen=True)
class Step:
    """One step of the day: its job, when it starts and stops waiting, which partition it
    targets ("previous": the last close before the open; "today": the day's own close)."""

    name: str
    job: str
    at: time
    until: time
    target: str
    description: str

    def cron(self) -> list[str]:
        """Cron strings firing at `at` and every LOOK_EVERY_MINUTES until `until` (weekdays;
        holidays are skipped by the evaluation)."""
        start = self.at.hour * 60 + self.at.minute
        end = self.until.hour * 60 + self.until.minute
        by_hour: dict[int, list[int]] = {}
        for minute in range(start, end + 1, LOOK_EVERY_MINUTES):
            by_hour.setdefault(minute // 60, []).append(minute % 60)
        return [
            f"{','.join(map(str, minutes))} {hour} * * 1-5" for hour, minutes in by_hour.items()
        ]

    def partition(self, moment: datetime) -> str | None:
        """The partition the step works on at `moment`, or None on a non-trading day."""
        today = moment.astimezone(SHANGHAI).date()
        if not is_trading_day(today):
            return None
        if self.target == "today":
            return today.isoformat()
        return previous_trading_day(today).date().isoformat()

    def deadline(self, day: str) -> datetime:
        """When the step's work on the partition `day` must be done (Shanghai time)."""
        when = pd.Timestamp(day).date()
        if self.target == "previous":
            when = next_trading_day(day).date()
        return datetime.combine(when, self.until, tzinfo=SHANGHAI)


TIMELINE: tuple[Step, ...] = (
    Step("data_preparation", "market_ingest", time(8, 0), time(8, 25), "previous",
         "the last close's market data validated and stored (late or re-delivered files)"),
    Step("factor_calculation", "factor_calculation", time(8, 30), time(8, 55), "previous",
         "the last close's factors from its market data"),
    Step("model_inference", "model_inference", time(9, 0), time(9, 15), "previous",
         "the champion's scores of the last close (again if the retraining changed it)"),
    Step("signal_generation", "signal_generation", time(9, 20), time(9, 25), "previous",
         "signals, the paper book's target and the orders for the open, and the "
         "recommendations"),
    Step("performance_analysis", "performance_analysis", time(15, 0), time(21, 0), "today",
         "the day's chain once its market data are in: factors, scores, the book valued at "
         "the close, its performance"),
    Step("report_generation", "report_generation", time(15, 30), time(21, 30), "today",
         "the day's performance page in MLflow"),
    Step("model_retraining", "model_retraining", time(16, 0), time(22, 0), "today",
         "the daily families and the ensemble trained on the window that ends today"),
)  # fmt: skip
STEPS: Mapping[str, Step] = {s.name: s for s in TIMELINE}


@dataclass(frozen=True)
class Plan:
    """What a step should do for a partition: `run` the assets listed, or wait for `missing`
    inputs, or nothing (`up_to_date`)."""

    run: tuple[AssetKey, ...]
    missing: tuple[str, ...]
    up_to_date: tuple[str, ...]

    @property
    def waiting(self) -> bool:
        return bool(self.missing)


def latest_materialization(instance: DagsterInstance, key: AssetKey, day: str) -> float | None:
    """The time (epoch seconds) of the newest materialisation of `key`'s partition `day`."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=key, asset_partitions=[day]), limit=1
    ).records
    return records[0].timestamp if records else None


def plan(
    instance: DagsterInstance,
    selection: Iterable[AssetKey],
    parents: Mapping[AssetKey, Iterable[AssetKey]],
    day: str,
    external_ready: Mapping[AssetKey, bool] | None = None,
    optional: Mapping[AssetKey, Iterable[AssetKey]] | None = None,
) -> Plan:
    """Which of `selection` (in topological order) must run for `day`: an asset whose
    partition is missing, older than a same-day parent's, or whose parent in the selection
    runs. `parents` outside the selection must have the partition (else they are `missing`);
    `optional` parents (a model read as the champion in force, a sparse input) only make an
    asset stale when they are newer. `external_ready` gates assets without parents (the
    landing files of the day complete)."""
    selection = list(selection)
    chosen = set(selection)
    stamps: dict[AssetKey, float | None] = {}

    def stamp(key: AssetKey) -> float | None:
        if key not in stamps:
            stamps[key] = latest_materialization(instance, key, day)
        return stamps[key]

    run: list[AssetKey] = []
    missing: list[str] = []
    fresh: list[str] = []
    for key in selection:
        own = stamp(key)
        outdated = own is None
        for parent in parents.get(key, ()):
            if parent == key:
                continue  # a chain of days reads its own previous partition
            if parent in chosen:
                outdated |= parent in run or (own is not None and (stamp(parent) or 0) > own)
                continue
            theirs = stamp(parent)
            if theirs is None:
                missing.append(f"{parent.to_user_string()}[{day}]")
            elif own is not None and theirs > own:
                outdated = True
        for parent in (optional or {}).get(key, ()):
            theirs = None if parent in chosen else stamp(parent)
            outdated |= parent in run or (own is not None and (theirs or 0) > own)
        if not (external_ready or {}).get(key, True):
            missing.append(f"landing files of {day} for {key.to_user_string()}")
        if outdated:
            run.append(key)
        else:
            fresh.append(key.to_user_string())
    return Plan(tuple(run), tuple(dict.fromkeys(missing)), tuple(fresh))


def step_inputs(
    repo: RepositoryDefinition, selection: set[AssetKey]
) -> tuple[dict[AssetKey, list[AssetKey]], dict[AssetKey, list[AssetKey]]]:
    """Each selected asset's required parents and its optional ones: a model read as the
    champion in force, or a sparse input (a set that changes on some days only), need not
    have the day's partition; they only make the asset stale when newer."""
    required: dict[AssetKey, list[AssetKey]] = {}
    optional: dict[AssetKey, list[AssetKey]] = {}
    for key in selection:
        assets_def = repo.assets_defs_by_key[key]
        metadata = {i.name: i.metadata for i in assets_def.node_def.input_defs}
        soft = {
            parent
            for name, parent in assets_def.keys_by_input_name.items()
            if CHAMPION_INPUT in metadata.get(name, {})
            or metadata.get(name, {}).get(WINDOW_KEY) == "sparse"
        }
        parents = repo.asset_graph.get(key).parent_keys
        required[key] = sorted(p for p in parents if p not in soft)
        optional[key] = sorted(p for p in parents if p in soft)
    return required, optional


def _landing_ready(
    market: MarketDataResource, roots: list[AssetKey], day: str
) -> Mapping[AssetKey, bool]:
    """Assets without parents read the landing zone: ready when the day's files are complete."""
    if market.source != "landing":
        return {}
    ready = any(d.isoformat() == day for d in complete_days(market.landing_dir, market.delivered()))
    return {key: ready for key in roots}


def step_plan(
    instance: DagsterInstance,
    repo: RepositoryDefinition,
    market: MarketDataResource,
    step: Step,
    day: str,
) -> Plan:
    """The plan of `step` for the partition `day`, from the code location's asset graph."""
    selection = set(repo.get_job(step.job).asset_layer.selected_asset_keys)
    ordered = [k for k in repo.asset_graph.toposorted_asset_keys if k in selection]
    required, optional = step_inputs(repo, selection)
    roots = [k for k in ordered if not repo.asset_graph.get(k).parent_keys]
    return plan(
        instance,
        ordered,
        required,
        day,
        external_ready=_landing_ready(market, roots, day),
        optional=optional,
    )


def step_runs(
    instance: DagsterInstance, step: Step, day: str, statuses: list[DagsterRunStatus]
) -> list[str]:
    """Ids of the step's runs for the partition `day` in one of `statuses`, newest first."""
    records = instance.get_run_records(
        RunsFilter(tags={STEP_TAG: step.name, "dagster/partition": day}, statuses=statuses),
        limit=5,
    )
    return [r.dagster_run.run_id for r in records]
