"""Rate limits per caller and route: a fixed one-minute window of counters.

The caller is the API key (or, before authentication, the client address), the route its
template, so `/v1/recommendations?date=...` counts once whatever the date. A fixed window
lets at most twice the limit through around a window's edge; it costs one counter per caller
and route, which is what Redis does cheaply (INCR, EXPIRE on the first hit) and what several
API processes can share. Without Redis the counters live in this process.

A Redis that does not answer lets requests through (one warning): the limiter protects the
service, and refusing everybody because Redis is down would turn its outage into the API's.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)
WINDOW_S = 60


@dataclass(frozen=True)
class Decision:
    """Whether a request may go on; when not, the seconds until the window ends."""

    allowed: bool
    retry_after_s: int
    count: int


class LocalRateLimiter:
    """Counters in this process."""

    def __init__(self, limit: int, window_s: int = WINDOW_S) -> None:
        self.limit, self.window_s = limit, window_s
        self._counts: dict[tuple[str, str], tuple[int, int]] = {}  # -> (window, count)
        self._lock = threading.Lock()
        self._swept = 0

    def hit(self, caller: str, route: str, now: float | None = None) -> Decision:
        """Count one request and decide."""
        now = time.time() if now is None else now
        window = int(now // self.window_s)
        with self._lock:
            if window != self._swept:  # drop the counters of past windows
                self._counts = {k: v for k, v in self._counts.items() if v[0] == window}
                self._swept = window
            seen, count = self._counts.get((caller, route), (window, 0))
            count = count + 1 if seen == window else 1
            self._counts[(caller, route)] = (window, count)
        return _decide(count, self.limit, window, self.window_s, now)


class RedisRateLimiter:
    """Counters in Redis, shared by every API process on it."""

    def __init__(
        self, url: str, limit: int, window_s: int = WINDOW_S, prefix: str = "quant"
    ) -> None:
        import redis

        self.limit, self.window_s, self.prefix = limit, window_s, prefix
        self.client = redis.Redis.from_url(url, socket_connect_timeout=1.0, socket_timeout=2.0)
        self._errors = (redis.RedisError, OSError)
        self._warned = False

    def hit(self, caller: str, route: str, now: float | None = None) -> Decision:
        now = time.time() if now is None else now
        window = int(now // self.window_s)
        key = f"{self.prefix}:ratelimit:{window}:{caller}:{route}"
        try:
            pipe = self.client.pipeline()
            pipe.incr(key)
            pipe.expire(key, self.window_s + 5, nx=True)
            count = int(pipe.execute()[0])
        except self._errors as exc:
            if not self._warned:
                log.warning("rate limits off: Redis does not answer (%s)", type(exc).__name__)
                self._warned = True
            return Decision(True, 0, 0)
        self._warned = False
        return _decide(count, self.limit, window, self.window_s, now)


def _decide(count: int, limit: int, window: int, window_s: int, now: float) -> Decision:
    if count <= limit:
        return Decision(True, 0, count)
    return Decision(False, max(1, math.ceil((window + 1) * window_s - now)), count)


RateLimiter = LocalRateLimiter | RedisRateLimiter
