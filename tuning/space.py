"""Search spaces: what a trial may build, declared as data.

A space is a list of parameters (name, distribution, condition) plus a function that turns the
sampled values into a `ModelSpec`. Declaring the parameters as data rather than as `suggest_*`
calls scattered through code gives three things:

- a fingerprint: a study stores the hash of its space (parameters, defaults and the preset it
  starts from) and refuses to resume under another one;
- conditional parameters that are visible as such (``when``): a parameter is only sampled when
  the values drawn before it allow it, so LightGBM's ``num_leaves`` never appears in an XGBoost
  trial and TPE sees the tree structure of the space;
- the untuned default of each family as a first (enqueued) trial, whose spec *equals* the
  family's preset (`PRESETS[family]`; for ``ensemble``, `PRESETS["default"]`), so a study can
  only improve on what `ltr train` trains without tuning, measured on the same folds.

What is tuned, and why so little: 400-600 labelled users give CV estimates whose fold noise
(about 0.01) is as large as the gains any parameter offers, so a wide space mostly fits that
noise. Each learner gets a few key parameters whose ranges are centred (on a log scale) on the
back-end's defaults, which are the presets'; the ensemble family also chooses its members, the
boosting objective (regression or the Pearson objective) and how members are combined (the
preset's fixed weights, or learned stacking), and switches feature families. A sampled value
equal to the back-end's default is left out of the spec, so default trials build the presets'
specs exactly.

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
from ltr.models import PRESETS, ModelSpec
from ltr.models.learners import (
    LEARNERS,
    ExtraTreesLearner,
    LightGBMLearner,
    RidgeLearner,
    XGBoostLearner,
)
from ltr.models.registry import DEFAULT_FAMILIES, STACKED_OPTIONS

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

    def bounds(self) -> tuple[float, float]:
        """(low, high) of a float or int range (`floating` and `integer` always set both)."""
        assert self.low is not None and self.high is not None, f"{self.name}: no range"
        return self.low, self.high

    def distribution(self) -> optuna.distributions.BaseDistribution:
        if self.kind == "float":
            low, high = self.bounds()
            return optuna.distributions.FloatDistribution(low, high, log=self.log)
        if self.kind == "int":
            low, high = self.bounds()
            return optuna.distributions.IntDistribution(int(low), int(high), log=self.log)
        return optuna.distributions.CategoricalDistribution(self.choices)

    def suggest(self, trial: optuna.trial.BaseTrial) -> Any:
        """Draw this parameter through the trial's public API."""
        if self.kind == "float":
            low, high = self.bounds()
            return trial.suggest_float(self.name, low, high, log=self.log)
        if self.kind == "int":
            low, high = self.bounds()
            return trial.suggest_int(self.name, int(low), int(high), log=self.log)
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


#: Conditions of a parameter: other parameter -> the values it must have been sampled with.
When = Mapping[str, tuple[Choice, ...]]


def _when(when: When | None) -> tuple[tuple[str, tuple[Choice, ...]], ...]:
    return tuple((name, tuple(allowed)) for name, allowed in (when or {}).items())


def floating(
    name: str, low: float, high: float, *, log: bool = False, when: When | None = None
) -> Param:
    return Param(name, "float", float(low), float(high), log, when=_when(when))


def integer(
    name: str, low: int, high: int, *, log: bool = False, when: When | None = None
) -> Param:
    return Param(name, "int", int(low), int(high), log, when=_when(when))


def choice(name: str, *choices: Choice, when: When | None = None) -> Param:
    return Param(name, "categorical", choices=tuple(choices), when=_when(when))


