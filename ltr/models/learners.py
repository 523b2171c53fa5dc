"""Back-ends: one scoring function from feature rows to scores, trained on one or more queries.

A learner sees plain arrays. Which rows form a query, which features a situation gets and how
labels become relevance grades is decided by the formulation (`ltr.models.formulation`).
Every learner saves itself in its native, inspectable format (LightGBM text, XGBoost JSON,
ridge coefficients as JSON) -- never pickle.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import sys
import tempfile
import threading
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from numbers import Integral, Real
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ltr.errors import LtrError, ModelError
from ltr.fileio import write_json_atomic, write_text_atomic
from ltr.models.objectives import (
    OBJECTIVE_PARAMS,
    PearsonObjective,
    check_eps,
    split_objective_params,
)
from ltr.models.params import plain

#: Why a parameter ltr sets itself cannot come from a spec (`Learner.fixed_params`).
SEED_HINT = "ltr sets it from the spec's seed (--seed)"
THREADS_HINT = "ltr sets it from --threads"
OWN_HINT = "ltr sets it itself"


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
    #: Parameters the toolkit reads itself instead of passing them to the back-end.
    own_params: ClassVar[frozenset[str]] = frozenset()
    #: Parameter values used where the spec gives none (every back-end sets its own).
    defaults: ClassVar[dict[str, Any]]

    def __init__(self, params: Mapping[str, Any] | None = None, seed: int = 0, threads: int = 1):
        self.params: dict[str, Any] = plain(params or {})
        self.seed = seed
        self.threads = threads

    @classmethod
    def known_params(cls) -> set[str]:
        """Parameter names this back-end accepts (for suggestions when one is misspelt)."""
        return set(cls.own_params)

    @classmethod
    def unknown_params(cls, params: Mapping[str, Any]) -> list[str]:
        """The names in `params` this back-end would ignore: a typo must not silently train
        something else than asked."""
        known = cls.known_params()
        return [name for name in params if name not in known]

    @classmethod
    def fixed_params(cls) -> dict[str, str]:
        """Names the back-end knows but ltr sets itself, with what to do instead: a value in a
        spec would be replaced silently (and still be recorded in reports)."""
        return {}

    @classmethod
    def check_params(cls, params: Mapping[str, Any]) -> None:
        """Refuse, when the spec is built, what ltr can judge without the back-end: names it
        sets itself (`fixed_params`) and the values it reads itself. Values only the back-end
        reads are checked by the back-end when fitting (`backend_refusal` words its error).

        Raises:
            LtrError: ``"<learner>: ..."``, naming the parameter.
        """
        fixed = cls.fixed_params()
        for name in params:
            if name in fixed:
                raise LtrError(f"{cls.key}: parameter {name!r} cannot be set: {fixed[name]}")
        if "pearson_eps" in cls.own_params and "pearson_eps" in params:
            try:
                check_eps(params["pearson_eps"])
            except LtrError as error:
                raise LtrError(f"{cls.key}: {error}") from None

    @classmethod
    def _objective_hint(cls, family: type[Learner], value: object) -> str:
        """Why ``objective`` cannot be set, and which learner of the same back-end to use."""
        label = getattr(cls, "objective_label", None) or getattr(cls, "objective", "")
        others = {
            other.key: getattr(other, "objective_label", None) or getattr(other, "objective", "")
            for other in LEARNERS.values()
            if issubclass(other, family) and other is not cls
        }
        text = f"its objective is fixed ({label})"
        match = [key for key, objective in others.items() if objective == value]
        if match:
            return f"{text}; use the learner {match[0]} for {value}"
        listed = ", ".join(f"{key} ({objective})" for key, objective in others.items())
        return f"{text}; for another objective choose another learner: {listed}"

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

    @classmethod
    def predict_targets(cls, learners: list[Learner], X: np.ndarray) -> np.ndarray:
        """Column j: `learners[j]`'s scores of the rows of `X` (the fitted `fit_targets`).

        One by one here; a back-end whose learners share work (one forest's traversal) overrides
        it.
        """
        return np.column_stack([learner.predict(X) for learner in learners])

    @abstractmethod
    def predict(self, X: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def save(self, path: Path) -> None:
        """Write the native model file to `path` (atomically)."""

    @abstractmethod
    def load(self, path: Path) -> Learner: ...


def _whole_count(cls: type[Learner], name: str, value: object) -> int:
    """A count ltr reads itself (boosting rounds): an integer >= 1, else an LtrError."""
    if isinstance(value, bool) or not isinstance(value, Integral) or value < 1:
        raise LtrError(f"{cls.key}: {name} must be an integer >= 1, not {value!r}")
    return int(value)


def _flag(cls: type[Learner], name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise LtrError(f"{cls.key}: {name} must be true or false, not {value!r}")
    return value


#: Held while one thread holds file descriptor 2 (`_native_fatal_lines_dropped`).
_HOLDING_STDERR = threading.Lock()


@contextlib.contextmanager
def _native_fatal_lines_dropped() -> Iterator[None]:
    """Hold what LightGBM's C++ side writes to the process's stderr while it runs.

    On a bad parameter LightGBM writes ``[LightGBM] [Fatal] <reason>`` straight to file
    descriptor 2 and then raises LightGBMError with the same reason -- whatever its
    ``verbosity``, and past any logger `lightgbm.register_logger` installs. The error becomes one
    line (`backend_refusal`), so that raw line is dropped; anything else written meanwhile is
    passed on when LightGBM returns. One thread at a time: another one fitting meanwhile leaves
    descriptor 2 alone (and its Fatal line, if any, is dropped only while the first holds it).
    """
    if not _HOLDING_STDERR.acquire(blocking=False):
        yield
        return
    try:
        with contextlib.suppress(ValueError, OSError):
            sys.stderr.flush()
        try:
            saved = os.dup(2)
        except OSError:  # no descriptor 2 (a detached process): nothing to hold
            saved = -1
        if saved < 0:
            yield
            return
        with tempfile.TemporaryFile() as held:
            os.dup2(held.fileno(), 2)
            try:
                yield
            finally:
                with contextlib.suppress(ValueError, OSError):
                    sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
                held.seek(0)
                lines = held.read().splitlines(keepends=True)
                kept = b"".join(
                    line for line in lines if not line.startswith(b"[LightGBM] [Fatal]")
                )
                if kept.strip():
                    os.write(2, kept)
    finally:
        _HOLDING_STDERR.release()


#: Value types LightGBM's parameter string takes (anything else is a TypeError inside it).
_LIGHTGBM_SCALARS = (str, Real)


class LightGBMLearner(Learner):
    """LightGBM through its native `train` API (native parameter names, text model files)."""

    suffix = ".txt"
    objective: ClassVar[str]
    #: How messages name the objective (the class's `objective` if None).
    objective_label: ClassVar[str | None] = None
    own_params = frozenset({"num_boost_round"})
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

    @classmethod
    def known_params(cls) -> set[str]:
        """Every LightGBM parameter and alias, as LightGBM itself lists them."""
        import lightgbm as lgb

        aliases = lgb.basic._ConfigAliases._get_all_param_aliases()
        return {*cls.own_params, *aliases, *(a for names in aliases.values() for a in names)}

    @staticmethod
    def _aliases(name: str) -> set[str]:
        """`name` and LightGBM's aliases of it."""
        import lightgbm as lgb

        return set(lgb.basic._ConfigAliases.get(name))

    @classmethod
    def fixed_params(cls) -> dict[str, str]:
        fixed = {name: OWN_HINT for name in ("deterministic", "force_col_wise")}
        fixed.update(dict.fromkeys(cls._aliases("verbosity"), OWN_HINT))
        fixed.update(dict.fromkeys(cls._aliases("seed"), SEED_HINT))
        fixed.update(dict.fromkeys(cls._aliases("num_threads"), THREADS_HINT))
        return fixed

    @classmethod
    def check_params(cls, params: Mapping[str, Any]) -> None:
        for name, value in params.items():
            if name in cls._aliases("objective"):
                hint = cls._objective_hint(LightGBMLearner, value)
                raise LtrError(f"{cls.key}: parameter {name!r} cannot be set: {hint}")
        super().check_params(params)
        rounds = [name for name in params if name in cls._aliases("num_iterations")]
        if len(rounds) > 1:
            raise LtrError(f"{cls.key}: {', '.join(rounds)} name the same parameter: give it once")
        for name in rounds:
            _whole_count(cls, name, params[name])
        for name, value in params.items():
            items = value if isinstance(value, (list, tuple)) else [value]
            if not all(isinstance(v, _LIGHTGBM_SCALARS) for v in items):
                raise LtrError(
                    f"{cls.key}: {name} must be a number, a string, true/false or a list of "
                    f"them, not {value!r}"
                )

    def _train_params(self) -> tuple[dict[str, Any], int]:
        params = {**self.defaults, **self.params}
        # ltr passes the rounds itself: LightGBM would take an alias (n_estimators...) from
        # `params` instead, with a warning
        given = [
            params.pop(name) for name in self._aliases("num_iterations") if name in self.params
        ]
        rounds = _whole_count(
            type(self), "num_boost_round", given[0] if given else params["num_boost_round"]
        )
        params.pop("num_boost_round", None)
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
        with _native_fatal_lines_dropped():
            data = lgb.Dataset(X, label=y, group=group, params={"verbosity": -1})
            self.booster_ = lgb.train(params, data, num_boost_round=rounds)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        scores = self.booster_.predict(X, num_threads=self.threads)
        # sparse or a list of them only for pred_contrib on sparse input, never asked here
        assert isinstance(scores, np.ndarray)
        return scores

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
    objective_label = "Pearson"
    uses_queries = True
    # Leaves of 10 users instead of 20: +0.008 / +0.014 mean Pearson in seed-0 CV on aware2023 /
    # lervup2021 (40 lost 0.013 / 0.017); learning rate, rounds, eps and lambda_l2 were at
    # their best already (docs/results.md, "The Pearson objective").
    defaults = {**LightGBMLearner.defaults, "min_data_in_leaf": 10, **OBJECTIVE_PARAMS}
    own_params = frozenset({*LightGBMLearner.own_params, *OBJECTIVE_PARAMS})

    def fit(
        self, X: np.ndarray, y: np.ndarray, query_ids: np.ndarray, blocks: np.ndarray | None = None
    ) -> LightGBMPearson:
        import lightgbm as lgb

        params, rounds = self._train_params()
        options, params = split_objective_params(params)
        objective = PearsonObjective(y, query_ids, **options)
        params["objective"] = objective.lightgbm  # LightGBM 4: a callable objective
        with _native_fatal_lines_dropped():
            data = lgb.Dataset(X, label=y, params={"verbosity": -1})
            self.booster_ = lgb.train(params, data, num_boost_round=rounds)
        return self


class XGBoostLearner(Learner):
    """XGBoost through its native `train` API (native parameter names, JSON model files)."""

    suffix = ".json"
    objective: ClassVar[str]
    #: How messages name the objective (the class's `objective` if None).
    objective_label: ClassVar[str | None] = None
    own_params = frozenset({"num_boost_round"})
    defaults: ClassVar[dict[str, Any]] = {
        "eta": 0.03,
        "max_depth": 3,
        "min_child_weight": 5.0,
        "subsample": 0.8,
        "colsample_bytree": 0.5,
        "lambda": 1.0,
        "num_boost_round": 300,
    }

    @classmethod
    def unknown_params(cls, params: Mapping[str, Any]) -> list[str]:
        """Asks XGBoost itself: one boosting round on four rows, with its parameter check on
        (the names it accepts depend on the objective, and it lists no more)."""
        import xgboost as xgb

        names = tuple(sorted(name for name in params if name not in cls.own_params))
        key = (cls.objective, cls.uses_queries, names)
        if key not in _XGBOOST_UNUSED:  # names only matter: a spec is rebuilt many times
            passed = {k: v for k, v in plain(params).items() if k in names}
            passed.update(objective=cls.objective, verbosity=1, validate_parameters=True)
            data = xgb.DMatrix(np.arange(4.0).reshape(4, 1), label=np.arange(4.0))
            if cls.uses_queries:
                data.set_group([4])
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                # a bad value (not a bad name) raises here; the fit reports it with its message
                with contextlib.suppress(xgb.core.XGBoostError):
                    xgb.train(passed, data, num_boost_round=1)
            unused: set[str] = set()
            pattern = r"Parameters: \{(.*?)\} are not used"
            for warning in caught:
                found = re.search(pattern, str(warning.message), re.S)
                if found:
                    unused.update(re.findall(r'"([^"]+)"', found.group(1)))
            _XGBOOST_UNUSED[key] = frozenset(unused)
        return [name for name in params if name in _XGBOOST_UNUSED[key]]

    @classmethod
    def known_params(cls) -> set[str]:
        """Names for suggestions: the defaults and what XGBoost's configuration lists."""
        import xgboost as xgb

        data = xgb.DMatrix(np.zeros((2, 1)), label=np.zeros(2))
        config = json.loads(xgb.train({"verbosity": 0}, data, 1).save_config())
        names: set[str] = set()

        def walk(node: object) -> None:
            if isinstance(node, dict):
                for key, value in node.items():
                    walk(value) if isinstance(value, (dict, list)) else names.add(key)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(config)
        return {*names, *cls.defaults, *cls.own_params, *XGBOOST_RANKING_PARAMS}

    @classmethod
    def fixed_params(cls) -> dict[str, str]:
        return {
            "seed": SEED_HINT,
            "random_state": SEED_HINT,
            "nthread": THREADS_HINT,
            "n_jobs": THREADS_HINT,
            "tree_method": OWN_HINT,
            "verbosity": OWN_HINT,
        }

    @classmethod
    def check_params(cls, params: Mapping[str, Any]) -> None:
        if "objective" in params:
            hint = cls._objective_hint(XGBoostLearner, params["objective"])
            raise LtrError(f"{cls.key}: parameter 'objective' cannot be set: {hint}")
        super().check_params(params)
        if "num_boost_round" in params:
            _whole_count(cls, "num_boost_round", params["num_boost_round"])

    def _train_params(self) -> tuple[dict[str, Any], int]:
        params = {**self.defaults, **self.params}
        rounds = _whole_count(type(self), "num_boost_round", params.pop("num_boost_round"))
        # verbosity 0: XGBoost's warnings would reach the user as raw UserWarning blocks;
        # parameter names are checked up front instead (`unknown_params`).
        params.update(
            objective=self.objective,
            seed=self.seed,
            nthread=self.threads,
            tree_method="hist",
            verbosity=0,
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


#: Names XGBoost ignored, by (objective, ranking, parameter names): `unknown_params` results.
_XGBOOST_UNUSED: dict[tuple[str, bool, tuple[str, ...]], frozenset[str]] = {}

#: XGBoost's learning-to-rank parameters (not in the configuration of other objectives).
XGBOOST_RANKING_PARAMS = (
    "lambdarank_pair_method",
    "lambdarank_num_pair_per_sample",
    "lambdarank_unbiased",
    "lambdarank_bias_norm",
    "ndcg_exp_gain",
)

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
    objective_label = "Pearson"
    uses_queries = True
    defaults = {**XGBoostLearner.defaults, "min_child_weight": 1.0, **OBJECTIVE_PARAMS}
    own_params = frozenset({*XGBoostLearner.own_params, *OBJECTIVE_PARAMS})

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
    own_params = frozenset(defaults)
    ALPHAS: ClassVar[np.ndarray] = np.logspace(-1, 4, 16)

    @classmethod
    def check_params(cls, params: Mapping[str, Any]) -> None:
        super().check_params(params)
        alpha = params.get("alpha", "auto")
        number = isinstance(alpha, Real) and not isinstance(alpha, bool)
        if alpha != "auto" and not (number and math.isfinite(alpha) and alpha > 0):
            raise LtrError(f"{cls.key}: alpha must be 'auto' or a number > 0, not {alpha!r}")
        _flag(cls, "block_scale", params.get("block_scale", True))

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
            assert isinstance(learner, RidgeLearner)  # checked above: all are of type cls
            learner.mean_, learner.scale_ = mean, scale
            learner.alpha_ = float(alphas[j])
            learner.coef_ = coef[j].copy()
            learner.intercept_ = float(intercept[j])

    def predict(self, X: np.ndarray) -> np.ndarray:
        from threadpoolctl import threadpool_limits

        # ((X - mean) / scale) @ coef, without two standardised copies of X: the scaling
        # folds into the coefficients (scoring a 25,000-user file: 0.19 s -> about 0.01 s per call)
        weights = self.coef_ / self.scale_
        with threadpool_limits(limits=self.threads, user_api="blas"):
            scores: np.ndarray = X @ weights + (self.intercept_ - self.mean_ @ weights)
        return scores

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


class ExtraTreesLearner(Learner):
    """Extremely randomised trees (scikit-learn's ExtraTreesRegressor): averaged deep trees with
    random split points, a partner for ridge and boosting whose errors differ from both.

    By default one forest predicts the four situations at once (``multi_output``): its splits
    reduce the squared error summed over the standardised situations, so the situations share
    the tree structure and each keeps its own leaf values (learning across situations at no
    extra cost). The trees are stored as plain JSON arrays (no pickle) and scored by the same
    numpy traversal before saving and after loading.
    """

    key = "extra-trees"
    defaults: ClassVar[dict[str, Any]] = {
        "n_estimators": 100,  # 200 scored the same in CV, at twice the time
        "max_features": 0.3,
        "min_samples_leaf": 5,
        "multi_output": True,
    }
    own_params = frozenset({"multi_output"})

    @classmethod
    def check_params(cls, params: Mapping[str, Any]) -> None:
        super().check_params(params)
        _flag(cls, "multi_output", params.get("multi_output", True))

    @classmethod
    def known_params(cls) -> set[str]:
        """scikit-learn's ExtraTreesRegressor parameters, except those ltr sets itself."""
        from sklearn.ensemble import ExtraTreesRegressor

        names = set(ExtraTreesRegressor().get_params()) - {"random_state", "n_jobs"}
        return {*names, *cls.own_params}

    def fit(
        self, X: np.ndarray, y: np.ndarray, query_ids: np.ndarray, blocks: np.ndarray | None = None
    ) -> ExtraTreesLearner:
        self.fit_targets([self], X, y[:, None], blocks)
        return self

    @classmethod
    def fit_targets(
        cls, learners: list[Learner], X: np.ndarray, Y: np.ndarray, blocks: np.ndarray | None
    ) -> None:
        first = learners[0]
        params = {**cls.defaults, **first.params}
        same = all(type(m) is cls and m.params == first.params for m in learners)
        if not (same and params["multi_output"]):
            for j, learner in enumerate(learners):
                assert isinstance(learner, ExtraTreesLearner)
                learner._fit_forest(X, Y[:, [j]], [learner])
            return
        first._fit_forest(X, Y, learners)  # type: ignore[attr-defined]

    def _fit_forest(self, X: np.ndarray, Y: np.ndarray, learners: list[Learner]) -> None:
        """One forest on the columns of `Y` (standardised, so each situation weighs the same
        in the splits); learner j keeps the trees and the leaf values of column j."""
        from sklearn.ensemble import ExtraTreesRegressor

        params = {**self.defaults, **self.params}
        params.pop("multi_output")
        center = Y.mean(axis=0)
        spread = Y.std(axis=0)
        spread = np.where(spread > 0, spread, 1.0)
        forest = ExtraTreesRegressor(**params, random_state=self.seed, n_jobs=self.threads)
        forest.fit(
            X, ((Y - center) / spread).squeeze(axis=1) if Y.shape[1] == 1 else (Y - center) / spread
        )
        trees = [estimator.tree_ for estimator in forest.estimators_]
        structure = {
            "left": [t.children_left.tolist() for t in trees],
            "right": [t.children_right.tolist() for t in trees],
            "feature": [t.feature.tolist() for t in trees],
            "threshold": [t.threshold.tolist() for t in trees],
        }
        for j, learner in enumerate(learners):
            assert isinstance(learner, ExtraTreesLearner)
            values = [(t.value[:, j, 0] * spread[j] + center[j]).tolist() for t in trees]
            learner._set_trees({**structure, "value": values})

    def _set_trees(self, trees: dict[str, list[list[float]]]) -> None:
        """Flatten the trees into one node table (global node ids) for a vectorised traversal."""
        self.trees_ = trees
        sizes = [len(left) for left in trees["left"]]
        offsets = np.r_[0, np.cumsum(sizes)[:-1]]
        left = np.concatenate([np.asarray(a, dtype=np.int64) for a in trees["left"]])
        right = np.concatenate([np.asarray(a, dtype=np.int64) for a in trees["right"]])
        shift = np.repeat(offsets, sizes)
        self.leaf_ = left < 0
        self.left_ = np.where(self.leaf_, -1, left + shift)
        self.right_ = np.where(self.leaf_, -1, right + shift)
        self.feature_ = np.concatenate([np.asarray(a, dtype=np.int64) for a in trees["feature"]])
        self.threshold_ = np.concatenate([np.asarray(a, dtype=float) for a in trees["threshold"]])
        self.value_ = np.concatenate([np.asarray(a, dtype=float) for a in trees["value"]])
        self.roots_ = offsets
        # learners of one multi-output forest share this: their traversals are the same
        self.structure_ = hashlib.sha256(
            b"".join(a.tobytes() for a in (self.left_, self.right_, self.feature_, self.threshold_))
        ).hexdigest()

    def leaves(self, X: np.ndarray) -> np.ndarray:
        """The leaf (global node id) each row of `X` reaches in each tree: rows x trees.

        Level by level over the (row, tree) pairs still inside a tree, a set that only shrinks,
        so each level costs what is left of it rather than the whole rows x trees table.
        """
        # scikit-learn compares float32 features with float64 thresholds: do the same
        X = np.asarray(X, dtype=np.float32).astype(np.float64)
        n_rows, n_trees = X.shape[0], self.roots_.size
        node = np.tile(self.roots_, n_rows)  # pair k = (row k // n_trees, tree k % n_trees)
        inner = np.flatnonzero(~self.leaf_[node])
        current = node[inner]
        row = inner // n_trees
        while inner.size:
            left = X[row, self.feature_[current]] <= self.threshold_[current]
            current = np.where(left, self.left_[current], self.right_[current])
            done = self.leaf_[current]
            node[inner[done]] = current[done]
            inner, current, row = inner[~done], current[~done], row[~done]
        leaves: np.ndarray = node.reshape(n_rows, n_trees)
        return leaves

    def predict(self, X: np.ndarray) -> np.ndarray:
        scores: np.ndarray = self.value_[self.leaves(X)].mean(axis=1)
        return scores

    @classmethod
    def predict_targets(cls, learners: list[Learner], X: np.ndarray) -> np.ndarray:
        """One traversal for the learners of one multi-output forest (same trees, own leaf
        values): the four situations cost one situation's traversal."""
        forests = [m for m in learners if isinstance(m, ExtraTreesLearner)]
        if len(forests) < len(learners) or len({m.structure_ for m in forests}) > 1:
            return super().predict_targets(learners, X)
        leaves = forests[0].leaves(X)
        return np.column_stack([m.value_[leaves].mean(axis=1) for m in forests])

    def save(self, path: Path) -> None:
        write_json_atomic(path, self.trees_, indent=None)

    def load(self, path: Path) -> ExtraTreesLearner:
        self._set_trees(json.loads(Path(path).read_text(encoding="utf-8")))
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
        ExtraTreesLearner,
    )
}


