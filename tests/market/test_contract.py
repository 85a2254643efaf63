"""The raw tables store exactly the column contract, in its order (plus the partition's date)."""

import pytest

from quant_assets.market.contract.schemas import CONTRACT
from quant_assets.market.contract.tables import QUARANTINE, RAW_TABLES
from quant_assets.market.validation.quarantine import QUARANTINE_COLUMNS


@pytest.mark.parametrize("kind", sorted(RAW_TABLES))
def test_a_raw_table_has_the_contract_s_columns_in_order(kind):
    columns = [c for c in RAW_TABLES[kind].columns if c != "date"]
    assert columns == [c for c in CONTRACT[kind] if c != "date"]
    assert next(iter(RAW_TABLES[kind].columns)) == "date"


def test_the_quarantine_frame_has_the_table_s_columns():
    assert [("date" if c == "trading_date" else c) for c in QUARANTINE_COLUMNS] == list(
        QUARANTINE.columns
    )
