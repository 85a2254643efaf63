"""The CSI300 set delivered into a landing zone as a vendor would (one CSV per day): what
`make demo-real` ingests. Skips, naming the path, when ../shared/data lacks the set."""

from __future__ import annotations

import pandas as pd
import pytest

from quant_assets.market.sources import real_data as R
from quant_assets.market.sources.landing import (
    available_days,
    find_landing_file,
    read_landing_file,
    read_reference_universe,
)
from quant_assets.market.sources.real_landing import UNCLASSIFIED, land_csi300
from quant_assets.market.validation.ingest import ingest_file

END = "2021-01-15"  # the set's first ten trading days


@pytest.fixture(scope="module")
def zone(tmp_path_factory):
    if not (R.DATA_ROOT / R.CSI300_BARS).exists():
        pytest.skip(f"real data absent: {R.DATA_ROOT / R.CSI300_BARS}")
    root = tmp_path_factory.mktemp("csi300_landing")
    return root, land_csi300(root, end=END)


def test_one_bars_file_per_trading_day_and_nothing_else(zone):
    root, delivery = zone
    days = available_days(root)
    assert len(days) == delivery.days_present == delivery.days_written == 10
    assert set().union(*days.values()) == {"bars"}
    assert (delivery.first_day, delivery.last_day) == ("2021-01-04", END)
    # a second delivery writes nothing (the days are there)
    assert land_csi300(root, end=END).days_written == 0


def test_the_days_rows_are_the_vendors_rows(zone):
    root, _ = zone
    raw = pd.read_csv(R.data_path(R.CSI300_BARS), dtype={"code": str, "date": str})
    raw = raw[raw["date"] == "2021-01-05"]
    bars = read_landing_file(find_landing_file(root, "bars", "2021-01-05"), "bars")
    assert len(bars) == len(raw)
    mine = bars.set_index("symbol")
    theirs = raw.assign(symbol=raw["code"].str[3:] + "." + raw["code"].str[:2].str.upper())
    theirs = theirs.set_index("symbol").loc[mine.index]
    assert (mine["close"] == theirs["close"]).all()
    assert (mine["preclose"] == theirs["preclose"]).all()
    assert (mine["is_suspended"] == theirs["tradestatus"].eq(0)).all()


def test_the_universe_names_boards_industries_and_first_days(zone):
    root, delivery = zone
    universe = read_reference_universe(root).set_index("symbol")
    assert len(universe) == delivery.symbols == 249  # the codes with a bar by END
    assert universe.loc["600000.SH", "name"] == "浦发银行"
    assert universe.loc["600000.SH", "industry"] == "J66货币金融服务"
    assert universe.loc["600837.SH", "industry"] == UNCLASSIFIED  # baostock has none for it
    assert set(universe["board"]) == {"main", "star"}
    assert (universe["list_date"] == pd.Timestamp("2021-01-04")).all()


def test_a_delivered_day_validates_with_its_suspensions_kept(zone):
    root, _ = zone
    universe = read_reference_universe(root)
    path = find_landing_file(root, "bars", "2021-01-05")
    result = ingest_file(
        "bars",
        path,
        pd.Timestamp("2021-01-05"),
        set(universe["symbol"]),
        trading_days=pd.DatetimeIndex(["2021-01-04", "2021-01-05"]),
        listings=universe.set_index("symbol")["list_date"],
    )
    assert result.n_input == len(read_landing_file(path, "bars"))
    assert result.n_quarantined == 0
