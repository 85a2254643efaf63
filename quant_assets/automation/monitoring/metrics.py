"""Application metrics in the Prometheus text format, read from the Dagster instance alone.

The embedded chDB folder is open in one process at a time and a run holds it from start to
end, so nothing here opens ClickHouse: the Dagster instance already records what monitoring
needs. Runs (job, status, start and end) come from its run storage; the figures the assets
report (rows written, quarantine, model rank IC, the paper book's P&L and drawdown, the
performance figures) from the metadata of their materialisations; check results from its
asset-check executions. Figures of an asset are those of its newest partition (the greatest
partition key, so a backfill of an old day does not replace today's figures), which keeps one
series per asset and figure.

`read_snapshot` reads the instance with bounded queries into plain records, `metric_families`
turns a snapshot into metric families (pure), and `InstanceCollector` joins the two as a
prometheus_client collector. `ApiRequestMetrics` holds the counters the HTTP API records its
requests in (`quant_api_*`); its process exposes them with its own registry.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from zoneinfo import ZoneInfo

from dagster import AssetCheckKey, AssetKey, AssetRecordsFilter, DagsterInstance, RunsFilter
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.dagster_run import DagsterRunStatus
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable
from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
)
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from sqlalchemy import select

from quant_assets.calendar import TZ

# Asset names whose metadata keys become named gauges (the project's assets of these names).
PAPER_BOOK = "paper_book"
PERFORMANCE = "performance"
# paper_book's metadata key -> (gauge, help)
PAPER_FIGURES: dict[str, tuple[str, str]] = {
    "equity": ("quant_paper_equity", "Paper book equity at the close (CNY)"),
    "cash": ("quant_paper_cash", "Paper book cash at the close (CNY)"),
    "day_pnl": ("quant_paper_day_pnl", "Paper book profit and loss of the day (CNY)"),
    "drawdown": (
        "quant_paper_drawdown",
        "Paper book equity against its running peak, minus 1 (0 at a new high, -0.1 = 10% down)",
    ),
    "invested": ("quant_paper_invested_share", "Share of the paper book's equity invested"),
    "positions": ("quant_paper_positions", "Positions the paper book holds at the close"),
    "fees": ("quant_paper_fees", "Fees the paper book paid on the day (CNY)"),
}
ROW_COUNT = "dagster/row_count"  # written by the IO managers: rows of the partition's table
VALIDATION_RANK_IC = "valid_rank_ic"  # the model assets' rank IC on their report days
LIVE_RANK_IC = "mean_rank_ic"  # champion_live_ic: the champion's rank IC on the latest labels
QUARANTINED, ROWS_IN_FILE = "rows_quarantined", "rows_in_file"  # the raw tables' ingest

FINISHED = frozenset(
    s.value for s in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)
)
QUANTILES = (0.5, 0.9, 0.99)
FAILED = AssetCheckExecutionRecordStatus.FAILED
EVALUATED = {AssetCheckExecutionRecordStatus.SUCCEEDED, FAILED}
FAILURE_PAGE = 50


@dataclass(frozen=True)
class MetricsSettings:
    """How much history the metrics summarise: the last `recent_runs` runs for run durations,
    and check failures over the last `check_window_s` seconds (at most `max_failures` a check
    are read)."""

    recent_runs: int = 200
    check_window_s: float = 24 * 3600.0
    max_failures: int = 1000

    def __post_init__(self) -> None:
        for name in ("recent_runs", "check_window_s", "max_failures"):
            if not getattr(self, name) > 0:
                raise ValueError(
                    f"MetricsSettings.{name} must be positive, got {getattr(self, name)}"
                )


@dataclass(frozen=True)
class RunRow:
    """One run as the run storage has it (start and end are None until it starts or ends)."""

    job: str
    status: str
    start: float | None
    end: float | None

    @property
    def duration(self) -> float | None:
        return self.end - self.start if self.start is not None and self.end is not None else None


@dataclass(frozen=True)
class Materialization:
    """An asset's materialisation: its partition (None if unpartitioned) and the numeric
    entries of its metadata."""

    partition: str | None
    numbers: Mapping[str, float]


@dataclass(frozen=True)
class AssetState:
    """An asset's latest materialisation time and its newest partition's latest figures."""

    asset: str
    last_materialized: float
    newest: Materialization


@dataclass(frozen=True)
class CheckRow:
    """An evaluation of an asset check."""

    asset: str
    check: str
    severity: str
    passed: bool
    partition: str | None
    timestamp: float
    run_id: str


@dataclass(frozen=True)
class Snapshot:
    """What the metrics are made of, read from the instance at `taken_at`."""

    taken_at: float
    run_counts: Mapping[str, int]
    recent_runs: Sequence[RunRow]
    last_success: Mapping[str, float]  # job -> end of its last successful run
    assets: Sequence[AssetState]
    latest_checks: Sequence[CheckRow]
    failures: Sequence[CheckRow]  # failed evaluations within the window
    check_window_s: float
    run_window: int  # how many of the latest runs `recent_runs` may hold


# -- reading the instance -----------------------------------------------------------------------


@dataclass
class _Newest:
    latest_id: int
    state: AssetState


@dataclass
class InstanceReader:
    """Reads a `Snapshot` from a Dagster instance with bounded queries. It remembers each
    asset's newest partition, so a scrape asks for an asset's partitions again only when a
    materialisation of an older partition arrived (a backfill)."""

    instance: DagsterInstance
    settings: MetricsSettings = field(default_factory=MetricsSettings)
    _newest: dict[AssetKey, _Newest] = field(default_factory=dict, init=False)

    def read(self) -> Snapshot:
        now = time.time()
        records = self.instance.get_run_records(limit=self.settings.recent_runs)
        runs = [
            RunRow(r.dagster_run.job_name, r.dagster_run.status.value, r.start_time, r.end_time)
            for r in records
        ]
        latest, failures = self._checks(now)
        return Snapshot(
            taken_at=now,
            run_counts={
                s.value: self.instance.get_runs_count(RunsFilter(statuses=[s]))
                for s in DagsterRunStatus
            },
            recent_runs=runs,
            last_success=self._last_success(sorted({r.job for r in runs})),
            assets=self._assets(),
            latest_checks=latest,
            failures=failures,
            check_window_s=self.settings.check_window_s,
            run_window=self.settings.recent_runs,
        )

    def _last_success(self, jobs: Iterable[str]) -> dict[str, float]:
        out = {}
        for job in jobs:
            found = self.instance.get_run_records(
                RunsFilter(job_name=job, statuses=[DagsterRunStatus.SUCCESS]), limit=1
            )
            if found and found[0].end_time is not None:
                out[job] = found[0].end_time
        return out

    def _assets(self) -> list[AssetState]:
        states = []
        seen = set()
        for record in self.instance.get_asset_records():
            latest = record.asset_entry.last_materialization_record
            if latest is None:  # observed, or every materialisation failed or was wiped
                continue
            key = record.asset_entry.asset_key
            seen.add(key)
            states.append(self._asset_state(key, latest))
        for key in set(self._newest) - seen:  # wiped
            del self._newest[key]
        return states

    def _asset_state(self, key: AssetKey, latest) -> AssetState:
        known = self._newest.get(key)
        if known and known.latest_id == latest.storage_id:
            return known.state
        part = latest.partition_key
        if part is None or (
            known
            and latest.storage_id > known.latest_id
            and part >= (known.state.newest.partition or "")
        ):
            newest = _materialization(latest)
        else:  # first sight, or an older partition came last: find the newest partition
            newest_part = max(self.instance.get_materialized_partitions(key), default=part)
            if newest_part == part:
                newest = _materialization(latest)
            else:
                found = self.instance.fetch_materializations(
                    AssetRecordsFilter(key, asset_partitions=[newest_part]), limit=1
                ).records
                newest = _materialization(found[0]) if found else _materialization(latest)
        state = AssetState(key.to_user_string(), latest.timestamp, newest)
        self._newest[key] = _Newest(latest.storage_id, state)
        return state

    def _checks(self, now: float) -> tuple[list[CheckRow], list[CheckRow]]:
        storage = self.instance.event_log_storage
        latest, failures = [], []
        since = now - self.settings.check_window_s
        for key in _check_keys(storage):
            last = storage.get_asset_check_execution_history(key, limit=1, status=EVALUATED)
            if last and (row := _check_row(key, last[0])) is not None:
                latest.append(row)
            failures += _failures_since(storage, key, since, self.settings.max_failures)
        return self._with_partitions(latest), failures

    def _with_partitions(self, rows: list[CheckRow]) -> list[CheckRow]:
        """Evaluations of checks on a partitioned asset carry no partition in Dagster 1.13
        (only the planned row does): the partition is then the run's (one query for all)."""
        missing = sorted({r.run_id for r in rows if r.partition is None})
        if not missing:
            return rows
        runs = self.instance.get_run_records(RunsFilter(run_ids=missing))
        parts = {r.dagster_run.run_id: run_partition(r.dagster_run.tags) for r in runs}
        return [
            r if r.partition is not None else replace(r, partition=parts.get(r.run_id))
            for r in rows
        ]


