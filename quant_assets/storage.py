"""The IO manager that stores daily-partitioned DataFrame assets in their ClickHouse table."""

import pandas as pd
from dagster import ConfigurableIOManager, InputContext, OutputContext

from quant_assets.market.contract.tables import (
    ADJUSTMENT_FACTORS,
    MINUTE_BARS,
    NEWS_ITEMS,
    RAW_TABLES,
)
from resources.clickhouse import ClickHouseResource, TableSpec

TABLES: dict[str, TableSpec] = {
    spec.name: spec for spec in [*RAW_TABLES.values(), MINUTE_BARS, ADJUSTMENT_FACTORS, NEWS_ITEMS]
}


class ClickHouseTableIOManager(ConfigurableIOManager):
    """Writes an asset's frame as its table's partition for the day (atomic, idempotent) and
    reads it back for downstream inputs. The table is named by the asset's `table` metadata."""

    clickhouse: ClickHouseResource

    def _spec(self, context: "OutputContext | InputContext") -> TableSpec:
        meta = context.definition_metadata or {}
        name = meta.get("table")
        if name not in TABLES:
            raise KeyError(f"asset {context.asset_key.to_user_string()} names no known table")
        return TABLES[name]

    def handle_output(self, context: OutputContext, obj: pd.DataFrame) -> None:
        spec = self._spec(context)
        day = pd.Timestamp(context.partition_key)
        with self.clickhouse.client() as client:  # a frame without `date` gets the day's
            rows = self.clickhouse.replace_partition(client, spec, obj, day)
        context.add_output_metadata({"dagster/row_count": rows, "table": spec.name})

    def load_input(self, context: InputContext) -> pd.DataFrame:
        spec = self._spec(context.upstream_output)
        day = pd.Timestamp(context.partition_key).date()
        with self.clickhouse.client() as client:
            return self.clickhouse.query_df(
                client, f"SELECT * FROM {{db}}.{spec.name} WHERE date = %(d)s", {"d": day}
            )
