"""What the JSON routes read from ClickHouse, through the cache.

`CachedReader.frame` answers a read from the cache resource when it can: the key holds the
cache generation of every table the read touches, under the IO manager's own names for them
(`ClickHouseIOManager.cache_name`), so the bump that follows a partition's publication makes
the next request read the new data. A small in-process memo in front of the cache spares a
hit the frame's deserialisation; it is keyed the same way, so it is never staler than the
cache. `answer` keeps the encoded answers too (a page of a filtered list), under the same key:
a repeated request is then a lookup, not a filter and an encoding of the frame; `remembered`
is that lookup alone, which never blocks when the cache is in process (the routes call it on
the event loop and go to a thread only when it misses). Frames handed out are shared: callers
filter them into new frames, never change them.

The `read_*` functions are the reads themselves (one client, a few SELECTs, a frame); they
return an empty frame when the table does not exist yet.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

import pandas as pd
from clickhouse_connect.driver.client import Client

from quant_assets.api.store import Store
from resources.cache import CacheResource

MEMO_ENTRIES = 512
ANSWER_ENTRIES = 4096  # rendered answers (a page of a list each, a few kB)
Read = Callable[[Client], pd.DataFrame]


class CachedReader:
    """Reads keyed by the generations of the tables they touch (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        cache: CacheResource,
        cache_name: Callable[[str], str],
        enabled: bool = True,
    ):
        self.store, self.cache, self.cache_name = store, cache, cache_name
        self.enabled = enabled  # off: every read goes to ClickHouse
        self._memo: OrderedDict[str, pd.DataFrame] = OrderedDict()
        self._answers: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def _key(self, tables: Sequence[str], parts: dict[str, object]) -> str | None:
        """The cache key of a read at the tables' current generations (None: not cacheable,
        with the cache off or Redis down)."""
        if not self.enabled:
            return None
        others = [self.cache.generation(self.cache_name(t)) for t in tables[1:]]
        if None in others:
            return None
        return self.cache.key(self.cache_name(tables[0]), {**parts, "also": others})

    def frame(self, tables: Sequence[str], parts: dict[str, object], read: Read) -> pd.DataFrame:
        """The frame `read` gives for `parts`, from the memo or the cache when the tables have
        not changed since it was stored."""
        return self._frame(self._key(tables, parts), read)

    def _frame(self, key: str | None, read: Read) -> pd.DataFrame:
        if key is not None:
            with self._lock:
                hit = self._memo.get(key)
                if hit is not None:
                    self._memo.move_to_end(key)
                    return hit
            hit = self.cache.get_frame(key)
            if hit is not None:
                self._remember(key, hit)
                return hit
        with self.store.client() as client:
            frame = read(client)
        if key is not None:
            self.cache.set_frame(key, frame)
            self._remember(key, frame)
        return frame

    def answer(
        self,
        tables: Sequence[str],
        parts: dict[str, object],
        read: Read,
        variant: dict[str, object],
        render: Callable[[pd.DataFrame], bytes],
    ) -> bytes:
        """The rendered answer (JSON bytes) of `read` for `parts` and one `variant` of it (the
        filters, the page): kept in memory under the read's key, so a repeated request costs
        a dictionary lookup instead of filtering and encoding a frame again. `render` may
        raise (a 404): nothing is kept then."""
        key = self._key(tables, parts)
        if key is None:
            return render(self._frame(None, read))
        name = _answer_name(key, variant)
        body = self._recall(name)
        if body is not None:
            return body
        body = render(self._frame(key, read))
        with self._lock:
            self._answers[name] = body
            while len(self._answers) > ANSWER_ENTRIES:
                self._answers.popitem(last=False)
        return body

    def remembered(
        self, tables: Sequence[str], parts: dict[str, object], variant: dict[str, object]
    ) -> bytes | None:
        """The answer `answer` keeps for these arguments, if it holds one at the tables'
        current generations; None otherwise. Blocks on nothing unless the cache is on Redis
        (a generation to ask for)."""
        key = self._key(tables, parts)
        if key is None:
            return None
        return self._recall(_answer_name(key, variant))

    def _recall(self, name: str) -> bytes | None:
        """A kept answer by its name, marked as the most recently used; None if not kept."""
        with self._lock:
            body = self._answers.get(name)
            if body is not None:
                self._answers.move_to_end(name)
            return body

    def _remember(self, key: str, frame: pd.DataFrame) -> None:
        with self._lock:
            self._memo[key] = frame
            while len(self._memo) > MEMO_ENTRIES:
                self._memo.popitem(last=False)


