"""One step for a range of trading days: an asset written for one day runs over every day of a
partition range in order, inside a single step of a single run (a single-run backfill).

The asset's body stays the one-day function the daily run calls. Given a range, the step
reads each input once for the whole range (the IO manager serves the union of the days'
windows), and for every day hands the body exactly what that day's own run would read: the
same day's rows, the window of trading days ending on it, or for a chain (`previous_day` of
itself) what the body returned for the day before. The days' frames are concatenated into one
output per asset, which the IO manager writes back as one partition per day (an output that
is not a frame, such as a model, becomes a mapping day -> value for its IO manager); each
day's output metadata goes to that day's materialization, so the UI's per-partition plots
look as they would after daily runs (a plot still being drawn, `Pending`, is waited for once
all days are computed); the days' check results become one result (failed if
any day failed, with those days named). So a range run stores what the day-by-day runs would
have stored, with the run, step, event and IO overhead paid once instead of once a day.

A day whose output the body withholds (an audit that failed) stops the range before anything
is published: the step fails naming that day.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from contextvars import ContextVar
from typing import Any

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetIn,
    Failure,
    MetadataValue,
    Output,
    TimeWindowPartitionMapping,
)

from quant_assets.calendar import TRADING_DAYS
from quant_assets.plotting import png_markdown
from resources.clickhouse_io import COLUMNS_KEY, EXPRESSIONS_KEY, ROW_DAYS_KEY, WITHHELD_KEY

# The day a range step is computing now (read by wiring.partition_day).
CURRENT_DAY: ContextVar[pd.Timestamp | None] = ContextVar("current_day", default=None)


def range_days(context: AssetExecutionContext) -> list[str]:
    """The trading days of the step's partition range (one day in a daily run)."""
    if context.has_partition_key_range:
        return list(context.partition_keys)
    return [context.partition_key]


def _offsets(spec: AssetIn) -> tuple[int, int]:
    mapping = spec.partition_mapping
    if isinstance(mapping, TimeWindowPartitionMapping):
        return mapping.start_offset, mapping.end_offset
    return 0, 0


def _requested(spec: AssetIn) -> list[str] | None:
    """The columns a one-day run of the input reads: those asked for and the computed ones."""
    meta = spec.metadata or {}
    columns = meta.get(COLUMNS_KEY)
    if columns is None:
        return None
    computed = meta.get(EXPRESSIONS_KEY) or {}
    return [*getattr(columns, "value", columns), *getattr(computed, "value", computed)]


class _DayInputs:
    """Each input's frame for the whole range, cut into what one day's run would read."""

    def __init__(self, own: str, ins: Mapping[str, AssetIn], frames: Mapping[str, pd.DataFrame]):
        self.own, self.ins, self.frames = own, ins, frames
        keys = TRADING_DAYS.get_partition_keys()
        self.position = {k: i for i, k in enumerate(keys)}
        self.keys = keys
        self.previous: pd.DataFrame | None = None  # the chain: the body's output of the day before

    def _window(self, day: str, start: int, end: int) -> tuple[pd.Timestamp, pd.Timestamp]:
        i = self.position[day]
        lo, hi = max(i + start, 0), max(i + end, 0)
        return pd.Timestamp(self.keys[lo]), pd.Timestamp(self.keys[hi])

    def of(self, name: str, day: str, first: bool) -> pd.DataFrame:
        spec, frame = self.ins[name], self.frames[name]
        wanted = _requested(spec)
        chain = (spec.key is not None and spec.key.to_user_string() == self.own) or (
            spec.key is None and name == self.own
        )
        if isinstance(frame, Mapping):  # a value per day (a model): the day's own
            return frame[day]
        if chain and not first:
            assert self.previous is not None
            frame = self.previous
        else:
            start, end = _offsets(spec)
            lo, hi = self._window(day, start, end)
            dates = pd.to_datetime(frame["date"])
            frame = frame[(dates >= lo) & (dates <= hi)]
        if wanted is not None:
            frame = frame[[c for c in wanted if c in frame.columns]]
        return frame.reset_index(drop=True)


