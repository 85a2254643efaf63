"""The tree families of the zoo: LightGBM, XGBoost and a scikit-learn Random Forest.

Parameters use each library's own names, so a researcher's settings carry over unchanged;
the defaults learn on daily panels of a few hundred stocks (small learning rate, large leaves,
half the features per tree: a daily cross-section is mostly noise) rather than Qlib's
CSI300-tuned ones, which stopped at the first round on the simulated market.
Boosters early-stop on the validation rows' l2 (as Qlib's LGBModel does); the forest has
no rounds to stop and uses validation for nothing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from quant_assets.models.base import Validation, ZooModel, check_panel, target_rows


def _xy(X: pd.DataFrame, y: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The rows with a target, as float32 features and float64 target."""
    check_panel(X, y)
    rows = target_rows(y)
    values, target = X.to_numpy(np.float32), y.to_numpy(np.float64)
    if rows.all():  # the usual case: no second copy of the panel
        return values, target
    return values[rows], target[rows]


def learning_curves(evals_result: dict[str, dict[str, list[float]]]) -> dict[str, list[float]]:
    """A booster's record of evaluations ({set: {metric: values}}) flattened to
    `{set}_{metric}` (e.g. `train_l2`, `valid_l2`): one value per boosting round."""
    return {
        f"{dataset}_{metric}": [float(v) for v in values]
        for dataset, by_metric in evals_result.items()
        for metric, values in by_metric.items()
    }


def feature_importance(booster) -> pd.DataFrame:
    """Splits and total gain per feature of a LightGBM booster, largest gain first: splits
    say how often a feature is used, gain how much it improved the fit."""
    table = pd.DataFrame(
        {
            "splits": booster.feature_importance("split").astype(int),
            "gain": booster.feature_importance("gain"),
        },
        index=pd.Index(booster.feature_name(), name="feature"),
    )
    return table.sort_values(["gain", "splits"], ascending=False)


# The families' smallest-leaf parameters, which default to `leaf_size(None, rows)`.
LEAF_SIZES = ("min_data_in_leaf", "min_child_weight", "min_samples_leaf")


