"""A cache of hot table reads: Redis when configured, an in-process LRU by default.

Frames are stored as Arrow IPC streams (LZ4-compressed), so a hit gives a fresh frame with the
dtypes it was stored with and a reader can never change what the next reader gets.

Invalidation is by table generation: every table has a counter (Redis INCR, or a dict in
process) and a cached read's key holds the table's current generation. A partition rewrite
bumps the counter after the new data is published, which makes every cached read of that
table unreachable at once, with no scan or delete of keys; the TTL removes the orphans. A
global generation (`invalidate_all`) is part of every key too: it is bumped when stored data
changed without the table's own bump (a publication rolled forward after a crash, writes made
while Redis was unreachable).

In process (the default) the entries and counters live in this process, shared by every
resource instance with the same prefix: the steps of a run executed in one process share them,
and a rewrite by another process is not seen there until the TTL expires. Where runs in
separate processes rewrite tables that others read, configure Redis.

A Redis that is configured but unreachable never fails a run: reads and writes go to ClickHouse
as without a cache, with one warning when Redis becomes unreachable (not one per call); it is
tried again every `REDIS_RETRY_S` seconds, and when it answers again the global generation is
bumped, since rewrites made in the meantime could not bump theirs. The Redis URL (it may hold a
password) is never logged: messages name its host and port only.
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import TypeVar
from urllib.parse import urlsplit

import pandas as pd
import pyarrow as pa
from dagster import ConfigurableResource, get_dagster_logger
from pydantic import Field

EVERY_TABLE = "*"  # the generation that is part of every key (`invalidate_all`)
REDIS_RETRY_S = 30.0  # after a failure, Redis is left alone this long before it is tried again
ATTRS_KEY = b"quant.attrs"  # the frame's attrs (JSON) in the Arrow schema's metadata
_IPC = pa.ipc.IpcWriteOptions(compression="lz4")

T = TypeVar("T")


def frame_to_bytes(frame: pd.DataFrame) -> bytes:
    """`frame` (its index and JSON-able attrs included) as an Arrow IPC stream."""
    table = pa.Table.from_pandas(frame)
    meta = dict(table.schema.metadata or {})
    if frame.attrs:
        meta[ATTRS_KEY] = json.dumps(frame.attrs).encode()
    table = table.replace_schema_metadata(meta)
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema, options=_IPC) as writer:
        writer.write_table(table)
    return sink.getvalue()


def frame_from_bytes(data: bytes) -> pd.DataFrame:
    """The frame `frame_to_bytes` stored."""
    table = pa.ipc.open_stream(data).read_all()
    meta = table.schema.metadata or {}
    frame = table.to_pandas()
    if ATTRS_KEY in meta:
        frame.attrs.update(json.loads(meta[ATTRS_KEY]))
    return frame


def redacted(url: str) -> str:
    """A Redis URL as it may be shown: scheme, host and port, no user or password."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}"


class _LocalStore:
    """The in-process store of one key prefix: entries in LRU order with their expiry and
    size, bounded in bytes, and the generation counters."""

    def __init__(self) -> None:
        self.entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self.size = 0
        self.generations: dict[str, int] = {}
        self.lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self.lock:
            found = self.entries.get(key)
            if found is None:
                return None
            if found[0] < time.monotonic():
                self._drop(key)
                return None
            self.entries.move_to_end(key)
            return found[1]

    def put(self, key: str, value: bytes, ttl_s: float, max_bytes: int) -> None:
        with self.lock:
            if key in self.entries:
                self._drop(key)
            self.entries[key] = (time.monotonic() + ttl_s, value)
            self.size += len(value)
            while self.size > max_bytes and self.entries:
                self._drop(next(iter(self.entries)))  # the least recently used

    def _drop(self, key: str) -> None:
        self.size -= len(self.entries.pop(key)[1])

    def generation(self, *names: str) -> list[int]:
        with self.lock:
            return [self.generations.get(n, 0) for n in names]

    def bump(self, name: str) -> int:
        with self.lock:
            self.generations[name] = self.generations.get(name, 0) + 1
            return self.generations[name]


class _RedisLink:
    """One Redis server as this process sees it: the client, and whether it is down (then it
    is left alone until `retry_at`)."""

    def __init__(self, url: str) -> None:
        import redis

        self.where = redacted(url)
        self.client = redis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=5.0)
        self.errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self.down = False
        self.retry_at = 0.0
        self.lock = threading.Lock()


_LOCAL: dict[str, _LocalStore] = {}
_LINKS: dict[str, _RedisLink] = {}
_REGISTRY_LOCK = threading.Lock()


