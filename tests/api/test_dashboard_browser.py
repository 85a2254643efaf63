"""The dashboard in a real headless Chromium, against the real API service on loopback.

The service runs in this process (uvicorn on 127.0.0.1, a free port) over a small real store
(tests/api/dashboard_store.py: chDB, an MLflow registry, a Dagster instance). Debian's
chromium, driven by playwright (never playwright's own browser download), signs in with a real
API key and reads every panel. Every request the browser makes is recorded: none may leave
the service's origin. The screenshot goes to the test's folder and to
.data/screenshots/dashboard.png (the path is printed).
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.dashboard_store import DAY, record_runs, register_models, write_tables

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip(
        "no Chromium: install Debian's chromium (make test does: apt-get install chromium)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright (the Python package) is not installed"
)

# Quiet on a closed network: no first-run, sync, component updates, background fetches or QUIC.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
SCREENSHOT = Path(__file__).resolve().parents[2] / ".data" / "screenshots" / "dashboard.png"


@pytest.fixture
def service(tmp_path: Path) -> Iterator[dict]:
    """The API service over the small store, on a free loopback port; its origin and a key."""
    import uvicorn

    from quant_assets.api.app import build_services, create_app
    from quant_assets.api.config import ApiConfig

    dsn = f"chdb://{tmp_path / 'clickhouse'}"
    written = write_tables(dsn, "quant")
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    register_models(tracking)
    record_runs(tmp_path / "dagster_home")
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / f"{DAY}.html").write_text("<html><body><h1>Report</h1></body></html>")
    config = ApiConfig(
        clickhouse_dsn=dsn,
        database="quant",
        mlflow_tracking_uri=tracking,
        dagster_home=tmp_path / "dagster_home",
        reports_dir=reports,
        audit_spill_dir=tmp_path / "audit_spill",
    )
    _, key = build_services(config).keys.create("pm-desk", "read", 1)
    app = create_app(config)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the API did not start"
        time.sleep(0.05)
    try:
        yield {"origin": f"http://127.0.0.1:{port}", "key": key, "store": written}
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


def _column(page, table: str, key: str) -> list[str]:
    """A column's cells: the raw number where it is one, else the text shown."""
    return page.eval_on_selector_all(
        f"#{table} tbody td[data-key='{key}']",
        "cells => cells.map(c => c.dataset.value ?? c.textContent)",
    )


def test_dashboard_in_chromium(service: dict, tmp_path: Path) -> None:
    origin, key, store = service["origin"], service["key"], service["store"]
    recs = store.recommendations
    requests: list[str] = []
    started = time.monotonic()
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),  # a fresh profile each run
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            context.on("request", lambda request: requests.append(request.url))
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(f"{origin}/dashboard")
            assert page.title().startswith("Stock selection")

            # A wrong secret: refused with a readable banner, still on the sign-in form.
            key_id = key.removeprefix("qk_").split(".")[0]
            page.fill("#key-id", key_id)
            page.fill("#key-secret", "x" * 43)
            page.click("#sign-in-form button[type=submit]")
            page.wait_for_selector("#banner:not(.hidden)")
            assert "Sign-in refused" in page.inner_text("#banner-text")
            assert page.is_visible("#sign-in") and not page.is_visible("#board")

            # The real key, pasted whole.
            page.fill("#key-id", "")
            page.fill("#key-secret", key)
            page.click("#sign-in-form button[type=submit]")
            page.wait_for_selector("body[data-loaded]", timeout=60_000)
            banner = page.inner_text("#banner-text") if page.is_visible("#banner") else ""
            assert page.get_attribute("body", "data-loaded") == "ok", banner
            assert page.evaluate("sessionStorage.length") == 1
            assert page.evaluate("localStorage.length") == 0

            # The day's recommendations, all stored rows, with their Chinese names.
            assert _column(page, "rec-table", "symbol") == list(recs["symbol"])
            assert _column(page, "rec-table", "name") == list(recs["name"])
            assert page.input_value("#rec-date") == DAY
            weights = page.eval_on_selector_all(
                "#rec-table tbody td[data-key='weight']", "cells => cells.map(c => c.textContent)"
            )
            assert weights == [f"{w:.2%}" for w in recs["weight"]]

            # Sorting: a number column (largest first, then reversed), a text column.
            page.click("#rec-table th[data-key='shares']")
            shares = [float(v) for v in _column(page, "rec-table", "shares")]
            assert shares == sorted(recs["shares"].astype(float), reverse=True)
            page.click("#rec-table th[data-key='shares']")
            assert [float(v) for v in _column(page, "rec-table", "shares")] == sorted(shares)
            page.click("#rec-table th[data-key='symbol']")
            assert _column(page, "rec-table", "symbol") == sorted(recs["symbol"])

            # A filter goes to the API and back.
            page.fill("#rec-industry", "Banks")
            page.click("#rec-filters button[type=submit]")
            sync_api.expect(page.locator("#rec-table tbody tr")).to_have_count(1)
            assert _column(page, "rec-table", "industry") == ["Banks"]

            # The plots: one point per day of the paper book.
            points = page.get_attribute("#plot-return polyline", "points").split()
            assert len(points) == store.pnl_days
            assert page.locator("#plot-return circle.point").count() == store.pnl_days
            assert page.locator("#plot-drawdown polygon.area").count() == 1
            assert page.locator("#perf-figures tr").count() >= 3

            # The factor board (the AI factor badged) and the model board (champion marked).
            factor_rows = page.locator("#factor-table tbody tr")
            assert factor_rows.count() == len(store.factors)
            assert page.locator("#factor-table .badge.ai").count() == 1
            champion = page.locator("#model-table tbody tr.champion")
            assert champion.count() == 1
            assert page.locator("#model-table tbody tr").count() == 2

            # Run health: the failed run in red, and the inputs the market's days have.
            assert page.locator("#run-table tbody tr.failed").count() >= 1
            assert page.locator("#market-inputs").inner_text() == (
                "Inputs of each day: bars, trades, order book, news, corporate actions. "
                "Every kind is delivered."
            )

            # The full report, fetched with the token and saved as a file.
            with page.expect_download() as download:
                page.click("#report-open")
            saved = tmp_path / "report.html"
            download.value.save_as(saved)
            assert "<h1>Report</h1>" in saved.read_text()

            page.fill("#rec-industry", "")
            page.click("#rec-reset")
            sync_api.expect(page.locator("#rec-table tbody tr")).to_have_count(len(recs))
            page.evaluate("document.fonts.ready")
            shot = tmp_path / "dashboard.png"
            page.screenshot(path=str(shot), full_page=True)
            assert not errors, errors
        finally:
            context.close()
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, SCREENSHOT)
    print(f"\nscreenshot: {SCREENSHOT} ({time.monotonic() - started:.1f} s in the browser)")

    # Nothing left the loopback: every request went to the service's own origin.
    assert requests, "the browser made no request"
    outside = [u for u in requests if not u.startswith(origin + "/")]
    assert not outside, outside
