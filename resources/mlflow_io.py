"""The IO manager of trained models: an asset returns a `ModelArtifact`, MLflow stores it.

Writing logs one MLflow run per asset partition and model family: params, metrics, learning
curves as metric steps, files such as a feature-importance table and plot, the model named
`<family>-<partition>` with its signature, and tags naming the asset, the partition, the
family and the Dagster run. A rerun of a partition replaces the run it logged before (see
`MLflowModelIOManager`). Reading loads the model of the upstream asset's partition. So a model
asset's body is logic only, and the scoring asset reads the very model the training asset
wrote for the day.
"""

from __future__ import annotations

import importlib
import tempfile
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from dagster import (
    ConfigurableIOManager,
    DagsterType,
    Failure,
    InputContext,
    OutputContext,
    TypeCheckContext,
)
from mlflow.entities import Metric, Run
from mlflow.models import infer_signature

from resources import mlflow_registry as registry
from resources.mlflow_pyfunc import log_zoo_model, unwrap
from resources.mlflow_tracking import MLflowResource

ASSET_TAG = "dagster.asset"
PARTITION_TAG = "dagster.partition"
RUN_TAG = "dagster.run_id"
FAMILY_TAG = "model_family"
MODEL_URI_TAG = "model_uri"
SUPERSEDED_TAG = "superseded_by"  # on a replaced run: the MLflow run that replaced it
METRICS_PER_BATCH = 1000  # MLflow's limit of metrics in one log_batch request
# Metadata of an input that reads the champion of a registered model in force on its day.
CHAMPION_INPUT = "champion_of"


@dataclass
class ModelArtifact:
    """A fitted model and what to log with it. `flavor` names the MLflow flavor module
    (`lightgbm`, `sklearn`, `xgboost`, ...); `family` the model family in short (`lgbm`),
    which names the logged model `<family>-<partition>` (the flavor when empty);
    `requirements` pins what loading it needs (given explicitly: MLflow's own inference
    imports and scans the environment, seconds per run). `curves` holds per-iteration metrics
    (name -> values of iterations 1, 2, ...), logged as steps so the UI draws them; `files`
    maps artifact paths to their content (text or bytes: tables as CSV, plots as PNG, or a
    Future of them). A `pyfunc` model (a fitted zoo model) with a `registered_name` is
    registered, made the challenger and promoted when `evaluate` (the model -> its score on
    the day's report rows) rates it `promotion_margin` above the champion in force the day
    before. Loaded back, `model` is the logged `ZooPyfunc` and `version` its registry version.
    """

    model: Any
    flavor: str
    features: list[str]
    params: dict[str, object] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    input_example: pd.DataFrame | None = None
    requirements: list[str] = field(default_factory=list)
    uri: str = ""
    family: str = ""
    curves: dict[str, list[float]] = field(default_factory=dict)
    files: dict[str, str | bytes | Future] = field(default_factory=dict)
    registered_name: str = ""
    evaluate: Callable[[Any], float] | None = None
    promotion_margin: float = 0.0
    version: str = ""


def _is_model_or_models(_context: TypeCheckContext, value: object) -> bool:
    return isinstance(value, ModelArtifact) or (
        isinstance(value, Mapping) and all(isinstance(v, ModelArtifact) for v in value.values())
    )


# What a model input holds: one ModelArtifact, or {day: ModelArtifact} in a range step.
MODEL_INPUT = DagsterType(
    type_check_fn=_is_model_or_models,
    name="ModelArtifact",
    description="A model logged in MLflow (in a step over several days, one per day)",
)


