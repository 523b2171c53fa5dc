"""An ensemble: the weighted average of its members' standardised scores.

Members differ in back-end, formulation or features, so their errors differ too; averaging
their scores is the most robust gain on a few hundred training users. Each member's scores are
standardised per situation with the mean and spread of its scores on the training users, so a
single user can be scored and no member dominates by scale.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from ltr.features import FeatureMatrix
from ltr.fileio import write_json_atomic
from ltr.models.interface import ProfileModel
from ltr.models.spec import ModelSpec
from ltr.situations import SITUATIONS

#: Builds an untrained member from its spec (the registry's `build_model`, passed in so that
#: this module does not import the registry that imports it).
MemberFactory = Callable[..., ProfileModel]


class EnsembleModel(ProfileModel):
    def __init__(self, spec: ModelSpec, *, threads: int = 1, build_member: MemberFactory) -> None:
        super().__init__(spec, threads=threads)
        self.build_member = build_member

    def _clone(self, spec: ModelSpec) -> ProfileModel:
        return EnsembleModel(spec, threads=self.threads, build_member=self.build_member)

    def _members(self) -> list[ProfileModel]:
        return [self.build_member(spec, threads=self.threads) for spec in self.spec.members]

    def _weights(self) -> np.ndarray:
        weights = np.asarray(self.spec.weights or [1.0] * len(self.spec.members), dtype=float)
        return weights / weights.sum()

    def _fit_scores(self, features: FeatureMatrix, y: np.ndarray) -> None:
        labels = pd.DataFrame(y, index=features.users, columns=list(SITUATIONS))
        self.members_ = self._members()
        self.centers_, self.scales_ = [], []
        for member in self.members_:
            member.fit(features, labels)
            scores = member.predict_array(features)
            std = scores.std(axis=0)
            self.centers_.append(scores.mean(axis=0))
            self.scales_.append(np.where(std > 0, std, 1.0))

    def _predict_scores(self, features: FeatureMatrix) -> np.ndarray:
        total = np.zeros((features.shape[0], len(SITUATIONS)))
        for weight, member, center, scale in zip(
            self._weights(), self.members_, self.centers_, self.scales_, strict=True
        ):
            total += weight * (member.predict_array(features) - center) / scale
        return total

    def _save_state(self, directory: Path, prefix: str) -> list[str]:
        names = []
        for i, member in enumerate(self.members_):
            names += member.save(directory, f"{prefix}m{i + 1}-")
        name = f"{prefix}ensemble.json"
        write_json_atomic(
            directory / name,
            {
                "centers": [c.tolist() for c in self.centers_],
                "scales": [s.tolist() for s in self.scales_],
            },
        )
        return [*names, name]

    def _load_state(self, directory: Path, prefix: str) -> None:
        self.members_ = [
            member.load(directory, f"{prefix}m{i + 1}-") for i, member in enumerate(self._members())
        ]
        state = json.loads((directory / f"{prefix}ensemble.json").read_text(encoding="utf-8"))
        self.centers_ = [np.asarray(c, dtype=float) for c in state["centers"]]
        self.scales_ = [np.asarray(s, dtype=float) for s in state["scales"]]
