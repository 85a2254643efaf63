"""API keys: created at random, shown once, stored hashed in ClickHouse, scoped, expiring and
revocable (the command line that manages them: `keys_cli`).

A key reads `qk_<id>.<secret>`: the id (`k` + 16 hex digits) finds the key's row without a
scan, the secret is 32 random bytes (`secrets.token_urlsafe`). Only HMAC-SHA256(pepper,
id.secret) is stored. A fast hash is enough because the secret has 256 bits of entropy: there
is no dictionary to try, so a slow password hash (bcrypt, argon2) would only cost every
request time; the pepper (a server setting) means a copy of the table alone cannot even test
a guess.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pandas as pd

from quant_assets.api.store import Store
from quant_assets.api.tables import API_KEYS
from resources.cache import CacheResource

if TYPE_CHECKING:
    from quant_assets.api.store_agent import StoreAgent

log = logging.getLogger(__name__)

KEY_PREFIX = "qk_"
SCOPES = ("read", "admin")
KEY_ID = re.compile(r"k[0-9a-f]{16}")
_KEY = re.compile(r"qk_(k[0-9a-f]{16})\.([A-Za-z0-9_-]{43})")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._@-]{0,63}")
MAX_EXPIRY_DAYS = 3650
_MEMO_MAX = 10_000
_READ_LOCKS = 64  # concurrent misses of one key wait for one read (striped by key id)


class NotRemembered(LookupError):
    """The key's record must be read from the store first (`get(..., wait=False)`)."""


