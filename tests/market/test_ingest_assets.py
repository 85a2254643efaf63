"""Integration: landing-zone files through the market assets on the real embedded engines.

Each test writes a day's files in the landing-zone format (from the simulated market, then
corrupted copies; or from the real data sets in ../shared/data), materialises the market
assets with Dagster into chDB in a temporary folder, and checks the tables, the quarantine
and the asset-check results.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dagster import (
    AssetsDefinition,
    AssetSelection,
    DagsterInstance,
    Definitions,
    ExecuteInProcessResult,
    define_asset_job,
    load_asset_checks_from_modules,
    load_assets_from_modules,
    materialize,
)

from quant_assets.calendar import TZ, trading_days
from quant_assets.market import assets as market_assets
from quant_assets.market import checks as market_checks
from quant_assets.market import rules
from quant_assets.market.contract.columns import BARS
from quant_assets.market.intraday import trades_to_daily_bars
from quant_assets.market.sources import real_data as R
from quant_assets.market.sources.landing import landing_path, write_landing_file
from quant_assets.market.sources.simulated import SimulatedMarket
from quant_assets.market.sources.vendor_baostock import baostock_to_symbol
from resources import ClickHouseIOManager, ClickHouseResource, MarketDataResource

pytestmark = pytest.mark.slow

ASSETS = [
    *load_assets_from_modules([market_assets]),
    *load_asset_checks_from_modules([market_assets, market_checks]),
]
MARKET = AssetSelection.groups("market", "quarantine")
DAYS = trading_days("2024-03-04", "2024-03-15")
D1, D2 = "2024-03-12", "2024-03-13"
KINDS = ("bars", "trades", "order_book", "news", "corporate_actions")


@pytest.fixture(scope="module")
def sim() -> SimulatedMarket:
    return SimulatedMarket(DAYS, n_symbols=20, seed=1, snapshot_seconds=60)


def day_frames(sim: SimulatedMarket, day: str) -> dict[str, pd.DataFrame]:
    return {kind: sim.delivery(kind, day) for kind in KINDS}


class Zone:
    """A landing zone, a chDB folder and the resources that read and write them."""

    def __init__(self, tmp: Path, universe: pd.DataFrame):
        self.root = tmp / "landing"
        self.root.mkdir()
        universe.to_parquet(self.root / "universe.parquet", index=False)
        self.ch = ClickHouseResource(dsn=f"chdb://{tmp / 'ch'}", database="quant")
        self.resources = {
            "clickhouse": self.ch,
            "clickhouse_io": ClickHouseIOManager(clickhouse=self.ch),
            "market": MarketDataResource(source="landing", landing_dir=str(self.root)),
        }
        self.instance = DagsterInstance.ephemeral()

    def drop(self, frames: dict[str, pd.DataFrame], day: str, fmt: str = "parquet") -> None:
        for kind, frame in frames.items():
            write_landing_file(frame, self.root, kind, day, fmt)

    def path(self, kind: str, day: str, fmt: str = "parquet") -> Path:
        return landing_path(self.root, kind, day, fmt)

    def materialize(self, day: str, selection=MARKET, run_config=None) -> ExecuteInProcessResult:
        if isinstance(selection, list):
            selection = only(*selection)
        return materialize(
            ASSETS,
            selection=selection,
            partition_key=day,
            resources=self.resources,
            instance=self.instance,
            run_config=run_config,
            raise_on_error=False,
        )

    def query(self, sql: str) -> pd.DataFrame:
        with self.ch.client() as client:
            return self.ch.query_df(client, sql)

    def count(self, table: str, day: str | None = None, kind: str | None = None) -> int:
        where = [f"date = '{day}'"] if day else []
        where += [f"kind = '{kind}'"] if kind else []
        cond = f" WHERE {' AND '.join(where)}" if where else ""
        return int(self.query(f"SELECT count() AS n FROM {{db}}.{table}{cond}")["n"][0])

    def tables(self) -> set[str]:
        names = self.query("SELECT name FROM system.tables WHERE database = '{db}'")
        return set(names["name"])

    def quarantine(self, day: str, kind: str) -> pd.DataFrame:
        return self.query(
            f"SELECT * FROM {{db}}.quarantine WHERE date = '{day}' AND kind = '{kind}' "
            "ORDER BY row_number, rule"
        )


RAW_KINDS = {
    "raw_daily_bars": "bars",
    "raw_trades": "trades",
    "raw_order_book": "order_book",
    "raw_news": "news",
    "raw_corporate_actions": "corporate_actions",
}


def only(*keys: str) -> AssetSelection:
    """These assets and their checks; a raw table comes with its quarantine (one step writes
    both)."""
    quarantines = [f"{RAW_KINDS[k]}_quarantine" for k in keys if k in RAW_KINDS]
    return AssetSelection.assets(*keys, *quarantines)


def checks(result: ExecuteInProcessResult) -> dict[tuple[str, str], object]:
    return {
        (e.asset_key.to_user_string(), e.check_name): e
        for e in result.get_asset_check_evaluations()
    }


def materialized(result: ExecuteInProcessResult) -> set[str]:
    return {
        ev.event_specific_data.materialization.asset_key.to_user_string()
        for ev in result.get_asset_materialization_events()
    }


def failure_text(result: ExecuteInProcessResult) -> str:
    """Description and metadata of the step failures, as a user sees them in the UI."""
    parts = []
    for ev in result.get_step_failure_events():
        data = ev.step_failure_data
        if data.user_failure_data is not None:
            parts.append(data.user_failure_data.description or "")
            parts += [f"{k}={v.value}" for k, v in data.user_failure_data.metadata.items()]
        if data.error is not None:
            parts.append(data.error.to_string())
    return "\n".join(parts)


def table_rows(zone: Zone, table: str, day: str, order: str) -> pd.DataFrame:
    return zone.query(f"SELECT * FROM {{db}}.{table} WHERE date = '{day}' ORDER BY {order}")


# ---------------------------------------------------------------------------------------------
# simulated market, corrupted copies


def corrupt_trades(sim: SimulatedMarket, day: str) -> tuple[pd.DataFrame, dict[int, str]]:
    """The day's trades with four bad rows; returns the file frame and {row: rule}."""
    trades = sim.trades(day).copy()
    bars = sim.daily_bars(day, day).set_index("symbol")
    trades.loc[10, "volume"] = -100
    sym = trades.loc[20, "symbol"]
    pct = rules.limit_pct(rules.board_of(sym), bool(bars.loc[sym, "is_st"]))
    up, _ = rules.price_limits(bars.loc[sym, "preclose"], pct)
    trades.loc[20, "price"] = float(up) + 0.5
    trades.loc[30, "symbol"] = "999999.SH"
    # an identical repeat of row 40, delivered right after it
    frame = pd.concat([trades.iloc[:41], trades.iloc[[40]], trades.iloc[41:]], ignore_index=True)
    return frame, {
        10: "negative_volume",
        20: "outside_price_limit",
        30: "unknown_symbol",
        41: "duplicate",
    }


