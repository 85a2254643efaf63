"""The cache of hot reads (resources/cache.py): frames come back exactly, the in-process store is
bounded, and through real Dagster materialisations on the embedded engine, with the in-process
store and with the machine's Redis: a hot read is served from the cache the second time, a
partition rewrite makes the next read return the new data, and an unreachable Redis costs one
warning and no failed run."""

import time
import uuid
from collections import Counter

import numpy as np
import pandas as pd
import pytest
import redis
from dagster import AssetExecutionContext, DagsterInstance, materialize

from quant_assets.calendar import trading_days
from quant_assets.wiring import daily_table, same_day, window
from resources.cache import CacheResource, frame_from_bytes, frame_to_bytes
from resources.clickhouse import ClickHouseResource, TableSpec
from resources.clickhouse_io import ClickHouseIOManager
from tests.models.test_registry_s3 import _free_port
from tests.services import REDIS_URL, redis_reachable

HOT = TableSpec(
    name="hot_prices",
    columns={
        "date": "Date",
        "symbol": "LowCardinality(String)",
        "name": "String",
        "close": "Float64",
        "ts": "DateTime64(3, 'Asia/Shanghai')",
        "halted": "Bool",
    },
    order_by=("symbol", "date"),
    cached=True,
)
COLD = TableSpec(name="cold_prices", columns=HOT.columns, order_by=HOT.order_by)
SEEN = TableSpec(
    name="seen",
    columns={"date": "Date", "symbol": "LowCardinality(String)", "n": "UInt32"},
    order_by=("symbol", "date"),
)
DAYS = [d.strftime("%Y-%m-%d") for d in trading_days("2024-03-04", "2024-03-08")]

version = {"close": 0.0}  # added to every close the price assets write: a rewrite changes it
captured: dict[str, pd.DataFrame] = {}
reads: Counter[str] = Counter()  # ClickHouse reads of each table


def _prices(day: str) -> pd.DataFrame:
    d = pd.Timestamp(day)
    return pd.DataFrame(
        {
            "date": d,
            "symbol": ["A", "B", "C"],
            "name": ["浦发银行", "平安银行", ""],
            "close": [d.day + 0.1 + version["close"], np.nan, d.day + 0.3],
            "ts": pd.Timestamp(f"{day} 15:00", tz="Asia/Shanghai"),
            "halted": [False, True, False],
        }
    )


@daily_table(HOT, group="t")
def hot_prices(context: AssetExecutionContext) -> pd.DataFrame:
    return _prices(context.partition_key)


@daily_table(COLD, group="t")
def cold_prices(context: AssetExecutionContext) -> pd.DataFrame:
    return _prices(context.partition_key)


@daily_table(
    SEEN,
    group="t",
    ins={
        "hot_prices": window(3, columns=["date", "symbol", "close", "ts"]),
        "cold_prices": same_day(),
    },
)
def seen(context: AssetExecutionContext, hot_prices: pd.DataFrame, cold_prices: pd.DataFrame):
    captured["hot"], captured["cold"] = hot_prices, cold_prices
    n = hot_prices.groupby("symbol").size()
    return pd.DataFrame({"symbol": n.index, "n": n.to_numpy()})


class CountingClickHouse(ClickHouseResource):
    """The real resource, counting the data reads it makes for each table."""

    def read_days(self, client, spec, *args, **kwargs) -> pd.DataFrame:
        reads[spec.name] += 1
        return super().read_days(client, spec, *args, **kwargs)


ASSETS = [hot_prices, cold_prices, seen]


@pytest.fixture(params=["in-process", "redis"])
def cache(request):
    """A cache with a key prefix of its own, on each backend; Redis's keys deleted after."""
    prefix = f"test-cache-{uuid.uuid4().hex[:12]}"
    if request.param == "in-process":
        yield CacheResource(prefix=prefix)
        return
    if not redis_reachable():
        pytest.skip(f"no Redis at {REDIS_URL} on this machine: the Redis cache is not tested")
    yield CacheResource(redis_url=REDIS_URL, prefix=prefix)
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


@pytest.fixture
def io(tmp_path, cache):
    captured.clear()
    reads.clear()
    version["close"] = 0.0
    clickhouse = CountingClickHouse(dsn=f"chdb://{tmp_path / 'ch'}", database="quant_test")
    return {"clickhouse_io": ClickHouseIOManager(clickhouse=clickhouse, cache=cache)}


def _run(io, day: str, *assets):
    selection = [a.key for a in assets] if assets else None
    result = materialize(
        ASSETS,
        partition_key=day,
        resources=io,
        instance=DagsterInstance.ephemeral(),
        selection=selection,
        raise_on_error=False,
    )
    assert result.success
    return result


def _history(io) -> None:
    for day in DAYS[:3]:
        _run(io, day, hot_prices, cold_prices)