class CacheResource(ConfigurableResource):
    """Frames by key, invalidated by table generation (see the module docstring): Redis when
    `redis_url` is set, otherwise in this process."""

    redis_url: str | None = Field(
        default=None,
        description="redis://[:password@]host:port/db (may hold a password: feed it from an "
        "EnvVar); unset: an in-process cache",
    )
    prefix: str = Field(
        default="quant", description="prefix of every key: one per deployment sharing a Redis"
    )
    ttl_seconds: int = Field(default=6 * 3600, description="how long an entry lives", gt=0)
    max_bytes: int = Field(
        default=256 << 20, description="in process: the bytes all entries may take", gt=0
    )
    max_entry_bytes: int = Field(
        default=64 << 20, description="a larger frame (in memory or as stored) is not cached", gt=0
    )

    @property
    def backend(self) -> str:
        """Where entries live, as it may be shown: the Redis host and port, or 'in-process'."""
        return redacted(self.redis_url) if self.redis_url else "in-process"

    # -- keys and generations --------------------------------------------------------------

    def key(self, table: str, parts: Mapping[str, object]) -> str | None:
        """The key of a read of `table` described by `parts` (JSON-able: range, columns, ...)
        at the table's current generation; None when the generation cannot be read (Redis
        down): such a read is neither looked up nor stored."""
        gens = self._generations(table)
        if gens is None:
            return None
        digest = hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode())
        return f"{self.prefix}:frame:{table}:{gens[0]}.{gens[1]}:{digest.hexdigest()[:24]}"

    def generation(self, table: str) -> int | None:
        """The table's generation (0 before its first bump; None with Redis down)."""
        gens = self._generations(table)
        return None if gens is None else gens[0]

    def bump(self, table: str) -> None:
        """A partition of `table` was rewritten: every cached read of it becomes unreachable."""
        name = self._generation_key(table)
        if self.redis_url is None:
            self._local().bump(name)
        else:
            self._redis(lambda r: r.incr(name), None)

    def invalidate_all(self) -> None:
        """Every cached read of every table becomes unreachable (the global generation)."""
        self.bump(EVERY_TABLE)

    def _generation_key(self, table: str) -> str:
        return f"{self.prefix}:generation:{table}"

    def _generations(self, table: str) -> tuple[int, int] | None:
        names = [self._generation_key(table), self._generation_key(EVERY_TABLE)]
        if self.redis_url is None:
            table_gen, every = self._local().generation(*names)
            return table_gen, every
        found = self._redis(lambda r: r.mget(names), None)
        if found is None:
            return None
        return int(found[0] or 0), int(found[1] or 0)

    # -- frames ----------------------------------------------------------------------------

    def get_frame(self, key: str) -> pd.DataFrame | None:
        """The frame stored under `key`, or None (absent, expired, or the store unreachable)."""
        data = (
            self._local().get(key)
            if self.redis_url is None
            else self._redis(lambda r: r.get(key), None)
        )
        if data is None:
            return None
        try:
            return frame_from_bytes(data)
        except pa.ArrowException as exc:  # a damaged entry: read from the source instead
            get_dagster_logger().warning(f"cache entry {key} unreadable ({exc}); ignored")
            return None

    def set_frame(self, key: str, frame: pd.DataFrame) -> bool:
        """Store `frame` under `key` for `ttl_seconds`; False when it was not stored (larger
        than `max_entry_bytes`, or the store unreachable)."""
        if int(frame.memory_usage(index=False).sum()) > self.max_entry_bytes:
            return False  # no copy of a large frame just to find it too large
        try:
            data = frame_to_bytes(frame)
        except pa.ArrowException as exc:  # e.g. an object column of mixed types
            get_dagster_logger().warning(f"a frame for {key} cannot be cached ({exc})")
            return False
        if len(data) > self.max_entry_bytes:
            return False
        if self.redis_url is None:
            self._local().put(key, data, self.ttl_seconds, self.max_bytes)
            return True
        return bool(self._redis(lambda r: r.set(key, data, ex=self.ttl_seconds), False))

    # -- backends --------------------------------------------------------------------------

    def _local(self) -> _LocalStore:
        with _REGISTRY_LOCK:
            return _LOCAL.setdefault(self.prefix, _LocalStore())

    def _redis(self, call: Callable[..., T], fallback: T) -> T:
        """`call(client)` on Redis, or `fallback` when Redis is unreachable (one warning when
        it becomes so; tried again after REDIS_RETRY_S)."""
        assert self.redis_url is not None
        with _REGISTRY_LOCK:
            link = _LINKS.get(self.redis_url)
            if link is None:
                link = _LINKS[self.redis_url] = _RedisLink(self.redis_url)
        if link.down and time.monotonic() < link.retry_at:
            return fallback
        try:
            if link.down:  # back: rewrites made meanwhile could not bump their generation
                link.client.incr(self._generation_key(EVERY_TABLE))
            result = call(link.client)
        except link.errors as exc:
            with link.lock:
                warn = not link.down
                link.down, link.retry_at = True, time.monotonic() + REDIS_RETRY_S
            if warn:
                get_dagster_logger().warning(
                    f"the Redis cache at {link.where} is unreachable ({type(exc).__name__}): "
                    "reads go to ClickHouse without a cache until it answers again "
                    f"(tried every {REDIS_RETRY_S:.0f} s)"
                )
            return fallback
        if link.down:
            link.down = False
            get_dagster_logger().info(f"the Redis cache at {link.where} answers again")
        return result