class MLflowModelIOManager(ConfigurableIOManager):
    """Stores `ModelArtifact`s as MLflow runs and loads them back by asset and partition.

    A rerun of a partition logs a complete new run and then deletes the run (and its logged
    model) that the same asset, partition and family had before, after tagging it
    `superseded_by` the new run's id. A researcher browsing the experiment thus sees one run
    and one model per day, the newest, while a replaced run stays restorable from the UI's
    deleted runs until `mlflow gc` purges it. The run is replaced rather than updated because
    MLflow keeps every value logged to a run (params cannot change, metrics would pile up
    their histories, a second model would sit beside the first), and the old run is removed
    only once the new one is whole, so a failed rerun leaves the previous model in place. A
    replaced run whose model was registered in the model registry is kept live (tagged
    only): a promotion outranks tidiness, and deleting it would break its version's source.
    """

    mlflow_tracking: MLflowResource

    def handle_output(
        self, context: OutputContext, obj: ModelArtifact | Mapping[str, ModelArtifact]
    ) -> None:
        """Log the model of the partition; a range step (a backfill in one run) gives one
        model per day, `{day: artifact}`, each logged as that day's run would log it."""
        asset = context.asset_key.to_user_string()
        days = sorted(context.asset_partition_keys) if context.has_asset_partitions else [""]
        if len(days) == 1:
            artifact = obj[days[0]] if isinstance(obj, Mapping) else obj
            context.add_output_metadata(self._log(context, asset, days[0], artifact))
            return
        if not isinstance(obj, Mapping) or sorted(obj) != days:
            raise Failure(f"{asset} over {days[0]}..{days[-1]} must give one model per day")
        for day in days:  # each day's run, model and metadata on its own partition
            context.step_context.add_asset_metadata(
                self._log(context, asset, day, obj[day]),
                asset_key=context.asset_key,
                partition_key=day,
            )

    def _log(
        self, context: OutputContext, asset: str, partition: str, obj: ModelArtifact
    ) -> dict[str, object]:
        family = obj.family or obj.flavor
        experiment = self.mlflow_tracking.setup()
        model_name = f"{family}-{partition}" if partition else family
        tags = {ASSET_TAG: asset, PARTITION_TAG: partition, FAMILY_TAG: family}
        client = mlflow.MlflowClient()
        run = mlflow.start_run(
            experiment_id=experiment,
            run_name=f"{asset}-{partition}" if partition else asset,
            tags={**tags, RUN_TAG: context.run_id},
        )
        info = None
        try:
            if obj.flavor == "pyfunc":
                info = log_zoo_model(
                    obj.model,
                    name=model_name,
                    features=obj.features,
                    input_example=obj.input_example,
                    params=obj.params,
                    metrics=obj.metrics,
                )
            else:
                mlflow.log_params(obj.params)
                info = self._log_flavor(obj, model_name, tags)
                # linked to the model too, so the experiment's Models tab compares the days
                mlflow.log_metrics(obj.metrics, model_id=info.model_id)
            _log_curves(client, run.info.run_id, obj.curves)
            _log_files(obj.files)
            mlflow.set_tag(MODEL_URI_TAG, info.model_uri)
        except BaseException:
            # a half-logged run is no model: remove it, the previous one stays in use
            mlflow.end_run("FAILED")
            if info is not None:
                client.delete_logged_model(info.model_id)
            client.delete_run(run.info.run_id)
            raise
        mlflow.end_run()
        replaced = retire_earlier_runs(client, experiment, tags, run.info.run_id)
        metadata: dict[str, object] = {
            "mlflow_run_id": run.info.run_id,
            "model_uri": info.model_uri,
            "model_name": model_name,
            "replaced_runs": ", ".join(replaced) or "none",
            "features": len(obj.features),
            **{k: float(v) for k, v in obj.metrics.items()},
        }
        if obj.registered_name:
            metadata.update(self._register(obj, info.model_uri, partition, tags))
        return metadata

    @staticmethod
    def _log_flavor(obj: ModelArtifact, model_name: str, tags: dict[str, str]):
        """Log a model with its own MLflow flavor (a booster in its library's format)."""
        flavor = importlib.import_module(f"mlflow.{obj.flavor}")
        example = obj.input_example
        signature = (
            infer_signature(example, obj.model.predict(example)) if example is not None else None
        )
        return flavor.log_model(
            obj.model,
            name=model_name,
            signature=signature,
            input_example=example,
            pip_requirements=obj.requirements or None,
            tags=tags,
        )

    def _register(
        self, obj: ModelArtifact, uri: str, partition: str, tags: dict[str, str]
    ) -> dict[str, object]:
        """Register the logged model, make it the challenger and decide its promotion against
        the champion in force before its day, on the same report rows. The `champion` alias
        moves only for the newest day (a backfill of an earlier day records its decision,
        which `champion_as_of` honours for that day, without taking the live alias back)."""
        name = obj.registered_name
        version = registry.register(uri, name, {**tags, registry.DAY_TAG: partition})
        registry.set_challenger(name, version)
        previous = registry.champion_as_of(name, partition, before=True)
        champion_score = None
        if previous is not None:
            champion = self._cached(name, previous)
            champion_score = obj.evaluate(champion.model) if obj.evaluate else float("nan")
        score = obj.evaluate(obj.model) if obj.evaluate else float("nan")
        decision = registry.decide_promotion(score, champion_score, obj.promotion_margin)
        newest = registry.newest_day(name) <= partition
        registry.apply_decision(name, version, decision, move_alias=newest)
        return {
            "registered_model": name,
            "registered_version": version,
            "promotion": decision.reason,
            "promoted": decision.promote,
            "challenger_score": float(score),
            "champion_score": float("nan") if champion_score is None else float(champion_score),
            "compared_with": f"{name}/{previous}" if previous else "none",
        }

    def _cached(self, name: str, version: str):
        """A registered version's ZooPyfunc, loaded once per process (a range compares
        every day with the champion, mostly the same version)."""
        key = (self.mlflow_tracking.tracking_uri, name, version)
        if key not in _LOADED:
            if len(_LOADED) >= 8:
                _LOADED.pop(next(iter(_LOADED)))
            _LOADED[key] = unwrap(registry.load_version(name, version))
        return _LOADED[key]

    def load_input(self, context: InputContext) -> ModelArtifact | dict[str, ModelArtifact]:
        """The model of the reading partition; for a range step, `{day: model}`. An input
        with `CHAMPION_INPUT` metadata reads instead the champion of that registered model
        in force on each day."""
        asset = context.asset_key.to_user_string()
        champion_of = (context.definition_metadata or {}).get(CHAMPION_INPUT)
        load = (lambda day: self._champion(champion_of, day)) if champion_of else None
        load = load or (lambda day: self._load(asset, day))
        if not context.has_asset_partitions:
            return load("")
        days = sorted(context.asset_partition_keys)
        if len(days) == 1:
            return load(days[0])
        return {day: load(day) for day in days}

    def _champion(self, name: str, day: str) -> ModelArtifact:
        """The champion of `name` on `day`: the `champion` alias when `day` is the newest
        trained day, else the last version promoted on or before `day` (a backfill never
        reads a later champion)."""
        self.mlflow_tracking.setup()
        version = registry.champion_as_of(name, day)
        if version is None:
            raise Failure(
                f"no champion of {name} in force on {day}: train its models for {day} first"
            )
        try:
            wrapper = self._cached(name, version)
        except registry.ModelLoadError as error:
            raise Failure(f"the champion of {name} on {day} cannot be loaded: {error}") from error
        return ModelArtifact(
            model=wrapper,
            flavor="pyfunc",
            features=list(wrapper.features),
            uri=f"models:/{name}/{version}",
            version=version,
        )

    def _load(self, asset: str, partition: str) -> ModelArtifact:
        experiment = self.mlflow_tracking.setup()
        runs = mlflow.search_runs(
            [experiment],
            filter_string=f"tags.`{ASSET_TAG}` = '{asset}' and tags.`{PARTITION_TAG}` = "
            f"'{partition}' and attributes.status = 'FINISHED'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
            output_format="list",
        )
        if not runs:
            raise Failure(
                f"no model of {asset} for {partition or 'the asset'} in MLflow: "
                f"materialize {asset} for {partition} first"
            )
        run = runs[0]
        uri = run.data.tags[MODEL_URI_TAG]
        model_info = mlflow.models.get_model_info(uri)
        own = [f for f in model_info.flavors if f != "python_function"]
        if not own:  # a zoo model logged as a generic pyfunc
            model = unwrap(mlflow.pyfunc.load_model(uri))
            features, flavor_name = list(model.features), "pyfunc"
        else:
            flavor_name = own[0]
            model = importlib.import_module(f"mlflow.{flavor_name}").load_model(uri)
            features = [c.name for c in model_info.signature.inputs] if model_info.signature else []
        return ModelArtifact(
            model=model,
            flavor=flavor_name,
            features=features,
            params=dict(run.data.params),
            metrics=dict(run.data.metrics),
            uri=uri,
            family=run.data.tags.get(FAMILY_TAG, ""),
        )


