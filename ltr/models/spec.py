"""What a model is, as data: a JSON-friendly specification, and the named presets.

A spec is everything needed to rebuild an untrained model: the back-end, the formulation, the
hyper-parameters, the feature families, the relevance grades, the calibration, the seed, and for
an ensemble its members. `ltr cv/train --params FILE` and Optuna trials produce specs; saved
models store theirs.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from numbers import Integral, Real
from typing import Any

from ltr.errors import LtrError, quoted
from ltr.features.config import check_families
from ltr.models.learners import LEARNERS
from ltr.models.params import FrozenParams, check_param_names, plain
from ltr.models.stacking import stacking_options

FORMULATIONS = ("per-situation", "pooled")
CALIBRATIONS = ("none", "normal", "linear", "isotonic")
#: Learners that are not back-ends of `ltr.models.learners.LEARNERS`.
SPECIAL_LEARNERS = ("base", "ensemble")
#: Most relevance grades: LightGBM's default label gains and XGBoost's exponential NDCG gain
#: both stop at 31 (more crashes inside the back-end).
MAX_GRADES = 31


def _is_int(value: object) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


@dataclass(frozen=True)
class ModelSpec:
    """An untrained model, as plain data: what ``--params`` files, saved models and studies hold.

    A spec is validated as a whole when it is built (unknown fields, learners, families or
    calibrations, non-positive weights...) and is deeply immutable.

    Attributes:
        learner: A back-end key of `ltr.models.learners.LEARNERS`, ``base`` or ``ensemble``.
        formulation: ``per-situation`` (one model per situation, its training users form the
            query) or ``pooled`` (one model over (user, situation) rows, query = situation).
        params: Native hyper-parameters of the back-end (LightGBM / XGBoost names, ridge
            ``alpha``); for an ensemble, the stacker's options.
        families: Feature families to use (None = all the featuriser produces).
        n_grades: Relevance grades (quantile bins of the labels) for NDCG-type objectives.
        subqueries: Per-situation ranking only: split the training users at random into this
            many queries (1 = one query per situation).
        calibration: Output calibration, one of `CALIBRATIONS`.
        members: The models of an ensemble.
        weights: Their fixed weights; empty: learned by stacking (`ltr.models.stacking`).
        seed: Seeds every random choice of the model (bagging, sub-queries, inner folds).

    Example:
        >>> spec = ModelSpec("lgbm-regression", params={"num_leaves": 15}, families=("freq",))
        >>> dict(spec.merged({"params": {"learning_rate": 0.05}}).params)
        {'num_leaves': 15, 'learning_rate': 0.05}
    """

    learner: str
    formulation: str = "per-situation"
    params: Mapping[str, Any] = field(default_factory=dict)
    families: tuple[str, ...] | None = None
    n_grades: int = 16
    subqueries: int = 1
    calibration: str = "none"
    members: tuple[ModelSpec, ...] = ()
    weights: tuple[float, ...] = ()
    seed: int = 0

    def __post_init__(self) -> None:
        # Refuse a bad spec here, with its field named, rather than deep inside a back-end
        # after the features are computed (or, worse, train something else than asked).
        if isinstance(self.params, Mapping):
            object.__setattr__(self, "params", FrozenParams(self.params))
        for name in ("families", "members", "weights"):
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        known = (*SPECIAL_LEARNERS, *LEARNERS)
        if self.learner not in known:
            raise LtrError(f"unknown learner {quoted(self.learner)} (known: {', '.join(known)})")
        if self.formulation not in FORMULATIONS:
            raise LtrError(
                f"unknown formulation {quoted(self.formulation)} (choose {', '.join(FORMULATIONS)})"
            )
        if self.calibration not in CALIBRATIONS:
            raise LtrError(
                f"unknown calibration {quoted(self.calibration)} (choose {', '.join(CALIBRATIONS)})"
            )
        if not isinstance(self.params, Mapping):
            raise LtrError(
                f"params must be an object of back-end parameters, not {quoted(self.params)}"
            )
        if self.learner in LEARNERS:
            check_param_names(self.learner, self.params, LEARNERS[self.learner])
            LEARNERS[self.learner].check_params(self.params)
        if self.families is not None:
            if not isinstance(self.families, tuple) or not all(
                isinstance(f, str) for f in self.families
            ):
                raise LtrError(
                    f"families must be a list of family names, not {quoted(self.families)}"
                )
            if not self.families:
                raise LtrError(
                    "families must name at least one family (leave the field out, or null, "
                    "for every family)"
                )
            check_families(self.families)
        if not _is_int(self.n_grades) or not 2 <= self.n_grades <= MAX_GRADES:
            raise LtrError(
                f"n_grades must be an integer from 2 to {MAX_GRADES}, not {quoted(self.n_grades)}"
            )
        if not _is_int(self.subqueries) or self.subqueries < 1:
            raise LtrError(f"subqueries must be an integer >= 1, not {quoted(self.subqueries)}")
        if not _is_int(self.seed) or self.seed < 0:
            raise LtrError(f"seed must be an integer >= 0, not {quoted(self.seed)}")
        self._check_ensemble()

    def _check_ensemble(self) -> None:
        if self.learner != "ensemble":
            if self.members or self.weights:
                raise LtrError(
                    f"only an ensemble has members and weights, not {quoted(self.learner)}"
                )
            return
        if not self.members:
            raise LtrError("an ensemble needs at least one member")
        if self.params and self.weights:
            raise LtrError(
                "an ensemble with fixed weights has no params of its own (they would be "
                "ignored): set them on its members, or drop the weights to learn them"
            )
        stacking_options(self.params)
        if self.weights and len(self.weights) != len(self.members):
            raise LtrError("an ensemble needs one weight per member")
        bad = [w for w in self.weights if not isinstance(w, Real) or not math.isfinite(w) or w < 0]
        if bad or (self.weights and not sum(self.weights) > 0):
            raise LtrError(
                "ensemble weights must be finite, >= 0 and not all 0, got "
                f"{quoted(list(self.weights))}"
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what ``--params`` files, saved models and studies hold)."""
        out: dict[str, Any] = {
            "learner": self.learner,
            "formulation": self.formulation,
            "params": plain(self.params),
            "families": None if self.families is None else list(self.families),
            "n_grades": self.n_grades,
            "subqueries": self.subqueries,
            "calibration": self.calibration,
            "seed": self.seed,
        }
        if self.members:
            out["members"] = [m.to_dict() for m in self.members]
            out["weights"] = list(self.weights)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "model spec") -> ModelSpec:
        """A spec from its JSON form, validated as a whole.

        Args:
            data: The spec's fields (``learner`` required; members of an ensemble nested).
            where: What the data is, in messages (e.g. the ``--params`` file).

        Returns:
            The spec.

        Raises:
            LtrError: Not an object, an unknown field, learner, family or calibration, or an
                invalid value; the message names the field.
        """
        if not isinstance(data, Mapping):
            raise LtrError(f"{where}: expected an object of spec fields, not {quoted(data)}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise LtrError(
                f"{where}: unknown field(s) {', '.join(unknown)} "
                f"(known: {', '.join(sorted(known))})"
            )
        if "learner" not in data:
            raise LtrError(f"{where}: missing field 'learner'")
        values = dict(data)
        for name in ("families", "members", "weights"):
            value = values.get(name)
            if value is not None and not isinstance(value, (list, tuple)):
                raise LtrError(f"{where}: {name} must be a list, not {quoted(value)}")
        if values.get("families") is not None:
            values["families"] = tuple(values["families"])
        values["members"] = tuple(
            cls.from_dict(m, where=f"{where}, member {i + 1}")
            for i, m in enumerate(values.get("members", ()))
        )
        try:
            values["weights"] = tuple(float(w) for w in values.get("weights", ()))
            if isinstance(values.get("params"), Mapping):
                values["params"] = dict(values["params"])
            return cls(**values)
        except (TypeError, ValueError, OverflowError, LtrError) as error:
            raise LtrError(f"{where}: {error}") from None

    def with_seed(self, seed: int) -> ModelSpec:
        """The same spec seeded: `seed` for itself, ``seed + i`` for its i-th member.

        Args:
            seed: The seed.

        Returns:
            A new spec.
        """
        members = tuple(m.with_seed(seed + i) for i, m in enumerate(self.members))
        return dataclasses.replace(self, seed=seed, members=members)

    def merged(self, overrides: Mapping[str, Any], *, where: str = "parameters") -> ModelSpec:
        """This spec with fields replaced (``params`` is merged key by key).

        Args:
            overrides: Fields to replace, as in a ``--params`` file.
            where: What the overrides are, in messages.

        Returns:
            A new, validated spec.

        Raises:
            LtrError: The result is not a valid spec.
        """
        data = self.to_dict()
        for key, value in overrides.items():
            if key == "params" and isinstance(value, Mapping):
                data["params"] = {**data["params"], **value}
            else:
                data[key] = value
        return ModelSpec.from_dict(data, where=where)
