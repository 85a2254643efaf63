"""Fault injection over the landing path: bad inputs and broken runs, each with its expected
outcome asserted, and the table (fault, outcome, rows lost) that the README keeps.

    .venv/bin/python bench/bench_ingest_faults.py [--markdown]

A small simulated market (20 stocks, one-minute books) delivers a good day, which is
published first. Then, one at a time:

- bad inputs: the day's file of one kind delivered with one defect (a row breaking one rule,
  or a file that cannot be read). A bad row must land in the quarantine under its rule and the
  rest of the day be published; a bad file must fail the run with its reason and leave the
  published day as it was; a file with too many bad rows must be withheld (write-audit-
  publish) with the published day intact.
- faults: a run of the trades ingest (a raw table and its quarantine, published together) in
  a child process with a fault injected into its ClickHouse resource: killed (SIGKILL) in the
  middle of the staging write, killed between the two swaps of its publication, a writer that
  fails as a full disk does, a staging table that loses rows before the publication, and a
  second run of the same partition started while the first runs. After each, a normal run of
  the same day in a new process must find the store consistent (a publication stopped between
  its swaps rolled forward), leave no staging table, and publish the day.

"rows lost" is, for the kind's day as published afterwards, rows in the file minus rows
published minus rows quarantined (0 everywhere); for a refused file, rows of the previously
published day that are gone. The run stops at the first outcome that differs from the
expected one.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from dagster import (  # noqa: E402
    AssetSelection,
    DagsterInstance,
    load_asset_checks_from_modules,
    load_assets_from_modules,
    materialize,
)

from quant_assets.calendar import trading_days  # noqa: E402
from quant_assets.market import assets as market_assets  # noqa: E402
from quant_assets.market import rules  # noqa: E402
from quant_assets.market.sources.landing import landing_path, write_landing_file  # noqa: E402
from quant_assets.market.sources.simulated import SimulatedMarket  # noqa: E402
from resources import ClickHouseIOManager, ClickHouseResource, MarketDataResource  # noqa: E402
from resources.clickhouse import StagedPartition  # noqa: E402

FOLDER = REPO / ".data" / "bench" / "faults"
DAYS = trading_days("2024-03-04", "2024-03-15")
D0, DAY = "2024-03-12", "2024-03-13"
RAW = {
    "bars": "raw_daily_bars",
    "trades": "raw_trades",
    "order_book": "raw_order_book",
    "news": "raw_news",
    "corporate_actions": "raw_corporate_actions",
}
KEYS = {
    "bars": "symbol, date",
    "trades": "symbol, trade_id",
    "order_book": "symbol, ts",
    "news": "news_id",
    "corporate_actions": "action_id",
}
ASSETS = [
    *load_assets_from_modules([market_assets]),
    *load_asset_checks_from_modules([market_assets]),
]


def _market() -> SimulatedMarket:
    return SimulatedMarket(DAYS, n_symbols=20, seed=1, snapshot_seconds=60)


def _frames(sim: SimulatedMarket, day: str) -> dict[str, pd.DataFrame]:
    return {kind: sim.delivery(kind, day) for kind in RAW}


class FaultyClickHouse(ClickHouseResource):
    """The real resource with one fault injected into the write path (`fault`)."""

    fault: str = ""

    def insert(self, client, table, df, constants=None) -> None:
        if "__staging_" in table and "trades" in table and self.fault == "kill_mid_write":
            super().insert(client, table, df.iloc[: len(df) // 2], constants)
            os.kill(os.getpid(), signal.SIGKILL)
        if "__staging_" in table and "trades" in table and self.fault == "disk_full":
            raise OSError(errno.ENOSPC, "No space left on device (injected)", table)
        super().insert(client, table, df, constants)

    def stage_partitions(self, client, spec, df, days, tag="", **keys) -> list[StagedPartition]:
        staged = super().stage_partitions(client, spec, df, days, tag, **keys)
        if self.fault == "corrupt_staging" and spec.name == "raw_trades":
            client.command(
                f"ALTER TABLE {staged[0].staging} DELETE WHERE trade_id % 7 = 0 "
                "SETTINGS mutations_sync = 2"
            )
        return staged

    def swap_in(self, client, *staged: StagedPartition) -> None:
        super().swap_in(client, *staged)
        if self.fault == "kill_mid_swap" and staged[0].table.endswith(".raw_trades"):
            os.kill(os.getpid(), signal.SIGKILL)  # the quarantine's swap never runs


def _resources(folder: Path, fault: str = "") -> dict[str, object]:
    ch = FaultyClickHouse(dsn=f"chdb://{folder / 'ch'}", database="quant", fault=fault)
    return {
        "clickhouse": ch,
        "clickhouse_io": ClickHouseIOManager(clickhouse=ch),
        "market": MarketDataResource(source="landing", landing_dir=str(folder / "landing")),
    }


def _selection(kind: str) -> AssetSelection:
    keys = ["universe", "raw_daily_bars", "bars_quarantine", RAW[kind], f"{kind}_quarantine"]
    return AssetSelection.assets(*dict.fromkeys(keys))


def _run(folder: Path, kind: str, day: str = DAY, fault: str = "", config=None):
    return materialize(
        ASSETS,
        selection=_selection(kind),
        partition_key=day,
        resources=_resources(folder, fault),
        instance=DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else None,
        run_config=config,
        raise_on_error=False,
    )


def _failure(result) -> str:
    """What the run's failed steps say (a Failure's description, or the error's message)."""
    parts = []
    for ev in result.get_step_failure_events():
        data = ev.step_failure_data
        if data.user_failure_data is not None and data.user_failure_data.description:
            parts.append(data.user_failure_data.description)
        elif data.error is not None:
            parts.append(data.error.message.strip())
    return " ".join(parts)