# Registered versions loaded in this process: (tracking URI, name, version) -> ZooPyfunc.
_LOADED: dict[tuple[str, str, str], Any] = {}


def _log_curves(client: mlflow.MlflowClient, run_id: str, curves: dict[str, list[float]]) -> None:
    """Per-iteration values as metric steps 1, 2, ... (the iteration numbers, so a curve's
    step matches `best_iteration`), in as few requests as MLflow allows."""
    now = int(time.time() * 1000)
    metrics = [
        Metric(key=name, value=float(value), timestamp=now, step=step)
        for name, values in curves.items()
        for step, value in enumerate(values, start=1)
    ]
    for start in range(0, len(metrics), METRICS_PER_BATCH):
        client.log_batch(run_id, metrics=metrics[start : start + METRICS_PER_BATCH])


def _log_files(files: dict[str, str | bytes | Future]) -> None:
    """Write the files into one folder and log it in one call (one upload per file on S3); a
    Future (a plot still being drawn in another process) is waited for."""
    if not files:
        return
    with tempfile.TemporaryDirectory() as tmp:
        for name, content in files.items():
            if isinstance(content, Future):
                content = content.result()
            path = Path(tmp, name)
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content)
        mlflow.log_artifacts(tmp)


def retire_earlier_runs(
    client: mlflow.MlflowClient, experiment: str, tags: dict[str, str], run_id: str
) -> list[str]:
    """Delete the live runs of the same asset, partition and family that started before
    `run_id` (and their logged models), tagging each with its successor first; a run with
    registered model versions is only tagged. Runs logged before runs carried a family count
    as the same family. Runs that started later belong to a newer rerun, which retires this
    one, so two reruns at once still leave the newest. Returns the ids of the runs handled."""
    current = client.get_run(run_id)
    key = (current.info.start_time, run_id)
    family = tags[FAMILY_TAG]
    clauses = " and ".join(f"tags.`{k}` = '{tags[k]}'" for k in (ASSET_TAG, PARTITION_TAG))
    earlier = [
        run
        for run in client.search_runs([experiment], filter_string=clauses, max_results=1000)
        if (run.info.start_time, run.info.run_id) < key
        and run.data.tags.get(FAMILY_TAG, family) == family
    ]
    for run in earlier:
        old = run.info.run_id
        client.set_tag(old, SUPERSEDED_TAG, run_id)
        if client.search_model_versions(f"run_id = '{old}'", max_results=1):
            continue
        for model_id in _logged_model_ids(run):
            client.delete_logged_model(model_id)
        client.delete_run(old)
    return [run.info.run_id for run in earlier]


def _logged_model_ids(run: Run) -> list[str]:
    """The ids of the models a run logged (MLflow 3 records them as the run's outputs)."""
    outputs = run.outputs.model_outputs if run.outputs else []
    return [output.model_id for output in outputs]
