import pandas as pd
import pytest

from quant_assets.calendar import (
    TRADING_DAYS,
    is_trading_day,
    next_trading_day,
    previous_trading_day,
    trading_day_partitions,
    trading_days,
)


def test_spring_festival_and_national_day_are_closed():
    days = trading_days("2024-02-01", "2024-02-29")
    assert pd.Timestamp("2024-02-08") in days
    for holiday in ["2024-02-09", "2024-02-12", "2024-02-16"]:
        assert pd.Timestamp(holiday) not in days
    assert not is_trading_day("2024-10-01")
    assert not is_trading_day("2024-10-05")  # a Saturday
    assert is_trading_day("2024-10-08")


def test_neighbours_skip_holidays():
    assert previous_trading_day("2024-02-19") == pd.Timestamp("2024-02-08")
    assert next_trading_day("2024-02-08") == pd.Timestamp("2024-02-19")
    assert previous_trading_day("2024-02-19", 2) == pd.Timestamp("2024-02-07")


def test_partitions_are_exactly_the_trading_days():
    parts = trading_day_partitions(start="2023-01-03", end="2024-12-31")
    keys = parts.get_partition_keys()
    expected = trading_days("2023-01-03", "2024-12-30").strftime("%Y-%m-%d").tolist()
    assert keys == expected
    assert "2024-02-09" not in keys and "2024-02-19" in keys
    assert TRADING_DAYS.timezone == "Asia/Shanghai"


def test_configuration_extends_the_calendar_beyond_its_last_year(monkeypatch):
    monkeypatch.setenv("QUANT_EXTRA_HOLIDAYS", "2027-01-01, 2027-02-08")
    days = trading_days("2026-12-30", "2027-01-06")
    assert list(days.strftime("%m-%d")) == ["12-30", "12-31", "01-04", "01-05", "01-06"]
    assert pd.Timestamp("2027-02-08") not in trading_days("2027-02-01", "2027-02-12")


def test_dates_before_the_calendar_are_refused():
    with pytest.raises(ValueError, match="calendar starts"):
        trading_days("1999-01-04", "1999-02-01")
