"""The model registry: registered versions of a zoo model, a `challenger` and a `champion`.

A new version becomes the challenger; it takes the champion alias only when it beats the
champion's score by a margin (or no champion exists) and its artifact loads, and every
decision is recorded with its numbers as tags on the model version and on the run that logged
it. Pure MLflow client calls on the current tracking URI (`MLflowResource.setup()` sets it);
the registry needs a database-backed store (`sqlite:///...`, the default, or a server).
"""

from __future__ import annotations

import contextlib
import io
import math
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

import mlflow
import yaml
from mlflow import MlflowClient
from mlflow.entities import RunTag
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import PyFuncModel

CHAMPION = "champion"
CHALLENGER = "challenger"
TAG = "promotion."  # prefix of the decision tags on a model version and its run
DAY_TAG = "day"  # the trading day a version was trained for (its asset partition)
MLMODEL = "MLmodel"
REASON_CHARS = 2000  # a tag's value is limited (5000 characters on a model version)


class ModelLoadError(RuntimeError):
    """A registered model version whose artifact cannot be loaded (missing or corrupt)."""

    def __init__(self, message: str, *, name: str, version: str, artifact: str):
        super().__init__(message)
        self.name, self.version, self.artifact = name, version, artifact


@dataclass(frozen=True)
class PromotionDecision:
    """Whether the challenger takes the champion alias, why, and the numbers compared."""

    promote: bool
    reason: str
    challenger: float
    champion: float | None
    margin: float

    def tags(self) -> dict[str, str]:
        """The decision as tags (MLflow tags are text)."""
        return {
            f"{TAG}decision": "promoted" if self.promote else "refused",
            f"{TAG}reason": self.reason[:REASON_CHARS],
            f"{TAG}challenger_score": repr(self.challenger),
            f"{TAG}champion_score": "none" if self.champion is None else repr(self.champion),
            f"{TAG}margin": repr(self.margin),
        }


def decide_promotion(challenger: float, champion: float | None, margin: float) -> PromotionDecision:
    """Promote when no champion exists or the challenger scores at least champion + margin
    (a challenger exactly at the bar is promoted). A score that is not a number (a failed
    evaluation) never promotes."""
    challenger, margin = float(challenger), float(margin)  # numpy scalars tag as np.float64(...)
    champion = None if champion is None else float(champion)
    numbers = {"challenger": challenger, "champion": champion, "margin": margin}
    if not math.isfinite(challenger):
        return PromotionDecision(False, f"challenger score {challenger} is not finite", **numbers)
    if champion is None:
        return PromotionDecision(True, "no champion yet", **numbers)
    if not math.isfinite(champion):
        return PromotionDecision(False, f"champion score {champion} is not finite", **numbers)
    bar = champion + margin
    # at the bar counts as reaching it, whatever the float rounding of champion + margin
    if challenger >= bar or math.isclose(challenger, bar, rel_tol=1e-9, abs_tol=1e-12):
        return PromotionDecision(
            True, f"{challenger:.6g} >= {bar:.6g} (champion + margin)", **numbers
        )
    return PromotionDecision(False, f"{challenger:.6g} < {bar:.6g} (champion + margin)", **numbers)


def _client() -> MlflowClient:
    """A client on the current registry, refusing a file store (which has no registry)."""
    uri = mlflow.get_registry_uri()
    if urlsplit(uri).scheme in ("", "file"):
        raise MlflowException(
            f"the model registry needs a database-backed MLflow store (sqlite:///..., "
            f"postgresql://..., or a server), not {uri}"
        )
    return MlflowClient()


def register(model_uri: str, name: str, tags: dict[str, str] | None = None) -> str:
    """Register the logged model at `model_uri` as a new version of `name` (created when new)
    with `tags`; returns the version number."""
    _client()
    # MLflow prints "Successfully registered model ..." and "Created version ..." to stderr at
    # every registration: the version is returned and recorded, the lines are noise in a run
    with contextlib.redirect_stderr(io.StringIO()):
        return str(mlflow.register_model(model_uri, name, tags=tags).version)


def set_challenger(name: str, version: str) -> None:
    """Point the `challenger` alias of `name` at `version`."""
    _client().set_registered_model_alias(name, CHALLENGER, str(version))


