"""Ensembles of zoo models, each itself a `ZooModel`: a validation-IC weighted average, a
purged out-of-fold stacking and a regime-dependent weighting.

Members are unfitted zoo models read from the same raw panel (each behind its own scaling,
see `processing.Processed`); the ensemble fits copies of them (`members_`). Members are
combined through their per-date z-scored scores, so a member's scale or daily level does
not matter, only how it ranks names within a date.

What is fitted on what (nothing on the test segment): members on the training rows, with
the validation rows for their early stopping; member weights on the validation rows (or the
training rows' out-of-fold predictions); the probability calibration on the validation
rows. Every ensemble gives `predict` (the score), `predict_frame` (score, probability,
confidence), `member_scores`, `weights_`, `feature_importance_` and `member_importance_`,
and `cross_fitted`: its validation scores with the weighting fitted on other validation
dates, the honest figure to compare with its members' validation IC.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
from sklearn.base import clone

from quant_assets.factors.screening import rank_ic_table
from quant_assets.models.base import Validation, ZooModel, check_panel, target_rows
from quant_assets.models.calibration import TOP_SHARE, Calibrator, calibrate
from quant_assets.models.processing import cs_rank
from quant_assets.models.segments import LABEL_HORIZON

log = logging.getLogger(__name__)


def per_date_zscore(scores: pd.DataFrame) -> pd.DataFrame:
    """Each column z-scored within each date; a missing score, or a date with one name or no
    spread, gives 0 (the member's neutral view)."""
    by = scores.groupby(level="date")
    z = (scores - by.transform("mean")) / by.transform("std")
    return z.replace([np.inf, -np.inf], np.nan).fillna(0.0)


def positive_weights(values: pd.Series) -> pd.Series:
    """Weights proportional to the positive part of each member's value (mean IC, meta
    coefficient or gain): a zero, negative or unknown value gets 0; equal weights when no
    member has a positive value."""
    positive = values.clip(lower=0.0).fillna(0.0)
    total = positive.sum()
    if total <= 0:
        return pd.Series(1.0 / len(values), index=values.index, name="weight")
    return (positive / total).rename("weight")


def max_ic_weights(z: pd.DataFrame, ic: pd.Series) -> pd.Series:
    """Non-negative member weights that maximise the combined score's correlation with the
    target, given each member's validation IC and how the members' per-date z-scores `z`
    correlate: minimise w'Cw subject to w.ic = 1 and w >= 0, then scale to sum to one. Two
    near-copies share one weight, and a member that adds nothing the others do not gets none,
    where weights proportional to IC count a near-copy twice. Members without a positive IC
    get 0; `positive_weights(ic)` when fewer than two members have one or the solve fails."""
    from scipy.optimize import minimize

    good = ic.index[(ic > 0).to_numpy()]
    if len(good) < 2:
        return positive_weights(ic)
    corr = z[good].dropna().corr().to_numpy(np.float64, copy=True)
    if not np.isfinite(corr).all():
        return positive_weights(ic)
    corr += 1e-6 * np.eye(len(good))  # keeps the problem strictly convex for exact copies
    r = ic[good].to_numpy(np.float64)
    start = r / (r @ r)
    res = minimize(
        lambda w: w @ corr @ w,
        start,
        jac=lambda w: 2 * corr @ w,
        constraints=[{"type": "eq", "fun": lambda w: w @ r - 1.0, "jac": lambda w: r}],
        bounds=[(0.0, None)] * len(good),
        method="SLSQP",
    )
    if not res.success or res.x.sum() <= 0:
        return positive_weights(ic)
    w = pd.Series(0.0, index=ic.index, name="weight")
    w[good] = np.clip(res.x, 0.0, None)
    return w / w.sum()


def agreement(scores: pd.DataFrame, weights: np.ndarray) -> np.ndarray:
    """Per row, 1 minus twice the weighted standard deviation of the members' per-date
    percentile ranks: 1 when the members rank the name alike, 0 at the widest split (ranks in
    [0, 1] have a standard deviation of at most 1/2). `weights` is (members,) or (rows, members),
    rows summing to 1, so a member with no weight does not count."""
    ranks = scores.groupby(level="date").rank(pct=True).fillna(0.5).to_numpy(np.float64)
    w = np.broadcast_to(np.asarray(weights, dtype=np.float64), ranks.shape)
    mean = (w * ranks).sum(axis=1, keepdims=True)
    spread = np.sqrt((w * (ranks - mean) ** 2).sum(axis=1))
    return np.clip(1.0 - 2.0 * spread, 0.0, 1.0)


def _fit_members(
    members: dict[str, ZooModel],
    X: pd.DataFrame,
    y: pd.Series,
    valid: Validation | None,
    prefit: bool = False,
) -> dict[str, ZooModel]:
    """Fitted copies of `members` (the originals stay unfitted, as scikit-learn expects); with
    `prefit`, the members as given (already fitted on the same training window, e.g. the
    day's family models in the daily pipeline), which the ensemble only weighs."""
    if prefit:
        return dict(members)
    fitted = {}
    for name, member in members.items():
        t0 = time.perf_counter()
        fitted[name] = clone(member).fit(X, y, valid)
        log.info("ensemble member %s fitted in %.1f s", name, time.perf_counter() - t0)
    return fitted


def _scores(members: dict[str, ZooModel], X: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({name: m.predict(X).to_numpy() for name, m in members.items()}, X.index)


def _target_dates(y: pd.Series) -> pd.DatetimeIndex:
    """The sorted dates with at least one finite target (context-only dates excluded)."""
    dates = y.index.get_level_values("date")[target_rows(y)]
    return pd.DatetimeIndex(dates.unique()).sort_values()


def _mean_ic(scores: pd.DataFrame, target: pd.Series, min_names: int) -> pd.DataFrame:
    """The daily rank IC of each member column (dates x members), dates with a target only."""
    return rank_ic_table(scores, target, min_names=min_names).dropna(how="all")


@dataclass(frozen=True)
class Fold:
    """One blocked fold of the training dates: the held-out block, the dates purged on each
    side of it, and the dates its models learned from (all three disjoint)."""

    held_out: pd.DatetimeIndex
    purged: pd.DatetimeIndex
    train: pd.DatetimeIndex


def blocked_folds(dates: pd.DatetimeIndex, n_folds: int, gap: int) -> list[Fold]:
    """`n_folds` contiguous blocks of `dates` in time order; each block's models learn from
    the other dates less `gap` dates on each side of the block, whose labels (read `gap` days
    ahead) overlap the block's prices."""
    if n_folds < 2:
        raise ValueError(f"n_folds must be at least 2, got {n_folds}")
    if len(dates) < n_folds:
        raise ValueError(f"{len(dates)} dates with a target are too few for {n_folds} folds")
    folds = []
    for block in np.array_split(np.arange(len(dates)), n_folds):
        a, b = int(block[0]), int(block[-1]) + 1
        lo, hi = max(0, a - gap), min(len(dates), b + gap)
        purged = np.r_[lo:a, b:hi]
        train = np.r_[0:lo, hi : len(dates)]
        if len(train) == 0:
            raise ValueError(f"fold {a}:{b} has no training date left after the purge")
        folds.append(Fold(dates[a:b], dates[purged], dates[train]))
    return folds


def out_of_fold(
    members: dict[str, ZooModel],
    X: pd.DataFrame,
    y: pd.Series,
    valid: Validation | None,
    n_folds: int,
    gap: int,
) -> tuple[pd.DataFrame, list[Fold]]:
    """Each training row's score from member copies that never learned from its fold's dates
    nor the `gap` dates around them (their targets are set to NaN, so sequence members still
    read those days' features as look-back context). `valid` drives early stopping only.
    Returns the scores (rows of the held-out dates, one column per member) and the folds."""
    folds = blocked_folds(_target_dates(y), n_folds, gap)
    dates = X.index.get_level_values("date")
    calendar = pd.DatetimeIndex(dates.unique()).sort_values()
    history = max(m.history_days for m in members.values())
    parts = []
    for k, fold in enumerate(folds):
        y_fold = y.where(dates.isin(fold.train))
        start = calendar[max(0, calendar.get_loc(fold.held_out[0]) - history)]
        window = (dates >= start) & (dates <= fold.held_out[-1])
        X_pred = X[window]
        scores = {}
        for name, member in members.items():
            t0 = time.perf_counter()
            model = clone(member).fit(X, y_fold, valid)
            scores[name] = model.predict(X_pred).to_numpy()
            log.info(
                "fold %d/%d member %s in %.1f s", k + 1, n_folds, name, time.perf_counter() - t0
            )
        frame = pd.DataFrame(scores, index=X_pred.index)
        parts.append(frame[X_pred.index.get_level_values("date").isin(fold.held_out)])
    return pd.concat(parts), folds


class _Ensemble(ZooModel):
    """The shared part of the ensembles: member fitting, scores, importance, calibration and
    the frame output. Subclasses set `weights_` and implement `_combine`."""

    family: ClassVar[str] = "ensemble"

    members: dict[str, ZooModel]
    min_names: int
    share: float

    @property
    def history_days(self) -> int:  # type: ignore[override]
        """The longest look-back of the members (the ensemble's rows need all of them)."""
        return max((m.history_days for m in self.members.values()), default=0)

    def _check(self, X: pd.DataFrame, y: pd.Series) -> None:
        check_panel(X, y)
        if not self.members:
            raise ValueError("an ensemble needs at least one member")

    def member_scores(self, X: pd.DataFrame) -> pd.DataFrame:
        """The fitted members' raw scores for the rows of `X`, one column per member."""
        return _scores(self.members_, X)

    def _row_weights(self, index: pd.Index) -> np.ndarray:
        """Member weights per row (rows x members) or shared (members,)."""
        return self.weights_.to_numpy(np.float64)

    def _combine(self, z: pd.DataFrame) -> np.ndarray:
        raise NotImplementedError

    def _fit_weights(self, scores: pd.DataFrame, target: pd.Series) -> None:
        """Set the member weighting from the fitted members' `scores` on validation rows and
        their `target` (NaN rows are context). Assigns attributes, never mutates them, so a
        shallow copy can be re-weighted without touching the original (`cross_fitted`)."""
        raise NotImplementedError

    @property
    def weighs_on_valid(self) -> bool:
        """Whether the member weighting was fitted on the validation rows."""
        return True

    def cross_fitted(
        self, X: pd.DataFrame, y: pd.Series, n_folds: int = 5, gap: int = LABEL_HORIZON
    ) -> pd.Series:
        """The fitted ensemble's scores on validation rows (`X`, `y`) with the weighting
        cross-fitted: the target dates in `n_folds` blocks, each block scored with weights
        fitted on the other blocks less `gap` dates on each side (their labels read the
        block's prices); the members stay as fitted. Scoring the rows the weights were fitted
        on only shows that the fit fits; this is the figure to compare with the members' IC
        on the same rows. An ensemble weighted elsewhere (stacking on out-of-fold training
        scores) gives its plain scores. Rows of the dates with a target, in `X`'s order."""
        check_panel(X, y)
        scores = self.member_scores(X)
        z = per_date_zscore(scores)
        dates = X.index.get_level_values("date")
        target_dates = _target_dates(y)
        if not self.weighs_on_valid:
            keep = np.asarray(dates.isin(target_dates))
            return pd.Series(self._combine(z[keep]), index=X.index[keep], name="score")
        parts = []
        for fold in blocked_folds(target_dates, n_folds, gap):
            twin = copy.copy(self)
            learn = np.asarray(dates.isin(fold.train))
            twin._fit_weights(scores[learn], y[learn])
            held = np.asarray(dates.isin(fold.held_out))
            parts.append(pd.Series(twin._combine(z[held]), index=X.index[held]))
        return pd.concat(parts).rename("score")

    def predict(self, X: pd.DataFrame) -> pd.Series:
        z = per_date_zscore(self.member_scores(X))
        return pd.Series(self._combine(z), index=X.index, name="score")

    def predict_frame(self, X: pd.DataFrame) -> pd.DataFrame:
        """`score`; `probability` that the name ends its date in the top quintile of the target
        (calibrated on validation; NaN if fitted without); `confidence` in [0, 1], the
        members' agreement on the name's rank that date."""
        scores = self.member_scores(X)
        score = self._combine(per_date_zscore(scores))
        cal: Calibrator | None = self.calibrator_
        return pd.DataFrame(
            {
                "score": score,
                "probability": cal.predict(score) if cal is not None else np.nan,
                "confidence": agreement(scores, self._row_weights(X.index)),
            },
            index=X.index,
        )

    def _finish(
        self, X: pd.DataFrame, valid: Validation | None, valid_scores: pd.DataFrame | None
    ) -> None:
        """Importance, curves, best iterations and the calibration, once `weights_` is set;
        `valid_scores` are the members' scores of `valid`'s rows (None without `valid`)."""
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        importance = {}
        for name, model in self.members_.items():
            raw = pd.Series(getattr(model, "feature_importance_", None), dtype=np.float64)
            raw = raw.reindex(X.columns).clip(lower=0.0).fillna(0.0)
            importance[name] = raw / raw.sum() if raw.sum() > 0 else raw
        self.member_importance_ = pd.DataFrame(importance, index=X.columns)
        self.member_importance_.index.name = "feature"
        combined = self.member_importance_ @ self.weights_.reindex(self.member_importance_.columns)
        total = combined.sum()
        self.feature_importance_ = (combined / total if total > 0 else combined).rename("weight")
        self.curves_ = {
            f"{name}/{curve}": values
            for name, model in self.members_.items()
            for curve, values in (getattr(model, "curves_", None) or {}).items()
        }
        self.member_best_iteration_ = {
            name: int(getattr(model, "best_iteration_", 0) or 0)
            for name, model in self.members_.items()
        }
        self.best_iteration_ = max(self.member_best_iteration_.values(), default=0)
        self.calibrator_ = None
        if valid is not None and valid_scores is not None:
            z = per_date_zscore(valid_scores)
            score = pd.Series(self._combine(z), index=valid[0].index, name="score")
            self.calibrator_ = calibrate(score, valid[1], self.share)


class WeightedAverage(_Ensemble):
    """The members' per-date z-scored scores averaged with weights from the validation rows:
    by default (`weighting="max_ic"`) the non-negative weights that maximise the combination's
    IC given the members' rank ICs and correlations (`max_ic_weights`); with "ic", weights
    proportional to each member's mean daily rank IC. Either way a member without a positive
    IC gets no say."""

    family: ClassVar[str] = "average"

    def __init__(
        self,
        members: dict[str, ZooModel],
        min_names: int = 10,
        share: float = TOP_SHARE,
        prefit: bool = False,
        weighting: str = "max_ic",
    ) -> None:
        self.members = members
        self.min_names = min_names
        self.share = share
        self.prefit = prefit
        self.weighting = weighting

    def fit(
        self, X: pd.DataFrame, y: pd.Series, valid: Validation | None = None
    ) -> WeightedAverage:
        """Fit the members on the training rows, then weigh them on `valid` (required)."""
        self._check(X, y)
        if self.weighting not in ("max_ic", "ic"):
            raise ValueError(f"weighting must be 'max_ic' or 'ic', got {self.weighting!r}")
        if valid is None:
            raise ValueError("WeightedAverage weighs members on validation rows: pass valid")
        self.members_ = _fit_members(self.members, X, y, valid, self.prefit)
        scores = self.member_scores(valid[0])
        self._fit_weights(scores, valid[1])
        self._finish(X, valid, scores)
        return self

    def _fit_weights(self, scores: pd.DataFrame, target: pd.Series) -> None:
        ic = _mean_ic(scores, target, self.min_names)
        self.daily_ic_ = ic
        self.member_ic_ = ic.mean().reindex(list(self.members)).rename("valid_rank_ic")
        if self.weighting == "max_ic":
            rows = target_rows(target)
            self.weights_ = max_ic_weights(per_date_zscore(scores[rows]), self.member_ic_)
        else:
            self.weights_ = positive_weights(self.member_ic_)

    def _combine(self, z: pd.DataFrame) -> np.ndarray:
        return z.to_numpy(np.float64) @ self.weights_.to_numpy(np.float64)

    def _row_weights(self, index: pd.Index) -> np.ndarray:
        """The confidence (members' agreement) counts every member with a positive validation
        IC in proportion to it: the IC-maximising weights may rest on one member, whose
        agreement with itself would say nothing."""
        return positive_weights(self.member_ic_).to_numpy(np.float64)


class Stacking(_Ensemble):
    """A meta-learner on the members' out-of-sample scores, z-scored per date, learning the
    target. Where those scores come from (`source`):

    - "oof" (classic stacking): `n_folds` blocked folds of the training dates in time order,
      each purged of `gap` dates (the label horizon) on both sides, give every training row a
      member score from copies that never saw its label; the members are then refitted on
      the whole training window (or taken as fitted, with `prefit`). It costs each member
      `n_folds` extra fits, and `valid` serves only early stopping and calibration.
    - "valid" (the hold-out form): the members fitted on train score the validation rows,
      whose labels they never learned from (their early stopping aside), and the meta-learner
      learns from those. No extra fit, so every member can take part, networks included.

    The meta-learner is "ridge" (non-negative coefficients by default, `positive`: betting
    against a member that ranks names well is an artefact of collinear members) or "lgbm" (a
    small LightGBM). With `rank_target` (the default) it learns the target's per-date rank
    (`cs_rank`), the order a rank IC judges: on the raw values a few extreme returns decide
    the fit, and members that happen to score them well win weight they do not earn on the
    order of the rest. Fitted: `meta_`, `coef_` (ridge), `weights_` (the positive part of the
    ridge coefficients, or the LightGBM meta's gains, normalised: the members' say in the
    combined importance and the confidence), and with "oof" `folds_` and `oof_`."""

    family: ClassVar[str] = "stacking"

    def __init__(
        self,
        members: dict[str, ZooModel],
        n_folds: int = 3,
        gap: int = LABEL_HORIZON,
        meta: str = "ridge",
        alpha: float = 1.0,
        min_names: int = 10,
        share: float = TOP_SHARE,
        seed: int = 0,
        source: str = "oof",
        positive: bool = True,
        rank_target: bool = True,
        prefit: bool = False,
    ) -> None:
        self.members = members
        self.n_folds = n_folds
        self.gap = gap
        self.meta = meta
        self.alpha = alpha
        self.min_names = min_names
        self.share = share
        self.seed = seed
        self.source = source
        self.positive = positive
        self.rank_target = rank_target
        self.prefit = prefit

    @property
    def weighs_on_valid(self) -> bool:
        return self.source == "valid"

    def fit(self, X: pd.DataFrame, y: pd.Series, valid: Validation | None = None) -> Stacking:
        """The members' out-of-sample scores (out-of-fold on train, or on `valid`), then the
        meta-learner on them; `valid` also serves early stopping and calibration."""
        self._check(X, y)
        if self.meta not in ("ridge", "lgbm"):
            raise ValueError(f"meta must be 'ridge' or 'lgbm', got {self.meta!r}")
        if self.source not in ("oof", "valid"):
            raise ValueError(f"source must be 'oof' or 'valid', got {self.source!r}")
        if self.source == "valid" and valid is None:
            raise ValueError("Stacking with source='valid' learns on validation rows: pass valid")
        if self.source == "oof":
            self.oof_, self.folds_ = out_of_fold(self.members, X, y, valid, self.n_folds, self.gap)
        self.members_ = _fit_members(self.members, X, y, valid, self.prefit)
        scores = self.member_scores(valid[0]) if valid is not None else None
        if self.source == "oof":
            meta_valid = (per_date_zscore(scores), valid[1]) if scores is not None else None
            self._fit_weights(self.oof_, y.reindex(self.oof_.index), meta_valid)
        else:
            self._fit_weights(scores, valid[1])
        if scores is not None:
            ic = _mean_ic(scores, valid[1], self.min_names)
        else:
            ic = _mean_ic(self.oof_, y.reindex(self.oof_.index), self.min_names)
        self.member_ic_ = ic.mean().reindex(list(self.members)).rename("rank_ic")
        self._finish(X, valid, scores)
        return self

    def _fit_weights(
        self, scores: pd.DataFrame, target: pd.Series, meta_valid: Validation | None = None
    ) -> None:
        """The meta-learner on `scores`; `meta_valid` (z-scored member scores and target of
        rows it does not learn from) early-stops the LightGBM meta."""
        rows = target_rows(target)
        z = per_date_zscore(scores)
        names = list(self.members)
        if self.rank_target:
            target = cs_rank(target)
        if self.meta == "ridge":
            from sklearn.linear_model import Ridge

            self.meta_ = Ridge(alpha=self.alpha, positive=self.positive).fit(
                z.to_numpy()[rows], target.to_numpy()[rows]
            )
            self.coef_ = pd.Series(self.meta_.coef_, index=names, name="coef")
            weights = self.coef_
        else:
            from quant_assets.models.trees import LGBMModel

            self.meta_ = LGBMModel(
                learning_rate=0.05,
                num_leaves=7,
                max_depth=3,
                min_data_in_leaf=100,
                colsample_bytree=1.0,
                num_boost_round=200,
                early_stopping_rounds=20,
                num_threads=1,  # a booster this small gains nothing from threads
                seed=self.seed,
            )
            self.meta_.fit(z[rows], target[rows], meta_valid)
            weights = self.meta_.feature_importance_
        self.weights_ = positive_weights(pd.Series(weights.to_numpy(), index=names))

    def _combine(self, z: pd.DataFrame) -> np.ndarray:
        if self.meta == "ridge":
            return self.meta_.predict(z.to_numpy(np.float64))
        return self.meta_.predict(z).to_numpy(np.float64)


def market_regime(bars: pd.DataFrame, window: int = 20) -> pd.DataFrame:
    """Per date, the equal-weight market's `volatility` (standard deviation of its daily
    return over the last `window` days) and `trend` (its return over the last `window`
    days), from long bars (date, symbol, close). Row t reads closes up to t only, so it is
    known at the close of t, when that day's features are; the first `window` rows are NaN."""
    closes = bars.pivot_table(index="date", columns="symbol", values="close").sort_index()
    returns = closes.pct_change(fill_method=None).mean(axis=1)
    level = (1.0 + returns.fillna(0.0)).cumprod()
    frame = pd.DataFrame(
        {
            "volatility": returns.rolling(window, min_periods=window).std(),
            "trend": level / level.shift(window) - 1.0,
        }
    )
    frame.index = pd.DatetimeIndex(frame.index, name="date")
    return frame


class RegimeEnsemble(_Ensemble):
    """Member weights by market regime: each column of the `regime` frame (one row per date,
    e.g. `market_regime`'s volatility and trend) is split high/low at its `quantile` over
    the training dates, which gives up to 2^columns states; each state weighs the members by
    their mean daily rank IC on that state's dates (`source`: "valid", the validation dates,
    or "oof", the training dates' out-of-fold scores and the validation dates), falling back
    to the weights over all those dates (`weights_`) when a state has fewer than
    `min_dates` or no member with a positive IC there. Fitted: `thresholds_`,
    `state_weights_` (state x member), `state_dates_`, `daily_ic_`.

    What is known when: the regime row of date t must come from data up to the close of t
    (as the features of t do); the thresholds are fitted on training dates only; the state
    weights on validation (and out-of-fold) scores whose labels are known before the test
    segment starts. A test date's weights depend on its own regime row and nothing later.
    A date absent from the frame, or with a NaN regime value, uses the overall weights.
    """

    family: ClassVar[str] = "regime"

    def __init__(
        self,
        members: dict[str, ZooModel],
        regime: pd.DataFrame | None = None,
        quantile: float = 0.5,
        min_dates: int = 20,
        source: str = "valid",
        n_folds: int = 3,
        gap: int = LABEL_HORIZON,
        min_names: int = 10,
        share: float = TOP_SHARE,
        prefit: bool = False,
    ) -> None:
        self.members = members
        self.regime = regime
        self.prefit = prefit
        self.quantile = quantile
        self.min_dates = min_dates
        self.source = source
        self.n_folds = n_folds
        self.gap = gap
        self.min_names = min_names
        self.share = share

    def set_regime(self, frame: pd.DataFrame) -> RegimeEnsemble:
        """Use `frame` (dates x regime features) from now on: before `fit`, or after it to
        extend the dates for prediction (the fitted thresholds and weights stay)."""
        self.regime = frame
        return self

    def _regime_frame(self) -> pd.DataFrame:
        if self.regime is None:
            raise ValueError(
                "RegimeEnsemble needs a regime frame (dates x features known at each date): "
                "pass regime= or call set_regime(market_regime(bars))"
            )
        frame = self.regime.astype(np.float64)
        frame.index = pd.DatetimeIndex(frame.index, name="date")
        return frame

    def states(self, dates: pd.Index) -> pd.Series:
        """The regime state of each date, e.g. "volatility=high,trend=low" (NaN if unknown)."""
        frame = self._regime_frame().reindex(pd.DatetimeIndex(dates))[self.thresholds_.index]
        parts = [
            np.where(frame[c].to_numpy() > t, f"{c}=high", f"{c}=low").astype(object)
            for c, t in self.thresholds_.items()
        ]
        labels = pd.Series([",".join(p) for p in zip(*parts, strict=True)], index=frame.index)
        return labels.where(frame.notna().all(axis=1).to_numpy()).rename("state")

    def fit(self, X: pd.DataFrame, y: pd.Series, valid: Validation | None = None) -> RegimeEnsemble:
        """Thresholds on the training dates, members on train, state weights on `valid` (and
        the out-of-fold scores of train with `source="oof"`)."""
        self._check(X, y)
        if self.source not in ("valid", "oof"):
            raise ValueError(f"source must be 'valid' or 'oof', got {self.source!r}")
        if valid is None:
            raise ValueError("RegimeEnsemble weighs members on validation rows: pass valid")
        frame = self._regime_frame()
        if frame.shape[1] == 0:
            raise ValueError("the regime frame has no column")
        train_rows = frame.reindex(_target_dates(y))
        self.thresholds_ = train_rows.quantile(self.quantile).rename("threshold")
        if self.thresholds_.isna().any():
            missing = list(self.thresholds_.index[self.thresholds_.isna()])
            raise ValueError(f"the regime frame has no value on the training dates for {missing}")
        self.members_ = _fit_members(self.members, X, y, valid, self.prefit)
        self.oof_ic_ = None
        if self.source == "oof":
            oof, self.folds_ = out_of_fold(self.members, X, y, valid, self.n_folds, self.gap)
            self.oof_ic_ = _mean_ic(oof, y.reindex(oof.index), self.min_names)
        scores = self.member_scores(valid[0])
        self._fit_weights(scores, valid[1])
        self._finish(X, valid, scores)
        return self

    def _fit_weights(self, scores: pd.DataFrame, target: pd.Series) -> None:
        """Overall and per-state weights from the daily ICs of the validation rows (and the
        out-of-fold training dates' with `source="oof"`)."""
        ic = _mean_ic(scores, target, self.min_names)
        if self.oof_ic_ is not None:
            ic = pd.concat([self.oof_ic_, ic])
        names = list(self.members)
        ic = ic.reindex(columns=names)
        self.daily_ic_ = ic
        self.member_ic_ = ic.mean().rename("rank_ic")
        # on validation rows, weights that maximise the combination's IC (`max_ic_weights`)
        # over the state's dates; out-of-fold scores give no such rows: IC-proportional
        z = None
        if self.source == "valid":
            z = per_date_zscore(scores[target_rows(target)])
        weigh = (lambda own, dates: max_ic_weights(z[z.index.get_level_values("date").isin(dates)],
                                                   own)) if z is not None else (
            lambda own, dates: positive_weights(own))  # fmt: skip
        self.weights_ = weigh(self.member_ic_, ic.index)
        state = self.states(ic.index)
        rows, counts = {}, {}
        for label in sorted(state.dropna().unique()):
            on = ic[state.to_numpy() == label]
            counts[label] = len(on)
            own = on.mean()
            enough = len(on) >= self.min_dates and bool((own > 0).any())
            rows[label] = weigh(own, on.index) if enough else self.weights_
        self.state_dates_ = pd.Series(counts, name="dates", dtype="int64")
        self.state_weights_ = pd.DataFrame(rows, index=names).T
        self.state_weights_.index.name = "state"

    def _row_weights(self, index: pd.Index) -> np.ndarray:
        dates = pd.DatetimeIndex(index.get_level_values("date"))
        unique = dates.unique()
        state = self.states(unique)
        by_date = self.state_weights_.reindex(state.to_numpy())
        by_date = by_date.fillna(self.weights_).set_axis(unique)
        # a state never seen in the fitted dates has no row: it gets the overall weights too
        return by_date.reindex(dates).to_numpy(np.float64)

    def _combine(self, z: pd.DataFrame) -> np.ndarray:
        return (z.to_numpy(np.float64) * self._row_weights(z.index)).sum(axis=1)
