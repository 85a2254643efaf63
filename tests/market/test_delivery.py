"""The simulated vendor delivering ahead (`deliver_ahead`, the demo's second process): the files
it lands are the ones the pipeline's own delivery would write, and a day already landed is left
as it is."""

from __future__ import annotations

import pandas as pd

from quant_assets.market.sources.delivery import deliver_ahead, land
from quant_assets.market.sources.landing import find_landing_file, read_landing_file
from resources import MarketDataResource

DAYS = ["2024-06-26", "2024-06-27"]


def _market(root) -> MarketDataResource:
    return MarketDataResource(
        source="simulated", landing_dir=str(root), seed=7, n_symbols=8, snapshot_seconds=60
    )


def test_delivered_ahead_files_are_what_the_pipeline_would_land(tmp_path):
    ahead, inline = _market(tmp_path / "ahead"), _market(tmp_path / "inline")
    assert deliver_ahead(ahead, ("order_book", "trades"), DAYS) == 4
    for day in DAYS:
        for kind in ("order_book", "trades"):
            mine = read_landing_file(find_landing_file(ahead.landing_dir, kind, day), kind)
            theirs = read_landing_file(land(inline, kind, pd.Timestamp(day)), kind)
            assert len(mine) > 0
            pd.testing.assert_frame_equal(mine, theirs)


def test_a_landed_day_is_not_written_again(tmp_path):
    market = _market(tmp_path)
    first = land(market, "trades", pd.Timestamp(DAYS[0]))
    stamp = first.stat().st_mtime_ns
    assert deliver_ahead(market, ("trades",), DAYS) == 1
    assert first.stat().st_mtime_ns == stamp
    assert find_landing_file(market.landing_dir, "trades", DAYS[1]) is not None
