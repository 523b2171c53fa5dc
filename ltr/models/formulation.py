"""How the four situations become ranking queries for a back-end.

(a) `PerSituationModel`: one learner per situation; that situation's training users form the
    query (optionally split at random into sub-queries).
(b) `PooledModel`: one learner over (user, situation) rows; the query is the situation. A row
    holds the situation-agnostic features, the features *of its own situation* in shared columns
    (``conf_sum:acc`` for an acc row, ``conf_sum:bank`` for a bank row, ...) and a situation
    indicator, so the four situations share what they have in common (4x the rows to learn from).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ltr.features import FeatureMatrix
from ltr.models.interface import ProfileModel
from ltr.models.learners import LEARNERS, Learner, relevance_grades
from ltr.situations import SITUATIONS


def _learner_class(key: str) -> type[Learner]:
    return LEARNERS[key]


def concept_blocks(features: FeatureMatrix) -> np.ndarray:
    """Block id per column: one block per per-concept family, -1 for every other column."""
    columns = features.columns
    is_concept = columns["concept"].notna().to_numpy()
    codes = pd.factorize(columns["family"])[0]
    return np.where(is_concept, codes, -1)


def _targets(learner: Learner, y: np.ndarray, n_grades: int) -> np.ndarray:
    return relevance_grades(y, n_grades) if learner.needs_grades else y


class PerSituationModel(ProfileModel):
    """One back-end model per situation."""

    def _new_learner(self, index: int) -> Learner:
        cls = _learner_class(self.spec.learner)
        return cls(self.spec.params, seed=self.spec.seed + index, threads=self.threads)

    def _fit_scores(self, features: FeatureMatrix, y: np.ndarray) -> None:
        X = features.dense()
        blocks = concept_blocks(features)
        rng = np.random.default_rng(self.spec.seed)
        self.learners_: list[Learner] = [self._new_learner(j) for j in range(len(SITUATIONS))]
        first = self.learners_[0]
        if not (first.uses_queries or first.needs_grades):  # plain regression on the same rows
            type(first).fit_targets(self.learners_, X, y, blocks)
            return
        for j, learner in enumerate(self.learners_):
            target = _targets(learner, y[:, j], self.spec.n_grades)
            query = np.zeros(len(target), dtype=np.int64)
            order = np.arange(len(target))
            if learner.uses_queries and self.spec.subqueries > 1:
                query[rng.permutation(len(target))] = np.arange(len(target)) % self.spec.subqueries
                order = np.argsort(query, kind="stable")
            learner.fit(X[order], target[order], query[order], blocks)

    def _predict_scores(self, features: FeatureMatrix) -> np.ndarray:
        X = features.dense()
        return type(self.learners_[0]).predict_targets(self.learners_, X)

    def _save_state(self, directory: Path, prefix: str) -> list[str]:
        names = []
        for situation, learner in zip(SITUATIONS, self.learners_, strict=True):
            name = f"{prefix}{situation}{learner.suffix}"
            learner.save(directory / name)
            names.append(name)
        return names

    def _load_state(self, directory: Path, prefix: str) -> None:
        self.learners_ = []
        for j, situation in enumerate(SITUATIONS):
            learner = self._new_learner(j)
            self.learners_.append(learner.load(directory / f"{prefix}{situation}{learner.suffix}"))


def pooled_rows(features: FeatureMatrix) -> np.ndarray:
    """The (4 n) x p design of the pooled formulation, situation-major (all acc rows first):
    each situation's view of the features (`FeatureMatrix.for_situation`) + an indicator."""
    parts = []
    for j, situation in enumerate(SITUATIONS):
        view = features.for_situation(situation).dense()
        indicator = np.zeros((view.shape[0], len(SITUATIONS)))
        indicator[:, j] = 1.0
        parts.append(np.hstack([view, indicator]))
    return np.vstack(parts)


class PooledModel(ProfileModel):
    """One back-end model over (user, situation) rows; query = situation."""

    def _new_learner(self) -> Learner:
        cls = _learner_class(self.spec.learner)
        return cls(self.spec.params, seed=self.spec.seed, threads=self.threads)

    def _fit_scores(self, features: FeatureMatrix, y: np.ndarray) -> None:
        X = pooled_rows(features)
        self.learner_ = self._new_learner()
        if self.learner_.needs_grades:
            target = np.concatenate(
                [relevance_grades(y[:, j], self.spec.n_grades) for j in range(y.shape[1])]
            )
        else:
            # standardise per situation so every situation weighs the same in the loss
            std = y.std(axis=0)
            target = ((y - y.mean(axis=0)) / np.where(std > 0, std, 1.0)).T.ravel()
        query = np.repeat(np.arange(len(SITUATIONS)), y.shape[0])
        blocks = np.r_[
            concept_blocks(features.for_situation(SITUATIONS[0])), np.full(len(SITUATIONS), -1)
        ]
        self.learner_.fit(X, target, query, blocks)

    def _predict_scores(self, features: FeatureMatrix) -> np.ndarray:
        scores = self.learner_.predict(pooled_rows(features))
        return scores.reshape(len(SITUATIONS), -1).T

    def _save_state(self, directory: Path, prefix: str) -> list[str]:
        name = f"{prefix}pooled{self.learner_.suffix}"
        self.learner_.save(directory / name)
        return [name]

    def _load_state(self, directory: Path, prefix: str) -> None:
        learner = self._new_learner()
        self.learner_ = learner.load(directory / f"{prefix}pooled{learner.suffix}")
