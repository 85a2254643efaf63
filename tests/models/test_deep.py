"""The network families: windows of a symbol's own past rows, a signal that lives in the past
days found out of sample by each family, reproducible fits, early stopping that keeps the best
epoch, an epoch callback whose exceptions stop the fit, and context rows never fitted on."""

from __future__ import annotations

import numpy as np
import optuna
import pandas as pd
import pytest
from sklearn.base import clone

from quant_assets.models.deep import CNNModel, LSTMModel, TransformerModel, mean_rank_ic
from quant_assets.models.sequences import WindowDataset, build_windows

WINDOW = 10
FAMILIES = {"cnn": CNNModel, "lstm": LSTMModel, "transformer": TransformerModel}
# small and quick: one CPU thread each, so two test workers do not fight over the cores
FAST = dict(
    window=WINDOW,
    hidden_size=16,
    num_layers=1,
    lr=3e-3,
    batch_size=256,
    max_epochs=8,
    patience=3,
    importance_rows=2000,
    num_threads=1,
    device="cpu",
)
LAYERS = {"cnn": 2, "lstm": 1, "transformer": 1}  # two causal conv layers see 7 days back


def _model(family: str, **overrides: object):
    params = {**FAST, "num_layers": LAYERS[family], **overrides}
    return FAMILIES[family](**params)


def _panel(n_symbols: int = 60, n_dates: int = 120, n_features: int = 6, seed: int = 0):
    """Features iid per day; the target is the mean of feature 0 over the last 5 days plus
    noise, so only a model reading its window can find it (NaN for the first 4 days)."""
    rng = np.random.default_rng(seed)
    index = pd.MultiIndex.from_product(
        [pd.bdate_range("2024-01-01", periods=n_dates), [f"S{i:03d}" for i in range(n_symbols)]],
        names=["date", "symbol"],
    )
    values = rng.normal(size=(n_dates, n_symbols, n_features)).astype(np.float32)
    signal = pd.DataFrame(values[:, :, 0]).rolling(5).mean().to_numpy()
    target = signal + 0.3 * rng.normal(size=signal.shape)
    X = pd.DataFrame(
        values.reshape(-1, n_features), index=index, columns=[f"f{i}" for i in range(n_features)]
    )
    return X, pd.Series(target.reshape(-1), index=index, name="target")


def _segment(X: pd.DataFrame, y: pd.Series, first: int, end: int):
    """Dates [first, end) as targets, with the window's earlier days as context (NaN target)."""
    dates = X.index.get_level_values("date")
    unique = dates.unique()
    rows = (dates >= unique[max(first - WINDOW + 1, 0)]) & (dates <= unique[end - 1])
    return X[rows], y[rows].where(dates[rows] >= unique[first])


@pytest.fixture(scope="module")
def splits():
    X, y = _panel()
    return {
        "train": _segment(X, y, 0, 70),
        "valid": _segment(X, y, 70, 90),
        "test": _segment(X, y, 90, 120),
    }


def _test_ic(model, splits) -> float:
    X, y = splits["test"]
    rows = y.notna().to_numpy()
    score = model.predict(X)
    assert score.name == "score" and score.index.equals(X.index) and score.notna().all()
    return mean_rank_ic(score.to_numpy()[rows], y.to_numpy()[rows], X.index[rows])


@pytest.fixture(scope="module")
def fitted(splits):
    """Each family fitted on the signal, and on a target shuffled across rows (train and valid
    alike), with the validation set each fit saw."""
    rng = np.random.default_rng(1)

    def shuffled(part):
        X, y = part
        values = y.to_numpy().copy()
        rows = np.flatnonzero(np.isfinite(values))
        values[rows] = values[rng.permutation(rows)]
        return X, pd.Series(values, index=y.index)

    out = {}
    for family in FAMILIES:
        out[family] = _model(family).fit(*splits["train"], valid=splits["valid"])
        out[family, "valid"] = splits["valid"]
        noise_valid = shuffled(splits["valid"])
        out[family, "noise"] = _model(family).fit(*shuffled(splits["train"]), valid=noise_valid)
        out[family, "noise", "valid"] = noise_valid
    return out


def test_windows_are_a_symbols_previous_rows_padded_with_zeros():
    index = pd.MultiIndex.from_tuples(
        [
            ("2024-01-02", "A"),
            ("2024-01-02", "B"),
            ("2024-01-03", "A"),
            ("2024-01-03", "B"),
            ("2024-01-04", "B"),  # A suspended: its window skips the day
            ("2024-01-05", "A"),
            ("2024-01-05", "B"),
            ("2024-01-05", "C"),  # C's first day
        ],
        names=["date", "symbol"],
    )
    X = pd.DataFrame(
        {"a": np.arange(8, dtype=float) + 1, "b": -np.arange(8, dtype=float) - 1}, index=index
    )
    X.iloc[3, 1] = np.nan
    windows = build_windows(X, 3)
    # the panel once (plus the zero row), and window-many int32 indices per row
    assert windows.values.shape == (9, 2) and windows.values.dtype == np.float32
    assert windows.index.shape == (8, 3) and windows.index.dtype == np.int32
    assert not windows.values[windows.pad_row].any()
    a = windows.gather(np.arange(8))[:, :, 0]  # feature "a" is the row number + 1
    expected = np.array(
        [
            [0, 0, 1],  # A on its first day
            [0, 0, 2],
            [0, 1, 3],
            [0, 2, 4],
            [2, 4, 5],  # B: its own three rows, none of A's
            [1, 3, 6],  # A: the rows it traded, across the suspension
            [4, 5, 7],
            [0, 0, 8],  # C: padded, nothing of A or B
        ]
    )
    np.testing.assert_array_equal(a, expected)
    assert windows.gather(np.array([6]))[0, 0, 1] == 0  # B's NaN on 2024-01-03 read as 0
    # a batch is one gather from the stored array, which the dataset shares rather than copies
    dataset = WindowDataset(windows, np.array([4, 6, 7]), np.zeros(3))
    assert dataset.values.data_ptr() == windows.values.ctypes.data
    x, y = dataset[[0, 2]]
    assert x.shape == (2, 3, 2) and y.shape == (2,)
    np.testing.assert_array_equal(x[:, :, 0].numpy(), expected[[4, 7]])


