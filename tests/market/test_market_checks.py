"""Integration: the checks and the quarantine page of the market assets, through real
materialisations of landing-zone files into chDB in a temporary folder.

A clean day must pass every check and still show its quarantine (a table of every rule the
kind is checked against, all zeros); a redelivered news item must fail `news_items`'
`of_the_day`; the session and screening conditions fail on frames that break them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from dagster import (
    AssetSelection,
    DagsterInstance,
    ExecuteInProcessResult,
    load_asset_checks_from_modules,
    load_assets_from_modules,
    materialize,
)

from quant_assets.calendar import TZ, trading_days
from quant_assets.market import assets as market_assets
from quant_assets.market import checks as market_checks
from quant_assets.market.assets import _news_of_the_day, _outside_sessions
from quant_assets.market.sources.landing import write_landing_file
from quant_assets.market.sources.simulated import SimulatedMarket
from quant_assets.market.validation import rules_by_kind
from resources import ClickHouseIOManager, ClickHouseResource, MarketDataResource

ASSETS = [
    *load_assets_from_modules([market_assets]),
    *load_asset_checks_from_modules([market_assets, market_checks]),
]
DAYS = trading_days("2024-03-04", "2024-03-15")
D1, D2 = "2024-03-12", "2024-03-13"
KINDS = ("bars", "trades", "order_book", "news", "corporate_actions")


@pytest.fixture(scope="module")
def sim() -> SimulatedMarket:
    return SimulatedMarket(DAYS, n_symbols=12, seed=2, snapshot_seconds=60)


class Stack:
    """A landing zone, a chDB folder and the resources of the market assets."""

    def __init__(self, tmp: Path, universe: pd.DataFrame):
        self.root = tmp / "landing"
        self.root.mkdir()
        universe.to_parquet(self.root / "universe.parquet", index=False)
        ch = ClickHouseResource(dsn=f"chdb://{tmp / 'ch'}", database="quant")
        self.resources = {
            "clickhouse": ch,
            "clickhouse_io": ClickHouseIOManager(clickhouse=ch),
            "market": MarketDataResource(source="landing", landing_dir=str(self.root)),
        }
        self.instance = DagsterInstance.ephemeral()

    def run(self, day: str, selection: AssetSelection) -> ExecuteInProcessResult:
        return materialize(
            ASSETS,
            selection=selection,
            partition_key=day,
            resources=self.resources,
            instance=self.instance,
            raise_on_error=False,
        )


def _checks(result: ExecuteInProcessResult) -> dict[tuple[str, str], object]:
    return {
        (e.asset_key.to_user_string(), e.check_name): e
        for e in result.get_asset_check_evaluations()
    }


def _metadata(result: ExecuteInProcessResult, asset: str) -> dict[str, object]:
    events = [
        e.event_specific_data.materialization
        for e in result.get_asset_materialization_events()
        if e.event_specific_data.materialization.asset_key.to_user_string() == asset
    ]
    (materialization,) = events
    return {k: v.value for k, v in materialization.metadata.items()}


@pytest.mark.slow
def test_a_clean_day_passes_every_check_and_shows_an_empty_quarantine(tmp_path, sim):
    stack = Stack(tmp_path, sim.universe())
    for day in (D1, D2):
        for kind in KINDS:
            write_landing_file(sim.delivery(kind, day), stack.root, kind, day, "parquet")
        result = stack.run(day, AssetSelection.groups("market", "quarantine"))
        assert result.success, day
        checks = _checks(result)
        assert {
            ("minute_bars", "volumes_and_sessions"),
            ("adjusted_bars", "prices_positive"),
            ("news_items", "of_the_day"),
            ("labels", "returns_possible"),
            *((f"{kind}_quarantine", "rules_of_kind") for kind in KINDS),
        } <= set(checks)
        assert {key for key, e in checks.items() if not e.passed} == set(), day

    news = checks[("news_items", "of_the_day")].metadata
    assert news["items"].value > 0 and news["repeated_ids"].value == 0
    for kind in KINDS:
        meta = _metadata(result, f"{kind}_quarantine")
        assert meta["dagster/row_count"] == 0 and meta["rows_quarantined"] == 0
        rows = {r.data["rule"]: r.data["rows"] for r in meta["rules"].records}
        assert list(rows) == rules_by_kind()[kind]  # every rule checked is listed, zero or not
        assert set(rows.values()) == {0}


@pytest.mark.slow
def test_bad_rows_are_counted_by_rule_on_the_quarantine_page(tmp_path, sim):
    stack = Stack(tmp_path, sim.universe())
    trades = sim.delivery("trades", D1).copy()
    trades.loc[5, "volume"] = -100
    for kind in ("bars", "trades"):
        frame = trades if kind == "trades" else sim.delivery(kind, D1)
        write_landing_file(frame, stack.root, kind, D1, "parquet")
    # a raw table and its quarantine are one step: they are selected together
    raw = ("raw_daily_bars", "bars_quarantine", "raw_trades", "trades_quarantine")
    result = stack.run(D1, AssetSelection.assets("universe", *raw))
    assert result.success
    meta = _metadata(result, "trades_quarantine")
    rows = {r.data["rule"]: r.data["rows"] for r in meta["rules"].records}
    assert rows["negative_volume"] == 1 and sum(rows.values()) == 1
    assert meta["dagster/row_count"] == 1 and meta["rows_quarantined"] == 1
    assert _checks(result)[("trades_quarantine", "rules_of_kind")].passed


@pytest.mark.slow
def test_a_news_item_redelivered_the_next_day_fails_of_the_day(tmp_path, sim):
    """An evening item delivered with D1's file and again with D2's belongs to D2 twice."""
    stack = Stack(tmp_path, sim.universe())
    sym = sim.universe()["symbol"].iloc[0]
    evening = pd.DataFrame(
        {
            "news_id": ["T-EVENING"],
            "ts": pd.to_datetime([f"{D1} 19:30:00"]).tz_localize(TZ),
            "symbol": sym,
            "title": ["evening filing"],
            "body": ["b"],
            "source": "test",
            "sentiment": [0.3],
        }
    )
    for day in (D1, D2):
        news = pd.concat([sim.news(day), evening], ignore_index=True)
        news = news.sort_values("ts", kind="stable").reset_index(drop=True)
        write_landing_file(news, stack.root, "news", day, "parquet")
        selected = AssetSelection.assets("universe", "raw_news", "news_quarantine", "news_items")
        result = stack.run(day, selected)
    check = _checks(result)[("news_items", "of_the_day")]
    assert not check.passed
    assert check.metadata["repeated_ids"].value == 2
    assert check.metadata["wrong_date"].value == 0
    assert check.metadata["published_outside_window"].value == 0


def test_of_the_day_fails_on_an_item_of_another_day_or_after_the_close():
    day = pd.Timestamp(D2)
    items = pd.DataFrame(
        {
            "date": [day, day, pd.Timestamp(D1)],
            "symbol": ["600000.SH"] * 3,
            "news_id": ["a", "b", "c"],
            "ts": pd.to_datetime([f"{D2} 10:00", f"{D2} 15:00", f"{D1} 16:00"]).tz_localize(TZ),
            "title": ["x"] * 3,
            "sentiment": [0.0] * 3,
        }
    )
    meta = _news_of_the_day(items, day).metadata
    assert meta["wrong_date"].value == 1 and meta["published_outside_window"].value == 1
    assert _news_of_the_day(items.iloc[:1], day).passed


def test_minutes_outside_the_sessions_are_found():
    day = pd.Timestamp(D1)
    labels = pd.Series(
        pd.to_datetime(
            [
                f"{D1} 09:31",  # first bar (opening auction and 09:30)
                f"{D1} 11:30",
                f"{D1} 13:01",
                f"{D1} 15:00",  # closing auction
                f"{D1} 12:00",  # lunch break
                f"{D1} 15:01",
                f"{D2} 10:00",  # another day
            ]
        ).tz_localize(TZ)
    )
    assert _outside_sessions(labels, day).tolist() == [False] * 4 + [True] * 3