def run_partition(tags: Mapping[str, str]) -> str | None:
    """The partition a run's tags name: its partition, `start...end` for a range run, or None."""
    if PARTITION_NAME_TAG in tags:
        return tags[PARTITION_NAME_TAG]
    start, end = tags.get(ASSET_PARTITION_RANGE_START_TAG), tags.get(ASSET_PARTITION_RANGE_END_TAG)
    if start and end:
        return start if start == end else f"{start}...{end}"
    return None


def _check_keys(storage) -> list[AssetCheckKey]:
    """Every check that has executions in the instance. Dagster has no call that lists them,
    so its asset-check table is read directly (one SELECT DISTINCT)."""
    if not isinstance(storage, SqlEventLogStorage):
        raise TypeError(
            f"asset-check metrics read Dagster's SQL event log; {type(storage).__name__} is not one"
        )
    table = AssetCheckExecutionsTable
    query = select(table.c.asset_key, table.c.check_name).distinct()
    with storage.index_connection() as conn:
        rows = conn.execute(query).fetchall()
    return [AssetCheckKey(AssetKey.from_db_string(a), name) for a, name in rows if a]


def _failures_since(storage, key: AssetCheckKey, since: float, most: int) -> list[CheckRow]:
    """The check's failed evaluations since `since`, newest first, read a page at a time until
    one is older (so a check that failed for years costs no more than its recent failures)."""
    out: list[CheckRow] = []
    cursor = None
    while len(out) < most:
        page = storage.get_asset_check_execution_history(
            key, limit=min(FAILURE_PAGE, most - len(out)), cursor=cursor, status={FAILED}
        )
        rows = [r for r in (_check_row(key, rec) for rec in page) if r is not None]
        out += [r for r in rows if r.timestamp >= since]
        if len(page) < FAILURE_PAGE or any(r.timestamp < since for r in rows):
            break
        cursor = page[-1].id
    return out