def test_bad_trades_are_quarantined_and_the_blocking_check_follows_the_threshold(tmp_path, sim):
    zone = Zone(tmp_path, sim.universe())
    frames = day_frames(sim, D1)
    bad, expected = corrupt_trades(sim, D1)
    frames["trades"] = bad
    zone.drop(frames, D1)
    source = str(zone.path("trades", D1))
    strict = {"ops": {"raw_trades": {"config": {"max_bad_share": 1e-4, "min_bad_rows": 1}}}}

    # above the threshold on a first delivery: the check fails and nothing is published
    result = zone.materialize(D1, run_config=strict)
    check = checks(result)[("raw_trades", "bad_share")]
    assert not check.passed and not result.success
    assert check.metadata["bad_share"].value == pytest.approx(4 / len(bad))
    assert check.metadata["threshold"].value == 1e-4
    assert check.metadata["counts"].value == {rule: 1 for rule in expected.values()}
    assert {"raw_trades", "trades_quarantine", "minute_bars"}.isdisjoint(materialized(result))
    assert "raw_trades" not in zone.tables()  # not even created
    assert zone.count("quarantine", D1, "trades") == 0
    text = failure_text(result)
    assert f"4 of {len(bad):,} rows quarantined" in text and "above max_bad_share 0.01%" in text
    assert "Top rules: " in text and "Examples: row 10 " in text
    assert f"Nothing was published for {D1} before" in text

    # below the threshold (the default 1 %): the check passes and minute bars are built
    result = zone.materialize(D1)
    assert result.success, failure_text(result)
    check = checks(result)[("raw_trades", "bad_share")]
    assert check.passed and check.metadata["threshold"].value == 0.01
    assert "minute_bars" in materialized(result)
    q = zone.quarantine(D1, "trades")
    assert dict(zip(q["row_number"], q["rule"], strict=True)) == expected
    assert set(q["source_file"]) == {source}
    assert q.set_index("rule").loc["unknown_symbol", "symbol"] == "999999.SH"
    assert json.loads(q.set_index("rule").loc["negative_volume", "row_json"])["volume"] == -100
    stored = table_rows(zone, "raw_trades", D1, "symbol, trade_id")
    clean = bad.drop(index=list(expected))
    assert len(stored) + q["row_number"].nunique() == len(bad)  # nothing lost
    assert len(stored) == len(clean)
    assert (stored["volume"] >= 0).all() and "999999.SH" not in set(stored["symbol"])
    pd.testing.assert_frame_equal(
        stored[["symbol", "trade_id", "price", "volume", "side"]].astype(
            {"trade_id": "int64", "volume": "int64", "side": "int64"}
        ),
        clean.sort_values(["symbol", "trade_id"], ignore_index=True)[
            ["symbol", "trade_id", "price", "volume", "side"]
        ],
        check_dtype=False,
    )
    minutes = table_rows(zone, "minute_bars", D1, "symbol, ts")
    assert minutes["volume"].sum() == clean["volume"].sum()

    # the same file again under the strict threshold: the published day stays, with its
    # quarantine, and the error says so
    result = zone.materialize(D1, run_config=strict)
    assert not result.success
    assert f"The published {D1} stays as it was: {len(clean):,} rows" in failure_text(result)
    pd.testing.assert_frame_equal(table_rows(zone, "raw_trades", D1, "symbol, trade_id"), stored)
    pd.testing.assert_frame_equal(zone.quarantine(D1, "trades"), q)  # the same rows, not twice
    assert not any("__staging_" in t for t in zone.tables())


