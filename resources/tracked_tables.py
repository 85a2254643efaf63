"""A table that also leaves runs in MLflow: the factor mining's candidate log goes to its
ClickHouse table like any daily table, and the mining run with a nested run per round goes to
MLflow, both by the IO manager (no asset step opens a client)."""

from __future__ import annotations

from dataclasses import dataclass, field

import mlflow
import pandas as pd
from dagster import OutputContext

from resources.clickhouse_io import ClickHouseIOManager
from resources.mlflow_tracking import MLflowResource


@dataclass
class RunLog:
    """One MLflow run: its name, tags, params, metrics and text artifacts (path -> text)."""

    name: str
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, object] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)


@dataclass
class TrackedTable:
    """A day's table rows and the MLflow run (with nested runs) that describe how they were
    made."""

    frame: pd.DataFrame
    run: RunLog
    nested: list[RunLog] = field(default_factory=list)


def _log(run: RunLog) -> None:
    mlflow.log_params(run.params)
    mlflow.log_metrics(run.metrics)
    for path, text in run.texts.items():
        mlflow.log_text(text, path)


class TrackedTableIOManager(ClickHouseIOManager):
    """Writes `TrackedTable.frame` as the ClickHouse IO manager does, after logging its runs to
    MLflow (the parent, then one nested run each); reads like the ClickHouse IO manager."""

    mlflow_tracking: MLflowResource

    def handle_output(self, context: OutputContext, obj: TrackedTable) -> None:  # type: ignore[override]
        if not isinstance(obj, TrackedTable):
            raise TypeError(f"expected a TrackedTable, got {type(obj).__name__}")
        experiment = self.mlflow_tracking.setup()
        run_tags = {"dagster_run_id": context.run_id, **obj.run.tags}
        with mlflow.start_run(
            experiment_id=experiment, run_name=obj.run.name, tags=run_tags
        ) as parent:
            _log(obj.run)
            for child in obj.nested:
                with mlflow.start_run(
                    experiment_id=experiment,
                    run_name=child.name,
                    tags=child.tags,
                    parent_run_id=parent.info.run_id,
                    nested=True,
                ):
                    _log(child)
        super().handle_output(context, obj.frame)
        context.add_output_metadata(
            {"mlflow_run_id": parent.info.run_id, "mlflow_rounds": len(obj.nested)}
        )
