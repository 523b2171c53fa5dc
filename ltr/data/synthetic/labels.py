"""The label model: how a profile's appeal is made, and how noisy annotators report it.

Per user and situation, the clean appeal is a weighted sum of standardised parts (weights:
`APPEAL_WEIGHTS`): saturating ratings, key concepts, a pair of concepts, profile size and an
overall impression (see the package docstring). It is scaled to sd `CLEAN_SD`; a label is the
mean of `N_ANNOTATORS` heavy-tailed judgements correlated across situations. The noise ceiling
(how well the clean appeal predicts the noisy labels) bounds what any model can score.

The per-seed parameters (which concepts are key, which pair interacts) are drawn with the world
(`ltr.data.synthetic.world`); this module holds the constants and the arithmetic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ltr.situations import SITUATIONS

if TYPE_CHECKING:  # only for annotations: the world module imports this one
    from ltr.data.synthetic.world import Profiles, World

#: Label noise: each label is the mean of this many annotators' judgements (Student-t noise).
N_ANNOTATORS = 5
ANNOTATOR_DF = 5

#: Weights of the standardised components of the appeal of each situation (see `AppealModel`).
APPEAL_WEIGHTS: dict[str, dict[str, Any]] = {
    "acc": {"ratings": 0.65, "keys": (0.3, 0.25, 0.2), "pair": 0.2, "size": 0.1, "impression": 1.0},
    "bank": {
        "ratings": 0.55,
        "keys": (0.3, 0.25, 0.2),
        "pair": 0.2,
        "size": 0.1,
        "impression": 1.0,
    },
    "it": {"ratings": 0.6, "keys": (0.5, 0.35, 0.25), "pair": 0.3, "size": 0.2, "impression": 0.8},
    "wait": {
        "ratings": 0.45,
        "keys": (0.6, 0.45, 0.35),
        "pair": 0.4,
        "size": 0.25,
        "impression": 0.9,
    },
}
#: Saturation of the rating effect: tanh(SATURATION * standardised mean image score).
SATURATION = 1.2
#: Presence effect of a key concept: 1 - exp(-share / PRESENCE_SCALE), share = images with it.
PRESENCE_SCALE = 0.06
#: How much of the overall impression shows in the photos (topic mix) vs. stays hidden.
IMPRESSION_VISIBLE = 0.6
#: Correlation of the overall impression between situations (acc, bank, it, wait).
IMPRESSION_CORRELATION = np.array(
    [
        [1.0, 0.95, 0.65, 0.35],
        [0.95, 1.0, 0.65, 0.3],
        [0.65, 0.65, 1.0, 0.15],
        [0.35, 0.3, 0.15, 1.0],
    ]
)
#: Correlation of one annotator's errors between situations (acc, bank, it, wait).
NOISE_CORRELATION = np.array(
    [
        [1.0, 0.8, 0.5, 0.2],
        [0.8, 1.0, 0.5, 0.2],
        [0.5, 0.5, 1.0, 0.1],
        [0.2, 0.2, 0.1, 1.0],
    ]
)
#: Standard deviation of the clean labels and of the annotator noise on their mean.
CLEAN_SD = 0.4
NOISE_SD = 0.3


@dataclass(frozen=True)
class AppealModel:
    """The per-seed parameters of the label model that a reader may want to check against.

    key_concepts: situation -> {concept: effect weight}; the presence of these concepts moves
        the appeal regardless of (or against) their rating.
    pairs: situation -> (concept_a, concept_b, weight): an effect only when both are present.
    weights: situation -> component weights (`APPEAL_WEIGHTS`).
    """

    key_concepts: dict[str, dict[str, float]]
    pairs: dict[str, tuple[str, str, float]]
    weights: dict[str, dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {
            "key_concepts": self.key_concepts,
            "pairs": {s: list(p) for s, p in self.pairs.items()},
            "weights": {
                s: {k: list(v) if isinstance(v, tuple) else v for k, v in w.items()}
                for s, w in self.weights.items()
            },
        }


def standardise(values: np.ndarray) -> np.ndarray:
    """Zero mean, unit sd over the population (columns independently); constant -> zeros."""
    centred = values - values.mean(axis=0)
    sd = values.std(axis=0)
    standardised: np.ndarray = np.divide(centred, sd, out=np.zeros_like(centred), where=sd > 0)
    return standardised


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation, NaN where it is undefined (fewer than 2 values, a constant)."""
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def appeal(world: World, profiles: Profiles, rng: np.random.Generator) -> np.ndarray:
    """Clean appeal (n_users, 4) of every profile; see `AppealModel` and docs/data.md."""
    det_image, concept = profiles.det_image, profiles.concept
    image_user, image_topic, n_images = profiles.image_user, profiles.image_topic, profiles.n_images
    n_users = len(n_images)
    n_img = len(image_user)
    # Distinct concepts per image: drop a detection whose concept an earlier detection of the
    # same image already has (one vectorised pass per possible distance within an image).
    longest = int(np.bincount(det_image).max()) if len(det_image) else 0
    repeated = np.zeros(len(concept), dtype=bool)
    for lag in range(1, longest):
        same = np.zeros(len(concept), dtype=bool)
        same[lag:] = (concept[lag:] == concept[:-lag]) & (det_image[lag:] == det_image[:-lag])
        repeated |= same
    pair_image, pair_concept = det_image[~repeated], concept[~repeated]
    pair_user = image_user[pair_image]

    def share(concept_id: int) -> np.ndarray:
        hits = np.bincount(pair_user[pair_concept == concept_id], minlength=n_users)
        shares: np.ndarray = hits / n_images
        return shares

    def presence(concept_id: int) -> np.ndarray:
        return 1.0 - np.exp(-share(concept_id) / PRESENCE_SCALE)

    visible = np.empty((n_users, len(SITUATIONS)))
    for column in range(len(SITUATIONS)):
        per_image = world.topic_impression[image_topic, column]
        visible[:, column] = np.bincount(image_user, weights=per_image, minlength=n_users)
    visible = standardise(visible / n_images[:, None])
    chol = np.linalg.cholesky(IMPRESSION_CORRELATION)
    hidden = rng.standard_normal((n_users, len(SITUATIONS))) @ chol.T
    impression = IMPRESSION_VISIBLE * visible + math.sqrt(1 - IMPRESSION_VISIBLE**2) * hidden
    size = standardise(n_images.astype(float))

    out = np.empty((n_users, len(SITUATIONS)))
    for column, situation in enumerate(SITUATIONS):
        weights = APPEAL_WEIGHTS[situation]
        image_score = np.bincount(
            pair_image, weights=world.ratings[pair_concept, column], minlength=n_img
        )
        mean_score = np.bincount(image_user, weights=image_score, minlength=n_users) / n_images
        total = weights["ratings"] * standardise(np.tanh(SATURATION * standardise(mean_score)))
        for concept_id, weight in zip(
            world.key_index[situation], world.key_weight[situation], strict=True
        ):
            total += weight * standardise(presence(int(concept_id)))
        a, b = world.pair_index[situation]
        pair_weight = world.appeal.pairs[situation][2]
        total += pair_weight * standardise(presence(a) * presence(b))
        total += weights["size"] * size
        total += weights["impression"] * impression[:, column]
        out[:, column] = total
    return CLEAN_SD * standardise(out)


