"""Search spaces: what a trial may build, declared as data.

A space is a list of parameters (name, distribution, condition) plus a function that turns the
sampled values into a `ModelSpec`. Declaring the parameters as data rather than as `suggest_*`
calls scattered through code gives three things:

- a fingerprint: a study stores the hash of its space and refuses to resume under another one;
- conditional parameters that are visible as such (``when``): a parameter is only sampled when
  the values drawn before it allow it, so LightGBM's ``num_leaves`` never appears in an XGBoost
  trial and TPE sees the tree structure of the space;
- the untuned default of each family as a first (enqueued) trial, so a study can only improve
  on it, measured on the same folds.

If `build` changes meaning without a parameter changing, bump the space's ``version`` so old
studies are refused instead of silently mixing two spaces.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import optuna

from ltr.errors import LtrError
from ltr.features import FAMILIES
from ltr.models import ModelSpec
from ltr.models.learners import LEARNERS, LightGBMLearner, XGBoostLearner
from ltr.models.registry import DEFAULT_FAMILIES

Choice = bool | int | float | str | None


@dataclass(frozen=True)
class Param:
    """One hyper-parameter: a float/int range or a categorical choice, maybe conditional.

    ``when`` holds ``(other parameter, allowed values)`` pairs: the parameter is sampled only
    when every named parameter was sampled before it with one of the allowed values.
    """

    name: str
    kind: str  # "float", "int" or "categorical"
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Choice, ...] = ()
    when: tuple[tuple[str, tuple[Choice, ...]], ...] = ()

    def distribution(self) -> optuna.distributions.BaseDistribution:
        if self.kind == "float":
            return optuna.distributions.FloatDistribution(self.low, self.high, log=self.log)
        if self.kind == "int":
            return optuna.distributions.IntDistribution(int(self.low), int(self.high), log=self.log)
        return optuna.distributions.CategoricalDistribution(self.choices)

    def suggest(self, trial: optuna.trial.BaseTrial) -> Any:
        """Draw this parameter through the trial's public API."""
        if self.kind == "float":
            return trial.suggest_float(self.name, self.low, self.high, log=self.log)
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_categorical(self.name, self.choices)

    def active(self, values: Mapping[str, Any]) -> bool:
        return all(name in values and values[name] in allowed for name, allowed in self.when)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.kind == "categorical":
            out["choices"] = list(self.choices)
        else:
            out.update(low=self.low, high=self.high, log=self.log)
        if self.when:
            out["when"] = {name: list(allowed) for name, allowed in self.when}
        return out

    def text(self) -> str:
        """Short human-readable form, e.g. ``num_leaves: int 2..48 (log)``."""
        if self.kind == "categorical":
            body = " | ".join(map(str, self.choices))
        else:
            body = f"{self.kind} {self.low:g}..{self.high:g}" + (" (log)" if self.log else "")
        cond = ", ".join(f"{n} in {{{', '.join(map(str, a))}}}" for n, a in self.when)
        return f"{self.name}: {body}" + (f"  [if {cond}]" if cond else "")


def _when(when: Mapping[str, tuple[Choice, ...]] | None) -> tuple:
    return tuple((name, tuple(allowed)) for name, allowed in (when or {}).items())


def floating(name: str, low: float, high: float, *, log: bool = False, when=None) -> Param:
    return Param(name, "float", float(low), float(high), log, when=_when(when))


def integer(name: str, low: int, high: int, *, log: bool = False, when=None) -> Param:
    return Param(name, "int", int(low), int(high), log, when=_when(when))


def choice(name: str, *choices: Choice, when=None) -> Param:
    return Param(name, "categorical", choices=tuple(choices), when=_when(when))


def prefixed(params: tuple[Param, ...], prefix: str, when=None) -> tuple[Param, ...]:
    """`params` renamed ``prefix + name`` (conditions too), with the extra condition `when`."""
    extra = _when(when)
    return tuple(
        replace(
            p,
            name=prefix + p.name,
            when=extra + tuple((prefix + name, allowed) for name, allowed in p.when),
        )
        for p in params
    )