def _answer_name(key: str, variant: dict[str, object]) -> str:
    return f"{key}|{json.dumps(variant, sort_keys=True, default=str)}"


def _exists(store: Store, client: Client, *tables: str) -> bool:
    return all(store.table_exists(client, t) for t in tables)


def _latest(store: Store, client: Client, table: str, where: str = "1") -> str | None:
    """The newest day `table` holds (rows matching `where`), or None."""
    found = store.query(
        client, f"SELECT toString(max(date)) AS d, count() AS n FROM {{db}}.{table} WHERE {where}"
    )
    return str(found["d"].iloc[0]) if int(found["n"].iloc[0]) else None


def read_day(
    store: Store, table: str, day: str | None, columns: str = "*", where: str = "1"
) -> Read:
    """All rows of `table` on `day` (None: the newest day it holds) matching `where`."""

    def read(client: Client) -> pd.DataFrame:
        if not _exists(store, client, table):
            return pd.DataFrame()
        on = day or _latest(store, client, table, where)
        if on is None:
            return pd.DataFrame()
        return store.query(
            client,
            f"SELECT {columns} FROM {{db}}.{table} WHERE date = %(d)s AND {where}",
            {"d": on},
        )

    return read


def read_factors(store: Store, day: str | None) -> Read:
    """The active factor set of `day` (None: the newest), with the day's screening figures and,
    for AI factors, their formula and hypothesis as last admitted up to that day."""

    def read(client: Client) -> pd.DataFrame:
        if not _exists(store, client, "active_factors"):
            return pd.DataFrame()
        on = day or _latest(store, client, "active_factors")
        if on is None:
            return pd.DataFrame()
        active = store.query(
            client,
            "SELECT toString(date) AS date, factor, factor_set, rank_ic_mean, t_stat "
            "FROM {db}.active_factors WHERE date = %(d)s",
            {"d": on},
        )
        if _exists(store, client, "factor_screening"):
            screening = store.query(
                client,
                "SELECT factor, rank_ic_std, icir, p_value, n_days FROM {db}.factor_screening "
                "WHERE date = %(d)s",
                {"d": on},
            )
            active = active.merge(screening, on="factor", how="left")
            # a factor without a screening row makes the join's column float: keep it a count
            active["n_days"] = active["n_days"].astype("Int64")
        if _exists(store, client, "ai_factors"):
            ai = store.query(
                client,
                "SELECT name AS factor, argMax(formula, date) AS formula, "
                "argMax(hypothesis, date) AS hypothesis, toString(max(date)) AS admitted_on "
                "FROM {db}.ai_factors WHERE date <= %(d)s GROUP BY name",
                {"d": on},
            )
            active = active.merge(ai, on="factor", how="left")
        return active

    return read


def read_pnl(store: Store, start: str | None, end: str | None) -> Read:
    """The paper book's daily equity, cash, peak and fees between `start` and `end`
    (inclusive, None: open), with the equity of the day before `start` to give its P&L."""

    def read(client: Client) -> pd.DataFrame:
        if not _exists(store, client, "paper_book"):
            return pd.DataFrame()
        lo, hi = start or "1970-01-01", end or "2149-06-06"
        before = store.query(
            client,
            "SELECT toString(date) AS date, value FROM {db}.paper_book "
            "WHERE kind = 'equity' AND date < %(lo)s ORDER BY date DESC LIMIT 1",
            {"lo": lo},
        )
        days = store.query(
            client,
            "SELECT toString(date) AS date, "
            "sumIf(value, kind = 'equity') AS equity, maxIf(price, kind = 'equity') AS peak, "
            "sumIf(value, kind = 'cash') AS cash, "
            "sumIf(commission + stamp_duty + transfer_fee, kind = 'fill') AS fees, "
            "countIf(kind = 'position') AS positions "
            "FROM {db}.paper_book WHERE date BETWEEN %(lo)s AND %(hi)s "
            "AND kind IN ('equity', 'cash', 'fill', 'position') "
            "GROUP BY date HAVING countIf(kind = 'equity') > 0 ORDER BY date",
            {"lo": lo, "hi": hi},
        )
        previous = float(before["value"].iloc[0]) if len(before) else float("nan")
        prior = days["equity"].shift(1)
        if len(days):
            prior.iloc[0] = previous
        days["pnl"] = days["equity"] - prior
        days["return"] = days["pnl"] / prior
        days["drawdown"] = days["equity"] / days["peak"] - 1.0
        return days

    return read


def read_performance(store: Store, day: str | None) -> Read:
    """The report's figures of `day` (None: the newest day with figures)."""
    return read_day(store, "performance", day, "toString(date) AS date, figure, value")