def test_a_few_bad_items_in_a_small_file_do_not_fail_the_day(tmp_path, sim):
    zone = Zone(tmp_path, sim.universe())
    day = "2024-03-11"  # three news items in the simulated market
    frames = day_frames(sim, day)
    news = frames["news"].copy()
    assert len(news) == 3
    news.loc[1, "symbol"] = "999999.SH"  # one item of three: 33%, but a single bad row
    frames["news"] = news
    zone.drop(frames, day)
    result = zone.materialize(day, selection=["universe", "raw_news"])
    assert result.success, failure_text(result)
    check = checks(result)[("raw_news", "bad_share")]
    assert check.passed and check.metadata["bad_share"].value == pytest.approx(1 / 3)
    assert check.metadata["min_bad_rows"].value == 2
    assert zone.count("raw_news", day) == 2 and zone.count("quarantine", day, "news") == 1
    two = {"ops": {"raw_news": {"config": {"min_bad_rows": 1}}}}
    result = zone.materialize(day, selection=["universe", "raw_news"], run_config=two)
    assert not result.success and "1 of 3 rows quarantined" in failure_text(result)


def test_a_non_trading_day_given_as_a_run_tag_is_refused(tmp_path, sim):
    zone = Zone(tmp_path, sim.universe())
    zone.drop(day_frames(sim, D1), D1)
    saturday = "2024-03-16"
    defs = Definitions(
        assets=[a for a in ASSETS if isinstance(a, AssetsDefinition) and a.keys],
        asset_checks=load_asset_checks_from_modules([market_checks]),
        jobs=[define_asset_job("ingest", selection=only("universe", "raw_daily_bars"))],
        resources=zone.resources,
    )
    result = defs.resolve_job_def("ingest").execute_in_process(
        instance=zone.instance,
        tags={"dagster/partition": saturday},
        raise_on_error=False,
    )
    assert not result.success
    assert f"{saturday} is not a trading day" in failure_text(result)
    assert "universe" not in zone.tables() or zone.count("universe", saturday) == 0


