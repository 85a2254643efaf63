"""The model registry on MLflow's real SQLite store: versions of a zoo model logged as the
generic pyfunc, the promotion rule both ways with its decision recorded on the version and its
run, the champion loaded back as a working model, and an unloadable artifact (corrupt or
missing) refused with an error naming it while the champion stays where it was."""

from __future__ import annotations

import math
import os
from pathlib import Path
from urllib.parse import urlsplit

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from sklearn.linear_model import Ridge

from quant_assets.models.base import ZooModel
from resources import mlflow_registry as registry
from resources.mlflow_pyfunc import ZooPyfunc, load_zoo_model, log_zoo_model, unwrap
from resources.mlflow_tracking import MLflowResource

FEATURES = ["f1", "f2", "f3"]


class RidgeZoo(ZooModel):
    """A zoo family in miniature: ridge regression on the panel's features."""

    family = "ridge"

    def __init__(self, alpha: float = 1.0):
        self.alpha = alpha

    def fit(self, X, y, valid=None):
        self.ridge_ = Ridge(alpha=self.alpha).fit(X.to_numpy(), y.to_numpy())
        self.feature_names_in_ = list(X.columns)
        return self

    def predict(self, X):
        return pd.Series(self.ridge_.predict(X.to_numpy()), index=X.index, name="score")


class Standardise:
    """Feature processing fitted with the model: each feature to mean 0, std 1."""

    def fit(self, X):
        self.mean_, self.std_ = X.mean(), X.std()
        return self

    def transform(self, X):
        return (X - self.mean_) / self.std_


class Ensemble(RidgeZoo):
    """A model with `predict_frame`, as ensembles have: score, probability, confidence."""

    def predict_frame(self, X):
        score = self.predict(X)
        return pd.DataFrame(
            {"score": score, "probability": 1 / (1 + np.exp(-score)), "confidence": score.abs()}
        )


def _panel(days: int = 6, symbols: int = 8, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    index = pd.MultiIndex.from_product(
        [pd.bdate_range("2024-03-01", periods=days), [f"{i:06d}.SZ" for i in range(symbols)]],
        names=["date", "symbol"],
    )
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(len(index), len(FEATURES))), index=index, columns=FEATURES)
    return X, X["f1"] - 0.5 * X["f3"] + rng.normal(scale=0.1, size=len(X))


X, Y = _panel()


@pytest.fixture(scope="module")
def experiment(tmp_path_factory) -> str:
    """A fresh SQLite store with file artifacts (the project's default kind), for the module:
    creating a store's tables takes seconds, so the tests share it with names of their own."""
    root = tmp_path_factory.mktemp("registry")
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    tracking = MLflowResource(
        tracking_uri=f"sqlite:///{root / 'mlflow.db'}",
        artifact_location=(root / "artifacts").as_uri(),
        experiment="registry",
    )
    yield tracking.setup()
    # MLflow mirrors its URI in the environment; None unsets it
    mlflow.set_tracking_uri(previous)


def _log(experiment: str, model: ZooModel, processing=None) -> str:
    """Log `model` in a run of its own (as the training asset does); its model URI."""
    with mlflow.start_run(experiment_id=experiment):
        info = log_zoo_model(
            model,
            name=model.family,
            features=FEATURES,
            processing=processing,
            input_example=X.head(8),
            params={"alpha": model.alpha},
            metrics={"rank_ic": 0.05},
        )
    return info.model_uri


@pytest.fixture(scope="module")
def logged(experiment) -> list[str]:
    """Two fitted versions' model URIs, registered anew by each test under its own name."""
    return [_log(experiment, RidgeZoo(alpha).fit(X, Y)) for alpha in (0.1, 100.0)]


def _versions(name: str, uris: list[str]) -> list[str]:
    return [registry.register(uri, name, {"family": "ridge"}) for uri in uris]


def _promote_first(name: str, version: str) -> None:
    registry.set_challenger(name, version)
    decision = registry.decide_promotion(0.10, registry.current_champion(name), margin=0.02)
    registry.apply_decision(name, version, decision)


def _aliases(name: str) -> dict[str, str]:
    # MLflow gives an alias's version as an int here, as text everywhere else
    return {k: str(v) for k, v in MlflowClient().get_registered_model(name).aliases.items()}


def _artifact_file(name: str, version: str, file: str) -> Path:
    root = MlflowClient().get_model_version_download_uri(name, version)
    return Path(urlsplit(root).path) / file


