"""Back-ends: one scoring function from feature rows to scores, trained on one or more queries.

A learner sees plain arrays. Which rows form a query, which features a situation gets and how
labels become relevance grades is decided by the formulation (`ltr.models.formulation`).
Every learner saves itself in its native, inspectable format (LightGBM text, XGBoost JSON,
ridge coefficients as JSON) -- never pickle.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ltr.fileio import write_json_atomic, write_text_atomic
from ltr.models.objectives import OBJECTIVE_PARAMS, PearsonObjective, split_objective_params


def relevance_grades(labels: np.ndarray, n_grades: int) -> np.ndarray:
    """Integer grades 0..n_grades-1 from continuous labels by quantile bins.

    NDCG-type objectives need graded relevance; quantiles make the grades balanced whatever the
    label scale. Ties stay in one bin.
    """
    labels = np.asarray(labels, dtype=float)
    if n_grades < 2:
        raise ValueError("n_grades must be >= 2")
    edges = np.quantile(labels, np.linspace(0, 1, n_grades + 1)[1:-1])
    return np.searchsorted(edges, labels, side="right").astype(np.int32)


def group_sizes(query_ids: np.ndarray) -> np.ndarray:
    """Sizes of consecutive runs of equal query ids (rows must be sorted by query)."""
    query_ids = np.asarray(query_ids)
    if query_ids.size == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, query_ids[1:] != query_ids[:-1]])
    return np.diff(np.r_[starts, query_ids.size])


class Learner(ABC):
    """Hyper-parameters in `__init__`, learned state (trailing underscore) set by `fit`."""

    #: Registry key, e.g. "lgbm-lambdarank".
    key: ClassVar[str]
    #: Whether `fit` needs integer relevance grades (NDCG-type objectives).
    needs_grades: ClassVar[bool] = False
    #: Whether the objective uses query groups at all (ranking) or ignores them (regression).
    uses_queries: ClassVar[bool] = False
    #: File suffix of the native model file.
    suffix: ClassVar[str] = ".json"

    def __init__(self, params: dict[str, Any] | None = None, seed: int = 0, threads: int = 1):
        self.params = dict(params or {})
        self.seed = seed
        self.threads = threads

    @abstractmethod
    def fit(
        self, X: np.ndarray, y: np.ndarray, query_ids: np.ndarray, blocks: np.ndarray | None = None
    ) -> Learner:
        """Train on rows `X` with targets `y` (grades if `needs_grades`), sorted by `query_ids`.

        `blocks` gives each column a block id (-1 = a block of its own): the columns of one
        per-concept family, for learners that scale features (ridge).
        """

    @classmethod
    def fit_targets(
        cls, learners: list[Learner], X: np.ndarray, Y: np.ndarray, blocks: np.ndarray | None
    ) -> None:
        """Fit `learners[j]` on column j of `Y`, all on the same rows and without queries.

        One by one here; a back-end that can share work between targets (ridge) overrides it.
        """
        no_queries = np.zeros(len(Y), dtype=np.int64)
        for j, learner in enumerate(learners):
            learner.fit(X, Y[:, j], no_queries, blocks)

    @abstractmethod
    def predict(self, X: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def save(self, path: Path) -> None:
        """Write the native model file to `path` (atomically)."""

    @abstractmethod
    def load(self, path: Path) -> Learner: ...


class LightGBMLearner(Learner):
    """LightGBM through its native `train` API (native parameter names, text model files)."""

    suffix = ".txt"
    objective: ClassVar[str]
    defaults: ClassVar[dict[str, Any]] = {
        "learning_rate": 0.03,
        "num_leaves": 7,
        "max_depth": 3,
        "min_data_in_leaf": 20,
        "feature_fraction": 0.5,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "lambda_l2": 1.0,
        "num_boost_round": 300,
    }

    def _train_params(self) -> tuple[dict[str, Any], int]:
        params = {**self.defaults, **self.params}
        rounds = int(params.pop("num_boost_round"))
        params.update(
            objective=self.objective,
            seed=self.seed,
            num_threads=self.threads,
            deterministic=True,
            force_col_wise=True,
            verbosity=-1,
        )
        return params, rounds

    def fit(
        self, X: np.ndarray, y: np.ndarray, query_ids: np.ndarray, blocks: np.ndarray | None = None
    ) -> LightGBMLearner:
        import lightgbm as lgb

        params, rounds = self._train_params()
        group = group_sizes(query_ids) if self.uses_queries else None
        data = lgb.Dataset(X, label=y, group=group, params={"verbosity": -1})
        self.booster_ = lgb.train(params, data, num_boost_round=rounds)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.booster_.predict(X, num_threads=self.threads)

    def save(self, path: Path) -> None:
        write_text_atomic(path, self.booster_.model_to_string())

    def load(self, path: Path) -> LightGBMLearner:
        import lightgbm as lgb

        self.booster_ = lgb.Booster(model_file=str(path))
        return self


class LightGBMLambdaRank(LightGBMLearner):
    """LambdaMART: gradient-boosted trees with the lambdarank (NDCG) objective."""

    key = "lgbm-lambdarank"
    objective = "lambdarank"
    needs_grades = True
    uses_queries = True
    # Pearson is about the whole order, so every pair counts: truncate far below nothing.
    defaults = {**LightGBMLearner.defaults, "lambdarank_truncation_level": 10_000}


class LightGBMRegression(LightGBMLearner):
    key = "lgbm-regression"
    objective = "regression"


class LightGBMPearson(LightGBMLearner):
    """LambdaMART-style boosting of the per-query Pearson correlation (`ltr.models.objectives`).

    ``pearson_eps`` in `params` configures the objective; the rest are LightGBM's own
    parameters.
    """

    key = "lgbm-pearson"
    objective = "custom"
    uses_queries = True
    # Leaves of 10 users instead of 20: +0.008 / +0.014 mean Pearson in seed-0 CV on aware2023 /
    # lervup2021 (40 lost 0.013 / 0.017); learning rate, rounds, eps and lambda_l2 were at
    # their best already (README, "The Pearson objective").
    defaults = {**LightGBMLearner.defaults, "min_data_in_leaf": 10, **OBJECTIVE_PARAMS}

    def fit(
        self, X: np.ndarray, y: np.ndarray, query_ids: np.ndarray, blocks: np.ndarray | None = None
    ) -> LightGBMPearson:
        import lightgbm as lgb

        params, rounds = self._train_params()
        options, params = split_objective_params(params)
        objective = PearsonObjective(y, query_ids, **options)
        params["objective"] = objective.lightgbm  # LightGBM 4: a callable objective
        data = lgb.Dataset(X, label=y, params={"verbosity": -1})
        self.booster_ = lgb.train(params, data, num_boost_round=rounds)
        return self


class XGBoostLearner(Learner):
    """XGBoost through its native `train` API (native parameter names, JSON model files)."""

    suffix = ".json"
    objective: ClassVar[str]
    defaults: ClassVar[dict[str, Any]] = {
        "eta": 0.03,
        "max_depth": 3,
        "min_child_weight": 5.0,
        "subsample": 0.8,
        "colsample_bytree": 0.5,
        "lambda": 1.0,
        "num_boost_round": 300,
    }

    def _train_params(self) -> tuple[dict[str, Any], int]:
        params = {**self.defaults, **self.params}
        rounds = int(params.pop("num_boost_round"))
        params.update(
            objective=self.objective, seed=self.seed, nthread=self.threads, tree_method="hist"
        )
        return params, rounds

    def fit(
        self, X: np.ndarray, y: np.ndarray, query_ids: np.ndarray, blocks: np.ndarray | None = None
    ) -> XGBoostLearner:
        import xgboost as xgb

        params, rounds = self._train_params()
        data = xgb.DMatrix(X, label=y, nthread=self.threads)
        if self.uses_queries:
            data.set_group(group_sizes(query_ids))
        self.booster_ = xgb.train(params, data, num_boost_round=rounds)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        import xgboost as xgb

        return self.booster_.predict(xgb.DMatrix(X, nthread=self.threads))

    def save(self, path: Path) -> None:
        write_text_atomic(path, self.booster_.save_raw(raw_format="json").decode("utf-8"))

    def load(self, path: Path) -> XGBoostLearner:
        import xgboost as xgb

        self.booster_ = xgb.Booster(params={"nthread": self.threads}, model_file=str(path))
        return self


#: Ranking objectives have tiny hessians: a regression-sized min_child_weight stops every split
#: (the model then predicts a constant). Pairs are sampled per document ("mean" method).
XGBOOST_RANKING_DEFAULTS: dict[str, Any] = {
    **XGBoostLearner.defaults,
    "min_child_weight": 0.1,
    "lambdarank_pair_method": "mean",
    "lambdarank_num_pair_per_sample": 8,
}


class XGBoostPairwise(XGBoostLearner):
    key = "xgb-pairwise"
    objective = "rank:pairwise"
    uses_queries = True
    defaults = XGBOOST_RANKING_DEFAULTS


class XGBoostNDCG(XGBoostLearner):
    key = "xgb-ndcg"
    objective = "rank:ndcg"
    needs_grades = True
    uses_queries = True
    defaults = XGBOOST_RANKING_DEFAULTS


class XGBoostRegression(XGBoostLearner):
    key = "xgb-regression"
    objective = "reg:squarederror"


class XGBoostPearson(XGBoostLearner):
    """XGBoost boosting the per-query Pearson correlation (`ltr.models.objectives`, ``obj=``).

    The objective's Hessians are 1.15 / D^2 (D the score spread), below regression's 1 once
    the scores spread out, hence a smaller ``min_child_weight`` than regression's (0.1, 1 and 5
    were level in CV; the other defaults too were at their best already).
    """

    key = "xgb-pearson"
    # Only names the identity link for prediction; the gradients come from `obj=`.
    objective = "reg:squarederror"
    uses_queries = True
    defaults = {**XGBoostLearner.defaults, "min_child_weight": 1.0, **OBJECTIVE_PARAMS}

    def fit(
        self, X: np.ndarray, y: np.ndarray, query_ids: np.ndarray, blocks: np.ndarray | None = None
    ) -> XGBoostPearson:
        import xgboost as xgb

        params, rounds = self._train_params()
        options, params = split_objective_params(params)
        objective = PearsonObjective(y, query_ids, **options)
        params["disable_default_eval_metric"] = 1
        data = xgb.DMatrix(X, label=y, nthread=self.threads)
        self.booster_ = xgb.train(params, data, num_boost_round=rounds, obj=objective.xgboost)
        return self


def block_scales(std: np.ndarray, blocks: np.ndarray | None) -> np.ndarray:
    """Column scales: each column's own spread, except that the columns of one block share the
    mean spread of the block.

    Per-column standardisation blows rare concepts up to the weight of common ones, and ridge
    then spends its budget on noise; one common scale per concept block keeps the block's
    columns in proportion (+0.03 CV Pearson on both real data sets).
    """
    scale = std.copy()
    if blocks is not None:
        for block in np.unique(blocks[blocks >= 0]):
            members = blocks == block
            spread = std[members]
            spread = spread[spread > 0]
            scale[members] = spread.mean() if spread.size else 1.0
    return np.where(scale > 0, scale, 1.0)


class RidgeLearner(Learner):
    """Ridge regression on centred, (block-)scaled features: the linear baseline.

    ``alpha="auto"`` picks the penalty per model by efficient leave-one-out (scikit-learn's
    RidgeCV) over `ALPHAS`, so the model needs no tuning to be sound.
    """

    key = "ridge"
    defaults: ClassVar[dict[str, Any]] = {"alpha": "auto", "block_scale": True}
    ALPHAS: ClassVar[np.ndarray] = np.logspace(-1, 4, 16)

    def fit(
        self, X: np.ndarray, y: np.ndarray, query_ids: np.ndarray, blocks: np.ndarray | None = None
    ) -> RidgeLearner:
        self.fit_targets([self], X, y[:, None], blocks)
        return self

    @classmethod
    def fit_targets(
        cls, learners: list[Learner], X: np.ndarray, Y: np.ndarray, blocks: np.ndarray | None
    ) -> None:
        """Fit every target at once: the scaling and RidgeCV's decomposition of the design are
        shared (the four situations of a per-situation model have the same rows), and
        ``alpha_per_target`` still picks each target's own penalty."""
        first = learners[0]
        if any(type(m) is not cls or m.params != first.params for m in learners):
            super().fit_targets(learners, X, Y, blocks)
            return
        # `threads` bounds BLAS too: once LightGBM/XGBoost have run (OpenMP), OpenBLAS's own
        # threads contend with them on a small machine and ridge got 2-5x slower in CV
        from sklearn.linear_model import Ridge, RidgeCV
        from threadpoolctl import threadpool_limits

        params = {**cls.defaults, **first.params}
        mean = X.mean(axis=0)
        scale = block_scales(X.std(axis=0), blocks if params["block_scale"] else None)
        with threadpool_limits(limits=first.threads, user_api="blas"):
            Z = (X - mean) / scale
            if params["alpha"] == "auto":
                model = RidgeCV(alphas=cls.ALPHAS, alpha_per_target=True).fit(Z, Y)
                alphas = np.broadcast_to(np.asarray(model.alpha_, dtype=float), (Y.shape[1],))
            else:
                model = Ridge(alpha=float(params["alpha"])).fit(Z, Y)
                alphas = np.full(Y.shape[1], float(params["alpha"]))
        coef = np.asarray(model.coef_, dtype=float).reshape(Y.shape[1], -1)
        intercept = np.broadcast_to(np.asarray(model.intercept_, dtype=float), (Y.shape[1],))
        for j, learner in enumerate(learners):
            learner.mean_, learner.scale_ = mean, scale
            learner.alpha_ = float(alphas[j])
            learner.coef_ = coef[j].copy()
            learner.intercept_ = float(intercept[j])

    def predict(self, X: np.ndarray) -> np.ndarray:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=self.threads, user_api="blas"):
            return ((X - self.mean_) / self.scale_) @ self.coef_ + self.intercept_

    def save(self, path: Path) -> None:
        write_json_atomic(
            path,
            {
                "alpha": self.alpha_,
                "mean": self.mean_.tolist(),
                "scale": self.scale_.tolist(),
                "coef": self.coef_.tolist(),
                "intercept": self.intercept_,
            },
        )

    def load(self, path: Path) -> RidgeLearner:
        state = json.loads(Path(path).read_text(encoding="utf-8"))
        self.alpha_ = float(state["alpha"])
        self.mean_ = np.asarray(state["mean"], dtype=float)
        self.scale_ = np.asarray(state["scale"], dtype=float)
        self.coef_ = np.asarray(state["coef"], dtype=float)
        self.intercept_ = float(state["intercept"])
        return self


LEARNERS: dict[str, type[Learner]] = {
    cls.key: cls
    for cls in (
        LightGBMLambdaRank,
        LightGBMRegression,
        XGBoostPairwise,
        XGBoostNDCG,
        XGBoostRegression,
        LightGBMPearson,
        XGBoostPearson,
        RidgeLearner,
    )
}