def test_crossed_book_row_is_quarantined(tmp_path, sim):
    zone = Zone(tmp_path, sim.universe())
    frames = day_frames(sim, D1)
    book = frames["order_book"].copy()
    both = book["bid_px_1"].notna() & book["ask_px_1"].notna()
    row = int(np.flatnonzero(both)[100])
    book.loc[row, "bid_px_1"] = book.loc[row, "ask_px_1"] + 0.01  # bid above ask
    book.loc[row, "bid_px_2"] = np.nan  # keep the bid levels ordered: only the cross is wrong
    book.loc[row, "bid_sz_2"] = 0
    frames["order_book"] = book
    zone.drop(frames, D1)

    result = zone.materialize(D1, selection=["universe", "raw_daily_bars", "raw_order_book"])
    assert result.success
    q = zone.quarantine(D1, "order_book")
    assert q[["row_number", "rule"]].values.tolist() == [[row, "crossed_book"]]
    assert q["symbol"].iloc[0] == book.loc[row, "symbol"]
    assert "bid_px_1=" in q["detail"].iloc[0] and ">= ask_px_1=" in q["detail"].iloc[0]
    assert zone.count("raw_order_book", D1) == len(book) - 1
    check = checks(result)[("raw_order_book", "bad_share")]
    assert check.passed and check.metadata["bad_share"].value == pytest.approx(1 / len(book))


def test_rejected_files_fail_the_run_and_keep_the_earlier_good_day(tmp_path, sim):
    zone = Zone(tmp_path, sim.universe())
    select = ["universe", "raw_daily_bars", "raw_trades"]
    for day in (D1, D2):
        zone.drop(day_frames(sim, day), day)
        assert zone.materialize(day, selection=select).success
    before = {day: table_rows(zone, "raw_trades", day, "symbol, trade_id") for day in (D1, D2)}
    assert len(before[D2]) > 0

    good = zone.path("trades", D2)
    trades_csv = zone.path("trades", D2, "csv")
    good_frame = sim.trades(D2)

    # an empty file (0 bytes) where D2's trades should be
    good.unlink()
    trades_csv.write_bytes(b"")
    result = zone.materialize(D2, selection=select)
    assert not result.success
    text = failure_text(result)
    assert "trades file rejected: empty file" in text
    assert str(trades_csv) in text

    # a truncated CSV: the transfer stopped inside the last line
    write_landing_file(good_frame, zone.root, "trades", D2, "csv")
    data = trades_csv.read_bytes()
    last = data.rstrip(b"\n").rfind(b"\n")
    trades_csv.write_bytes(data[: last + 1 + 12])  # 12 characters of the last row's timestamp
    result = zone.materialize(D2, selection=select)
    assert not result.success
    text = failure_text(result)
    assert "trades file rejected: truncated: last line has 1 of 6 fields" in text
    assert str(trades_csv) in text

    for day in (D1, D2):  # the earlier good ingest of D2 is still there; D1 untouched
        after = table_rows(zone, "raw_trades", day, "symbol, trade_id")
        pd.testing.assert_frame_equal(after, before[day])
        assert zone.count("quarantine", day, "trades") == 0