def leaf_size(value: float | None, rows: int) -> float:
    """The smallest leaf: `value` when given, else one row in 250 (at least 20). A daily
    cross-section is mostly noise, so leaves must average many names; a fixed size fit for
    a decade of CSI300 (500 of 120,000 rows) would forbid every split on a small panel."""
    return value if value is not None else max(20, rows // 250)


def _score(X: pd.DataFrame, values: np.ndarray) -> pd.Series:
    return pd.Series(np.asarray(values, dtype=np.float64), index=X.index, name="score")


class LGBMModel(ZooModel):
    """Gradient-boosted trees with LightGBM (`lgb.train` on float32 arrays)."""

    family = "lgbm"

    def __init__(
        self,
        learning_rate: float = 0.02,
        num_leaves: int = 31,
        max_depth: int = 8,
        min_data_in_leaf: int | None = None,
        colsample_bytree: float = 0.5,
        subsample: float = 0.8,
        lambda_l1: float = 1.0,
        lambda_l2: float = 10.0,
        num_boost_round: int = 1000,
        early_stopping_rounds: int = 50,
        num_threads: int = 2,
        seed: int = 0,
    ) -> None:
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.max_depth = max_depth
        self.min_data_in_leaf = min_data_in_leaf
        self.colsample_bytree = colsample_bytree
        self.subsample = subsample
        self.lambda_l1 = lambda_l1
        self.lambda_l2 = lambda_l2
        self.num_boost_round = num_boost_round
        self.early_stopping_rounds = early_stopping_rounds
        self.num_threads = num_threads
        self.seed = seed

    def booster_params(self, rows: int) -> dict[str, object]:
        """LightGBM's parameter dict for `rows` training rows (bagging needs a frequency to
        take effect)."""
        return {
            "objective": "regression",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "max_depth": self.max_depth,
            "min_data_in_leaf": int(leaf_size(self.min_data_in_leaf, rows)),
            "colsample_bytree": self.colsample_bytree,
            "subsample": self.subsample,
            "subsample_freq": 1 if self.subsample < 1 else 0,
            "lambda_l1": self.lambda_l1,
            "lambda_l2": self.lambda_l2,
            "num_threads": self.num_threads,
            "seed": self.seed,
            "deterministic": True,
            "verbosity": -1,
        }

    def fit(self, X: pd.DataFrame, y: pd.Series, valid: Validation | None = None) -> LGBMModel:
        import lightgbm as lgb

        x, t = _xy(X, y)
        train = lgb.Dataset(x, t, feature_name=[str(c) for c in X.columns], free_raw_data=True)
        sets, names, callbacks = [train], ["train"], []
        evals: dict[str, dict[str, list[float]]] = {}
        if valid is not None:
            xv, tv = _xy(*valid)
            sets.append(lgb.Dataset(xv, tv, reference=train))
            names.append("valid")
            callbacks.append(lgb.early_stopping(self.early_stopping_rounds, verbose=False))
        callbacks.append(lgb.record_evaluation(evals))
        booster = lgb.train(
            self.booster_params(len(t)),
            train,
            num_boost_round=self.num_boost_round,
            valid_sets=sets,
            valid_names=names,
            callbacks=callbacks,
        )
        self.booster_ = booster
        self.best_iteration_ = int(booster.best_iteration or booster.current_iteration())
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.feature_importance_ = pd.Series(
            booster.feature_importance("gain", iteration=self.best_iteration_),
            index=X.columns,
            name="gain",
        )
        self.curves_ = learning_curves(evals)
        return self

    def predict(self, X: pd.DataFrame) -> pd.Series:
        values = self.booster_.predict(
            X.to_numpy(np.float32), num_iteration=self.best_iteration_, num_threads=self.num_threads
        )
        return _score(X, values)


class XGBModel(ZooModel):
    """Gradient-boosted trees with XGBoost's histogram method."""

    family = "xgb"

    def __init__(
        self,
        learning_rate: float = 0.02,
        max_depth: int = 6,
        min_child_weight: float | None = None,
        colsample_bytree: float = 0.5,
        subsample: float = 0.8,
        reg_alpha: float = 1.0,
        reg_lambda: float = 10.0,
        num_boost_round: int = 1000,
        early_stopping_rounds: int = 50,
        nthread: int = 2,
        seed: int = 0,
    ) -> None:
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_child_weight = min_child_weight
        self.colsample_bytree = colsample_bytree
        self.subsample = subsample
        self.reg_alpha = reg_alpha
        self.reg_lambda = reg_lambda
        self.num_boost_round = num_boost_round
        self.early_stopping_rounds = early_stopping_rounds
        self.nthread = nthread
        self.seed = seed

    def fit(self, X: pd.DataFrame, y: pd.Series, valid: Validation | None = None) -> XGBModel:
        import xgboost as xgb

        names = [str(c) for c in X.columns]
        x, t = _xy(X, y)
        train = xgb.DMatrix(x, t, feature_names=names, nthread=self.nthread)
        evals = [(train, "train")]
        if valid is not None:
            xv, tv = _xy(*valid)
            evals.append((xgb.DMatrix(xv, tv, feature_names=names, nthread=self.nthread), "valid"))
        record: dict[str, dict[str, list[float]]] = {}
        booster = xgb.train(
            {
                "objective": "reg:squarederror",
                "tree_method": "hist",
                "eta": self.learning_rate,
                "max_depth": self.max_depth,
                # the hessian of a squared error is 1 a row: a weight is a row count
                "min_child_weight": float(leaf_size(self.min_child_weight, len(t))),
                "colsample_bytree": self.colsample_bytree,
                "subsample": self.subsample,
                "alpha": self.reg_alpha,
                "lambda": self.reg_lambda,
                "nthread": self.nthread,
                "seed": self.seed,
                "eval_metric": "rmse",
            },
            train,
            num_boost_round=self.num_boost_round,
            evals=evals,
            evals_result=record,
            early_stopping_rounds=self.early_stopping_rounds if valid is not None else None,
            verbose_eval=False,
        )
        self.booster_ = booster
        best = getattr(booster, "best_iteration", None)
        self.best_iteration_ = int(best + 1) if best is not None else self.num_boost_round
        gain = booster.get_score(importance_type="total_gain")
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.feature_importance_ = pd.Series(
            [float(gain.get(n, 0.0)) for n in names], index=X.columns, name="gain"
        )
        self.curves_ = learning_curves(record)
        return self

    def predict(self, X: pd.DataFrame) -> pd.Series:
        import xgboost as xgb

        matrix = xgb.DMatrix(
            X.to_numpy(np.float32), feature_names=list(map(str, X.columns)), nthread=self.nthread
        )
        return _score(X, self.booster_.predict(matrix, iteration_range=(0, self.best_iteration_)))


class RFModel(ZooModel):
    """scikit-learn's Random Forest (missing values go down the learned side of a split);
    each tree sees a subsample of rows, which keeps a 2-core fit to seconds."""

    family = "rf"

    def __init__(
        self,
        n_estimators: int = 200,
        max_depth: int | None = 10,
        min_samples_leaf: int | None = None,
        max_features: float = 0.3,
        max_samples: float | None = 0.3,
        n_jobs: int = 2,
        seed: int = 0,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.max_samples = max_samples
        self.n_jobs = n_jobs
        self.seed = seed

    def fit(self, X: pd.DataFrame, y: pd.Series, valid: Validation | None = None) -> RFModel:
        from sklearn.ensemble import RandomForestRegressor

        x, t = _xy(X, y)
        forest = RandomForestRegressor(
            n_estimators=self.n_estimators,
            max_depth=self.max_depth,
            min_samples_leaf=int(leaf_size(self.min_samples_leaf, len(t))),
            max_features=self.max_features,
            max_samples=self.max_samples,
            n_jobs=self.n_jobs,
            random_state=self.seed,
        )
        forest.fit(x, t)
        # threads add the trees' predictions in the order they finish: one thread keeps the
        # sum's order, so a seed gives the same scores to the last bit
        forest.set_params(n_jobs=1)
        self.forest_ = forest
        self.best_iteration_ = self.n_estimators
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        # impurity decrease summed over trees: the forest's analogue of a booster's gain
        self.feature_importance_ = pd.Series(
            forest.feature_importances_, index=X.columns, name="gain"
        )
        self.curves_ = {}
        return self

    def predict(self, X: pd.DataFrame) -> pd.Series:
        return _score(X, self.forest_.predict(X.to_numpy(np.float32)))
