"""What a model is, as data: a JSON-friendly specification, and the named presets.

A spec is everything needed to rebuild an untrained model: the back-end, the formulation, the
hyper-parameters, the feature families, the relevance grades, the calibration, the seed, and for
an ensemble its members. `ltr cv/train --params FILE` and Optuna trials produce specs; saved
models store theirs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ltr.errors import LtrError

FORMULATIONS = ("per-situation", "pooled")
CALIBRATIONS = ("none", "normal", "linear", "isotonic")


@dataclass(frozen=True)
class ModelSpec:
    """An untrained model.

    Attributes:
        learner: a back-end key of `ltr.models.learners.LEARNERS`, ``base`` or ``ensemble``.
        formulation: ``per-situation`` (one model per situation, its training users form the
            query) or ``pooled`` (one model over (user, situation) rows, query = situation).
        params: native hyper-parameters of the back-end (LightGBM / XGBoost names, ridge alpha).
        families: feature families to use (None = all the featuriser produces).
        n_grades: relevance grades (quantile bins of the labels) for NDCG-type objectives.
        subqueries: per-situation ranking only: split the training users at random into this
            many queries (1 = one query per situation).
        calibration: output calibration, one of `CALIBRATIONS`.
        members, weights: the models of an ensemble and their weights.
        seed: seeds every random choice of the model (bagging, sub-queries, inner folds).
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
        if self.formulation not in FORMULATIONS:
            raise LtrError(
                f"unknown formulation {self.formulation!r} (choose {', '.join(FORMULATIONS)})"
            )
        if self.calibration not in CALIBRATIONS:
            raise LtrError(
                f"unknown calibration {self.calibration!r} (choose {', '.join(CALIBRATIONS)})"
            )
        if self.learner == "ensemble" and not self.members:
            raise LtrError("an ensemble needs at least one member")
        if self.weights and len(self.weights) != len(self.members):
            raise LtrError("an ensemble needs one weight per member")
        if self.n_grades < 2 or self.subqueries < 1:
            raise LtrError("n_grades must be >= 2 and subqueries >= 1")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "learner": self.learner,
            "formulation": self.formulation,
            "params": dict(self.params),
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
        if values.get("families") is not None:
            values["families"] = tuple(values["families"])
        values["members"] = tuple(
            cls.from_dict(m, where=f"{where}, member {i + 1}")
            for i, m in enumerate(values.get("members", ()))
        )
        values["weights"] = tuple(float(w) for w in values.get("weights", ()))
        values["params"] = dict(values.get("params", {}))
        try:
            return cls(**values)
        except TypeError as error:
            raise LtrError(f"{where}: {error}") from None

    def with_seed(self, seed: int) -> ModelSpec:
        """The same spec with `seed` for itself and every member (members get seed + i)."""
        members = tuple(m.with_seed(seed + i) for i, m in enumerate(self.members))
        return dataclasses.replace(self, seed=seed, members=members)

    def merged(self, overrides: Mapping[str, Any], *, where: str = "parameters") -> ModelSpec:
        """This spec with fields of `overrides` replaced (``params`` is merged key by key)."""
        data = self.to_dict()
        for key, value in overrides.items():
            if key == "params" and isinstance(value, Mapping):
                data["params"] = {**data["params"], **value}
            else:
                data[key] = value
        return ModelSpec.from_dict(data, where=where)
