"""Sensors: ingest a trading day as soon as its landing-zone files are complete.

`landing_zone_sensor` watches the market resource's landing zone (`market.source ==
"landing"`) and requests one `market_ingest` run per complete trading day. The run key is the
day plus a fingerprint of the day's files (names, sizes, modification times): an unchanged
day is never requested twice, a re-delivered file requests a fresh run.

The cursor (JSON) remembers what was requested: `recent` maps the days of the last
`LOOKBACK_DAYS` to their fingerprint, so a re-delivery there is noticed; older days move to
`settled` and are not fingerprinted again (a vendor re-delivering a month-old file is asked to
trigger that run by hand). A day that is new to the cursor is always requested, however old.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date as Date
from datetime import timedelta
from pathlib import Path

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from quant_assets.automation.jobs import market_ingest
from quant_assets.calendar import TRADING_DAYS, is_trading_day
from quant_assets.market.sources.landing import FORMATS, LANDING_KINDS, complete_days, landing_path
from resources.market import MarketDataResource

LOOKBACK_DAYS = 14  # calendar days in which a re-delivered file triggers a new run
MAX_RUNS_PER_TICK = 25  # oldest first; the rest follow on the next ticks
FINGERPRINT_TAG = "quant/landing_fingerprint"


def day_files(root: str | Path, day: Date) -> list[Path]:
    """The landing files of `day`, every kind and format present (dot-files excluded)."""
    candidates = (landing_path(root, kind, day, fmt) for kind in LANDING_KINDS for fmt in FORMATS)
    return [p for p in candidates if p.is_file()]


def fingerprint(root: str | Path, day: Date) -> str:
    """A short hash of the day's files: relative name, size and mtime (ns) of each."""
    root = Path(root)
    parts = []
    for path in sorted(day_files(root, day)):
        st = path.stat()
        parts.append(f"{path.relative_to(root).as_posix()}|{st.st_size}|{st.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _load_cursor(raw: str | None) -> tuple[dict[str, str], set[str]]:
    if not raw:
        return {}, set()
    state = json.loads(raw)
    return dict(state.get("recent", {})), set(state.get("settled", []))


def _dump_cursor(recent: dict[str, str], settled: set[str]) -> str:
    newest = max([*recent, *settled], default=None)
    if newest is not None:  # days out of the window stop being fingerprinted
        floor = (Date.fromisoformat(newest) - timedelta(days=LOOKBACK_DAYS)).isoformat()
        for day in [d for d in recent if d < floor]:
            settled.add(day)
            del recent[day]
    return json.dumps({"recent": dict(sorted(recent.items())), "settled": sorted(settled)})


@sensor(
    job=market_ingest,
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.STOPPED,
    description="Requests a market_ingest run for each trading day whose landing files are "
    "complete; a re-delivered file requests a new run.",
)
def landing_zone_sensor(context: SensorEvaluationContext, market: MarketDataResource):
    """One run per complete trading day of the landing zone, keyed by the files' fingerprint."""
    if market.source != "landing":
        return SkipReason(
            f"market source is {market.source!r} (simulated data is generated on demand); "
            "the landing-zone sensor only watches source='landing'"
        )
    root = Path(market.landing_dir)
    if not root.is_dir():
        return SkipReason(f"landing zone {root} does not exist")
    recent, settled = _load_cursor(context.cursor)
    requests: list[RunRequest] = []
    for day in complete_days(root, market.delivered()):
        key = day.isoformat()
        if key in settled:
            continue
        fp = fingerprint(root, day)
        if recent.get(key) == fp:
            continue
        if day < TRADING_DAYS.start.date():  # before QUANT_PARTITIONS_START: never ingested
            # (and possibly before the calendar, which could not say if it is a trading day)
            context.log.info(f"landing zone: {key} precedes the first daily partition")
            recent[key] = fp  # logged once, again only if its files change
            continue
        if not is_trading_day(day):
            context.log.info(f"landing zone: {key} is not a trading day; its files are skipped")
            recent[key] = fp
            continue
        if not TRADING_DAYS.has_partition_key(key):
            continue  # the day has not begun in the partitions' time zone yet: next tick
        if len(requests) >= MAX_RUNS_PER_TICK:
            break
        requests.append(
            RunRequest(
                run_key=f"{key}:{fp}",
                partition_key=key,
                tags={FINGERPRINT_TAG: fp},
            )
        )
        recent[key] = fp
    cursor = _dump_cursor(recent, settled)
    if not requests:
        return SensorResult(skip_reason=SkipReason("no new or changed complete day"), cursor=cursor)
    return SensorResult(run_requests=requests, cursor=cursor)