@pytest.mark.parametrize(
    ("challenger", "champion", "promote"),
    [
        (0.05, None, True),  # no champion yet
        (0.13, 0.10, True),  # better by more than the margin
        (0.12, 0.10, True),  # exactly champion + margin
        (0.119, 0.10, False),
        (0.05, 0.10, False),
        (math.nan, None, False),  # a failed evaluation never promotes
        (0.20, math.nan, False),
    ],
)
def test_the_promotion_rule(challenger, champion, promote):
    decision = registry.decide_promotion(challenger, champion, margin=0.02)
    assert decision.promote is promote
    assert (decision.challenger, decision.margin) == (challenger, 0.02)
    assert decision.champion is champion or decision.champion == champion


def test_a_better_challenger_becomes_champion_and_the_decision_is_recorded(logged):
    name = "zoo-better"
    first, second = _versions(name, logged)
    assert registry.current_champion(name) is None
    _promote_first(name, first)
    assert registry.current_champion(name) == first

    registry.set_challenger(name, second)
    decision = registry.decide_promotion(0.15, 0.10, margin=0.02)
    assert registry.apply_decision(name, second, decision) == decision

    client = MlflowClient()
    assert registry.current_champion(name) == second
    assert _aliases(name) == {"champion": second}
    version = client.get_model_version(name, second)
    expected = {
        "promotion.decision": "promoted",
        "promotion.challenger_score": "0.15",
        "promotion.champion_score": "0.1",
        "promotion.margin": "0.02",
        "promotion.previous_champion": first,
        "promotion.model": f"{name}/{second}",
    }
    assert version.tags.items() >= expected.items()
    assert "0.15 >= 0.12" in version.tags["promotion.reason"]
    assert client.get_run(version.run_id).data.tags.items() >= expected.items()


def test_a_challenger_not_better_by_the_margin_stays_challenger(logged):
    name = "zoo-worse"
    first, second = _versions(name, logged)
    _promote_first(name, first)

    registry.set_challenger(name, second)
    decision = registry.decide_promotion(0.11, 0.10, margin=0.02)
    registry.apply_decision(name, second, decision)

    client = MlflowClient()
    assert _aliases(name) == {"champion": first, "challenger": second}
    version = client.get_model_version(name, second)
    expected = {
        "promotion.decision": "refused",
        "promotion.challenger_score": "0.11",
        "promotion.champion_score": "0.1",
        "promotion.margin": "0.02",
        "promotion.previous_champion": first,
    }
    assert version.tags.items() >= expected.items()
    assert "0.11 < 0.12" in version.tags["promotion.reason"]
    assert client.get_run(version.run_id).data.tags.items() >= expected.items()


def test_the_champion_loads_as_a_working_model(logged):
    name = "zoo-load"
    first, second = _versions(name, logged)
    _promote_first(name, second)

    champion = registry.load_champion(name)
    wrapped = unwrap(champion)
    assert isinstance(wrapped, ZooPyfunc) and wrapped.features == FEATURES
    expected = wrapped.model.predict(X)
    assert wrapped.model.alpha == 100.0

    by_index = champion.predict(X)  # (date, symbol) as the index: scores indexed so
    pd.testing.assert_series_equal(by_index["score"], expected)

    shuffled = X.reset_index().sample(frac=1, random_state=0)  # as columns, in any order
    by_columns = champion.predict(shuffled)
    assert list(by_columns.columns) == ["date", "symbol", "score"]
    assert by_columns.index.equals(shuffled.index)
    scores = by_columns.set_index(["date", "symbol"])["score"]
    # MLflow's schema check casts the date column to nanoseconds: compare the values
    np.testing.assert_array_equal(scores.to_numpy(), expected.loc[scores.index].to_numpy())


def test_processing_and_predict_frame_travel_with_the_model(experiment):
    processing = Standardise().fit(X)
    model = Ensemble(alpha=1.0).fit(processing.transform(X), Y)
    loaded = load_zoo_model(_log(experiment, model, processing))
    out = loaded.predict(X)
    assert list(out.columns) == ["score", "probability", "confidence"]
    pd.testing.assert_series_equal(out["score"], model.predict(processing.transform(X)))
    assert loaded.metadata.get_input_schema().required_input_names() == FEATURES