# ---------------------------------------------------------------------------------------------
# the store as a reader sees it


def _query(folder: Path, sql: str) -> pd.DataFrame:
    ch = ClickHouseResource(dsn=f"chdb://{folder / 'ch'}", database="quant")
    with ch.client() as client:
        return ch.query_df(client, sql)


@dataclass
class Published:
    rows: int
    quarantined_rows: int
    quarantine: int
    digest: str
    staging: int
    runs: set[str]

    @property
    def signature(self) -> tuple:
        return (self.rows, self.quarantine, self.digest)


def _published(folder: Path, kind: str, day: str = DAY) -> Published:
    table = RAW[kind]
    exists = set(_query(folder, "SELECT name FROM system.tables WHERE database = 'quant'")["name"])
    if table not in exists:
        return Published(0, 0, 0, "", 0, set())
    got = _query(
        folder,
        f"SELECT count() AS n, toString(sum(cityHash64(*))) AS h FROM quant.{table} "
        f"WHERE date = '{day}'",
    )
    q = _query(
        folder,
        "SELECT count() AS n, uniqExact(row_number) AS r FROM quant.quarantine "
        f"WHERE date = '{day}' AND kind = '{kind}'",
    )
    staging = sum("__staging_" in t for t in exists)
    runs = _query(
        folder,
        "SELECT DISTINCT run_id FROM quant.stored_partitions FINAL "
        f"WHERE date = '{day}' AND ((table = '{table}' AND slice = '') "
        f"OR (table = 'quarantine' AND slice = 'kind={kind}'))",
    )
    return Published(
        int(got["n"][0]),
        int(q["r"][0]),
        int(q["n"][0]),
        str(got["h"][0]),
        staging,
        set(runs["run_id"]),
    )


# ---------------------------------------------------------------------------------------------
# bad inputs: (name, kind, change to the good frame or the file, expected outcome)

Change = Callable[[pd.DataFrame, dict[str, pd.DataFrame]], pd.DataFrame]


@dataclass
class BadInput:
    name: str
    kind: str
    change: Change | None  # the frame to deliver instead of the good one
    expect: str  # "quarantine:<rule>", "rejected:<text>" or "withheld:<text>"
    write: Callable[[Path, pd.DataFrame], None] | None = None  # a file written by hand
    fmt: str = "parquet"


def _row(i: int, **values) -> Change:
    def change(df: pd.DataFrame, _: dict) -> pd.DataFrame:
        out = df.copy()
        for col, v in values.items():
            value = v(out.iloc[i]) if callable(v) else v
            if isinstance(value, str) and out[col].dtype.kind in "fiu":
                out[col] = out[col].astype(object)  # text in a number column (CSV only)
            elif isinstance(value, float) and out[col].dtype.kind in "iu":
                out[col] = out[col].astype(float)
            out.loc[out.index[i], col] = value
        return out

    return change


