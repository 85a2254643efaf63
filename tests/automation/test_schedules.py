"""The daily schedule through Dagster's tick evaluation with the code location's definitions,
at real moments: every cron tick of a normal week, of the 2024 Spring Festival and of the 2024
National Day week, with Dagster's clock frozen at the tick (a partition that does not exist yet
at that moment makes the evaluation fail, as it would in the daemon)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from dagster import DagsterInstance, build_schedule_context
from dagster._core.test_utils import freeze_time
from dagster._utils.schedules import schedule_execution_time_iterator

from quant_assets.calendar import TRADING_DAYS
from quant_assets.definitions import build_definitions

SH = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def location():
    defs = build_definitions()
    return defs.get_repository_def(), defs.resolve_schedule_def("daily_after_close")


def _ticks(start: str, end: str, schedule) -> list[datetime]:
    """Every moment the schedule's cron fires in [start, end) (Shanghai dates)."""
    first = datetime.fromisoformat(start).replace(tzinfo=SH).timestamp()
    last = datetime.fromisoformat(end).replace(tzinfo=SH)
    out = []
    for t in schedule_execution_time_iterator(
        first, schedule.cron_schedule, schedule.execution_timezone
    ):
        if t >= last:
            return out
        out.append(t)
    return out


def _evaluate(location, moment: datetime):
    repo, schedule = location
    with freeze_time(moment):
        with build_schedule_context(
            scheduled_execution_time=moment,
            repository_def=repo,
            instance=DagsterInstance.ephemeral(),
        ) as context:
            data = schedule.evaluate_tick(context)
        exists = [TRADING_DAYS.has_partition_key(r.partition_key) for r in data.run_requests or []]
    return data, exists


def _requested(location, start: str, end: str) -> dict[str, str | None]:
    """Tick date -> requested partition, or the skip message."""
    out = {}
    for moment in _ticks(start, end, location[1]):
        data, exists = _evaluate(location, moment)
        assert all(exists)
        day = moment.date().isoformat()
        if data.run_requests:
            (request,) = data.run_requests
            assert request.run_key == request.partition_key
            out[day] = request.partition_key
        else:
            out[day] = data.skip_message
    return out


def test_a_normal_week_runs_each_day_after_its_close(location):
    ticks = _ticks("2024-03-09", "2024-03-18", location[1])
    assert [t.strftime("%a %H:%M") for t in ticks] == [
        "Mon 17:30",
        "Tue 17:30",
        "Wed 17:30",
        "Thu 17:30",
        "Fri 17:30",
    ]
    assert ticks[0].tzinfo is not None and ticks[0].utcoffset().total_seconds() == 8 * 3600
    assert _requested(location, "2024-03-09", "2024-03-18") == {
        d: d for d in ["2024-03-11", "2024-03-12", "2024-03-13", "2024-03-14", "2024-03-15"]
    }


def _holiday(day: str) -> str:
    return f"{day} is not a trading day of the Shanghai/Shenzhen exchanges"


def test_the_2024_spring_festival_runs_before_and_after_and_skips_the_holiday(location):
    got = _requested(location, "2024-02-05", "2024-02-20")
    runs = {d for d, v in got.items() if v == d}
    assert runs == {"2024-02-05", "2024-02-06", "2024-02-07", "2024-02-08", "2024-02-19"}
    for day in ["2024-02-09", "2024-02-12", "2024-02-13", "2024-02-14", "2024-02-15", "2024-02-16"]:
        assert got[day] == _holiday(day)


def test_the_2024_national_day_week_is_skipped(location):
    got = _requested(location, "2024-09-27", "2024-10-09")
    assert got["2024-09-27"] == "2024-09-27" and got["2024-09-30"] == "2024-09-30"
    assert got["2024-10-08"] == "2024-10-08"
    for day in ["2024-10-01", "2024-10-02", "2024-10-03", "2024-10-04", "2024-10-07"]:
        assert got[day] == _holiday(day)


def test_a_friday_evening_tick_targets_that_friday_which_exists_at_that_moment(location):
    friday = datetime(2026, 11, 27, 17, 30, tzinfo=SH)  # the tick of the original report
    data, exists = _evaluate(location, friday)
    assert [r.partition_key for r in data.run_requests] == ["2026-11-27"] and exists == [True]
    with freeze_time(friday):
        keys = TRADING_DAYS.get_partition_keys()
    assert keys[-1] == "2026-11-27"  # the day's partition exists from its morning on