def test_history_days_follows_the_window():
    model = CNNModel(window=30)
    assert model.history_days == 29
    model.set_params(window=5)
    assert model.history_days == 4 and clone(model).history_days == 4
    assert LSTMModel().history_days == TransformerModel().history_days == 19


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_learns_a_signal_in_the_past_days(fitted, splits, family):
    model, noise = fitted[family], fitted[family, "noise"]
    ic, noise_ic = _test_ic(model, splits), _test_ic(noise, splits)
    # a target nearly determined by the features lets even an untrained network's score
    # correlate with it by chance (|IC| up to ~0.4 over seeds): hence a margin, not a bound
    assert ic > 0.3 and ic > noise_ic + 0.2, (ic, noise_ic)
    assert model.feature_importance_.idxmax() == "f0"
    assert list(model.feature_importance_.index) == list(model.feature_names_in_)


@pytest.mark.parametrize("family", FAMILIES)
def test_early_stopping_keeps_the_best_epochs_weights(fitted, family):
    # the noise fit's best epoch is seldom its last: its kept weights must be that epoch's
    for model, (X, y) in (
        (fitted[family], fitted[family, "valid"]),
        (fitted[family, "noise"], fitted[family, "noise", "valid"]),
    ):
        curves = model.curves_
        assert set(curves) == {"train_loss", "valid_loss", "valid_rank_ic"}
        epochs = len(curves["train_loss"])
        assert len(curves["valid_loss"]) == len(curves["valid_rank_ic"]) == epochs
        best = model.best_iteration_
        assert best == int(np.nanargmax(curves["valid_rank_ic"])) + 1
        assert epochs in (FAST["max_epochs"], best + FAST["patience"])
        rows = y.notna().to_numpy()
        score = model.predict(X).to_numpy()[rows]
        ic = mean_rank_ic(score, y.to_numpy()[rows], X.index[rows])
        assert ic == pytest.approx(curves["valid_rank_ic"][best - 1], abs=1e-5)


@pytest.mark.parametrize("family", FAMILIES)
def test_the_same_seed_gives_the_same_predictions(splits, family):
    X, y = splits["train"]
    quick = dict(max_epochs=2, importance_rows=200)
    a = _model(family, seed=3, **quick).fit(X, y, valid=splits["valid"]).predict(X)
    b = _model(family, seed=3, **quick).fit(X, y, valid=splits["valid"]).predict(X)
    pd.testing.assert_series_equal(a, b, check_exact=True)
    c = _model(family, seed=4, **quick).fit(X, y, valid=splits["valid"]).predict(X)
    assert not np.array_equal(a.to_numpy(), c.to_numpy())


def test_the_epoch_callback_sees_each_epoch_and_its_exception_stops_the_fit(splits):
    seen: list[tuple[int, float]] = []
    model = _model(
        "cnn",
        max_epochs=3,
        patience=10,
        monitor="loss",
        epoch_callback=lambda e, s: seen.append((e, s)),
    ).fit(*splits["train"], valid=splits["valid"])
    # it receives the monitored value, here the validation loss, which early stopping minimises
    assert seen == list(enumerate(model.curves_["valid_loss"], start=1))
    assert model.best_iteration_ == int(np.argmin(model.curves_["valid_loss"])) + 1

    def prune(epoch: int, score: float) -> None:
        seen.append((epoch, score))
        if epoch == 2:
            raise optuna.TrialPruned(f"pruned at epoch {epoch}")

    seen.clear()
    with pytest.raises(optuna.TrialPruned, match="pruned at epoch 2"):
        _model("cnn", max_epochs=5, patience=10, epoch_callback=prune).fit(
            *splits["train"], valid=splits["valid"]
        )
    assert [e for e, _ in seen] == [1, 2]


def test_rows_without_a_target_are_never_fitted(splits):
    """Huge garbage features on later days whose target is NaN leave the fit unchanged: those
    rows are not trained on, and no target row's window reaches forward to them."""
    X, y = splits["train"]
    later, _ = splits["test"]
    garbage = pd.DataFrame(1e6, index=later.index, columns=later.columns)
    X_more = pd.concat([X, garbage]).sort_index()
    y_more = y.reindex(X_more.index)
    assert y_more.notna().sum() == y.notna().sum()
    quick = dict(max_epochs=2, importance_rows=500)
    a = _model("lstm", **quick).fit(X, y)
    b = _model("lstm", **quick).fit(X_more, y_more)
    assert a.curves_ == b.curves_ and set(a.curves_) == {"train_loss"}
    assert a.best_iteration_ == b.best_iteration_ == 2
    pd.testing.assert_series_equal(a.predict(later), b.predict(later), check_exact=True)
    pd.testing.assert_series_equal(a.feature_importance_, b.feature_importance_)