def _repeat(i: int) -> Change:
    return lambda df, _: pd.concat([df.iloc[: i + 1], df.iloc[[i]], df.iloc[i + 1 :]]).reset_index(
        drop=True
    )


def _limit_breach(df: pd.DataFrame, frames: dict) -> pd.DataFrame:
    out = df.copy()
    bar = frames["bars"].set_index("symbol").loc[out["symbol"].iloc[5]]
    pct = rules.limit_pct(rules.board_of(out["symbol"].iloc[5]), bool(bar["is_st"]))
    up, _ = rules.price_limits(bar["preclose"], pct)
    out.loc[out.index[5], "price"] = float(up) * 1.05
    return out


def _bars_over_limit(df: pd.DataFrame, _: dict) -> pd.DataFrame:
    out = df.copy()
    i = out.index[3]
    out.loc[i, ["open", "high", "close"]] = out.loc[i, "preclose"] * 1.30
    return out


def _at(hhmmss: str, i: int = 7) -> Change:
    def change(df: pd.DataFrame, _: dict) -> pd.DataFrame:
        out = df.copy()
        ts = out["ts"].iloc[i]
        out.loc[out.index[i], "ts"] = pd.Timestamp(f"{ts.date()} {hhmmss}", tz=ts.tz)
        return out

    return change


def _many_bad_bars(df: pd.DataFrame, _: dict) -> pd.DataFrame:
    out = df.copy()
    n = int(len(out) * 0.4)
    out.loc[out.index[:n], "high"] = out.loc[out.index[:n], "low"] * 0.5
    return out


def _crossed(df: pd.DataFrame, _: dict) -> pd.DataFrame:
    out = df.copy()
    i = int(np.flatnonzero(out["bid_px_1"].notna() & out["ask_px_1"].notna())[50])
    out.loc[out.index[i], "bid_px_1"] = out["ask_px_1"].iloc[i] + 0.01
    out.loc[out.index[i], ["bid_px_2", "bid_sz_2"]] = [np.nan, 0]
    return out


def _non_monotone(df: pd.DataFrame, _: dict) -> pd.DataFrame:
    out = df.copy()
    i = int(np.flatnonzero(out["ask_px_3"].notna() & out["ask_px_2"].notna())[60])
    out.loc[out.index[i], "ask_px_3"] = out["ask_px_2"].iloc[i] - 0.001
    return out


def _bytes(data: bytes) -> Callable[[Path, pd.DataFrame], None]:
    def write(path: Path, _: pd.DataFrame) -> None:
        path.write_bytes(data)

    return write


def _truncated(path: Path, good: pd.DataFrame) -> None:
    write_landing_file(good, path.parents[1], path.parent.name, DAY, "csv")
    data = path.read_bytes()
    cut = data.rstrip(b"\n").rfind(b"\n")
    path.write_bytes(data[: cut + 12])


def _without(column: str) -> Callable[[Path, pd.DataFrame], None]:
    def write(path: Path, good: pd.DataFrame) -> None:
        write_landing_file(good.drop(columns=column), path.parents[1], path.parent.name, DAY)

    return write


def _two_formats(path: Path, good: pd.DataFrame) -> None:
    write_landing_file(good, path.parents[1], path.parent.name, DAY, "parquet")
    write_landing_file(good, path.parents[1], path.parent.name, DAY, "csv")


def _plus_10_min(row: pd.Series) -> pd.Timestamp:
    return row["ts"] + pd.Timedelta(minutes=10)