def test_a_torch_model_loads_back_on_the_cpu(experiment):
    torch = pytest.importorskip("torch")

    class Linear(RidgeZoo):
        family = "torch-linear"

        def fit(self, X, y, valid=None):
            torch.manual_seed(0)
            self.net_ = torch.nn.Linear(len(FEATURES), 1)
            return self

        def predict(self, X):
            with torch.no_grad():
                out = self.net_(torch.tensor(X.to_numpy(), dtype=torch.float32))
            return pd.Series(out[:, 0].numpy(), index=X.index, name="score")

    model = Linear().fit(X, Y)
    uri = _log(experiment, model)
    loaded = load_zoo_model(uri)
    net = unwrap(loaded).model.net_
    assert {p.device.type for p in net.parameters()} == {"cpu"}
    pd.testing.assert_series_equal(loaded.predict(X)["score"], model.predict(X))
    requirements = Path(mlflow.pyfunc.get_model_dependencies(uri)).read_text()
    assert "torch==" in requirements and "lightgbm" not in requirements


@pytest.mark.parametrize("damage", ["corrupt", "missing"])
def test_an_unloadable_champion_is_named_and_stays_champion(experiment, logged, damage):
    name = f"zoo-{damage}-champion"
    (first,) = _versions(name, logged[:1])
    _promote_first(name, first)
    (second,) = _versions(name, [_log(experiment, RidgeZoo(3.0).fit(X, Y))])
    registry.set_challenger(name, second)
    registry.apply_decision(name, second, registry.decide_promotion(0.5, 0.1, margin=0.02))
    assert registry.current_champion(name) == second

    pickle = _artifact_file(name, second, "python_model.pkl")
    if damage == "corrupt":
        pickle.write_bytes(b"not a pickle at all")
    else:
        pickle.unlink()
    with pytest.raises(registry.ModelLoadError) as failed:
        registry.load_champion(name)
    message = str(failed.value)
    assert f"model {name!r} version {second} (alias champion)" in message
    assert f"{pickle.as_uri()} is {damage}" in message
    assert failed.value.artifact == pickle.as_uri()
    assert registry.current_champion(name) == second  # a failed load moves no alias


def test_a_challenger_with_a_corrupt_artifact_is_refused(experiment, logged):
    name = "zoo-corrupt-challenger"
    (first,) = _versions(name, logged[:1])
    _promote_first(name, first)
    (second,) = _versions(name, [_log(experiment, RidgeZoo(5.0).fit(X, Y))])
    registry.set_challenger(name, second)
    pickle = _artifact_file(name, second, "python_model.pkl")
    pickle.write_bytes(b"\x80\x04garbage")

    decision = registry.decide_promotion(0.9, 0.1, margin=0.02)  # far better on paper
    with pytest.raises(registry.ModelLoadError, match="python_model.pkl is corrupt"):
        registry.apply_decision(name, second, decision)

    assert registry.current_champion(name) == first
    tags = MlflowClient().get_model_version(name, second).tags
    assert tags["promotion.decision"] == "refused"
    assert tags["promotion.reason"].startswith("refused, unloadable:")
    assert tags["promotion.challenger_score"] == "0.9"
    unwrap(registry.load_champion(name))  # the previous champion still serves


def test_the_champion_of_a_day_is_the_last_promoted_up_to_it(experiment):
    """Days trained in order move the alias; a backfilled earlier day records its promotion
    for that day only, and `champion_as_of` never answers with a later day's version."""
    name = "dated"
    versions = {}
    for day, promote in (("2024-03-04", True), ("2024-03-05", False), ("2024-03-06", True)):
        version = registry.register(_log(experiment, RidgeZoo().fit(X, Y)), name,
                                    {registry.DAY_TAG: day})  # fmt: skip
        decision = registry.decide_promotion(0.1 if promote else -1.0, 0.0, 0.0)
        registry.apply_decision(name, version, decision, move_alias=True)
        versions[day] = version
    assert registry.champion_as_of(name, "2024-03-05") == versions["2024-03-04"]
    assert registry.champion_as_of(name, "2024-03-06") == versions["2024-03-06"]
    assert registry.champion_as_of(name, "2024-03-06", before=True) == versions["2024-03-04"]
    assert registry.champion_as_of(name, "2024-03-01") is None
    # a backfill of 2024-03-05, promoted: counts for that day, the live alias stays
    late = registry.register(_log(experiment, RidgeZoo(alpha=2.0).fit(X, Y)), name,
                             {registry.DAY_TAG: "2024-03-05"})  # fmt: skip
    newest = registry.newest_day(name) <= "2024-03-05"
    registry.apply_decision(name, late, registry.decide_promotion(0.2, 0.1, 0.0), newest)
    assert registry.current_champion(name) == versions["2024-03-06"]
    assert registry.champion_as_of(name, "2024-03-05") == late
    assert registry.champion_as_of(name, "2024-03-06") == versions["2024-03-06"]