def _backend_errors() -> dict[type[BaseException], str]:
    """The exception types with which the back-ends refuse a parameter value, by back-end name.

    Looked up in `sys.modules`: a back-end that was never imported raised nothing (and is not
    imported just to check)."""
    found: dict[type[BaseException], str] = {}
    for module, name, label in (
        ("xgboost.core", "XGBoostError", "XGBoost"),
        ("lightgbm.basic", "LightGBMError", "LightGBM"),
        ("sklearn.utils._param_validation", "InvalidParameterError", "scikit-learn"),
    ):
        kind = getattr(sys.modules.get(module), name, None)
        if isinstance(kind, type) and issubclass(kind, BaseException):
            found[kind] = label
    return found


#: Where the back-ends name the parameter in their messages (XGBoost "value -1 for Parameter
#: max_depth ...", LightGBM "Check failed: (num_leaves) > (1)" and "Parameter num_leaves should
#: ...", scikit-learn "The 'alpha' parameter of Ridge ...").
_PARAMETER_IN_MESSAGE = re.compile(
    r"[Pp]arameter (?:format for )?(\w+)|The '(\w+)' parameter|Check failed: \((\w+)\)"
)
#: LightGBM's checks end with the C++ source location: no use to the user.
_SOURCE_LOCATION = re.compile(r"\s+at \S+, line \d+\s*\.?\s*$")