def current_champion(name: str) -> str | None:
    """The version the `champion` alias points at, None when there is none (or no model)."""
    client = _client()
    try:
        return str(client.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def load_version(name: str, version: str, *, alias: str = "") -> PyFuncModel:
    """Load version `version` of `name` as a pyfunc; ModelLoadError naming the model, the
    version and the missing or corrupt file when its artifact cannot be loaded."""
    try:
        return mlflow.pyfunc.load_model(f"models:/{name}/{version}")
    except Exception as error:
        artifact, problem = _diagnose(_client(), name, str(version), error)
        held = f" (alias {alias})" if alias else ""
        raise ModelLoadError(
            f"model {name!r} version {version}{held} cannot be loaded: {problem}",
            name=name,
            version=str(version),
            artifact=artifact,
        ) from error


def load_champion(name: str) -> PyFuncModel:
    """The champion of `name` as a pyfunc. LookupError when `name` has no champion;
    ModelLoadError when its artifact is missing or corrupt (the aliases stay where they are)."""
    version = current_champion(name)
    if version is None:
        raise LookupError(f"registered model {name!r} has no {CHAMPION} (or does not exist)")
    return load_version(name, version, alias=CHAMPION)


def apply_decision(
    name: str, version: str, decision: PromotionDecision, move_alias: bool = True
) -> PromotionDecision:
    """Carry out `decision` for version `version` of `name` and record it.

    A promotion first loads the version: when its artifact cannot be loaded the promotion is
    refused (recorded as such) and ModelLoadError raised, the champion staying where it was.
    Otherwise the `champion` alias moves to it (and the `challenger` alias, if it pointed at
    it, is removed). The decision, its numbers and the previous champion are set as tags on
    the model version and on the run that logged it. Returns the decision applied. With
    `move_alias` False (a backfilled earlier day) the promotion is recorded, and counts for
    `champion_as_of` that day, but the live aliases stay.
    """
    client = _client()
    version = str(version)
    previous = current_champion(name)
    context = {
        f"{TAG}model": f"{name}/{version}",
        f"{TAG}previous_champion": previous or "none",
    }
    if decision.promote:
        try:
            load_version(name, version)
        except ModelLoadError as error:
            refused = replace(decision, promote=False, reason=f"refused, unloadable: {error}")
            _record(client, name, version, refused.tags() | context)
            raise
        if move_alias:
            client.set_registered_model_alias(name, CHAMPION, version)
            if _alias_version(client, name, CHALLENGER) == version:
                client.delete_registered_model_alias(name, CHALLENGER)
    _record(client, name, version, decision.tags() | context)
    return decision


def _dated_versions(name: str) -> list[tuple[str, int, bool]]:
    """(day, version, promoted) of every version of `name` that carries a day."""
    client = _client()
    out = []
    for mv in client.search_model_versions(f"name = '{name}'"):
        day = mv.tags.get(DAY_TAG)
        if day is not None:
            promoted = mv.tags.get(f"{TAG}decision") == "promoted"
            out.append((day, int(mv.version), promoted))
    return out


def newest_day(name: str) -> str:
    """The latest day any version of `name` was trained for ("" when none)."""
    return max((day for day, _, _ in _dated_versions(name)), default="")


def champion_as_of(name: str, day: str, before: bool = False) -> str | None:
    """The champion version of `name` in force on `day` (ISO date): the `champion` alias
    for the newest trained day or later, else the last version promoted for a day up to
    `day` (strictly before it with `before`), so a backfill never reads a later champion."""
    versions = _dated_versions(name)
    if not versions:
        return None
    if not before and day >= max(d for d, _, _ in versions):
        return current_champion(name)
    held = [
        (d, v) for d, v, promoted in versions if promoted and (d < day or (d == day and not before))
    ]
    return str(max(held)[1]) if held else None


def _alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    """The version `alias` points at, None when it points nowhere."""
    aliases = client.get_registered_model(name).aliases
    return str(aliases[alias]) if alias in aliases else None


def _record(client: MlflowClient, name: str, version: str, tags: dict[str, str]) -> None:
    """Set `tags` on the model version and on its source run (when it was logged in one)."""
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    run_id = client.get_model_version(name, version).run_id
    if run_id:
        client.log_batch(run_id, tags=[RunTag(key, value) for key, value in tags.items()])


def _diagnose(client: MlflowClient, name: str, version: str, error: Exception) -> tuple[str, str]:
    """Which file of the version's artifact failed and how: (the file's URI, a description).
    Looks at the artifact itself: the MLmodel file, then the files its pyfunc flavor names."""
    try:
        root = client.get_model_version_download_uri(name, version).rstrip("/")
    except MlflowException as lookup:
        return "", f"its artifact location is unknown ({lookup})"
    cause = f"{type(error).__name__}: {error}"
    try:
        # listed paths may carry the folder's own name in front: compare the file names
        listed = mlflow.artifacts.list_artifacts(artifact_uri=root)
        present = {f.path.rsplit("/", 1)[-1] for f in listed}
    except Exception as listing:
        return root, f"its artifact at {root} cannot be listed ({listing}); loading gave {cause}"
    if MLMODEL not in present:
        return f"{root}/{MLMODEL}", f"{root}/{MLMODEL} is missing ({cause})"
    try:
        text = mlflow.artifacts.load_text(f"{root}/{MLMODEL}")
        flavor = yaml.safe_load(text)["flavors"]["python_function"]
    except Exception:
        return f"{root}/{MLMODEL}", f"{root}/{MLMODEL} is corrupt ({cause})"
    files = [flavor[k] for k in ("python_model", "data", "model_path") if flavor.get(k)]
    for path in files:
        if path not in present:
            return f"{root}/{path}", f"{root}/{path} is missing ({cause})"
    if files:
        path = f"{root}/{files[0]}"
        missing_code = _import_error(error)
        if missing_code is not None:
            return path, f"{path} needs module {missing_code.name!r}, not importable here"
        return path, f"{path} is corrupt ({cause})"
    return root, f"its artifact at {root} cannot be loaded ({cause})"


def _import_error(error: BaseException | None) -> ImportError | None:
    """The ImportError behind `error`, if any (a pickle naming code that is not installed)."""
    while error is not None:
        if isinstance(error, ImportError):
            return error
        error = error.__cause__ or error.__context__
    return None


__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "ModelLoadError",
    "PromotionDecision",
    "apply_decision",
    "champion_as_of",
    "newest_day",
    "current_champion",
    "decide_promotion",
    "load_champion",
    "load_version",
    "register",
    "set_challenger",
]
