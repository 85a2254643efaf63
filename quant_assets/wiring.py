"""How the stages are wired: every asset is a trading-day partition stored in its ClickHouse
table, and reads its upstream data as inputs of one day or a window of days.

`daily_table(spec, ...)` is the `@asset` of a table: partitioned by trading day, stored by
the ClickHouse IO manager in `spec`'s table (named like the asset), with the table's columns
shown in the UI. The input helpers say what a downstream asset reads: `same_day` the
partition of its own day, `window(n)` the n trading days that end on its day (from the start
of the upstream's stored history when that is later), `previous_day` the day before for a
chain of days such as the adjustment factors. Columns given to an input are the only ones
read from ClickHouse.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetIn,
    BackfillPolicy,
    BetaWarning,
    Failure,
    TimeWindowPartitionMapping,
    asset,
)

from quant_assets.calendar import TRADING_DAYS
from quant_assets.day_range import CURRENT_DAY, by_day
from resources.clickhouse import TableSpec
from resources.clickhouse_io import COLUMNS_KEY, EXPRESSIONS_KEY, WINDOW_KEY, table_metadata

IO_MANAGER = "clickhouse_io"
# The history's assets: a backfill of a range is one run, each asset one step for all its days.
RANGE_IN_ONE_RUN = BackfillPolicy.single_run()
# The other daily assets (ticks and order books among their inputs) backfill a range in runs of
# at most this many days, each asset one step a run: a day of realistic order books is ~0.5M
# rows, so a run's memory stays within a few GB.
DAYS_PER_RUN = 10
RANGE_IN_RUNS = BackfillPolicy.multi_run(max_partitions_per_run=DAYS_PER_RUN)
# A job holding both (the daily pipeline) backfills in runs of DAYS_PER_RUN days, which Dagster
# warns about whenever it resolves such a job: the intended behaviour, nothing to act on.
warnings.filterwarnings(
    "ignore", message=r"Asset job \w+ materializes assets with varying BackfillPolicies"
)
# Dagster marks the `backfill_policy` parameter beta at every asset that sets it: nothing for a
# user to act on (the policy is ours, and Dagster is pinned).
warnings.filterwarnings(
    "ignore", message=r"Parameter `backfill_policy` of function", category=BetaWarning
)


def partition_day(context: AssetExecutionContext) -> pd.Timestamp:
    """The trading day of the run's partition (in a range step, the day being computed). A
    run started with a partition tag of a non-trading day (a Saturday, a holiday) skips
    Dagster's own check: refused here, before the asset does anything."""
    current = CURRENT_DAY.get()
    if current is not None:
        return current
    key = context.partition_key
    if not TRADING_DAYS.has_partition_key(key):
        raise Failure(
            f"{key} is not a trading day of the exchange calendar (or is outside the "
            "partitions' range): nothing is computed or stored for it"
        )
    return pd.Timestamp(key)


def _mapping(start_offset: int, end_offset: int) -> TimeWindowPartitionMapping:
    # Windows reaching before the first partition are clipped there (the start of history);
    # Dagster marks the flag beta.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BetaWarning)
        return TimeWindowPartitionMapping(
            start_offset=start_offset,
            end_offset=end_offset,
            allow_nonexistent_upstream_partitions=True,
        )


def same_day(
    key: str | None = None,
    columns: Sequence[str] | None = None,
    computed: Mapping[str, str] | None = None,
) -> AssetIn:
    """The upstream partition of the same trading day: every column, or only `columns`, plus
    `computed` ones (name -> ClickHouse expression over the table's columns) that ClickHouse
    computes so that only the result is read."""
    meta: dict[str, object] = {}
    if columns is not None:
        meta[COLUMNS_KEY] = list(columns)
    if computed:
        meta[EXPRESSIONS_KEY] = dict(computed)
    return AssetIn(key=key, metadata=meta or None)


def window(days: int, key: str | None = None, columns: Sequence[str] | None = None) -> AssetIn:
    """The `days` trading days that end on the reading asset's day. Days before the upstream's
    first stored partition are left out (the stored history starts later); any other day
    that is not stored fails the step with the days to backfill."""
    if days < 1:
        raise ValueError(f"a window has at least one day, not {days}")
    meta: dict[str, object] = {WINDOW_KEY: "history"}
    if columns is not None:
        meta[COLUMNS_KEY] = list(columns)
    return AssetIn(key=key, partition_mapping=_mapping(-(days - 1), 0), metadata=meta)


def stored_within(
    days: int, key: str | None = None, columns: Sequence[str] | None = None
) -> AssetIn:
    """Whatever partitions of the `days` trading days ending on the reading asset's day are
    stored, none required: the input of an asset that an occasional job writes (the factor
    mining), of which the reader takes the newest."""
    if days < 1:
        raise ValueError(f"a window has at least one day, not {days}")
    meta: dict[str, object] = {WINDOW_KEY: "sparse"}
    if columns is not None:
        meta[COLUMNS_KEY] = list(columns)
    return AssetIn(key=key, partition_mapping=_mapping(-(days - 1), 0), metadata=meta)


def previous_day(key: str, columns: Sequence[str] | None = None) -> AssetIn:
    """The previous trading day's partition of `key` (an asset reading itself: a chain), empty
    at the start of the stored history; a gap inside the history fails the step."""
    meta: dict[str, object] = {WINDOW_KEY: "chain"}
    if columns is not None:
        meta[COLUMNS_KEY] = list(columns)
    return AssetIn(key=key, partition_mapping=_mapping(-1, -1), metadata=meta)


def daily_table(
    spec: TableSpec,
    *,
    group: str,
    kinds: Sequence[str] = ("pandas",),
    **asset_kwargs: object,
) -> Callable:
    """`@asset` of a trading-day partition stored in `spec`'s table, named like the table.
    Its body is written for one day; given a partition range (a backfill: in one run for
    assets declared with `backfill_policy=RANGE_IN_ONE_RUN`, in runs of `DAYS_PER_RUN` days
    by default) it runs day by day in one step (quant_assets/day_range.py)."""
    asset_kwargs.setdefault("backfill_policy", RANGE_IN_RUNS)
    make = asset(
        name=spec.name,
        partitions_def=TRADING_DAYS,
        group_name=group,
        io_manager_key=asset_kwargs.pop("io_manager_key", IO_MANAGER),
        metadata=table_metadata(spec),
        kinds={"clickhouse", *kinds},
        **asset_kwargs,
    )
    ins = dict(asset_kwargs.get("ins") or {})  # type: ignore[call-overload]
    return lambda fn: make(by_day(fn, ins, spec.name))