def annotate(rng: np.random.Generator, clean: np.ndarray) -> np.ndarray:
    """Mean of N_ANNOTATORS noisy judgements.

    One annotator judges a profile for all four situations at once, so their error is
    correlated across situations (`NOISE_CORRELATION`); it is heavy-tailed (multivariate
    Student t: now and then an annotator is far off on every situation).
    """
    n_users, n_situations = clean.shape
    chol = np.linalg.cholesky(NOISE_CORRELATION)
    normal = rng.standard_normal((n_users, N_ANNOTATORS, n_situations)) @ chol.T
    wildness = np.sqrt(rng.chisquare(ANNOTATOR_DF, size=(n_users, N_ANNOTATORS, 1)) / ANNOTATOR_DF)
    unit = normal / wildness * math.sqrt((ANNOTATOR_DF - 2) / ANNOTATOR_DF)
    per_judgement = NOISE_SD * math.sqrt(N_ANNOTATORS)
    judged: np.ndarray = clean + per_judgement * unit.mean(axis=1)
    return judged


def noise_ceiling(
    clean: np.ndarray, noisy: np.ndarray, split_of_user: np.ndarray, splits: tuple[str, ...]
) -> dict[str, dict[str, float]]:
    """split -> {situation: Pearson(clean, noisy), "mean": ...}: the best score to expect."""
    ceiling: dict[str, dict[str, float]] = {}
    for name in splits:
        rows = split_of_user == name
        scores = {s: pearson(clean[rows, c], noisy[rows, c]) for c, s in enumerate(SITUATIONS)}
        scores["mean"] = float(np.mean(list(scores.values())))
        ceiling[name] = scores
    return ceiling
