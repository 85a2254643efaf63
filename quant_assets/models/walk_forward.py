"""`walk_forward`: features, processing, one fit of the zoo and out-of-sample scores, from a
long table of adjusted bars, with no Dagster and no database (a researcher's notebook call).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from quant_assets.models.base import ZooModel
from quant_assets.models.dataset import (
    BAR_COLUMNS,
    SegmentFrames,
    deduplicate,
    forward_label,
    segment_frames,
)
from quant_assets.models.metrics import score_report
from quant_assets.models.segments import Segments, default_segments
from quant_assets.models.zoo import FAMILIES, label_norm, make_processed

log = logging.getLogger(__name__)

ENSEMBLES = ("average", "stacking", "regime")


@dataclass
class WindowFit:
    """One fitted window: the model, the segment frames, its figures and the time each part
    took (seconds: features, processing, fit, predict)."""

    model: ZooModel
    frames: SegmentFrames
    features: list[str]
    scores: pd.Series
    metrics: dict[str, float] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    dropped: pd.DataFrame | None = None
    best_params: dict[str, object] = field(default_factory=dict)


def feature_frame(bars: pd.DataFrame, features: str | Sequence[str] | pd.DataFrame):
    """The feature panel indexed by (date, symbol): `"alpha158"`, a list of formulas of the
    formula language, or a ready panel (passed through)."""
    from quant_assets.factors import alpha158, evaluate_many

    if isinstance(features, pd.DataFrame):
        return features.sort_index()
    if isinstance(features, str):
        if features != "alpha158":
            raise ValueError(f"unknown feature set {features!r}: use 'alpha158' or formulas")
        return alpha158(bars).sort_index()
    return evaluate_many(list(features), bars).sort_index()


def build_model(
    model: str | ZooModel,
    params: dict[str, object],
    members: Sequence[str] | None = None,
    bars: pd.DataFrame | None = None,
) -> ZooModel:
    """An unfitted model from a zoo name, an ensemble name or a ready ZooModel."""
    if isinstance(model, ZooModel):
        return model
    if model in FAMILIES:
        return make_processed(model, **params)
    if model in ENSEMBLES:
        from quant_assets.models import ensembles

        chosen = members or FAMILIES
        seed = params.get("seed", 0)
        built = {name: make_processed(name, seed=seed) for name in chosen}
        cls = {
            "average": ensembles.WeightedAverage,
            "stacking": ensembles.Stacking,
            "regime": ensembles.RegimeEnsemble,
        }[model]
        ensemble = cls(members=built)
        if model == "regime":
            if bars is None:
                raise ValueError("the regime ensemble needs the bars its market regime reads")
            ensemble.set_regime(ensembles.market_regime(bars))
        return ensemble
    raise ValueError(f"unknown model {model!r}: one of {', '.join((*FAMILIES, *ENSEMBLES))}")


def fit_window(
    bars: pd.DataFrame,
    model: str | ZooModel = "lgbm",
    features: str | Sequence[str] | pd.DataFrame = "alpha158",
    segments: dict[str, tuple[object, object]] | Segments | None = None,
    *,
    dedup: float | None = None,
    report_share: float = 0.5,
    members: Sequence[str] | None = None,
    n_trials: int = 0,
    tune_seconds: float = 600.0,
    **params: object,
) -> WindowFit:
    """`walk_forward`'s work, returning the fitted model and figures too (see there)."""
    missing = set(BAR_COLUMNS) - set(bars.columns)
    if missing:
        raise ValueError(f"bars lack columns {sorted(missing)}")
    t0 = time.perf_counter()
    bars = bars.assign(date=pd.to_datetime(bars["date"])).sort_values(["date", "symbol"])
    panel = feature_frame(bars, features)
    seconds = time.perf_counter() - t0
    calendar = panel.index.get_level_values("date").unique().sort_values()
    if segments is None:
        seg = default_segments(calendar)
    elif isinstance(segments, Segments):
        seg = segments
    else:
        seg = Segments.from_dict(segments)
    estimator = build_model(model, params, members, bars)
    frames, dropped, processing = prepare_frames(
        panel, forward_label(bars), seg, estimator, dedup=dedup, report_share=report_share
    )
    fit = fit_frames(
        estimator, frames, tune_family=model if n_trials and model in FAMILIES else None,
        params=params, n_trials=n_trials, tune_seconds=tune_seconds,
    )  # fmt: skip
    fit.dropped = dropped
    fit.timings = {"features": seconds, "processing": processing, **fit.timings}
    return fit


def prepare_frames(
    panel: pd.DataFrame,
    label: pd.Series,
    segments: Segments,
    estimator: ZooModel,
    *,
    dedup: float | None = None,
    report_share: float = 0.5,
    purge_valid: bool = True,
) -> tuple[SegmentFrames, pd.DataFrame | None, float]:
    """The segment frames the estimator learns from (its family's label norm, its look-back
    days), deduplicated on the training rows when `dedup` is a correlation limit; returns
    them, the table of dropped factors and the seconds it took."""
    t0 = time.perf_counter()
    family = getattr(estimator, "family", "")
    frames = segment_frames(
        panel,
        label,
        segments,
        label_norm=label_norm(family) if family in FAMILIES else "zscore",
        history=estimator.history_days,
        report_share=report_share,
        purge_valid=purge_valid,
    )
    dropped = None
    if dedup is not None:
        kept, dropped = deduplicate(*frames.train, limit=dedup)
        frames = _select(frames, kept)
    return frames, dropped, time.perf_counter() - t0


