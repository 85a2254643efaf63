"""Settings are declared once and checked at the entry points: a misspelled name, a value of the
wrong type or an impossible one stops `python -m quant_assets.demo` with one line and exit
status 2 before any work; the README's table is the declaration rendered; under `make` an
exported QUANT_DATA_DIR wins and DAGSTER_HOME follows it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import EnvVar

from resources.settings import (
    README,
    SETTINGS,
    SettingsError,
    check_environment,
    dagster_value,
    setting,
    with_table,
)

ROOT = Path(__file__).resolve().parents[1]


def _demo(tmp_path: Path, **bad: str) -> subprocess.CompletedProcess[str]:
    """`python -m quant_assets.demo` in a clean environment plus `bad`, data in tmp_path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUANT_")}
    env |= {
        "QUANT_DATA_DIR": str(tmp_path / "data"),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        **bad,
    }
    return subprocess.run(
        [sys.executable, "-m", "quant_assets.demo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("bad", "line"),
    [
        pytest.param(
            {"QUANT_DEMO_DAY": "30"},
            "error: QUANT_DEMO_DAY='30' is not a setting of this project; "
            "did you mean QUANT_DEMO_DAYS? (the settings: README.md, Configuration)",
            id="unknown-name",
        ),
        pytest.param(
            {"QUANT_DEMO_DAYS": "sixty"},
            "error: QUANT_DEMO_DAYS='sixty' is not an integer; allowed: an integer, at least 4",
            id="wrong-type",
        ),
        pytest.param(
            {"QUANT_MARKET_SOURCE": "simulatd"},
            "error: QUANT_MARKET_SOURCE='simulatd' is not one of simulated, landing, baostock; "
            "did you mean simulated?",
            id="unknown-choice",
        ),
        pytest.param(
            {"QUANT_DEMO_DAYS": "2"},
            "error: QUANT_DEMO_DAYS='2' is too small; allowed: an integer, at least 4",
            id="too-few-demo-days",
        ),
        pytest.param(
            {"QUANT_DEMO_END": "2024-06-29"},
            "error: QUANT_DEMO_END='2024-06-29' is not a trading day (a Saturday); "
            "allowed: a trading day, such as 2024-06-28 (the one before)",
            id="end-not-a-trading-day",
        ),
        pytest.param(
            {"QUANT_DEMO_END": "2023-03-01", "QUANT_PARTITIONS_START": "2023-01-03"},
            "error: QUANT_DEMO_END='2023-03-01' with QUANT_DEMO_DAYS=60 and "
            "QUANT_DEMO_WARMUP_DAYS=50 needs 110 trading days from "
            "QUANT_PARTITIONS_START=2023-01-03, which has 37; allowed: a later end, fewer days "
            "or an earlier QUANT_PARTITIONS_START",
            id="window-before-the-first-partition",
        ),
    ],
)
def test_the_demo_refuses_a_bad_setting_with_one_line_before_any_work(tmp_path, bad, line):
    done = _demo(tmp_path, **bad)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.splitlines() == [line]
    assert done.stdout == ""
    assert not (tmp_path / "data").exists()  # nothing was created: no work started


def test_a_secret_or_a_password_is_never_shown_in_an_error():
    with pytest.raises(SettingsError) as refused:
        check_environment({"QUANT_LLM_APIKEY": "sk-very-secret"})
    assert "sk-very-secret" not in str(refused.value)
    assert "QUANT_LLM_APIKEY='***'" in str(refused.value)
    assert "did you mean QUANT_LLM_API_KEY?" in str(refused.value)
    with pytest.raises(SettingsError) as refused:
        check_environment({"QUANT_CLICKHOUSE_DSN": "htp://quant:hunter2@host:8123"})
    assert str(refused.value) == (
        "QUANT_CLICKHOUSE_DSN='htp://quant:***@host:8123' is not a URL of a known kind; "
        "allowed: chdb://... or http://... or https://..."
    )


def test_check_environment_accepts_the_defaults_and_every_documented_value():
    check_environment({})
    check_environment(
        {
            "QUANT_CLICKHOUSE_DSN": "http://quant:secret@clickhouse-1:8123",
            "QUANT_MARKET_SOURCE": "baostock",
            "QUANT_SIM_SNAPSHOT_SECONDS": "15",
            "QUANT_EXTRA_HOLIDAYS": "2027-01-01, 2027-02-08",
            "QUANT_DEMO_DAYS": "4",
            "QUANT_DEMO_WARMUP_DAYS": "29",
            "QUANT_LLM_API_KEY": "anything",
            "MLFLOW_SOMETHING_ELSE": "not ours to check",
        }
    )


def test_several_problems_give_the_first_and_a_count():
    with pytest.raises(SettingsError, match=r"^QUANT_X='1' .* \(and 1 more\)$"):
        check_environment({"QUANT_X": "1", "QUANT_SIM_SEED": "-1"})


def test_values_are_parsed_and_empty_means_unset(monkeypatch, tmp_path):
    monkeypatch.setenv("QUANT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("QUANT_DEMO_DAYS", "")
    assert setting("QUANT_DEMO_DAYS") == 60
    monkeypatch.setenv("QUANT_DEMO_DAYS", " 8 ")
    assert setting("QUANT_DEMO_DAYS") == 8
    assert setting("QUANT_LANDING_DIR") == tmp_path / "landing"
    assert setting("QUANT_CLICKHOUSE_DSN") == f"chdb://{tmp_path / 'clickhouse'}"
    with pytest.raises(KeyError, match="QUANT_NOPE is not declared"):
        setting("QUANT_NOPE")


def test_text_reaches_dagster_as_an_env_var_and_numbers_as_values(monkeypatch, tmp_path):
    monkeypatch.setenv("QUANT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("QUANT_LLM_API_KEY", "sk-secret")
    monkeypatch.setenv("QUANT_SIM_SYMBOLS", "40")
    assert dagster_value("QUANT_LLM_API_KEY") == EnvVar("QUANT_LLM_API_KEY")
    assert dagster_value("QUANT_LLM_MODEL") is None
    assert dagster_value("QUANT_SIM_SYMBOLS") == 40
    assert dagster_value("QUANT_LANDING_DIR") == str(tmp_path / "landing")


def test_the_declared_limits_are_what_the_code_needs():
    """The demo's minimums follow from the pipeline: the first model needs `min_train_days`
    labelled days to train, two purged and `valid_days` to validate, and a label is known two trading days after its day (so one warm-up day
    more); the track record needs two signal days whose next-open return (known two days
    later) is in; the partitions cannot start before the calendar; the sources are the
    resource's."""
    from quant_assets.calendar import CALENDAR_START
    from quant_assets.market.labels import LAGS
    from quant_assets.models.assets import TrainConfig
    from quant_assets.models.daily import labelled_days_needed
    from resources.market import SOURCES

    config = TrainConfig()
    needed = labelled_days_needed(config.min_train_days, config.valid_days)
    assert SETTINGS["QUANT_DEMO_WARMUP_DAYS"].minimum == needed + 1
    assert SETTINGS["QUANT_DEMO_DAYS"].minimum == LAGS["open_ret"] + 2
    assert SETTINGS["QUANT_PARTITIONS_START"].minimum == CALENDAR_START.date()
    assert SETTINGS["QUANT_MARKET_SOURCE"].choices == SOURCES


def test_the_demo_window_is_the_last_trading_days_up_to_the_end(monkeypatch):
    from quant_assets.demo import demo_window

    monkeypatch.setenv("QUANT_DEMO_DAYS", "4")
    monkeypatch.setenv("QUANT_DEMO_WARMUP_DAYS", "29")
    window = demo_window()
    assert window.demo == ["2024-06-25", "2024-06-26", "2024-06-27", "2024-06-28"]
    assert len(window.warmup) == 29 and window.warmup[-1] == "2024-06-24"
    assert "2024-06-10" not in window.warmup  # Dragon Boat Festival


def test_every_quant_name_in_the_code_is_declared_and_read_through_settings():
    """No QUANT_ name is used without a declaration, and only settings.py reads them from
    os.environ (real_data.py, another owner's file, still reads QUANT_SHARED_DATA itself)."""
    sources = [*ROOT.glob("quant_assets/**/*.py"), *ROOT.glob("resources/**/*.py")]
    used = set()
    direct = []
    for path in [*sources, ROOT / "Makefile"]:
        text = path.read_text(encoding="utf-8")
        used |= set(re.findall(r"\bQUANT_[A-Z0-9_]*[A-Z0-9]\b", text))
        if re.search(r"(?:environ|getenv)[\s\S]{0,40}?QUANT_", text) and path.name != "settings.py":
            direct.append(path.relative_to(ROOT).as_posix())
    assert used - set(SETTINGS) == set()
    assert direct == ["quant_assets/market/sources/real_data.py"]


def test_the_readme_table_is_the_rendered_declaration():
    text = README.read_text(encoding="utf-8")
    assert with_table(text) == text, (
        "README's settings table is stale: python -m resources.settings"
    )


@pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is not installed")
def test_make_uses_an_exported_data_dir_and_puts_dagster_home_in_it(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("QUANT_DATA_DIR", "DAGSTER_HOME")}
    probe = ["--eval", 'print-dirs: ; @echo "$$QUANT_DATA_DIR $$DAGSTER_HOME"', "print-dirs"]

    def make(*args: str, **extra: str) -> str:
        done = subprocess.run(
            ["make", "-s", "-C", str(ROOT), *args],
            env=env | extra,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    data = tmp_path / "data"
    assert make(*probe, QUANT_DATA_DIR=str(data)).split() == [
        str(data),
        str(data / "dagster_home"),
    ]
    assert make(*probe).split() == [str(ROOT / ".data"), str(ROOT / ".data" / "dagster_home")]
    planned = make("-n", "demo", "clean", QUANT_DATA_DIR=str(data)).splitlines()
    assert f"mkdir -p {data}/dagster_home" in planned
    assert f"rm -rf {data}" in planned


def test_a_cluster_needs_a_clickhouse_server() -> None:
    with pytest.raises(SettingsError, match="QUANT_CLICKHOUSE_CLUSTER=quant needs a ClickHouse"):
        check_environment({"QUANT_CLICKHOUSE_CLUSTER": "quant"})
    check_environment(
        {"QUANT_CLICKHOUSE_CLUSTER": "quant", "QUANT_CLICKHOUSE_DSN": "http://ch-1:8123"}
    )
