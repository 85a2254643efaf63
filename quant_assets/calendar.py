"""Exchange trading calendar (Shanghai/Shenzhen) and the trading-day partitions of every daily asset.

Holidays come from exchange_calendars' XSHG calendar, which is maintained upstream and covers
2006 to the end of its published year. Later years can be extended by configuration
(``QUANT_EXTRA_HOLIDAYS``: comma-separated ISO dates); beyond XSHG's last session, weekdays
that are not listed there count as trading days.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache

import exchange_calendars as xcals
import pandas as pd
from dagster import TimeWindowPartitionsDefinition

from resources.settings import setting

TZ = "Asia/Shanghai"  # the exchanges' time zone: trading days, sessions, timestamps
CALENDAR_START = pd.Timestamp("2005-01-04")  # the least QUANT_PARTITIONS_START allowed


@lru_cache(maxsize=1)
def _xshg() -> xcals.ExchangeCalendar:
    return xcals.get_calendar("XSHG", start=CALENDAR_START)


def _extra_holidays_from_env() -> tuple[str, ...]:
    return tuple(d.isoformat() for d in setting("QUANT_EXTRA_HOLIDAYS"))


def trading_days(
    start: str | datetime | pd.Timestamp,
    end: str | datetime | pd.Timestamp,
    extra_holidays: Iterable[str] | None = None,
) -> pd.DatetimeIndex:
    """Trading days in [start, end] as tz-naive midnight timestamps."""
    start, end = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    if start < CALENDAR_START:
        raise ValueError(
            f"the calendar starts on {CALENDAR_START.date()}; asked for {start.date()}"
        )
    holidays = pd.DatetimeIndex(
        list(extra_holidays) if extra_holidays is not None else list(_extra_holidays_from_env())
    )
    cal = _xshg()
    last = cal.last_session.tz_localize(None) if cal.last_session.tz else cal.last_session
    days = pd.DatetimeIndex([])
    if start <= last:
        known = cal.sessions_in_range(start, min(end, last))
        days = pd.DatetimeIndex(known).tz_localize(None) if known.tz else pd.DatetimeIndex(known)
    if end > last:
        days = days.append(pd.bdate_range(max(start, last + pd.Timedelta(days=1)), end))
    days = days[~days.isin(holidays)]
    return pd.DatetimeIndex(days.astype("datetime64[ns]"), name="date")


def is_trading_day(day: str | datetime | pd.Timestamp) -> bool:
    """True if `day` is a trading day of the exchanges."""
    day = pd.Timestamp(day).normalize()
    return len(trading_days(day, day)) == 1


def previous_trading_day(day: str | datetime | pd.Timestamp, n: int = 1) -> pd.Timestamp:
    """The trading day `n` sessions before `day` (which need not be a trading day)."""
    day = pd.Timestamp(day).normalize()
    window = trading_days(max(CALENDAR_START, day - pd.Timedelta(days=n * 3 + 30)), day)
    window = window[window < day]
    if len(window) < n:
        raise ValueError(f"no trading day {n} sessions before {day.date()}")
    return window[-n]


def next_trading_day(day: str | datetime | pd.Timestamp, n: int = 1) -> pd.Timestamp:
    """The trading day `n` sessions after `day`."""
    day = pd.Timestamp(day).normalize()
    window = trading_days(day, day + pd.Timedelta(days=n * 3 + 30))
    window = window[window > day]
    return window[n - 1]


def first_partition_day() -> pd.Timestamp:
    """QUANT_PARTITIONS_START, or when unset the first day of the demo's window (the
    QUANT_DEMO_WARMUP_DAYS + QUANT_DEMO_DAYS trading days ending on QUANT_DEMO_END), so the
    UI of a demo lists the days it fills instead of years of missing partitions."""
    chosen = setting("QUANT_PARTITIONS_START")
    if chosen is not None:
        return pd.Timestamp(chosen)
    end = pd.Timestamp(setting("QUANT_DEMO_END"))
    n = setting("QUANT_DEMO_WARMUP_DAYS") + setting("QUANT_DEMO_DAYS")
    # about 1.5 calendar days a trading day; twice that and two months cover any holidays
    days = trading_days(max(CALENDAR_START, end - pd.Timedelta(days=2 * n + 60)), end)
    return days[-n] if len(days) >= n else days[0]


def trading_day_partitions(
    start: str | None = None, end: str | None = None
) -> TimeWindowPartitionsDefinition:
    """Daily partitions with one key per trading day (weekday cron minus exchange holidays).

    A partition is the trading day whose close its data belongs to; recommendations made from
    it are for the next trading day. `end_offset=1` makes a day's partition exist from the
    day's midnight (Shanghai), so that a run after the close (17:30) or a landing file that
    arrives on the day itself can target it; Dagster would otherwise create it only when its
    window closes, at the next weekday's midnight. The holidays are listed up to the end of
    the calendar (XSHG's published years plus QUANT_EXTRA_HOLIDAYS), so the partitions do not
    depend on the day the code location was loaded.
    """
    start = start or f"{first_partition_day():%Y-%m-%d}"
    horizon = _xshg().last_session
    horizon = (horizon.tz_localize(None) if horizon.tz else horizon).normalize()
    for extra in _extra_holidays_from_env():
        horizon = max(horizon, pd.Timestamp(extra))
    if end:
        horizon = min(horizon, pd.Timestamp(end) + pd.Timedelta(days=7))
    weekdays = pd.bdate_range(start, horizon)
    holidays = weekdays.difference(trading_days(start, horizon))
    return TimeWindowPartitionsDefinition(
        start=start,
        end=end,
        fmt="%Y-%m-%d",
        cron_schedule="0 0 * * 1-5",
        timezone=TZ,
        end_offset=0 if end else 1,
        exclusions=[d.to_pydatetime() for d in holidays],
    )


TRADING_DAYS = trading_day_partitions()