def test_reingesting_a_day_leaves_the_same_counts(tmp_path, sim):
    zone = Zone(tmp_path, sim.universe())
    frames = day_frames(sim, D1)
    frames["trades"], _ = corrupt_trades(sim, D1)  # some quarantine rows to count as well
    zone.drop(frames, D1)
    tables = [
        "universe",
        "raw_daily_bars",
        "raw_trades",
        "raw_order_book",
        "raw_news",
        "raw_corporate_actions",
        "minute_bars",
        "news_items",
        "adjustment_factors",
        "adjusted_bars",
        "labels",
        "quarantine",
    ]
    assert zone.materialize(D1).success
    first = {t: zone.count(t) for t in tables}
    assert zone.materialize(D1).success
    assert {t: zone.count(t) for t in tables} == first
    assert first["quarantine"] == 4 and first["raw_trades"] == len(frames["trades"]) - 4
    assert first["raw_order_book"] == len(frames["order_book"])


def test_news_after_the_close_belongs_to_the_next_trading_day(tmp_path, sim):
    zone = Zone(tmp_path, sim.universe())
    news = {day: sim.news(day) for day in (D1, D2)}
    sym = sim.universe()["symbol"].iloc[0]
    tz = TZ
    extra = pd.DataFrame(
        {
            "news_id": ["T-1459", "T-1500", "T-1930"],
            "ts": pd.to_datetime(
                [f"{D1} 14:59:59", f"{D1} 15:00:00", f"{D1} 19:30:00"]
            ).tz_localize(tz),
            "symbol": sym,
            "title": ["before the close", "at the close", "evening filing"],
            "body": ["b", "c", "e"],
            "source": "test",
            "sentiment": [0.1, 0.2, 0.3],
        }
    )
    news[D1] = (
        pd.concat([news[D1], extra], ignore_index=True)
        .sort_values("ts", kind="stable")
        .reset_index(drop=True)
    )
    select = ["universe", "raw_news", "news_items"]
    for day in (D1, D2):
        zone.drop({"news": news[day]}, day)
        assert zone.materialize(day, selection=select).success
        assert zone.count("quarantine", day, "news") == 0

    items = {day: set(table_rows(zone, "news_items", day, "ts")["news_id"]) for day in (D1, D2)}
    assert "T-1459" in items[D1]
    assert {"T-1500", "T-1930"} <= items[D2] and not {"T-1500", "T-1930"} & items[D1]
    close = pd.Timestamp(f"{D1} 15:00", tz=tz)
    late = set(news[D1].loc[news[D1]["ts"] >= close, "news_id"])
    early = set(news[D1].loc[news[D1]["ts"] < close, "news_id"])
    d2_close = pd.Timestamp(f"{D2} 15:00", tz=tz)
    assert items[D1] == early  # D1 is the first day ingested: nothing carried over into it
    assert items[D2] == late | set(news[D2].loc[news[D2]["ts"] < d2_close, "news_id"])
    assert zone.count("raw_news", D1) == len(news[D1])  # raw_news keeps the delivery day


# ---------------------------------------------------------------------------------------------
# real data (../shared/data): the same assets on vendor files

CSI300_DAYS = ("2023-02-08", "2023-02-09")  # one suspended member on both days


def _need(relative: str) -> Path:
    path = R.DATA_ROOT / relative
    if not path.exists():
        pytest.skip(f"real data absent: {path} (see ../shared/data/SOURCES.md)")
    return path


def real_universe(symbols: pd.Series, first_bar: pd.Series, is_st: pd.Series) -> pd.DataFrame:
    """Reference universe of real codes: names from the CSI300 list, CSRC industry (or
    "unknown"), board from the code; list_date is the first bar in the data set (a bound)."""
    folder = R.DATA_ROOT / "cn_csi300_daily_2021_2024"
    names = pd.read_csv(folder / "hs300_constituents_2024-08-19.csv", dtype=str)
    industry = pd.read_csv(folder / "stock_industry_csrc_2026-03-09.csv", dtype=str)
    by_code = {
        "name": dict(zip(baostock_to_symbol(names["code"]), names["code_name"], strict=True)),
        "industry": dict(
            zip(baostock_to_symbol(industry["code"]), industry["industry"], strict=True)
        ),
    }
    return pd.DataFrame(
        {
            "symbol": symbols.astype(str).to_numpy(),
            "name": symbols.map(by_code["name"]).fillna("").astype(str).to_numpy(),
            "industry": symbols.map(by_code["industry"]).fillna("unknown").astype(str).to_numpy(),
            "board": symbols.map(rules.board_of).to_numpy(),
            "list_date": pd.to_datetime(first_bar.to_numpy()).astype("datetime64[ns]"),
            "is_st": is_st.astype(bool).to_numpy(),
        }
    )