@dataclass(frozen=True)
class ApiKey:
    """A key's stored record (never its secret)."""

    key_id: str
    name: str
    scope: str
    key_hash: str
    created_at: datetime
    expires_at: datetime
    revoked: bool
    revoked_at: datetime | None

    def usable(self, now: datetime | None = None) -> bool:
        """Not revoked and not expired."""
        return not self.revoked and (now or datetime.now(UTC)) < self.expires_at

    @property
    def scopes(self) -> tuple[str, ...]:
        """What the key may do: admin implies read."""
        return SCOPES if self.scope == "admin" else ("read",)

    def public(self) -> dict[str, object]:
        """The record as it may be shown: everything but the hash."""
        return {
            "key_id": self.key_id,
            "name": self.name,
            "scope": self.scope,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "revoked": self.revoked,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


def parse_key(text: str) -> tuple[str, str] | None:
    """(key id, secret) of a key as it was shown, None when `text` is not shaped like one."""
    match = _KEY.fullmatch(text.strip())
    return (match.group(1), match.group(2)) if match else None


def hash_secret(key_id: str, secret: str, pepper: str) -> str:
    """The stored form of a key: HMAC-SHA256 under the pepper, over `id.secret`."""
    return hmac.new(pepper.encode(), f"{key_id}.{secret}".encode(), hashlib.sha256).hexdigest()


def _utc(value: object) -> datetime | None:
    if value is None or pd.isna(value):
        return None
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return None if ts.value == 0 else ts.to_pydatetime()


class KeyStore:
    """The `api_keys` table: create, list, revoke, and look a key up for each request.

    A request uses a key's record from memory while it is younger than `recheck_s` seconds
    and the table's cache generation has not moved since it was read (every change made
    through a KeyStore bumps it: at once in this process, and across processes when the cache
    is on Redis). Off the request path, a refresher thread (`start`) re-reads the records of
    the keys used since its previous pass every `recheck_s / 2` seconds, in one read (through
    the store `agent` when given, else in this process), so requests under way find their
    key in memory. A record older than `recheck_s` (the refresher fell behind, a key unused
    for a while) is read before the request goes on, once however many requests wait for it.
    So a key revoked by the CLI in another process stops working within `recheck_s`, at once
    through this process or with Redis."""

    def __init__(
        self,
        store: Store,
        cache: CacheResource,
        cache_name: str,
        pepper: str,
        recheck_s: float,
        agent: StoreAgent | None = None,
    ) -> None:
        self.store, self.cache, self.cache_name = store, cache, cache_name
        self.pepper, self.recheck_s, self.agent = pepper, recheck_s, agent
        # key id -> (record or None when unknown, monotonic time before its read, generation)
        self._memo: dict[str, tuple[ApiKey | None, float, int | None]] = {}
        self._used: set[str] = set()  # ids looked up since the refresher's last pass
        self._lock = threading.Lock()
        self._read_locks = [threading.Lock() for _ in range(_READ_LOCKS)]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def create(
        self, name: str, scope: str, expires_days: int, now: datetime | None = None
    ) -> tuple[ApiKey, str]:
        """A new key: its record and the key itself (returned once, never stored)."""
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {', '.join(SCOPES)}, not {scope!r}")
        if not NAME.fullmatch(name):
            raise ValueError("name: 1-64 letters, digits, space, . _ @ - (starting with one)")
        if not 1 <= expires_days <= MAX_EXPIRY_DAYS:
            raise ValueError(f"expires_days must be within 1..{MAX_EXPIRY_DAYS}")
        now = now or datetime.now(UTC)
        key_id, secret = "k" + secrets.token_hex(8), secrets.token_urlsafe(32)
        record = ApiKey(
            key_id,
            name,
            scope,
            hash_secret(key_id, secret, self.pepper),
            now,
            now + timedelta(days=expires_days),
            False,
            None,
        )
        self._write(record)
        return record, f"{KEY_PREFIX}{key_id}.{secret}"

    def list(self) -> list[ApiKey]:
        """Every key, newest first."""
        with self.store.client() as client:
            self.store.ensure(client, API_KEYS)
            frame = self.store.query(
                client, "SELECT * FROM {db}.api_keys FINAL ORDER BY created_at DESC, key_id"
            )
        return [_record(row) for row in frame.to_dict("records")]

    def revoke(self, key_id: str, now: datetime | None = None) -> bool:
        """Revoke a key (its tokens stop working at their next request); False if unknown."""
        found = self._read(key_id)
        if found is None:
            return False
        if not found.revoked:
            revoked_at = now or datetime.now(UTC)
            self._write(
                ApiKey(**{**found.__dict__, "revoked": True, "revoked_at": revoked_at}),
            )
        return True

    def get(self, key_id: str, wait: bool = True) -> ApiKey | None:
        """The key's record, from memory when recent and the table unchanged, else read (or,
        with `wait=False`, NotRemembered: the caller reads it off the event loop)."""
        if not KEY_ID.fullmatch(key_id):
            return None
        generation = self.cache.generation(self.cache_name)
        memo = self._memo.get(key_id)
        if self._current(memo, generation):
            self._used.add(key_id)
            return memo[0]
        if not wait:
            raise NotRemembered(key_id)
        with self._read_locks[zlib.crc32(key_id.encode()) % _READ_LOCKS]:
            generation = self.cache.generation(self.cache_name)
            memo = self._memo.get(key_id)
            if self._current(memo, generation):  # read meanwhile by a request waiting before
                return memo[0]
            started = time.monotonic()
            record = self._fetch([key_id]).get(key_id)
            self._remember({key_id: record}, started, generation)
            self._used.add(key_id)
        return record

    def _current(self, memo: tuple | None, generation: int | None) -> bool:
        return (
            memo is not None
            and generation is not None
            and memo[2] == generation
            and time.monotonic() - memo[1] < self.recheck_s
        )

    def refresh(self) -> int:
        """Re-read the records of the keys looked up since the last refresh (one read); how
        many."""
        with self._lock:
            ids, self._used = sorted(self._used), set()
        if not ids:
            return 0
        generation = self.cache.generation(self.cache_name)
        started = time.monotonic()
        found = self._fetch(ids)
        self._remember({i: found.get(i) for i in ids}, started, generation)
        return len(ids)

    def start(self) -> None:
        """Start the refresher thread (see the class docstring)."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="api-keys", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.recheck_s + 60)
            self._thread = None

    def _run(self) -> None:
        failing = False
        while not self._stop.wait(self.recheck_s / 2):
            try:
                self.refresh()
            except Exception as exc:  # records then age out and requests read them again
                if not failing:
                    log.warning("key records not refreshed (%s: %s)", type(exc).__name__, exc)
                failing = True
            else:
                failing = False

    def _remember(
        self, records: dict[str, ApiKey | None], read_at: float, generation: int | None
    ) -> None:
        with self._lock:
            if len(self._memo) + len(records) > _MEMO_MAX:
                self._memo.clear()
            for key_id, record in records.items():
                self._memo[key_id] = (record, read_at, generation)

    def _fetch(self, key_ids: list[str]) -> dict[str, ApiKey]:
        """The stored records of `key_ids` (absent ids: unknown), through the agent if any."""
        if self.agent is None:
            rows = read_records(self.store, key_ids)
        else:
            rows = self.agent.call("keys", key_ids=key_ids)
        records = [_record(row) for row in rows]  # type: ignore[union-attr]
        return {r.key_id: r for r in records}

    def verify(self, key_id: str, secret: str, wait: bool = True) -> ApiKey | None:
        """The usable key whose secret this is, else None (unknown, wrong, revoked, expired);
        `wait` as in `get`."""
        record = self.get(key_id, wait)
        if record is None:
            return None
        expected = hash_secret(key_id, secret, self.pepper)
        if not hmac.compare_digest(expected, record.key_hash) or not record.usable():
            return None
        return record

    def _read(self, key_id: str) -> ApiKey | None:
        rows = read_records(self.store, [key_id])
        return _record(rows[0]) if rows else None

    def _write(self, record: ApiKey) -> None:
        row = {
            **record.__dict__,
            "revoked_at": record.revoked_at or datetime.fromtimestamp(0, UTC),
            "version": time.time_ns(),
        }
        frame = pd.DataFrame([row])[list(API_KEYS.columns)]
        with self.store.client() as client:
            self.store.ensure(client, API_KEYS)
            self.store.resource.insert(client, f"{self.store.database}.api_keys", frame)
        self.cache.bump(self.cache_name)
        with self._lock:
            self._memo.pop(record.key_id, None)


def _record(row: dict) -> ApiKey:
    return ApiKey(
        key_id=str(row["key_id"]),
        name=str(row["name"]),
        scope=str(row["scope"]),
        key_hash=str(row["key_hash"]),
        created_at=_utc(row["created_at"]),
        expires_at=_utc(row["expires_at"]),
        revoked=bool(row["revoked"]),
        revoked_at=_utc(row["revoked_at"]),
    )


def read_records(store: Store, key_ids: list[str]) -> list[dict[str, object]]:
    """The stored records of `key_ids` in their JSON form (what the store agent sends):
    times as ISO text, never the secret (only its hash is stored)."""
    if not key_ids:
        return []
    with store.client() as client:
        store.ensure(client, API_KEYS)
        frame = store.query(
            client,
            "SELECT * FROM {db}.api_keys FINAL WHERE key_id IN %(ids)s",
            {"ids": tuple(key_ids)},
        )
    return [_wire(_record(row)) for row in frame.to_dict("records")]


def _wire(record: ApiKey) -> dict[str, object]:
    return {**record.public(), "key_hash": record.key_hash}
