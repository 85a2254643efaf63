"""`make demo-real`: the daily pipeline on real A-shares, the CSI300 set of ``../shared/data``.

The set (265 stocks, daily bars 2021-01-04 .. 2024-08-20, recorded baostock output) is
delivered into a landing zone one CSV per day, as a vendor would; the market delivers bars
only (QUANT_MARKET_KINDS=bars), so the intraday and news stages are skipped, saying why. The
history the windows need is loaded, then the daily pipeline runs over every trading day of 2024
in the data, with the models retrained every QUANT_DEMO_RETRAIN_DAYS days on what was known by
that close, and it ends as `make demo` does: the last day's recommendations, the row counts,
the report. Every setting below is a default: the environment wins.
"""

from __future__ import annotations

import os
import sys
import time

# The real market's demo: bars from the landing zone, 2024 (154 trading days to the set's
# end) after 120 days of history, retrained every 20 trading days (about monthly).
DEFAULTS = {
    "QUANT_MARKET_SOURCE": "landing",
    "QUANT_MARKET_KINDS": "bars",
    "QUANT_DEMO_END": "2024-08-20",
    "QUANT_DEMO_DAYS": "154",
    "QUANT_DEMO_WARMUP_DAYS": "120",
    "QUANT_DEMO_RETRAIN_DAYS": "20",
}


def cli() -> int:
    """Check the data and the settings, deliver the set into the landing zone, run the demo.
    Exit status 2, with one line saying what is missing, when the data or a setting is not
    there."""
    for name, value in DEFAULTS.items():
        os.environ.setdefault(name, value)
    from quant_assets import demo
    from quant_assets.market.sources.real_data import CSI300_BARS, data_path
    from quant_assets.market.sources.real_landing import land_csi300
    from resources.settings import SettingsError, check_environment, setting

    try:
        data_path(CSI300_BARS)
    except FileNotFoundError as error:
        print(
            f"error: {error}. make demo-real needs the CSI300 set of ../shared/data "
            "(or QUANT_SHARED_DATA pointing at a folder holding it); make demo runs on the "
            "simulated market without it.",
            file=sys.stderr,
        )
        return 2
    try:
        check_environment()
        window = demo.demo_window()
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    started = time.monotonic()
    landing = setting("QUANT_LANDING_DIR")
    print(f"Delivering the CSI300 set into the landing zone {landing} (one CSV per day)...")
    delivery = land_csi300(landing, end=str(window.end.date()), progress=print)
    print(
        f"Landing zone: {delivery.symbols} symbols, {delivery.days_present} days "
        f"{delivery.first_day} .. {delivery.last_day} ({delivery.days_written} written now); "
        f"the market delivers: {setting('QUANT_MARKET_KINDS')}",
        flush=True,
    )
    progress = demo.main(window)
    scored, retrain = progress.per_day("scored"), progress.per_day("retrain")
    if scored is not None and retrain is not None:
        # what the timeline would spend on one real day: its chain with the champion in force,
        # and the 16:00 retraining (here once per block, so its whole cost counts)
        print(
            f"A real day: {scored:.1f} s scoring (the day's chain with the champion in force) "
            f"+ {retrain:.1f} s retraining = {scored + retrain:.1f} s, against the seed's "
            "90-minute pre-market window"
        )
    minutes, seconds = divmod(time.monotonic() - started, 60)
    per_day = (time.monotonic() - started) / len(window.demo)
    print(
        f"make demo-real: {int(minutes)} min {seconds:.0f} s for {len(window.demo)} trading "
        f"days after {len(window.warmup)} days of history ({per_day:.1f} s a day, history "
        "included)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(cli())
