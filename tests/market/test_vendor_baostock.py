"""The baostock adapter on recorded baostock output (../shared/data, cn_csi300_daily_2021_2024):
its text rows go through the common landing path like any vendor file."""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest

from quant_assets.market.sources import real_data as R
from quant_assets.market.sources.delivery import land
from quant_assets.market.sources.landing import read_landing_file, write_landing_file
from quant_assets.market.sources.vendor_baostock import (
    baostock_to_symbol,
    bars_from_baostock,
    fetch_daily_bars,
    symbol_to_baostock,
)
from quant_assets.market.validation import IngestError, validate
from resources.market import MarketDataResource

DAY = "2022-05-27"  # two suspended rows with empty volume/amount, one ST row


@pytest.fixture(scope="module")
def recorded_day() -> pd.DataFrame:
    """One day of the recorded file as baostock sends it: text, empty string when missing."""
    path = R.DATA_ROOT / R.CSI300_BARS
    if not path.exists():
        pytest.skip(f"real data absent: {path}")
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    return raw[raw["date"] == DAY].reset_index(drop=True)


def _ingest(frame: pd.DataFrame, tmp_path):
    path = write_landing_file(frame, tmp_path, "bars", DAY, fmt="csv")
    raw = read_landing_file(path, "bars")
    return validate(
        "bars",
        raw,
        known_symbols=set(frame["symbol"]),
        trading_date=DAY,
        now=f"{DAY} 18:00",
        source_file=str(path),
    )


def test_a_recorded_day_lands_and_validates_without_a_quarantined_row(recorded_day, tmp_path):
    res = _ingest(bars_from_baostock(recorded_day), tmp_path)
    assert res.n_quarantined == 0, res.quarantine[["rule", "detail"]]
    assert len(res.clean) == len(recorded_day) == 261
    clean = res.clean.set_index("symbol")
    assert clean["is_suspended"].sum() == 2 and clean["is_st"].sum() == 1
    # suspended with nothing traded: baostock's empty volume is the contract's 0
    assert (clean.loc[clean["is_suspended"], "volume"] == 0).all()
    row = clean.loc["000001.SZ"]
    assert (row["open"], row["close"], row["preclose"]) == (14.29, 14.18, 14.19)
    assert row["volume"] == 72_306_674 and row["amount"] == pytest.approx(1_029_702_185.93)


def test_the_adapter_and_the_recorded_file_reader_agree(recorded_day, tmp_path):
    via_landing = _ingest(bars_from_baostock(recorded_day), tmp_path).clean
    every_day = R.load_csi300_bars()
    day = every_day[every_day["date"] == pd.Timestamp(DAY)].reset_index(drop=True)
    cols = ["open", "high", "low", "close", "preclose", "volume", "amount"]
    np.testing.assert_allclose(
        via_landing[cols].to_numpy(float), day[cols].to_numpy(float), rtol=0, atol=0
    )


def test_a_malformed_value_from_the_vendor_is_quarantined_not_dropped(recorded_day, tmp_path):
    broken = recorded_day.copy()
    broken.loc[3, "close"] = "14.2O"  # letter O for zero
    broken.loc[5, "volume"] = ""  # trading day without a volume
    res = _ingest(bars_from_baostock(broken), tmp_path)
    rules = dict(zip(res.quarantine["row_number"], res.quarantine["rule"], strict=True))
    assert rules == {3: "wrong_type", 5: "missing_value"}
    assert len(res.clean) + res.n_quarantined == len(broken)


def test_symbols_map_both_ways():
    assert symbol_to_baostock("600000.SH") == "sh.600000"
    assert baostock_to_symbol(pd.Series(["sz.000001"])).tolist() == ["000001.SZ"]


def test_the_source_serves_bars_only_and_the_landing_file_first(tmp_path):
    market = MarketDataResource(source="baostock", landing_dir=str(tmp_path))
    with pytest.raises(IngestError, match="no trades file for 2022-05-27"):
        land(market, "trades", pd.Timestamp(DAY))
    frame = pd.DataFrame({c: ["1"] for c in ["date", "symbol"]})
    dropped = write_landing_file(frame, tmp_path, "bars", DAY, fmt="csv")
    assert land(market, "bars", pd.Timestamp(DAY)) == dropped  # no call to the service


@pytest.mark.skipif(
    importlib.util.find_spec("baostock") is not None, reason="baostock is installed here"
)
def test_without_the_optional_package_the_error_says_how_to_install_it():
    with pytest.raises(RuntimeError, match=r"pip install -e '\.\[vendor\]'"):
        fetch_daily_bars(pd.Timestamp(DAY), ["600000.SH"])