BAD_INPUTS = [
    BadInput(
        "bars: close 30% above preclose", "bars", _bars_over_limit, "quarantine:outside_price_limit"
    ),
    BadInput("bars: negative close", "bars", _row(2, close=-1.0), "quarantine:bad_price"),
    BadInput(
        "bars: high below low",
        "bars",
        _row(4, high=lambda r: r["low"] * 0.9),
        "quarantine:ohlc_inconsistent",
    ),
    BadInput("bars: missing open", "bars", _row(6, open=np.nan), "quarantine:bad_price"),
    BadInput("bars: repeated row", "bars", _repeat(8), "quarantine:duplicate"),
    BadInput(
        "bars: unknown symbol", "bars", _row(9, symbol="999999.SH"), "quarantine:unknown_symbol"
    ),
    BadInput(
        "bars: another day's date",
        "bars",
        _row(10, date=pd.Timestamp("2024-03-14")),
        "quarantine:not_on_trading_date",
    ),
    BadInput("bars: negative volume", "bars", _row(11, volume=-5.0), "quarantine:negative_volume"),
    BadInput(
        "bars: volume too large for its column",
        "bars",
        _row(12, volume=1e30),
        "quarantine:out_of_range",
    ),
    BadInput(
        "bars: text in a price", "bars", _row(13, close="abc"), "quarantine:wrong_type", fmt="csv"
    ),
    BadInput("bars: 40% of the rows bad", "bars", _many_bad_bars, "withheld:above max_bad_share"),
    BadInput(
        "trades: negative volume", "trades", _row(3, volume=-100), "quarantine:negative_volume"
    ),
    BadInput(
        "trades: price above limit-up", "trades", _limit_breach, "quarantine:outside_price_limit"
    ),
    BadInput(
        "trades: unknown symbol", "trades", _row(4, symbol="999999.SH"), "quarantine:unknown_symbol"
    ),
    BadInput("trades: repeated trade", "trades", _repeat(30), "quarantine:duplicate"),
    BadInput("trades: at lunch (12:00)", "trades", _at("12:00:00"), "quarantine:outside_session"),
    BadInput(
        "trades: stamped in 2030",
        "trades",
        _row(40, ts=pd.Timestamp("2030-01-02 10:00", tz="Asia/Shanghai")),
        "quarantine:in_future",
    ),
    BadInput(
        "trades: 10 minutes ahead of its neighbours",
        "trades",
        _row(50, ts=_plus_10_min),
        "quarantine:out_of_order",
    ),
    BadInput(
        "trades: 5e9 shares", "trades", _row(60, volume=5_000_000_000), "quarantine:out_of_range"
    ),
    BadInput(
        "trades: sub-millisecond stamp",
        "trades",
        _row(70, ts=lambda r: r["ts"] + pd.Timedelta(microseconds=250)),
        "quarantine:precision_lost",
    ),
    BadInput("trades: side 7", "trades", _row(80, side=7), "quarantine:bad_value"),
    BadInput("order book: crossed", "order_book", _crossed, "quarantine:crossed_book"),
    BadInput(
        "order book: asks not increasing",
        "order_book",
        _non_monotone,
        "quarantine:non_monotone_levels",
    ),
    BadInput(
        "order book: negative bid size",
        "order_book",
        _row(100, bid_sz_1=-300),
        "quarantine:negative_volume",
    ),
    BadInput(
        "order book: at 20:00", "order_book", _at("20:00:00", 120), "quarantine:outside_session"
    ),
    BadInput(
        "order book: unknown symbol",
        "order_book",
        _row(130, symbol="999999.SH"),
        "quarantine:unknown_symbol",
    ),
    BadInput(
        "news: undecodable title",
        "news",
        _row(0, title="\ufffd\ufffd bad bytes"),
        "quarantine:undecodable_text",
    ),
    BadInput("news: empty title", "news", _row(1, title=""), "quarantine:empty_title"),
    BadInput("news: sentiment 5", "news", _row(0, sentiment=5.0), "quarantine:bad_value"),
    BadInput("trades: empty file", "trades", None, "rejected:empty file", _bytes(b""), "csv"),
    BadInput("trades: truncated CSV", "trades", None, "rejected:truncated", _truncated, "csv"),
    BadInput(
        "trades: not a Parquet file",
        "trades",
        None,
        "rejected:unreadable Parquet",
        _bytes(b"PK\x03\x04 zip, not parquet"),
    ),
    BadInput(
        "bars: column close missing", "bars", None, "rejected:missing columns", _without("close")
    ),
    BadInput("trades: Parquet and CSV for one day", "trades", None, "rejected:csv", _two_formats),
]