def unprefixed(values: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    return {k.removeprefix(prefix): v for k, v in values.items() if k.startswith(prefix)}


@dataclass(frozen=True)
class SearchSpace:
    """A family of models to tune: parameters, how they make a spec, and the untuned default.

    Attributes:
        name: the ``--model FAMILY`` name.
        description: one line for help texts and reports.
        params: parameters in sampling order (conditions refer to earlier ones).
        build: sampled values (active parameters only) -> an untrained `ModelSpec`.
        defaults: values of the untuned default configuration, enqueued as a study's first
            trial (parameters it leaves out are sampled).
        version: bumped when `build` changes meaning.
    """

    name: str
    description: str
    params: tuple[Param, ...]
    build: Callable[[Mapping[str, Any]], ModelSpec]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    version: int = 1

    def __post_init__(self) -> None:
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise ValueError(f"search space {self.name!r}: a parameter name repeats")
        seen: set[str] = set()
        for p in self.params:
            unknown = [n for n, _ in p.when if n not in seen]
            if unknown:
                raise ValueError(
                    f"search space {self.name!r}: {p.name} depends on {unknown}, "
                    "which is not declared before it"
                )
            seen.add(p.name)

    def suggest(self, trial: optuna.trial.BaseTrial) -> dict[str, Any]:
        """Sample every active parameter in order; returns the sampled values."""
        values: dict[str, Any] = {}
        for param in self.params:
            if param.active(values):
                values[param.name] = param.suggest(trial)
        return values

    def sample(self, trial: optuna.trial.BaseTrial) -> ModelSpec:
        return self.build(self.suggest(trial))

    def spec_from_params(self, values: Mapping[str, Any]) -> ModelSpec:
        """The spec of a finished trial's parameters (e.g. ``trial.params``)."""
        missing = [p.name for p in self.params if p.active(values) and p.name not in values]
        if missing:
            raise LtrError(f"search space {self.name!r}: parameter(s) {missing} missing")
        return self.build(values)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "params": [p.describe() for p in self.params],
        }

    def fingerprint(self) -> str:
        text = json.dumps(self.describe(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


# ----------------------------------------------------------------------- parameter groups
#: Feature families a trial may switch off; ``freq`` (the share of images showing each concept)
#: is always used: it carries most of the signal on both real data sets (see RESULTS in README).
FAMILY_SWITCHES: tuple[str, ...] = tuple(f for f in FAMILIES if f != "freq")
CALIBRATION_CHOICES: tuple[str, ...] = ("none", "normal", "isotonic")
FORMULATION_CHOICES: tuple[str, ...] = ("per-situation", "pooled")


def feature_params() -> tuple[Param, ...]:
    return tuple(choice(f"use_{family}", True, False) for family in FAMILY_SWITCHES)


def families_from(values: Mapping[str, Any]) -> tuple[str, ...]:
    return ("freq", *(f for f in FAMILY_SWITCHES if values[f"use_{f}"]))


def feature_defaults() -> dict[str, bool]:
    return {f"use_{f}": f in DEFAULT_FAMILIES for f in FAMILY_SWITCHES}


def lightgbm_params() -> tuple[Param, ...]:
    """LightGBM native names; ranges centred on what works with a few hundred users (few
    leaves, strong column subsampling, hundreds of slow rounds)."""
    return (
        floating("learning_rate", 0.005, 0.2, log=True),
        integer("num_boost_round", 50, 1500, log=True),
        integer("num_leaves", 2, 48, log=True),
        integer("max_depth", 2, 8),
        integer("min_data_in_leaf", 3, 80, log=True),
        floating("feature_fraction", 0.05, 1.0),
        floating("bagging_fraction", 0.4, 1.0),
        floating("lambda_l2", 1e-3, 100.0, log=True),
        floating("lambda_l1", 1e-3, 10.0, log=True),
        choice("extra_trees", False, True),
    )


def xgboost_params(*, ranking: bool = False) -> tuple[Param, ...]:
    """XGBoost native names. Ranking objectives have tiny hessians, hence a lower
    ``min_child_weight`` range (with 0.5..50 they would hardly split)."""
    child = (0.01, 10.0) if ranking else (0.5, 50.0)
    return (
        floating("eta", 0.005, 0.2, log=True),
        integer("num_boost_round", 50, 1500, log=True),
        integer("max_depth", 2, 8),
        floating("min_child_weight", *child, log=True),
        floating("subsample", 0.4, 1.0),
        floating("colsample_bytree", 0.05, 1.0),
        floating("lambda", 1e-3, 100.0, log=True),
        floating("alpha", 1e-3, 10.0, log=True),
    )


def xgboost_rank_params() -> tuple[Param, ...]:
    return (
        choice("lambdarank_pair_method", "mean", "topk"),
        integer("lambdarank_num_pair_per_sample", 1, 32, log=True),
    )


def ridge_params() -> tuple[Param, ...]:
    return (
        choice("alpha_auto", True, False),
        floating("alpha", 0.1, 1e4, log=True, when={"alpha_auto": (False,)}),
        choice("block_scale", True, False),
    )


def _native(values: Mapping[str, Any], params: tuple[Param, ...]) -> dict[str, Any]:
    return {p.name: values[p.name] for p in params if p.name in values}


def ridge_native(values: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "alpha": "auto" if values["alpha_auto"] else float(values["alpha"]),
        "block_scale": bool(values["block_scale"]),
    }


def _learner_defaults(key: str) -> dict[str, Any]:
    """The back-end's built-in defaults as values of the space (0 -> the range's low end)."""
    cls = LEARNERS[key]
    if issubclass(cls, LightGBMLearner):
        base = {**LightGBMLearner.defaults, "lambda_l1": 1e-3, "extra_trees": False}
        names = {p.name for p in lightgbm_params()}
    elif issubclass(cls, XGBoostLearner):
        base = {**XGBoostLearner.defaults, "alpha": 1e-3}
        if cls.uses_queries:
            base.update(min_child_weight=0.1, lambdarank_pair_method="mean")
            base["lambdarank_num_pair_per_sample"] = 8
        names = {p.name for p in (*xgboost_params(), *xgboost_rank_params())}
    else:
        return {"alpha_auto": True, "block_scale": True}
    return {k: v for k, v in base.items() if k in names}


# ------------------------------------------------------------------------------ families
def _single_learner_space(key: str, description: str) -> SearchSpace:
    """One back-end, per-situation or pooled, with its own parameters."""
    cls = LEARNERS[key]
    if issubclass(cls, LightGBMLearner):
        learner_params = lightgbm_params()
    elif issubclass(cls, XGBoostLearner):
        learner_params = xgboost_params(ranking=cls.uses_queries)
        if cls.uses_queries:
            learner_params += xgboost_rank_params()
    else:
        learner_params = ridge_params()
    extra: tuple[Param, ...] = ()
    if cls.needs_grades:
        extra += (integer("n_grades", 2, 31),)
    if cls.uses_queries:
        extra += (integer("subqueries", 1, 8, when={"formulation": ("per-situation",)}),)
    params = (
        choice("formulation", *FORMULATION_CHOICES),
        *learner_params,
        *extra,
        *feature_params(),
        choice("calibration", *CALIBRATION_CHOICES),
    )

    def build(values: Mapping[str, Any]) -> ModelSpec:
        native = ridge_native(values) if key == "ridge" else _native(values, learner_params)
        return ModelSpec(
            key,
            formulation=values["formulation"],
            params=native,
            families=families_from(values),
            n_grades=int(values.get("n_grades", 16)),
            subqueries=int(values.get("subqueries", 1)),
            calibration=values["calibration"],
        )

    defaults = {
        "formulation": "per-situation",
        **_learner_defaults(key),
        **feature_defaults(),
        "calibration": "none",
    }
    if cls.needs_grades:
        defaults["n_grades"] = 16
    if cls.uses_queries:
        defaults["subqueries"] = 1
    return SearchSpace(key, description, params, build, defaults)


#: GBDT partners of ridge in the ensemble space: the regressors (ranking objectives were
#: weaker alone and add nothing to the ridge ensemble in the research log).
ENSEMBLE_GBDTS: dict[str, str] = {"xgb-regression": "xgb.", "lgbm-regression": "lgbm."}


def _ensemble_space() -> SearchSpace:
    ridge = ridge_params()
    params = (
        floating("ridge_weight", 0.2, 0.9),
        *prefixed(ridge, "ridge."),
        choice("gbdt", *ENSEMBLE_GBDTS),
        choice("gbdt_formulation", *FORMULATION_CHOICES),
        *prefixed(xgboost_params(), "xgb.", when={"gbdt": ("xgb-regression",)}),
        *prefixed(lightgbm_params(), "lgbm.", when={"gbdt": ("lgbm-regression",)}),
        *feature_params(),
        choice("calibration", *CALIBRATION_CHOICES),
    )

    def build(values: Mapping[str, Any]) -> ModelSpec:
        families = families_from(values)
        gbdt = values["gbdt"]
        prefix = ENSEMBLE_GBDTS[gbdt]
        learner_params = xgboost_params() if gbdt.startswith("xgb") else lightgbm_params()
        members = (
            ModelSpec(
                "ridge", params=ridge_native(unprefixed(values, "ridge.")), families=families
            ),
            ModelSpec(
                gbdt,
                formulation=values["gbdt_formulation"],
                params=_native(unprefixed(values, prefix), learner_params),
                families=families,
            ),
        )
        weight = float(values["ridge_weight"])
        return ModelSpec(
            "ensemble",
            families=families,
            members=members,
            weights=(weight, 1.0 - weight),
            calibration=values["calibration"],
        )

    defaults = {
        # the `ridge-xgb` preset (the former default): ridge (weight 2) + XGBoost regression (1)
        "ridge_weight": 2.0 / 3.0,
        **{f"ridge.{k}": v for k, v in _learner_defaults("ridge").items()},
        "gbdt": "xgb-regression",
        "gbdt_formulation": "per-situation",
        **{f"xgb.{k}": v for k, v in _learner_defaults("xgb-regression").items()},
        **feature_defaults(),
        "calibration": "none",
    }
    return SearchSpace(
        "ensemble",
        "block-scaled ridge + a GBDT regressor (XGBoost or LightGBM), weighted",
        params,
        build,
        defaults,
    )


def _any_space(spaces: Mapping[str, SearchSpace]) -> SearchSpace:
    """Every family at once: the family is a choice, each family's parameters depend on it."""
    names = tuple(spaces)
    params = (choice("family", *names),)
    for name, space in spaces.items():
        params += prefixed(space.params, f"{name}/", when={"family": (name,)})

    def build(values: Mapping[str, Any]) -> ModelSpec:
        family = values["family"]
        return spaces[family].build(unprefixed(values, f"{family}/"))

    defaults = {
        "family": "ensemble",
        **{f"ensemble/{k}": v for k, v in spaces["ensemble"].defaults.items()},
    }
    return SearchSpace(
        "any", "every family above; the family itself is a parameter", params, build, defaults
    )


def _spaces() -> dict[str, SearchSpace]:
    spaces = {
        "ensemble": _ensemble_space(),
        "ridge": _single_learner_space("ridge", "ridge regression (block-scaled features)"),
        "xgb-regression": _single_learner_space("xgb-regression", "XGBoost reg:squarederror"),
        "lgbm-regression": _single_learner_space("lgbm-regression", "LightGBM regression"),
        "lgbm-lambdarank": _single_learner_space("lgbm-lambdarank", "LightGBM LambdaMART"),
        "xgb-pairwise": _single_learner_space("xgb-pairwise", "XGBoost rank:pairwise"),
        "xgb-ndcg": _single_learner_space("xgb-ndcg", "XGBoost rank:ndcg"),
    }
    spaces["any"] = _any_space(dict(spaces))
    return spaces


#: Search spaces by ``--model FAMILY`` name.
SPACES: dict[str, SearchSpace] = _spaces()

#: The family tuned when none is given: the one that wins in the research log and in CV.
DEFAULT_SPACE = "ensemble"


def get_space(name: str) -> SearchSpace:
    if name not in SPACES:
        raise LtrError(f"unknown model family {name!r} to tune (known: {', '.join(SPACES)})")
    return SPACES[name]
