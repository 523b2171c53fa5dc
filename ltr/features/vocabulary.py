"""The concept vocabulary features are built against: which concepts get columns, and their ratings.

Per-concept columns and every rating-weighted sum depend on the vocabulary. Training takes it
from the training folder (`Vocabulary.from_dataset`); a trained model stores it, so scoring
another folder -- one whose detected or unrated concepts differ -- gives exactly the columns the
model was trained on: a concept the model never saw is ignored (with a warning and counts), a
concept that does not occur is zero, and ratings are those the model was trained with.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ltr.data.dataset import Dataset
from ltr.errors import LtrError, LtrWarning, ModelError
from ltr.features.embedding import MAX_COMPONENTS, fit_components, image_counts
from ltr.situations import SITUATIONS


def warn_unknown_concepts(where: str, counts: Mapping[str, int]) -> None:
    """One warning for the detections of concepts a model was not trained with (ignored):
    how many concepts and detections, the most frequent five by name."""
    ranked = sorted(counts.items(), key=lambda item: -item[1])
    shown = ", ".join(f"{c} ({n})" for c, n in ranked[:5])
    more = f" and {len(ranked) - 5} more" if len(ranked) > 5 else ""
    warnings.warn(
        f"{where}: {len(ranked)} concept(s) the model was not trained with are ignored "
        f"({sum(counts.values())} detections): {shown}{more}",
        LtrWarning,
        stacklevel=3,
    )


def check_known_detections(where: str, known: int, unknown: Mapping[str, int]) -> None:
    """What to do about detections of concepts a model was not trained with (it has no column
    for them): nothing if there are none; a warning (`warn_unknown_concepts`) if some of the
    data's detections are known; refuse the data if none is -- every user would get the score
    of a profile without detections, which points to a model trained on another data set.

    Args:
        where: The data (folder and split, or table), in messages.
        known: Detections of concepts the model knows.
        unknown: Detections of the other concepts, per concept.

    Raises:
        ModelError: The data has detections and none is of a concept the model knows.
    """
    if not unknown:
        return
    if known == 0:
        ranked = sorted(unknown.items(), key=lambda item: -item[1])
        shown = ", ".join(concept for concept, _ in ranked[:3])
        raise ModelError(
            f"{where}: none of its {sum(unknown.values())} detections is of a concept the model "
            f"was trained with ({len(ranked)} other concept(s), e.g. {shown}); the model was "
            "probably trained on another data set"
        )
    warn_unknown_concepts(where, unknown)


@dataclass(frozen=True, eq=False)
class Vocabulary:
    """Concepts in column order, their ratings, and whether box features exist.

    Attributes:
        concepts: rated concepts in rating-file order, then detected-but-unrated ones sorted.
        ratings: ``len(concepts) x 4`` ratings in `SITUATIONS` order (0 for unrated concepts).
        rated: whether each concept had a rating (unrated ones count as rating 0).
        has_boxes: whether the training data had boxes (box-area features exist).
        embedding: ``MAX_COMPONENTS x len(concepts)`` components of the ``embed`` family
            (`ltr.features.embedding`), fitted on the unlabelled detections of every split of
            the data set the vocabulary comes from; None in vocabularies saved before the
            family existed (the family is then skipped).
    """

    concepts: pd.Index
    ratings: np.ndarray
    rated: np.ndarray
    has_boxes: bool
    embedding: np.ndarray | None = None

    def __post_init__(self) -> None:
        concepts = pd.Index([str(c) for c in self.concepts], name="concept", dtype=object)
        ratings = np.asarray(self.ratings, dtype=np.float64).reshape(len(concepts), len(SITUATIONS))
        rated = np.asarray(self.rated, dtype=bool).reshape(len(concepts))
        if concepts.has_duplicates:
            raise ValueError(f"concept {concepts[concepts.duplicated()][0]!r} repeats")
        ratings.setflags(write=False)
        rated.setflags(write=False)
        if self.embedding is not None:
            embedding = np.array(self.embedding, dtype=np.float64)
            if embedding.shape != (MAX_COMPONENTS, len(concepts)):
                raise ValueError(
                    f"embedding shape {embedding.shape} != ({MAX_COMPONENTS}, {len(concepts)})"
                )
            embedding.setflags(write=False)
            object.__setattr__(self, "embedding", embedding)
        object.__setattr__(self, "concepts", concepts)
        object.__setattr__(self, "ratings", ratings)
        object.__setattr__(self, "rated", rated)
        object.__setattr__(self, "has_boxes", bool(self.has_boxes))

    @classmethod
    def from_dataset(cls, dataset: Dataset, *, embedding: bool = True) -> Vocabulary:
        """Every rated concept of `dataset`, then its detected-but-unrated concepts (rating 0).

        With `embedding`, the ``embed`` components are fitted on the detections of every split
        (never on labels): the same data set always gives the same components, whichever split
        is featurised, so train, val and test columns mean the same.
        """
        rated = [str(c) for c in dataset.ratings.index]
        concepts = pd.Index([*rated, *dataset.unrated_concepts], name="concept", dtype=object)
        ratings = dataset.ratings[list(SITUATIONS)].astype(float)
        matrix = ratings.reindex(concepts).fillna(0.0).to_numpy(dtype=np.float64)
        is_rated = np.arange(len(concepts)) < len(rated)
        components = (
            fit_components(image_counts(dataset.detections, concepts)) if embedding else None
        )
        return cls(concepts, matrix, is_rated, dataset.has_boxes, components)

    def __len__(self) -> int:
        return len(self.concepts)

    # ----------------------------------------------------------------- scoring other data
    def known_detections(self, detections: pd.DataFrame, where: str) -> pd.DataFrame:
        """`detections` without those of concepts outside the vocabulary (a warning counts them).

        A model has no column for a concept it never saw, so such detections cannot count;
        saying so (with counts) keeps a changed detector or data source from going unnoticed,
        and data none of whose detections the model knows is refused
        (`check_known_detections`).

        Raises:
            ModelError: `detections` is not empty and holds no concept of the vocabulary.
        """
        known = detections["concept"].isin(self.concepts).to_numpy()
        if known.all():
            return detections
        unknown = detections.loc[~known, "concept"].value_counts()
        counts = {str(c): int(n) for c, n in unknown.items()}
        check_known_detections(where, int(known.sum()), counts)
        return detections[known].reset_index(drop=True)

    def check_ratings(self, dataset: Dataset) -> None:
        """Refuse data whose ratings contradict the model's for a concept rated in both.

        Features are weighted by ratings: under other ratings they would not mean what the
        model learned. Concepts rated only on one side are fine (the model's ratings are used).
        """
        theirs = dataset.ratings[list(SITUATIONS)].astype(float)
        mine = pd.DataFrame(self.ratings, index=self.concepts, columns=list(SITUATIONS))
        shared = mine.index[self.rated].intersection(theirs.index)
        if not len(shared):
            return
        differ = ~np.isclose(
            mine.loc[shared].to_numpy(), theirs.loc[shared].to_numpy(), rtol=0, atol=1e-12
        ).all(axis=1)
        if differ.any():
            concept = shared[int(np.flatnonzero(differ)[0])]
            raise ModelError(
                f"{dataset.name}: the concept ratings differ from those the model was trained "
                f"with, for {int(differ.sum())} concept(s) (e.g. {concept!r}: "
                f"{_ratings_text(theirs.loc[concept])} here, "
                f"{_ratings_text(mine.loc[concept])} in the model); features would not mean "
                "the same"
            )

    # -------------------------------------------------------------------------- storage
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, stored with saved models (`from_dict` reads it back)."""
        return {
            "concepts": list(self.concepts),
            "ratings": self.ratings.tolist(),
            "rated": self.rated.tolist(),
            "has_boxes": self.has_boxes,
            "embedding": None if self.embedding is None else self.embedding.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Vocabulary:
        """The vocabulary `to_dict` wrote.

        Args:
            data: The stored fields.

        Returns:
            The vocabulary.

        Raises:
            LtrError: A field is missing or malformed.
        """
        try:
            return cls(
                data["concepts"],
                data["ratings"],
                data["rated"],
                data["has_boxes"],
                data.get("embedding"),  # absent in models saved before the embed family
            )
        except (KeyError, TypeError, ValueError) as error:
            raise LtrError(f"not a concept vocabulary ({type(error).__name__}: {error})") from None


def _ratings_text(row: pd.Series) -> str:
    return "/".join(f"{row[s]:g}" for s in SITUATIONS)