def _check_row(key: AssetCheckKey, record) -> CheckRow | None:
    event = record.event
    if event is None or event.dagster_event is None:
        return None
    evaluation = event.dagster_event.event_specific_data
    return CheckRow(
        asset=key.asset_key.to_user_string(),
        check=key.name,
        severity=evaluation.severity.value,
        passed=bool(evaluation.passed),
        partition=record.partition,
        timestamp=event.timestamp,
        run_id=record.run_id,
    )


def _materialization(record) -> Materialization:
    meta = record.asset_materialization.metadata
    numbers = {
        k: float(v.value)
        for k, v in meta.items()
        if isinstance(v.value, int | float) and not isinstance(v.value, bool)
    }
    return Materialization(partition=record.partition_key, numbers=numbers)


# -- metric families (pure) ---------------------------------------------------------------------


def metric_families(snap: Snapshot) -> list[Metric]:
    """The metric families of a snapshot, every name prefixed `quant_` with its help text."""
    return [
        *_run_families(snap),
        *_asset_families(snap),
        *_figure_families(snap),
        *_check_families(snap),
    ]


def _gauge(name: str, doc: str, labels: Sequence[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=list(labels))


def _run_families(snap: Snapshot) -> list[Metric]:
    runs = _gauge("quant_runs", "Runs in the Dagster instance by status", ["status"])
    for status, n in sorted(snap.run_counts.items()):
        runs.add_metric([status], n)

    durations = Metric(
        "quant_run_duration_seconds",
        f"Duration of the finished runs among the last {snap.run_window} runs, by job and status",
        "summary",
    )
    by_job: dict[tuple[str, str], list[float]] = {}
    for run in snap.recent_runs:
        if run.status in FINISHED and run.duration is not None:
            by_job.setdefault((run.job, run.status), []).append(run.duration)
    for (job, status), values in sorted(by_job.items()):
        labels = {"job": job, "status": status}
        for q in QUANTILES:
            durations.add_sample(
                durations.name, {**labels, "quantile": str(q)}, _quantile(values, q)
            )
        durations.add_sample(f"{durations.name}_count", labels, len(values))
        durations.add_sample(f"{durations.name}_sum", labels, sum(values))

    last_duration = _gauge(
        "quant_job_last_run_duration_seconds", "Duration of the job's last finished run", ["job"]
    )
    last_ok = _gauge(
        "quant_job_last_run_success", "1 if the job's last finished run succeeded, else 0", ["job"]
    )
    last_end = _gauge(
        "quant_job_last_run_end_timestamp_seconds",
        "When the job's last finished run ended (Unix time)",
        ["job"],
    )
    done: set[str] = set()
    for run in snap.recent_runs:  # newest first
        if run.job in done or run.status not in FINISHED or run.end is None:
            continue
        done.add(run.job)
        if run.duration is not None:
            last_duration.add_metric([run.job], run.duration)
        last_ok.add_metric([run.job], 1.0 if run.status == DagsterRunStatus.SUCCESS.value else 0.0)
        last_end.add_metric([run.job], run.end)
    last_success = _gauge(
        "quant_job_last_success_timestamp_seconds",
        "When the job's last successful run ended (Unix time)",
        ["job"],
    )
    for job, end in sorted(snap.last_success.items()):
        last_success.add_metric([job], end)
    return [runs, durations, last_duration, last_ok, last_end, last_success]


def _asset_families(snap: Snapshot) -> list[Metric]:
    age = _gauge(
        "quant_asset_seconds_since_materialization",
        "Seconds since the asset's latest materialisation (of any partition)",
        ["asset"],
    )
    newest = _gauge(
        "quant_asset_newest_partition_timestamp_seconds",
        f"Start of the asset's newest materialised partition (Unix time; days in {TZ})",
        ["asset"],
    )
    values = _gauge(
        "quant_asset_metadata_value",
        "Numeric metadata of the latest materialisation of the asset's newest partition",
        ["asset", "partition", "key"],
    )
    rows = _gauge(
        "quant_asset_rows_written",
        "Rows the asset wrote for its newest partition (dagster/row_count)",
        ["asset", "partition"],
    )
    quarantined = _gauge(
        "quant_quarantine_rows",
        "Rows of the newest day's landing file that went to quarantine, by raw table",
        ["asset", "partition"],
    )
    share = _gauge(
        "quant_quarantine_share",
        "Share of the newest day's landing file that went to quarantine, by raw table",
        ["asset", "partition"],
    )
    for state in sorted(snap.assets, key=lambda s: s.asset):
        m = state.newest
        part = m.partition or ""
        age.add_metric([state.asset], max(snap.taken_at - state.last_materialized, 0.0))
        if (start := partition_start(m.partition)) is not None:
            newest.add_metric([state.asset], start)
        for key, value in sorted(m.numbers.items()):
            values.add_metric([state.asset, part, key], value)
        if ROW_COUNT in m.numbers:
            rows.add_metric([state.asset, part], m.numbers[ROW_COUNT])
        if (
            QUARANTINED in m.numbers and ROWS_IN_FILE in m.numbers
        ):  # the raw table, not its quarantine
            quarantined.add_metric([state.asset, part], m.numbers[QUARANTINED])
            total = m.numbers[ROWS_IN_FILE]
            share.add_metric([state.asset, part], m.numbers[QUARANTINED] / total if total else 0.0)
    return [age, newest, values, rows, quarantined, share]


def _figure_families(snap: Snapshot) -> list[Metric]:
    validation = _gauge(
        "quant_model_validation_rank_ic",
        "Rank IC of the newest day's model on its validation report days",
        ["asset", "partition"],
    )
    live = _gauge(
        "quant_model_live_rank_ic",
        "The champion's mean rank IC over the latest days whose labels are known",
        ["asset", "partition"],
    )
    paper = {key: _gauge(name, doc, ["partition"]) for key, (name, doc) in PAPER_FIGURES.items()}
    figures = _gauge(
        "quant_performance_figure",
        "Figures of the newest day's performance report (sharpe, max_drawdown, total_return, ...)",
        ["partition", "figure"],
    )
    for state in sorted(snap.assets, key=lambda s: s.asset):
        m = state.newest
        part = m.partition or ""
        if VALIDATION_RANK_IC in m.numbers:
            validation.add_metric([state.asset, part], m.numbers[VALIDATION_RANK_IC])
        if LIVE_RANK_IC in m.numbers:
            live.add_metric([state.asset, part], m.numbers[LIVE_RANK_IC])
        if state.asset == PAPER_BOOK:
            for key, gauge in paper.items():
                if key in m.numbers:
                    gauge.add_metric([part], m.numbers[key])
        if state.asset == PERFORMANCE:
            for key, value in sorted(m.numbers.items()):
                if key != ROW_COUNT:
                    figures.add_metric([part, key], value)
    return [validation, live, *paper.values(), figures]


def _check_families(snap: Snapshot) -> list[Metric]:
    passed = _gauge(
        "quant_asset_check_passed",
        "Latest evaluation of the asset check: 1 passed, 0 failed",
        ["asset", "check", "severity", "partition"],
    )
    when = _gauge(
        "quant_asset_check_last_evaluation_timestamp_seconds",
        "When the asset check was last evaluated (Unix time)",
        ["asset", "check"],
    )
    for row in sorted(snap.latest_checks, key=lambda r: (r.asset, r.check)):
        passed.add_metric(
            [row.asset, row.check, row.severity, row.partition or ""], float(row.passed)
        )
        when.add_metric([row.asset, row.check], row.timestamp)
    hours = f"{snap.check_window_s / 3600:g}"
    failures = _gauge(
        "quant_asset_check_failures",
        f"Failed evaluations of the asset check in the last {hours} h, by severity",
        ["asset", "check", "severity"],
    )
    counted: dict[tuple[str, str, str], int] = {}
    for row in snap.failures:
        key = (row.asset, row.check, row.severity)
        counted[key] = counted.get(key, 0) + 1
    for key, n in sorted(counted.items()):
        failures.add_metric(list(key), n)
    window = _gauge(
        "quant_asset_check_failure_window_seconds",
        "The window quant_asset_check_failures counts over",
        [],
    )
    window.add_metric([], snap.check_window_s)
    return [passed, when, failures, window]


def _quantile(values: Sequence[float], q: float) -> float:
    """The q-quantile by linear interpolation between the closest ranks (numpy's default)."""
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def partition_start(partition: str | None) -> float | None:
    """Unix time of a daily partition's start in the exchanges' zone; None for keys that are
    not ISO dates."""
    if not partition:
        return None
    try:
        day = datetime.strptime(partition, "%Y-%m-%d")
    except ValueError:
        return None
    return day.replace(tzinfo=ZoneInfo(TZ)).timestamp()


# -- the collector and the API's counters -------------------------------------------------------


class InstanceCollector:
    """A prometheus_client collector of the instance's metrics: each `collect` reads a fresh
    snapshot, and adds how long reading and building took."""

    def __init__(self, instance: DagsterInstance, settings: MetricsSettings | None = None):
        self.reader = InstanceReader(instance, settings or MetricsSettings())

    def describe(self) -> list[Metric]:
        return []  # registering must not read the instance

    def collect(self) -> Iterator[Metric]:
        t0 = time.perf_counter()
        families = metric_families(self.reader.read())
        took = _gauge(
            "quant_metrics_collection_seconds",
            "How long reading the Dagster instance for these metrics took",
            [],
        )
        took.add_metric([], time.perf_counter() - t0)
        yield from families
        yield took


class ApiRequestMetrics:
    """The HTTP API's request counters: requests by method, route and status, and their
    durations. The API creates one in the registry its `/metrics` serves and calls `observe`
    once a request is answered."""

    def __init__(self, registry: CollectorRegistry):
        self.requests = Counter(
            "quant_api_requests",
            "Requests the HTTP API answered, by method, route template and status code",
            ["method", "route", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "quant_api_request_duration_seconds",
            "Time the HTTP API took to answer a request, by method and route template",
            ["method", "route"],
            registry=registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request; `route` is the route's template (`/recommendations/{day}`),
        never the raw path, so the series stay few."""
        self.requests.labels(method, route, str(status)).inc()
        self.duration.labels(method, route).observe(seconds)


def instance_registry(
    instance: DagsterInstance, settings: MetricsSettings | None = None
) -> CollectorRegistry:
    """A registry holding the instance's collector and the (empty) API request metrics, so
    one scrape shows every `quant_` family the dashboard uses."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(InstanceCollector(instance, settings))
    ApiRequestMetrics(registry)
    return registry
