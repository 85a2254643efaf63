"""The metrics endpoint: `/metrics` in the Prometheus text format (0.0.4) and `/healthz`.

    python -m quant_assets.automation.monitoring.server --host 127.0.0.1 --port 9108

reads the Dagster instance of DAGSTER_HOME (never ClickHouse: see metrics.py). A collection is
reused for `--cache-seconds`, so several scrapers (or a refreshing dashboard) cost one read of
the instance. A collection that fails answers 500 with a one-line reason and is logged, with
any password in a URL or connection string masked.
"""

from __future__ import annotations

import argparse
import logging
import re
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from dagster import DagsterInstance
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from quant_assets.automation.monitoring.metrics import MetricsSettings, instance_registry

log = logging.getLogger(__name__)

_CREDENTIALS = (
    (re.compile(r"(://[^/\s:@]*:)[^/\s@]*@"), r"\1***@"),  # scheme://user:password@host
    (re.compile(r"(password\s*[=:]\s*)\S+", re.IGNORECASE), r"\1***"),  # libpq, key=value
)


def masked(text: str) -> str:
    """`text` with passwords in URLs and `password=...` pairs replaced by ***."""
    for pattern, replacement in _CREDENTIALS:
        text = pattern.sub(replacement, text)
    return text


class CollectionError(RuntimeError):
    """Collecting the metrics failed; the message is the one line the endpoint answers."""


class ScrapeCache:
    """The exposition text of `render`, rendered at most once per `ttl_s` seconds. Concurrent
    scrapes wait for the collection under way rather than start their own; a failure is not
    kept, so the next scrape tries again."""

    def __init__(
        self,
        render: Callable[[], bytes],
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ):
        if ttl_s < 0:
            raise ValueError(f"ScrapeCache: ttl_s must be >= 0, got {ttl_s}")
        self._render, self.ttl_s, self._clock = render, ttl_s, clock
        self._lock = threading.Lock()
        self._body: bytes | None = None
        self._at = 0.0
        self.collections = 0

    def get(self) -> tuple[bytes, float]:
        """The text and its age in seconds (0 when just collected). Raises CollectionError."""
        with self._lock:
            now = self._clock()
            if self._body is not None and now - self._at < self.ttl_s:
                return self._body, now - self._at
            try:
                body = self._render()
            except Exception as exc:
                reason = masked(f"metrics collection failed: {type(exc).__name__}: {exc}")
                reason = reason.splitlines()[0] if reason.strip() else "metrics collection failed"
                log.error("%s\n%s", reason, masked("".join(traceback.format_exception(exc))))
                raise CollectionError(reason) from exc
            self._body, self._at = body, self._clock()
            self.collections += 1
            return body, 0.0


def _handler(cache: ScrapeCache) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the http.server name)
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                try:
                    body, age = cache.get()
                except CollectionError as exc:
                    self._answer(500, str(exc).encode() + b"\n", "text/plain; charset=utf-8")
                    return
                self._answer(200, body, CONTENT_TYPE_PLAIN_0_0_4, {"Age": str(int(age))})
            elif path == "/healthz":
                self._answer(200, b"ok\n", "text/plain; charset=utf-8")
            else:
                self._answer(404, b"not found: /metrics or /healthz\n", "text/plain; charset=utf-8")

        def _answer(
            self, code: int, body: bytes, content_type: str, headers: dict | None = None
        ) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", f"max-age={int(cache.ttl_s)}")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args) -> None:  # noqa: A002 (http.server's name)
            log.debug("%s %s", self.address_string(), format % args)

    return Handler


class MetricsServer(ThreadingHTTPServer):
    """The HTTP server of `/metrics` and `/healthz` over a `ScrapeCache`."""

    daemon_threads = True

    def __init__(self, cache: ScrapeCache, host: str = "127.0.0.1", port: int = 9108):
        self.cache = cache
        super().__init__((host, port), _handler(cache))

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


def metrics_server(
    instance: DagsterInstance,
    host: str = "127.0.0.1",
    port: int = 9108,
    cache_s: float = 5.0,
    settings: MetricsSettings | None = None,
) -> MetricsServer:
    """A server of the instance's metrics, bound (port 0: any free port) and not yet serving."""
    registry = instance_registry(instance, settings)
    return MetricsServer(ScrapeCache(lambda: generate_latest(registry), cache_s), host, port)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=9108, help="port to listen on")
    parser.add_argument(
        "--cache-seconds", type=float, default=5.0, help="reuse a collection this long"
    )
    parser.add_argument(
        "--recent-runs", type=int, default=200, help="runs the duration summary covers"
    )
    parser.add_argument(
        "--check-window-hours", type=float, default=24.0, help="window of the check failures"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        settings = MetricsSettings(
            recent_runs=args.recent_runs, check_window_s=args.check_window_hours * 3600
        )
    except ValueError as exc:
        parser.error(str(exc))
    if args.cache_seconds < 0:
        parser.error(f"--cache-seconds must be >= 0, got {args.cache_seconds}")
    server = metrics_server(
        DagsterInstance.get(), args.host, args.port, args.cache_seconds, settings
    )
    log.info("serving %s/metrics and %s/healthz", server.url, server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