def _deliver(folder: Path, frames: dict[str, pd.DataFrame], kind: str | None = None) -> None:
    root = folder / "landing"
    for k, frame in frames.items():
        if kind is not None and k != kind:
            continue
        for fmt in ("parquet", "csv", "csv.gz"):
            landing_path(root, k, DAY, fmt).unlink(missing_ok=True)
        write_landing_file(frame, root, k, DAY)


def bad_inputs(folder: Path, sim: SimulatedMarket, good: dict[str, pd.DataFrame]) -> list[dict]:
    out = []
    for case in BAD_INPUTS:
        root = folder / "landing"
        _deliver(folder, good)
        before = _published(folder, case.kind)
        landing_path(root, case.kind, DAY).unlink()
        if case.write is not None:
            path = landing_path(root, case.kind, DAY, case.fmt)
            case.write(path, good[case.kind])
            rows_in_file = None
        else:
            frame = case.change(good[case.kind], good)
            write_landing_file(frame, root, case.kind, DAY, case.fmt)
            rows_in_file = len(frame)
        result = _run(folder, case.kind)
        after = _published(folder, case.kind)
        outcome, _, detail = case.expect.partition(":")
        if outcome == "quarantine":
            rules_hit = set(
                _query(
                    folder,
                    f"SELECT rule FROM quant.quarantine WHERE date = '{DAY}' "
                    f"AND kind = '{case.kind}'",
                )["rule"]
            )
            ok = result.success and detail in rules_hit
            lost = rows_in_file - after.rows - after.quarantined_rows
            seen = f"published, quarantined {after.quarantined_rows} row(s): {', '.join(sorted(rules_hit))}"
        else:
            text = _failure(result)
            ok = (not result.success) and detail in text and after.signature == before.signature
            lost = before.rows - after.rows
            seen = f"{outcome}: {text.split('. ')[0][:120]}" if text else "run succeeded"
        ok = ok and after.staging == 0 and lost == 0
        if not ok:
            seen += f" [staging {after.staging}, lost {lost}]"
        out.append(
            {"case": case.name, "expected": case.expect, "outcome": seen, "lost": lost, "ok": ok}
        )
        print(f"  {'ok ' if ok else 'FAIL'} {case.name}: {seen[:100]}", flush=True)
    return out


# ---------------------------------------------------------------------------------------------
# faults, each in child processes


def _child(folder: Path, fault: str, kind: str = "trades") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, __file__, "--child", str(folder), "--fault", fault, "--kind", kind],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "DAGSTER_HOME": str(folder / "dagster_home")},
    )


FAULTS = {
    "kill mid-write": "kill_mid_write",
    "kill mid-swap": "kill_mid_swap",
    "disk full (failing writer)": "disk_full",
    "corrupt staging table": "corrupt_staging",
    "second run of the same partition at once": "concurrent",
}