def prefixed(params: tuple[Param, ...], prefix: str, when: When | None = None) -> tuple[Param, ...]:
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
        basis: the preset spec (as a dict) the space starts from: part of the fingerprint, so
            a study made before the preset changed is not resumed as if nothing had.
    """

    name: str
    description: str
    params: tuple[Param, ...]
    build: Callable[[Mapping[str, Any]], ModelSpec]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    version: int = 2
    basis: Mapping[str, Any] = field(default_factory=dict)

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

    def default_spec(self) -> ModelSpec:
        """The untuned default: the spec of the study's first (enqueued) trial."""
        return self.build(self.defaults)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "params": [p.describe() for p in self.params],
            "defaults": dict(sorted(self.defaults.items())),
            "basis": dict(self.basis),
        }

    def fingerprint(self) -> str:
        text = json.dumps(self.describe(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


# ----------------------------------------------------------------------- feature families
#: Feature families a trial may switch off; ``freq`` (the share of images showing each concept)
#: is always used: it carries most of the signal on both real data sets (docs/results.md).
FAMILY_SWITCHES: tuple[str, ...] = tuple(f for f in FAMILIES if f != "freq")
CALIBRATION_CHOICES: tuple[str, ...] = ("none", "normal", "isotonic")
FORMULATION_CHOICES: tuple[str, ...] = ("per-situation", "pooled")


def feature_params() -> tuple[Param, ...]:
    return tuple(choice(f"use_{family}", True, False) for family in FAMILY_SWITCHES)


def feature_defaults(base: tuple[str, ...] | None = DEFAULT_FAMILIES) -> dict[str, bool]:
    """Switch values that reproduce the families `base` (None = all)."""
    return {f"use_{f}": base is None or f in base for f in FAMILY_SWITCHES}


def families_from(
    values: Mapping[str, Any], own: tuple[str, ...] | None = DEFAULT_FAMILIES
) -> tuple[str, ...]:
    """The families of a model whose untuned families are `own`, under the switches in
    `values`: the switched-off ones leave, the switched-on ones it lacks join (at the end, so
    the default switches give `own` back in its own order), ``freq`` stays."""
    return member_families(values, own, own)


def member_families(
    values: Mapping[str, Any], own: tuple[str, ...] | None, base: tuple[str, ...] | None
) -> tuple[str, ...]:
    """`families_from` for an ensemble member: families of `own` outside the `base` the
    switches were set from (e.g. ``ridge-wide``'s extra max/mean confidence and areas) stay
    whatever the switches say, so the member keeps what makes its errors differ."""
    own = tuple(FAMILIES) if own is None else own
    base = tuple(FAMILIES) if base is None else base
    on = {"freq", *(f for f in FAMILY_SWITCHES if values[f"use_{f}"])}
    kept = tuple(f for f in own if f in on or f not in base)
    return kept + tuple(f for f in FAMILY_SWITCHES if f in on and f not in kept)


# ------------------------------------------------------------ key parameters of each learner
def around(
    name: str, centre: float, factor: float, *, whole: bool = False, cap: float | None = None
) -> Param:
    """A log range from ``centre / factor`` to ``centre * factor`` (at most `cap`): centred on
    the back-end's default, so the untuned preset sits in the middle of what is searched."""
    low, high = centre / factor, centre * factor
    if cap is not None:
        high = min(high, cap)
    if whole:
        return integer(name, max(1, round(low)), round(high), log=True)
    return floating(name, low, high, log=True)


def _depths(default: int) -> Param:
    return integer("max_depth", max(2, default - 1), default + 2)


def learner_params(key: str) -> tuple[Param, ...]:
    """The few parameters of back-end `key` worth tuning on a few hundred users, native names,
    ranges centred on `LEARNERS[key].defaults`.

    LightGBM grows depth-limited trees here like XGBoost (``num_leaves`` = 2^depth - 1, the
    defaults' 7 for depth 3), so depth is one parameter, not two that overrule each other.
    """
    cls = LEARNERS[key]
    if issubclass(cls, RidgeLearner):
        return (
            choice("alpha_auto", True, False),
            floating("alpha", 0.1, 1e4, log=True, when={"alpha_auto": (False,)}),
            choice("block_scale", True, False),
        )
    if issubclass(cls, ExtraTreesLearner):
        d = cls.defaults
        return (
            around("max_features", d["max_features"], 2.0, cap=1.0),
            around("min_samples_leaf", d["min_samples_leaf"], 2.5, whole=True),
        )
    d = cls.defaults
    if issubclass(cls, LightGBMLearner):
        return (
            around("learning_rate", d["learning_rate"], 3.0),
            around("num_boost_round", d["num_boost_round"], 3.0, whole=True),
            _depths(d["max_depth"]),
            around("min_data_in_leaf", d["min_data_in_leaf"], 3.0, whole=True),
            around("feature_fraction", d["feature_fraction"], 2.0, cap=1.0),
            around("lambda_l2", d["lambda_l2"], 10.0),
        )
    if issubclass(cls, XGBoostLearner):
        params: tuple[Param, ...] = (
            around("eta", d["eta"], 3.0),
            around("num_boost_round", d["num_boost_round"], 3.0, whole=True),
            _depths(d["max_depth"]),
            around("min_child_weight", d["min_child_weight"], 4.0),
            around("subsample", d["subsample"], 1.25, cap=1.0),
            around("colsample_bytree", d["colsample_bytree"], 2.0, cap=1.0),
            around("lambda", d["lambda"], 10.0),
        )
        if "lambdarank_pair_method" in d:
            params += (
                choice("lambdarank_pair_method", "mean", "topk"),
                around(
                    "lambdarank_num_pair_per_sample",
                    d["lambdarank_num_pair_per_sample"],
                    4.0,
                    whole=True,
                ),
            )
        return params
    return ()


def learner_defaults(key: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Values of `learner_params(key)` that give back the back-end's defaults overlaid with
    `params` (a preset's own parameters), so the default trial rebuilds the preset."""
    cls = LEARNERS[key]
    params = dict(params or {})
    if issubclass(cls, RidgeLearner):
        alpha = params.get("alpha", "auto")
        out: dict[str, Any] = {"alpha_auto": alpha == "auto"}
        if alpha != "auto":
            out["alpha"] = float(alpha)
        out["block_scale"] = bool(params.get("block_scale", True))
        return out
    merged = {**cls.defaults, **params}
    return {p.name: merged[p.name] for p in learner_params(key) if p.name in merged}


def native_params(
    key: str, values: Mapping[str, Any], carried: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Back-end parameters of back-end `key` from sampled `values` (names of
    `learner_params`), on top of `carried` untuned ones; those equal to the back-end's
    defaults are left out, so a default trial's spec equals the preset's."""
    cls = LEARNERS[key]
    out = dict(carried or {})
    if issubclass(cls, RidgeLearner):
        if "alpha_auto" in values:
            out["alpha"] = "auto" if values["alpha_auto"] else float(values["alpha"])
        if "block_scale" in values:
            out["block_scale"] = bool(values["block_scale"])
    else:
        names = {p.name for p in learner_params(key)}
        out.update({k: v for k, v in values.items() if k in names})
        if issubclass(cls, LightGBMLearner) and "max_depth" in values:
            out["num_leaves"] = 2 ** int(values["max_depth"]) - 1
    return {k: v for k, v in out.items() if k not in cls.defaults or cls.defaults[k] != v}


# ------------------------------------------------------------------------------ families
def _single_learner_space(key: str, description: str) -> SearchSpace:
    """One back-end, per-situation or pooled, with its key parameters; the default trial is
    the preset `key` itself."""
    cls = LEARNERS[key]
    basis = PRESETS[key]
    extra: tuple[Param, ...] = ()
    if cls.needs_grades:
        extra += (integer("n_grades", 2, 31),)
    if cls.uses_queries:
        extra += (integer("subqueries", 1, 8, when={"formulation": ("per-situation",)}),)
    params = (
        choice("formulation", *FORMULATION_CHOICES),
        *learner_params(key),
        *extra,
        *feature_params(),
        choice("calibration", *CALIBRATION_CHOICES),
    )

    def build(values: Mapping[str, Any]) -> ModelSpec:
        return replace(
            basis,
            formulation=values["formulation"],
            params=native_params(key, values, basis.params),
            families=families_from(values, basis.families),
            n_grades=int(values.get("n_grades", basis.n_grades)),
            subqueries=int(values.get("subqueries", basis.subqueries)),
            calibration=values["calibration"],
        )

    defaults = {
        "formulation": basis.formulation,
        **learner_defaults(key, basis.params),
        **feature_defaults(basis.families),
        "calibration": basis.calibration,
    }
    if cls.needs_grades:
        defaults["n_grades"] = basis.n_grades
    if cls.uses_queries:
        defaults["subqueries"] = basis.subqueries
    return SearchSpace(key, description, params, build, defaults, basis=basis.to_dict())


#: The boosting learners a boosting member of the ensemble may become: regression or the
#: Pearson objective, XGBoost or LightGBM (the classic ranking objectives lost 0.06-0.10 alone).
BOOSTING: tuple[str, ...] = ("xgb-regression", "xgb-pearson", "lgbm-regression", "lgbm-pearson")
#: Presets the ensemble may add as members (off in the default trial) when the preset does
#: not already hold them: the best GBDTs alone.
EXTRA_MEMBERS: tuple[str, ...] = ("lgbm-pearson", "xgb-regression")
#: How members are combined: the preset's fixed weights, or weights learned by stacking.
COMBINATIONS: tuple[str, ...] = ("fixed", "stacked")
#: The preset the ensemble family starts from (its default trial).
ENSEMBLE_BASIS = "default"


def member_names(members: tuple[ModelSpec, ...]) -> list[str]:
    """A name for each member of an ensemble preset: the preset it is (seed aside), e.g.
    ``ridge-wide``, else ``member<i>``. Parameter names of the ensemble space start with it."""
    singles = {
        name: spec for name, spec in PRESETS.items() if spec.learner not in ("ensemble", "base")
    }
    names: list[str] = []
    for i, member in enumerate(members):
        unseeded = replace(member, seed=0)
        name = next((n for n, s in singles.items() if s == unseeded), f"member{i + 1}")
        names.append(name if name not in names else f"{name}-{i + 1}")
    return names


def _common_families(members: tuple[ModelSpec, ...]) -> tuple[str, ...] | None:
    """The families every member uses (in the first member's order): what the switches set."""
    sets = [set(FAMILIES) if m.families is None else set(m.families) for m in members]
    common = set.intersection(*sets)
    first = tuple(FAMILIES) if members[0].families is None else members[0].families
    return tuple(f for f in first if f in common)


def _ensemble_space(basis_name: str = ENSEMBLE_BASIS) -> SearchSpace:
    """The members of the preset `basis_name` (the first always in, the others switchable),
    optional extra members, each boosting member's objective, every member's key parameters,
    the feature families, and fixed weights vs stacking. Everything about the default comes
    from the preset when the module is imported, never from a copy of it here."""
    basis = PRESETS[basis_name]
    members = basis.members
    names = member_names(members)
    base = _common_families(members)
    extras = [e for e in EXTRA_MEMBERS if e not in names]
    params: list[Param] = []
    defaults: dict[str, Any] = {}
    for i, (name, member) in enumerate(zip(names, members, strict=True)):
        when: dict[str, tuple[Choice, ...]] = {}
        if i > 0:
            params.append(choice(f"use.{name}", True, False))
            defaults[f"use.{name}"] = True
            when = {f"use.{name}": (True,)}
        if member.learner in BOOSTING:
            params.append(choice(f"{name}.learner", *BOOSTING, when=when))
            defaults[f"{name}.learner"] = member.learner
            for learner in BOOSTING:
                condition = {**when, f"{name}.learner": (learner,)}
                params += prefixed(learner_params(learner), f"{name}.{learner}.", condition)
            own = learner_defaults(member.learner, member.params)
            defaults.update({f"{name}.{member.learner}.{k}": v for k, v in own.items()})
        else:
            params += prefixed(learner_params(member.learner), f"{name}.", when)
            own = learner_defaults(member.learner, member.params)
            defaults.update({f"{name}.{k}": v for k, v in own.items()})
    for extra in extras:
        params.append(choice(f"use.{extra}", False, True))
        defaults[f"use.{extra}"] = False
        learner = PRESETS[extra].learner
        params += prefixed(learner_params(learner), f"{extra}.", {f"use.{extra}": (True,)})
    params += feature_params()
    defaults.update(feature_defaults(base))
    params.append(choice("combine", *COMBINATIONS))
    defaults["combine"] = "fixed" if basis.weights else "stacked"
    extra_weight = sum(basis.weights) / len(basis.weights) if basis.weights else 1.0

    def build(values: Mapping[str, Any]) -> ModelSpec:
        chosen: list[ModelSpec] = []
        weights: list[float] = []
        for i, (name, member) in enumerate(zip(names, members, strict=True)):
            if i > 0 and not values[f"use.{name}"]:
                continue
            learner = values.get(f"{name}.learner", member.learner)
            prefix = f"{name}.{learner}." if member.learner in BOOSTING else f"{name}."
            carried = member.params if learner == member.learner else {}
            chosen.append(
                replace(
                    member,
                    learner=learner,
                    params=native_params(learner, unprefixed(values, prefix), carried),
                    families=member_families(values, member.families, base),
                )
            )
            weights.append(float(basis.weights[i]) if basis.weights else 1.0)
        for extra in extras:
            if values[f"use.{extra}"]:
                spec = PRESETS[extra]
                chosen.append(
                    replace(
                        spec,
                        params=native_params(
                            spec.learner, unprefixed(values, f"{extra}."), spec.params
                        ),
                        families=member_families(values, spec.families, base),
                    )
                )
                weights.append(extra_weight)
        if values["combine"] == "fixed":
            ensemble = replace(basis, members=tuple(chosen), weights=tuple(weights), params={})
        else:
            options = basis.params if not basis.weights else STACKED_OPTIONS
            ensemble = replace(basis, members=tuple(chosen), weights=(), params=options)
        return ensemble.with_seed(basis.seed)

    return SearchSpace(
        "ensemble",
        f"the {basis_name!r} preset's members (switchable) + optional "
        f"{', '.join(extras) or 'none'}, boosting objective, key parameters, feature "
        "families, fixed weights or stacking",
        tuple(params),
        build,
        defaults,
        basis=basis.to_dict(),
    )


def _any_space(spaces: Mapping[str, SearchSpace]) -> SearchSpace:
    """Every family at once: the family is a choice, each family's parameters depend on it."""
    names = tuple(spaces)
    params: tuple[Param, ...] = (choice("family", *names),)
    for name, space in spaces.items():
        params += prefixed(space.params, f"{name}/", when={"family": (name,)})

    def build(values: Mapping[str, Any]) -> ModelSpec:
        family = values["family"]
        return spaces[family].build(unprefixed(values, f"{family}/"))

    defaults = {
        "family": DEFAULT_SPACE,
        **{f"{DEFAULT_SPACE}/{k}": v for k, v in spaces[DEFAULT_SPACE].defaults.items()},
    }
    return SearchSpace(
        "any",
        "every family above; the family itself is a parameter",
        params,
        build,
        defaults,
        basis=spaces[DEFAULT_SPACE].basis,
    )


#: The family tuned when none is given: the default model's own ensemble.
DEFAULT_SPACE = "ensemble"


def _spaces() -> dict[str, SearchSpace]:
    spaces = {
        "ensemble": _ensemble_space(),
        "ridge": _single_learner_space("ridge", "ridge regression (block-scaled features)"),
        "xgb-regression": _single_learner_space("xgb-regression", "XGBoost reg:squarederror"),
        "lgbm-regression": _single_learner_space("lgbm-regression", "LightGBM regression"),
        "lgbm-pearson": _single_learner_space("lgbm-pearson", "LightGBM, Pearson objective"),
        "xgb-pearson": _single_learner_space("xgb-pearson", "XGBoost, Pearson objective"),
        "extra-trees": _single_learner_space("extra-trees", "multi-output extra trees"),
        "lgbm-lambdarank": _single_learner_space("lgbm-lambdarank", "LightGBM LambdaMART"),
        "xgb-pairwise": _single_learner_space("xgb-pairwise", "XGBoost rank:pairwise"),
        "xgb-ndcg": _single_learner_space("xgb-ndcg", "XGBoost rank:ndcg"),
    }
    spaces["any"] = _any_space(dict(spaces))
    return spaces


#: Search spaces by ``--model FAMILY`` name.
SPACES: dict[str, SearchSpace] = _spaces()


def get_space(name: str) -> SearchSpace:
    if name not in SPACES:
        raise LtrError(f"unknown model family {name!r} to tune (known: {', '.join(SPACES)})")
    return SPACES[name]


def default_preset(name: str) -> str:
    """The preset a family's default trial equals (`ltr train --model` of the untuned model)."""
    space = get_space(name)
    return ENSEMBLE_BASIS if space.name in ("ensemble", "any") else space.name
