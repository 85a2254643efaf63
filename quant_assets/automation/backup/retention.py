"""Which backups a retention policy keeps: the newest of each of the last N days that have a
backup, and the newest of each of the last M ISO weeks that have one (as restic's
--keep-daily/--keep-weekly count: days and weeks without a backup do not use up the quota).

Only complete backups count and can be kept; the newest complete one is always kept. An
incomplete backup (started, no manifest) older than the newest complete one was abandoned
(its run died) and its marker goes; a newer one may still be running and is left alone.
Pure functions on ids and times: no store, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

ID_FORMAT = "%Y%m%dT%H%M%SZ"  # a backup id is its start time in UTC: 20240603T173000Z


def backup_id(moment: datetime) -> str:
    """The id of a backup started at `moment` (an aware datetime; naive means UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime(ID_FORMAT)


def backup_time(backup: str) -> datetime:
    """The start time (UTC) a backup id encodes; ValueError naming the id otherwise."""
    try:
        return datetime.strptime(backup, ID_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise ValueError(f"{backup!r} is not a backup id (like 20240603T173000Z)") from None


@dataclass(frozen=True)
class BackupEntry:
    """A backup in the store: its id, and whether its manifest exists."""

    backup_id: str
    complete: bool

    @property
    def started(self) -> datetime:
        return backup_time(self.backup_id)


@dataclass
class RetentionPlan:
    """The decision: complete backups kept (with why) and deleted; incomplete backups that
    were abandoned (to clean up) and those that may still be running (left alone)."""

    keep: dict[str, list[str]] = field(default_factory=dict)  # id -> reasons
    delete: list[str] = field(default_factory=list)
    abandoned: list[str] = field(default_factory=list)
    running: list[str] = field(default_factory=list)


def plan_retention(
    backups: Iterable[BackupEntry], keep_daily: int, keep_weekly: int
) -> RetentionPlan:
    """Keep the newest complete backup of each of the `keep_daily` most recent days (UTC)
    with one, and of each of the `keep_weekly` most recent ISO weeks with one; the newest
    complete backup always. Everything else complete is deleted."""
    if keep_daily < 0 or keep_weekly < 0:
        raise ValueError(
            f"retention counts must be at least 0 (daily {keep_daily}, weekly {keep_weekly})"
        )
    entries = sorted(backups, key=lambda b: b.started, reverse=True)
    complete = [b.backup_id for b in entries if b.complete]
    plan = RetentionPlan()
    if complete:
        plan.keep[complete[0]] = ["latest"]
    for reason, quota, period in (
        ("daily", keep_daily, lambda t: t.date().isoformat()),
        ("weekly", keep_weekly, lambda t: "{}-W{:02d}".format(*t.isocalendar()[:2])),
    ):
        seen: set[str] = set()
        for b in complete:  # newest first: the first of a period is its newest
            key = period(backup_time(b))
            if key in seen:
                continue
            if len(seen) == quota:
                break
            seen.add(key)
            plan.keep.setdefault(b, []).append(f"{reason} {key}")
    plan.delete = [b for b in complete if b not in plan.keep]
    newest = backup_time(complete[0]) if complete else None
    for b in entries:
        if not b.complete:
            older = newest is not None and b.started < newest
            (plan.abandoned if older else plan.running).append(b.backup_id)
    return plan