def faults(folder: Path, sim: SimulatedMarket, good: dict[str, pd.DataFrame]) -> list[dict]:
    out = []
    root = folder / "landing"
    # a trades file with three bad rows: the quarantine has rows to publish with the table
    for name, fault in FAULTS.items():
        _deliver(folder, good)
        base = _child(folder, "")
        assert base.returncode == 0, base.stderr[-2000:]
        before = _published(folder, "trades")
        trades = good["trades"].copy()
        trades.loc[trades.index[[5, 15]], "volume"] = -1  # two bad rows: a quarantine to publish
        trades.loc[trades.index[25], "symbol"] = "999999.SH"
        trades["price"] = trades["price"] + 0.01  # new values: a changed day is visible
        landing_path(root, "trades", DAY).unlink()
        write_landing_file(trades, root, "trades", DAY)
        if fault == "concurrent":
            procs = [
                subprocess.Popen(
                    [sys.executable, __file__, "--child", str(folder), "--fault", ""],
                    cwd=REPO,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env={**os.environ, "DAGSTER_HOME": str(folder / "dagster_home")},
                )
                for _ in range(2)
            ]
            codes = [p.wait() for p in procs]
            faulted = f"exit codes {codes}"
            during = _published(folder, "trades")
            ok_fault = codes == [0, 0]
        else:
            run = _child(folder, fault)
            faulted = {
                "kill_mid_write": "killed (SIGKILL)"
                if run.returncode == -9
                else f"exit {run.returncode}",
                "kill_mid_swap": "killed (SIGKILL)"
                if run.returncode == -9
                else f"exit {run.returncode}",
            }.get(fault, "run failed" if run.returncode else "run succeeded")
            during = _published(folder, "trades")
            text = run.stdout + run.stderr
            if fault == "kill_mid_write":
                ok_fault = run.returncode == -9 and during.signature == before.signature
            elif fault == "kill_mid_swap":
                # the raw table is swapped, the quarantine not yet: the next opener rolls forward
                ok_fault = run.returncode == -9 and during.rows == len(trades) - 3
            elif fault == "disk_full":
                ok_fault = (
                    run.returncode != 0
                    and "No space left on device" in text
                    and during.signature == before.signature
                    and during.staging == 0
                )
            else:  # corrupt staging
                ok_fault = (
                    run.returncode != 0
                    and "does not hold what was written" in text
                    and during.signature == before.signature
                )
        # the next normal run of the day, in a new process
        again = _child(folder, "")
        after = _published(folder, "trades")
        lost = len(trades) - after.rows - after.quarantined_rows
        ok = (
            ok_fault
            and again.returncode == 0
            and after.staging == 0
            and after.quarantined_rows == 3
            and len(after.runs) == 1  # table and quarantine from one publication
            and lost == 0
        )
        outcome = f"{faulted}; published day then {'unchanged' if during.signature == before.signature else 'replaced'}"
        if fault == "kill_mid_swap":
            outcome = f"{faulted} between the swaps; rolled forward by the next run"
        outcome += (
            f"; next run {'succeeded' if again.returncode == 0 else 'FAILED'}, no staging left"
        )
        out.append(
            {
                "case": name,
                "expected": "consistent, nothing lost",
                "outcome": outcome,
                "lost": lost,
                "ok": ok,
            }
        )
        print(f"  {'ok ' if ok else 'FAIL'} {name}: {outcome}", flush=True)
        if not ok:
            print(again.stderr[-3000:])
    return out


def child(folder: Path, fault: str, kind: str) -> None:
    result = _run(folder, kind, fault=fault)
    if not result.success:
        print(_failure(result), file=sys.stderr)
        raise SystemExit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--markdown", action="store_true", help="print the README table")
    parser.add_argument(
        "--part", choices=["all", "inputs", "faults"], default="all", help="what to run"
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--fault", default="", help=argparse.SUPPRESS)
    parser.add_argument("--kind", default="trades", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.fault, args.kind)
        return
    shutil.rmtree(FOLDER, ignore_errors=True)
    (FOLDER / "dagster_home").mkdir(parents=True)
    (FOLDER / "dagster_home" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    os.environ["DAGSTER_HOME"] = str(FOLDER / "dagster_home")
    sim = _market()
    sim.universe().to_parquet(_ensure(FOLDER / "landing") / "universe.parquet", index=False)
    start = time.perf_counter()
    for day in (D0, DAY):  # the history the day's checks read, then a good day published
        for kind, frame in _frames(sim, day).items():
            write_landing_file(frame, FOLDER / "landing", kind, day)
        for kind in RAW:
            assert _run(FOLDER, kind, day).success, f"good {kind} {day} failed"
    good = _frames(sim, DAY)
    rows = []
    if args.part in ("all", "inputs"):
        print(f"bad inputs ({len(BAD_INPUTS)}):", flush=True)
        rows += bad_inputs(FOLDER, sim, good)
    if args.part in ("all", "faults"):
        print(f"faults ({len(FAULTS)}):", flush=True)
        rows += faults(FOLDER, sim, good)
    failed = [r for r in rows if not r["ok"]]
    print(
        f"\n{len(rows) - len(failed)} of {len(rows)} as expected, rows lost "
        f"{sum(r['lost'] for r in rows)}, {time.perf_counter() - start:.0f} s"
    )
    table = "| fault | expected | outcome | rows lost |\n|---|---|---|---|\n" + "\n".join(
        f"| {r['case']} | {r['expected']} | {r['outcome']} | {r['lost']} |" for r in rows
    )
    (FOLDER / "results.json").write_text(json.dumps(rows, indent=1))
    if args.markdown:
        print(table)
    if failed:
        raise SystemExit(f"{len(failed)} outcomes differ: {[r['case'] for r in failed]}")


def _ensure(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


if __name__ == "__main__":
    main()