def by_day(fn: Callable, ins: Mapping[str, AssetIn], own: str) -> Callable:
    """`fn`, a one-day asset body (returning its frame, or yielding Outputs and
    AssetCheckResults), made to run
    over a partition range day by day (see the module docstring). `ins` are the asset's
    inputs as declared, `own` its name (for a chain input of itself)."""
    params = list(inspect.signature(fn).parameters)
    takes_context = bool(params) and params[0] == "context"

    @functools.wraps(fn)
    def compute(*args, **kwargs) -> Iterator:
        context = args[0] if takes_context else AssetExecutionContext.get()
        days = range_days(context)
        if len(days) == 1:
            for item in _items(fn, args, kwargs):
                if isinstance(item, Output) and item.metadata:
                    item = item.with_metadata(_resolved(item.metadata))
                yield item
            return
        inputs = _DayInputs(own, ins, {k: v for k, v in kwargs.items() if k in ins})
        frames: dict[str | None, list[pd.DataFrame]] = {}
        spans: dict[str | None, list[tuple[str, int]]] = {}  # the rows of each day, in order
        checks: dict[tuple, list[tuple[str, AssetCheckResult]]] = {}
        day_metadata: list[tuple[dict, object, str]] = []  # resolved once every day is computed
        for i, day in enumerate(days):
            token = CURRENT_DAY.set(pd.Timestamp(day))
            try:
                day_kwargs = {
                    k: (inputs.of(k, day, first=i == 0) if k in ins else v)
                    for k, v in kwargs.items()
                }
                for item in _items(fn, args, day_kwargs):
                    if isinstance(item, Output):
                        meta = dict(item.metadata or {})
                        if WITHHELD_KEY in meta:
                            raise Failure(
                                f"{own}: {day} of the range {days[0]}..{days[-1]} was not "
                                f"published: {getattr(meta[WITHHELD_KEY], 'value', '')}; "
                                "nothing of the range is (rerun the range once it is fixed)"
                            )
                        value = item.value
                        frames.setdefault(item.output_name, []).append(value)
                        if isinstance(value, pd.DataFrame):
                            spans.setdefault(item.output_name, []).append((day, len(value)))
                        if meta:
                            key = context.asset_key_for_output(item.output_name or "result")
                            day_metadata.append((meta, key, day))
                        if item.output_name in (None, "result") or len(frames) == 1:
                            inputs.previous = value
                    elif isinstance(item, AssetCheckResult):
                        checks.setdefault((item.asset_key, item.check_name), []).append((day, item))
                    else:
                        raise TypeError(f"{own} yielded {type(item).__name__} in a range step")
            finally:
                CURRENT_DAY.reset(token)
        for meta, key, day in day_metadata:
            context.add_asset_metadata(_resolved(meta), asset_key=key, partition_key=day)
        for name, parts in frames.items():
            meta = {"days": len(days), "range": f"{days[0]}..{days[-1]}"}
            if name in spans:
                value = pd.concat(parts, ignore_index=True)
                # a frame without a date column (the IO manager fills it) says which rows are
                # which day
                value.attrs[ROW_DAYS_KEY] = spans[name]
            else:
                value = dict(zip(days, parts, strict=True))
            yield (
                Output(value, metadata=meta)
                if name is None
                else Output(value, output_name=name, metadata=meta)
            )
        for results in checks.values():
            yield _combined(results)

    return compute


class Pending(MetadataValue):
    """Output metadata still being made elsewhere (a plot in the drawing process, see
    `quant_assets.plotting.draw`): `by_day` waits for `future` and records `wrap` of its
    result, once the step's days are computed. Only `by_day` bodies may yield it."""

    def __init__(self, future: Future, wrap: Callable[[Any], object] = lambda value: value):
        self.future, self.wrap = future, wrap

    @property
    def value(self) -> object:
        return self.wrap(self.future.result())


def pending_png(png: Future[bytes], title: str) -> Pending:
    """A PNG still being drawn, recorded as `png_markdown`'s markdown under `title`."""
    return Pending(png, lambda data: MetadataValue.md(png_markdown(data, title)))


def _resolved(metadata: Mapping[str, object]) -> dict[str, object]:
    """The metadata with each Pending value replaced by what it becomes."""
    return {k: v.value if isinstance(v, Pending) else v for k, v in metadata.items()}


def _items(fn: Callable, args: tuple, kwargs: dict) -> Iterator:
    """What a body yields, or what it returns as an Output."""
    if inspect.isgeneratorfunction(fn):
        yield from fn(*args, **kwargs)
        return
    value = fn(*args, **kwargs)
    yield value if isinstance(value, (Output, AssetCheckResult)) else Output(value)


def _combined(results: list[tuple[str, AssetCheckResult]]) -> AssetCheckResult:
    """One check result for the range: failed if any day failed, naming the days."""
    failed = [(day, r) for day, r in results if not r.passed]
    last_day, last = (failed or results)[-1]
    severity = (
        AssetCheckSeverity.ERROR
        if any(r.severity == AssetCheckSeverity.ERROR for _, r in failed)
        else (failed[-1][1].severity if failed else last.severity)
    )
    return AssetCheckResult(
        passed=not failed,
        asset_key=last.asset_key,
        check_name=last.check_name,
        severity=severity,
        metadata={
            **(last.metadata or {}),
            "days": len(results),
            "failed_days": MetadataValue.json([day for day, _ in failed]),
            "shown_day": last_day,
        },
    )