def test_csi300_bars_ingest_with_nothing_quarantined(tmp_path):
    _need(R.CSI300_BARS)
    _need("cn_csi300_daily_2021_2024/stock_industry_csrc_2026-03-09.csv")
    bars = R.load_csi300_bars()
    first = bars.groupby("symbol")["date"].min()
    last = bars[bars["date"] <= CSI300_DAYS[-1]].groupby("symbol").tail(1).set_index("symbol")
    universe = real_universe(pd.Series(first.index), first, last["is_st"].reindex(first.index))
    zone = Zone(tmp_path, universe)
    for day in CSI300_DAYS:
        day_bars = bars[bars["date"] == day].reset_index(drop=True)
        day_bars.attrs = {}  # see the report: Parquet cannot hold the loader's ndarray attrs
        zone.drop({"bars": day_bars}, day)
        result = zone.materialize(day, selection=["universe", "raw_daily_bars"])
        assert result.success, failure_text(result)
        assert zone.count("quarantine", day) == 0
        check = checks(result)[("raw_daily_bars", "bad_share")]
        assert check.passed and check.metadata["bad_share"].value == 0
        stored = table_rows(zone, "raw_daily_bars", day, "symbol")
        assert len(stored) == len(day_bars) == 264
        assert stored["is_suspended"].sum() == 1  # the suspended member is kept, not rejected
        expected = day_bars.sort_values("symbol", ignore_index=True)
        np.testing.assert_allclose(stored["close"], expected["close"])
        np.testing.assert_array_equal(stored["volume"], expected["volume"])
        assert zone.count("universe", day) == (universe["list_date"] <= day).sum()


TICK_CHILD = textwrap.dedent(
    """
    import json, sys
    from dagster import DagsterInstance, load_asset_checks_from_modules
    from dagster import load_assets_from_modules, materialize
    from quant_assets.market import assets as A
    from quant_assets.market import checks as C
    from resources import ClickHouseIOManager, ClickHouseResource, MarketDataResource

    landing, dsn, day = sys.argv[1:4]
    ch = ClickHouseResource(dsn=dsn, database="quant")
    result = materialize(
        [*load_assets_from_modules([A]), *load_asset_checks_from_modules([A, C])],
        selection=[
            "universe", "raw_daily_bars", "bars_quarantine", "raw_trades", "trades_quarantine",
            "raw_order_book", "order_book_quarantine", "minute_bars",
        ],
        partition_key=day,
        resources={
            "clickhouse": ch,
            "clickhouse_io": ClickHouseIOManager(clickhouse=ch),
            "market": MarketDataResource(source="landing", landing_dir=landing),
        },
        instance=DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    print(json.dumps({
        "success": result.success,
        "checks": {
            e.asset_key.to_user_string() + "." + e.check_name: {
                "passed": e.passed,
                "bad_share": e.metadata["bad_share"].value if "bad_share" in e.metadata else None,
            }
            for e in result.get_asset_check_evaluations()
        },
    }))
    """
)