def backend_refusal(
    learner: str, params: Mapping[str, Any], error: BaseException
) -> ModelError | None:
    """A back-end's refusal of the parameters as one line: the learner, the parameter (and its
    value in the spec) if the back-end names it, and the first line of the back-end's reason.

    Args:
        learner: The learner's key.
        params: The spec's parameters (for the value given).
        error: What fitting raised.

    Returns:
        The ModelError to raise instead, or None when `error` is not a back-end's refusal
        (then it is a bug, and must stay what it is).

    Example:
        >>> from sklearn.utils._param_validation import InvalidParameterError
        >>> error = InvalidParameterError("The 'alpha' parameter of Ridge: -1 < 0")
        >>> print(backend_refusal("ridge", {"alpha": -1}, error))
        ridge: scikit-learn refused parameter 'alpha' = -1: The 'alpha' parameter of Ridge: -1 < 0
    """
    label = next((v for k, v in _backend_errors().items() if isinstance(error, k)), None)
    if label is None:
        return None
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    reason = _SOURCE_LOCATION.sub("", lines[0]) if lines else type(error).__name__
    found = _PARAMETER_IN_MESSAGE.search(reason)
    name = next((g for g in found.groups() if g), None) if found else None
    if name is None:
        what = "the parameters"
    elif name in params:
        what = f"parameter {name!r} = {params[name]!r}"
    else:
        what = f"parameter {name!r}"
    return ModelError(f"{learner}: {label} refused {what}: {reason}")