def test_frames_come_back_exactly_with_their_dtypes_and_attrs():
    frame = _prices(DAYS[0]).assign(
        volume=np.array([1, 2, 2**63], dtype=np.uint64), weight=pd.Series([0.5, None, 1.0])
    )
    frame["name"] = frame["name"].astype("str")
    frame.attrs["window"] = {"asset": "x", "requested": 3, "stored": 2}
    back = frame_from_bytes(frame_to_bytes(frame))
    pd.testing.assert_frame_equal(back, frame)
    assert back.attrs == frame.attrs
    back.loc[0, "close"] = -1.0  # a reader's change stays its own
    assert frame_from_bytes(frame_to_bytes(frame)).loc[0, "close"] == frame.loc[0, "close"]


def test_the_in_process_store_is_bounded_and_expires():
    frame = pd.DataFrame({"x": np.arange(1000, dtype=np.float64)})
    size = len(frame_to_bytes(frame))
    cache = CacheResource(
        prefix=f"test-{uuid.uuid4().hex}", max_bytes=2 * size, max_entry_bytes=4 * size
    )
    for name in "abc":
        assert cache.set_frame(name, frame)
    assert cache.get_frame("a") is None  # the least recently used went first
    assert cache.get_frame("b") is not None and cache.get_frame("c") is not None
    assert not cache.set_frame("big", pd.DataFrame({"x": np.arange(8000, dtype=np.float64)}))
    assert cache.get_frame("big") is None

    short = CacheResource(prefix=f"test-{uuid.uuid4().hex}", ttl_seconds=1)
    assert short.set_frame("k", frame)
    assert short.get_frame("k") is not None
    time.sleep(1.1)
    assert short.get_frame("k") is None


def test_a_bump_makes_every_read_of_that_table_unreachable(cache):
    read = {"days": DAYS[:2], "columns": ["close"]}
    key = cache.key("db.t", read)
    other = cache.key("db.u", read)
    assert key == cache.key("db.t", read) and key != cache.key("db.t", {**read, "days": DAYS})
    assert cache.set_frame(key, _prices(DAYS[0]))
    cache.bump("db.t")
    assert cache.generation("db.t") == 1
    assert cache.key("db.t", read) != key and cache.key("db.u", read) == other
    cache.invalidate_all()
    assert cache.key("db.u", read) != other
    # the old entry is still stored (the TTL removes it), but no key leads to it any more
    assert cache.get_frame(key) is not None


def test_a_hot_read_is_served_from_the_cache_the_second_time(io):
    _history(io)
    reads.clear()
    _run(io, DAYS[2], seen)
    first = captured["hot"]
    _run(io, DAYS[2], seen)
    assert reads == {"hot_prices": 1, "cold_prices": 2}  # the cold table is read each time
    pd.testing.assert_frame_equal(captured["hot"], first)
    assert captured["hot"].attrs["window"] == first.attrs["window"]
    assert sorted(first["date"].dt.strftime("%Y-%m-%d").unique()) == DAYS[:3]
    assert str(first["ts"].dtype) == "datetime64[ns, Asia/Shanghai]"


def test_a_partition_rewrite_makes_the_next_read_return_the_new_data(io):
    _history(io)
    _run(io, DAYS[2], seen)
    version["close"] = 100.0
    _run(io, DAYS[1], hot_prices)  # rewritten: the cached window is stale
    reads.clear()
    _run(io, DAYS[2], seen)
    assert reads["hot_prices"] == 1
    a = captured["hot"].query("symbol == 'A'")
    closes = dict(zip(a["date"].dt.strftime("%Y-%m-%d"), a["close"], strict=True))
    assert closes == pytest.approx({DAYS[0]: 4.1, DAYS[1]: 105.1, DAYS[2]: 6.1})
    _run(io, DAYS[2], seen)  # and the new data is cached in turn
    assert reads["hot_prices"] == 1


def test_an_unreachable_redis_costs_one_warning_and_no_failed_run(tmp_path):
    url = f"redis://:hunter2-secret@127.0.0.1:{_free_port()}/0"  # nothing listens there
    clickhouse = CountingClickHouse(dsn=f"chdb://{tmp_path / 'ch'}", database="quant_test")
    io = {
        "clickhouse_io": ClickHouseIOManager(
            clickhouse=clickhouse, cache=CacheResource(redis_url=url, prefix="test-down")
        )
    }
    reads.clear()
    instance = DagsterInstance.ephemeral()
    runs = []
    for day in DAYS[:3]:
        runs.append(materialize(ASSETS[:2], partition_key=day, resources=io, instance=instance))
    for _ in range(2):
        runs.append(
            materialize(
                ASSETS, partition_key=DAYS[2], resources=io, instance=instance, selection=[seen.key]
            )
        )
    assert all(r.success for r in runs)
    assert reads["hot_prices"] == 2  # no cache: each read from ClickHouse
    logs = [entry for r in runs for entry in instance.all_logs(r.run_id)]
    warned = [e.user_message for e in logs if "Redis" in e.user_message and e.level >= 30]
    assert len(warned) == 1, warned
    assert "127.0.0.1" in warned[0] and "unreachable" in warned[0]
    assert not [e for e in logs if "hunter2" in (e.user_message or "")]