def fit_frames(
    estimator: ZooModel,
    frames: SegmentFrames,
    *,
    tune_family: str | None = None,
    params: dict[str, object] | None = None,
    n_trials: int = 0,
    tune_seconds: float = 600.0,
) -> WindowFit:
    """Fit on train (early stopping on valid, after an Optuna study of `n_trials` when a
    family to tune is named), score the test rows and measure the validation figures on the
    report days, which early stopping and tuning did not see."""
    params = params or {}
    log.info(
        "%s on %d features: train %d rows, valid %d, test %d",
        getattr(estimator, "family", type(estimator).__name__),
        frames.train[0].shape[1],
        len(frames.train[0]),
        len(frames.valid[0]),
        len(frames.test[0]),
    )
    timings: dict[str, float] = {}
    best_params: dict[str, object] = {}
    t0 = time.perf_counter()
    if tune_family and n_trials:
        from quant_assets.models.tuning import tune

        result = tune(
            tune_family, *frames.train, frames.valid, n_trials=n_trials, timeout_s=tune_seconds,
            seed=int(params.get("seed", 0)), fixed_params=params,
        )  # fmt: skip
        best_params = dict(result.best_params)
        estimator = make_processed(tune_family, **{**params, **best_params})
    estimator.fit(*frames.train, valid=frames.valid)
    timings["fit"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    X_test, _ = frames.test
    scores = estimator.predict(X_test) if len(X_test) else pd.Series(dtype=float, name="score")
    if len(X_test):
        scores = scores[X_test.index.get_level_values("date") >= frames.days["test"][0]]
    timings["predict"] = time.perf_counter() - t0
    metrics = report_metrics(estimator, frames)
    metrics["best_iteration"] = float(getattr(estimator, "best_iteration_", 0) or 0)
    return WindowFit(
        model=estimator,
        frames=frames,
        features=list(frames.train[0].columns),
        scores=scores.rename("score"),
        metrics=metrics,
        timings=timings,
        best_params=best_params,
    )


def report_metrics(model: ZooModel, frames: SegmentFrames) -> dict[str, float]:
    """`valid_*` figures of a fitted model on the report days against the raw label."""
    report_X, report_y = frames.report
    own = report_y.notna().to_numpy()  # the report days, not their look-back context
    report_scores = model.predict(report_X)[own]
    report_label = frames.raw_label.reindex(report_scores.index)
    return {f"valid_{k}": v for k, v in score_report(report_scores, report_label).items()}


def _select(frames: SegmentFrames, columns: list[str]) -> SegmentFrames:
    """The same frames restricted to `columns`."""
    pick = lambda pair: (pair[0][columns], pair[1])  # noqa: E731
    return SegmentFrames(
        train=pick(frames.train),
        valid=pick(frames.valid),
        report=pick(frames.report),
        test=pick(frames.test),
        raw_label=frames.raw_label,
        days=frames.days,
    )


def walk_forward(
    bars: pd.DataFrame,
    model: str | ZooModel = "lgbm",
    features: str | Sequence[str] | pd.DataFrame = "alpha158",
    segments: dict[str, tuple[object, object]] | Segments | None = None,
    **kwargs: object,
) -> pd.DataFrame:
    """Scores of the `test` segment from one model fitted on `train` (`valid` for early
    stopping and tuning), indexed by (date, symbol) with a column `score`.

    `bars`: long adjusted daily bars (date, symbol, open, high, low, close, volume, vwap).
    `model`: a zoo family (lgbm, xgb, rf, cnn, lstm, transformer), an ensemble (average,
    stacking, regime; `members=` picks the families) or a ZooModel. `features`: "alpha158",
    a list of formulas, or a ready panel. `segments`: {"train": (start, end), "valid": ...,
    "test": ...}, inclusive dates; train and valid are purged of their last two days (whose
    labels read the next segment's prices). Other keywords: the model's parameters in its
    library's names (LightGBM's for lgbm), `dedup=` a correlation limit for deduplicating
    features, `n_trials=` Optuna trials, `report_share=` the share of validation days kept
    for the reported validation figures (early stopping uses the rest; 0 gives it all, as
    Qlib does). `result.attrs` holds `timings` (seconds by part), `metrics` (validation
    figures, measured on days early stopping did not see) and `test_metrics`.
    """
    fit = fit_window(bars, model, features, segments, **kwargs)
    out = fit.scores.to_frame()
    out.attrs["timings"] = fit.timings
    out.attrs["metrics"] = fit.metrics
    test_label = fit.frames.raw_label.reindex(out.index)
    out.attrs["test_metrics"] = score_report(out["score"], test_label)
    out.attrs["features"] = fit.features
    return out
