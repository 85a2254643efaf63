"""The IO manager of reports: an asset returns a `ReportArtifact` (an HTML page and its key
figures), MLflow keeps it as a run per day with the page under `report/` and the figures as
metrics. A rerun of a day replaces that day's run (the model IO manager's rule)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import numpy as np
from dagster import ConfigurableIOManager, Failure, InputContext, OutputContext

from resources.mlflow_io import ASSET_TAG, FAMILY_TAG, PARTITION_TAG, RUN_TAG, retire_earlier_runs
from resources.mlflow_tracking import MLflowResource

REPORT_FOLDER = "report"


@dataclass
class ReportArtifact:
    page: Path
    figures: dict[str, float] = field(default_factory=dict)


class MLflowReportIOManager(ConfigurableIOManager):
    """Logs each day's report page and figures to MLflow; reads back the page's artifact URI."""

    mlflow_tracking: MLflowResource

    def handle_output(
        self, context: OutputContext, obj: ReportArtifact | Mapping[str, ReportArtifact]
    ) -> None:
        asset = context.asset_key.to_user_string()
        days = sorted(context.asset_partition_keys) if context.has_asset_partitions else [""]
        if isinstance(obj, ReportArtifact):
            obj = {days[0]: obj}
        if sorted(obj) != days:
            raise Failure(f"{asset} over {days[0]}..{days[-1]} must give one report per day")
        for day in days:
            meta = self._log(context, asset, day, obj[day])
            if len(days) == 1:
                context.add_output_metadata(meta)
            else:
                context.step_context.add_asset_metadata(meta, asset_key=context.asset_key,
                                                        partition_key=day)  # fmt: skip

    def _log(self, context: OutputContext, asset: str, day: str, report: ReportArtifact) -> dict:
        if not report.page.exists():
            raise Failure(f"{asset} {day}: the report page {report.page} was not written")
        experiment = self.mlflow_tracking.setup()
        tags = {ASSET_TAG: asset, PARTITION_TAG: day, FAMILY_TAG: "report"}
        client = mlflow.MlflowClient()
        run = client.create_run(experiment, run_name=f"{asset}-{day}",
                                tags={**tags, RUN_TAG: context.run_id})  # fmt: skip
        run_id = run.info.run_id
        try:
            for name, value in report.figures.items():
                if np.isfinite(value):
                    client.log_metric(run_id, name, float(value))
            client.log_artifact(run_id, str(report.page), artifact_path=REPORT_FOLDER)
        except BaseException:
            client.set_terminated(run_id, "FAILED")
            client.delete_run(run_id)
            raise
        client.set_terminated(run_id)
        replaced = retire_earlier_runs(client, experiment, tags, run_id)
        return {"mlflow_run_id": run_id, "page": f"runs:/{run_id}/{REPORT_FOLDER}/{report.page.name}",
                "replaced_runs": ", ".join(replaced) or "none"}  # fmt: skip

    def load_input(self, context: InputContext) -> str:
        """The artifact URI of the upstream day's page."""
        experiment = self.mlflow_tracking.setup()
        asset = context.upstream_output.asset_key.to_user_string()
        day = context.asset_partition_key
        runs = mlflow.MlflowClient().search_runs(
            [experiment],
            filter_string=f"tags.`{ASSET_TAG}` = '{asset}' and tags.`{PARTITION_TAG}` = '{day}'",
            max_results=1,
        )
        if not runs:
            raise Failure(f"no {asset} report logged for {day}")
        return f"runs:/{runs[0].info.run_id}/{REPORT_FOLDER}"
