"""An ensemble: per situation, a weighted sum of its members' standardised scores.

Members differ in back-end, formulation or features, so their errors differ too; combining their
scores is the most robust gain on a few hundred training users. Two ways to combine:

- *fixed* (the spec gives `weights`): each member's scores are standardised per situation with
  the mean and spread of its scores on the training users, then averaged with those weights.
  Cheap (no inner fits); the weights are the caller's choice (e.g. a tuning study's).
- *learned* (no `weights`): stacking (`ltr.models.stacking`). An inner K-fold gives every member
  out-of-fold scores on the training users; they set the standardisation and non-negative
  weights per situation (or shared), optionally followed by a cross-situation second level.
  Learning on out-of-fold scores keeps an overfitting member from looking better than it is.

Either way a single user can be scored on its own and no member dominates by scale.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold

from ltr.features import FeatureMatrix
from ltr.fileio import write_json_atomic
from ltr.models.interface import ProfileModel
from ltr.models.spec import ModelSpec
from ltr.models.stacking import (
    blend,
    cross_situation_mix,
    member_weights,
    stacking_options,
    standardise,
)
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

    @property
    def learned(self) -> bool:
        """Whether the weights are learned (stacking) rather than given by the spec."""
        return not self.spec.weights

    def _fixed_weights(self) -> np.ndarray:
        weights = np.asarray(self.spec.weights or [1.0] * len(self.spec.members), dtype=float)
        return np.tile(weights / weights.sum(), (len(SITUATIONS), 1))

    def _fit_scores(self, features: FeatureMatrix, y: np.ndarray) -> None:
        labels = pd.DataFrame(y, index=features.users, columns=list(SITUATIONS))
        self.mix_: np.ndarray | None = None
        if self.learned:
            self._fit_stacker(features, y)
        self.members_ = self._members()
        for member in self.members_:
            member.fit(features, labels)
        if not self.learned:
            self.weights_ = self._fixed_weights()
            self.centers_, self.scales_ = [], []
            for member in self.members_:
                center, scale = standardise(member.predict_array(features))
                self.centers_.append(center)
                self.scales_.append(scale)

    def out_of_fold_scores(self, features: FeatureMatrix, y: np.ndarray) -> np.ndarray:
        """(n_users x 4 x members) scores of every training user by members that did not see
        it: inner K-fold (`inner_folds`), folds seeded by the ensemble's seed."""
        options = stacking_options(self.spec.params)
        labels = pd.DataFrame(y, index=features.users, columns=list(SITUATIONS))
        scores = np.zeros((len(y), len(SITUATIONS), len(self.spec.members)))
        folds = KFold(options["inner_folds"], shuffle=True, random_state=self.spec.seed)
        for train, held in folds.split(y):
            for m, member in enumerate(self._members()):
                member.fit(features.take(train), labels)
                scores[held, :, m] = member.predict_array(features.take(held))
        return scores

    def _fit_stacker(self, features: FeatureMatrix, y: np.ndarray) -> None:
        options = stacking_options(self.spec.params)
        oof = self.out_of_fold_scores(features, y)
        stats = [standardise(oof[:, :, m]) for m in range(oof.shape[2])]
        self.centers_ = [center for center, _ in stats]
        self.scales_ = [scale for _, scale in stats]
        standardised = self._standardised(oof)
        self.weights_ = member_weights(
            standardised, y, share=options["share"], shrink=options["shrink"]
        )
        if options["cross"]:
            blended = blend(standardised, self.weights_)
            self.mix_center_, self.mix_scale_ = standardise(blended)
            self.mix_ = cross_situation_mix((blended - self.mix_center_) / self.mix_scale_, y)

    def _standardised(self, scores: np.ndarray) -> np.ndarray:
        centers = np.stack(self.centers_, axis=-1)
        scales = np.stack(self.scales_, axis=-1)
        standardised: np.ndarray = (scores - centers) / scales
        return standardised

    def _predict_scores(self, features: FeatureMatrix) -> np.ndarray:
        scores = np.stack([member.predict_array(features) for member in self.members_], axis=-1)
        total = blend(self._standardised(scores), self.weights_)
        if self.mix_ is not None:
            total = ((total - self.mix_center_) / self.mix_scale_) @ self.mix_
        return total

    def _save_state(self, directory: Path, prefix: str) -> list[str]:
        names = []
        for i, member in enumerate(self.members_):
            names += member.save(directory, f"{prefix}m{i + 1}-")
        state: dict[str, Any] = {
            "centers": [c.tolist() for c in self.centers_],
            "scales": [s.tolist() for s in self.scales_],
            "weights": self.weights_.tolist(),
            "mix": None,
        }
        if self.mix_ is not None:
            state["mix"] = {
                "center": self.mix_center_.tolist(),
                "scale": self.mix_scale_.tolist(),
                "matrix": self.mix_.tolist(),
            }
        name = f"{prefix}ensemble.json"
        write_json_atomic(directory / name, state)
        return [*names, name]

    def _load_state(self, directory: Path, prefix: str) -> None:
        self.members_ = [
            member.load(directory, f"{prefix}m{i + 1}-") for i, member in enumerate(self._members())
        ]
        state = json.loads((directory / f"{prefix}ensemble.json").read_text(encoding="utf-8"))
        self.centers_ = [np.asarray(c, dtype=float) for c in state["centers"]]
        self.scales_ = [np.asarray(s, dtype=float) for s in state["scales"]]
        # a model saved before stacking existed holds no weights: its spec's fixed weights
        weights = state.get("weights")
        self.weights_ = (
            self._fixed_weights() if weights is None else np.asarray(weights, dtype=float)
        )
        mix = state.get("mix")
        self.mix_ = None
        if mix is not None:
            self.mix_center_ = np.asarray(mix["center"], dtype=float)
            self.mix_scale_ = np.asarray(mix["scale"], dtype=float)
            self.mix_ = np.asarray(mix["matrix"], dtype=float)