def test_real_tick_snapshots_and_trades_ingest_through_the_same_assets(tmp_path):
    """wstock 5-level snapshots of 000001.SZ and 000002.SZ on 2020-01-02.

    The day precedes the default first partition (2023-01-03), so Dagster runs in a child
    process with QUANT_PARTITIONS_START=2020-01-02 (the partitions are fixed at import). The
    day's bars are rebuilt from the ticks; the shared data have no 2019-12-31 close, so
    preclose is NaN and the price-limit rule cannot fire on this day.
    """
    folder = _need(R.TICK_5LEVEL)
    _need("cn_csi300_daily_2021_2024/stock_industry_csrc_2026-03-09.csv")
    day = "2020-01-02"
    books, trades = [], []
    for name in ("SZ000001.csv", "SZ000002.csv"):
        book, trade = R.load_tick_5level(folder / name)
        books.append(book)
        trades.append(trade)
    book = pd.concat(books, ignore_index=True)
    trade = pd.concat(trades, ignore_index=True)
    daily = trades_to_daily_bars(trade).assign(preclose=np.nan, is_suspended=False, is_st=False)
    # names and CSRC industries from the CSI300 files; listing dates of the two codes
    symbols = pd.Series(["000001.SZ", "000002.SZ"])
    listed = pd.Series(pd.to_datetime(["1991-04-03", "1991-01-29"]))
    universe = real_universe(symbols, listed, pd.Series([False, False]))
    zone = Zone(tmp_path, universe)
    zone.drop({"bars": daily[BARS], "trades": trade, "order_book": book}, day)
    env = {**os.environ, "QUANT_PARTITIONS_START": day}
    proc = subprocess.run(
        [sys.executable, "-c", TICK_CHILD, str(zone.root), zone.ch.dsn, day],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])

    tod = book["ts"].dt.strftime("%H:%M:%S")
    q = zone.quarantine(day, "order_book")
    rules_of = q.groupby("row_number")["rule"].apply(set)
    # the call-auction indications before 09:25 (one level, bid = ask): outside the sessions
    # and a locked book; every one of them is quarantined, none reaches raw_order_book
    auction = np.flatnonzero(tod < "09:25:00")
    assert len(auction) >= 2 * 60
    assert all({"outside_session", "crossed_book"} <= rules_of[r] for r in auction)
    stored = table_rows(zone, "raw_order_book", day, "symbol, ts")
    stored_tod = pd.to_datetime(stored["ts"]).dt.tz_convert(TZ).dt.strftime("%H:%M:%S")
    assert (stored_tod >= "09:25:00").all()
    assert not (stored["bid_px_1"] >= stored["ask_px_1"]).any()
    assert len(stored) + len(rules_of) == len(book)
    # continuous-session snapshots are clean but for two real vendor quirks: the repeated
    # 09:30:09 snapshot, and a best bid that shows a price with 0 lots
    continuous = ((tod >= "09:30:00") & (tod <= "11:30:00")) | (
        (tod >= "13:00:00") & (tod < "14:57:00")
    )
    bad_continuous = rules_of[rules_of.index.isin(np.flatnonzero(continuous))]
    assert set().union(*bad_continuous) == {"duplicate", "bad_price"}
    assert len(bad_continuous) <= 12 and continuous.sum() > 9_000
    dup = q[q["rule"] == "duplicate"]
    assert set(tod.iloc[dup["row_number"]]) == {"09:30:09"}
    zero_lot = q[(q["rule"] == "bad_price") & q["row_number"].isin(np.flatnonzero(continuous))]
    assert zero_lot["detail"].str.contains("with size 0").all()
    # about 2 % of the snapshots: under the order book's default 5 % threshold, which allows
    # for the auction-phase snapshots every real vendor day has
    share = out["checks"]["raw_order_book.bad_share"]
    assert share["bad_share"] == pytest.approx(len(rules_of) / len(book))
    assert 0.01 < share["bad_share"] < 0.05 and share["passed"]

    # trades: the auction prints arrive a few seconds after the print (09:25:04, 15:00:03) and
    # are kept, so the vendor's daily volume (auctions included) matches the stored trades
    assert zone.quarantine(day, "trades").empty
    assert zone.count("raw_trades", day) == len(trade)
    assert out["checks"]["raw_trades.bad_share"]["passed"]
    assert out["checks"]["minute_bars.daily_bars_match_trades"]["passed"]
    assert out["success"]
