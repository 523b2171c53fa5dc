"""The embedded synthetic data set: ltr runs end to end with no download at all.

`generate_synthetic` draws a "world" (concept ratings, lifestyle topics, the appeal model) from
the seed alone, then profiles, detections and labels from it, in the same shape as the real
challenge data (`aware2023`) and calibrated to its published facts (see /work/shared/DATA.md).
The labels follow a documented generative model with structure that a weighted sum of ratings
only partly captures, so better models have something to find. Per user and situation, the
clean appeal is a weighted sum of standardised parts (weights: `APPEAL_WEIGHTS`):

* ratings: tanh of the standardised mean per-image sum of the ratings of the concepts shown
  (saturating: a very "good" profile is not much better than a good one);
* three key concepts whose presence (share of images showing them) moves the appeal regardless
  of their rating; the first one acts *against* its rating;
* one pair of concepts that matters only when both are in the profile;
* profile size (a mild effect of the number of images);
* an overall impression shared between situations (correlated like the real labels), partly
  visible in the photos (the user's lifestyle topics), partly hidden.

The result is scaled to sd `CLEAN_SD`; a label is the mean of `N_ANNOTATORS` judgements with
heavy-tailed errors, correlated across situations (one annotator judges all four).

Everything is vectorised numpy and deterministic by seed: 100,000 users generate in seconds.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ltr.data.challenge_writer import write_challenge_layout
from ltr.data.dataset import Dataset
from ltr.errors import LtrError
from ltr.fileio import write_text_atomic
from ltr.situations import SITUATIONS

#: Extra file written next to the challenge files; loaders ignore it.
TRUTH_FILE = "synthetic_truth.json"
MIN_USERS = 10
N_CONCEPTS = 236
N_TOPICS = 8
#: Split shares of the users, in file order.
SPLITS: tuple[tuple[str, float], ...] = (("train", 0.6), ("val", 0.2), ("test", 0.2))
#: Splits whose (noisy) labels go into the data set; test labels are withheld, like the real data.
LABELLED_SPLITS: tuple[str, ...] = ("train", "val")
ID_ALPHABET = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz0123456789", dtype=np.uint8)
ID_LENGTH = 16

# ------------------------------------------------------------------ calibration constants
#: Share of detections held by the concept of a given frequency rank (real train data),
#: interpolated log-linearly in between. The last `N_NEVER` ranks never occur.
FREQUENCY_ANCHORS: tuple[tuple[int, float], ...] = (
    (0, 0.075),
    (1, 0.054),
    (2, 0.047),
    (5, 0.023),
    (10, 0.0196),
    (20, 0.014),
    (50, 0.0065),
    (100, 0.0013),
    (150, 0.00042),
    (200, 0.00012),
    (231, 0.00003),
)
N_NEVER = 4
#: Concepts of these frequency ranks belong to no topic (people, generic objects).
N_GENERIC_TOP = 3
GENERIC_SHARE = 0.25
#: Share of an owned concept's frequency that its topic does not explain.
TOPIC_LEAK = 0.2
#: Dirichlet concentration of a user's topic mixture (small = few dominant topics).
TOPIC_ALPHA = 0.3
#: Images per user: 13 + Gamma(shape, scale), clipped to 68 (real: 13..68, mean 35.6).
IMAGES_MIN, IMAGES_MAX, IMAGES_SHAPE, IMAGES_SCALE = 13, 68, 8.6, 2.63
#: Detections per image 1..8 (real: 84% / 12.6% / 2.5% / 1.2% / ... up to 8).
DETECTIONS_PER_IMAGE = np.array([0.8368, 0.1261, 0.0246, 0.0123, 0.0010, 0.0002, 0.0001, 0.00003])
#: Chance that a further detection of an image repeats the previous concept (e.g. two people).
REPEAT_CONCEPT = 0.55
#: Confidence = 0.3 + 0.7 * Beta(a, b): fitted to the real confidences.
CONFIDENCE_MIN, CONFIDENCE_BETA = 0.3, (0.98, 6.44)
#: Box corners are whole pixels of a 512-pixel-wide image of random height (like the real boxes).
IMAGE_WIDTH, IMAGE_HEIGHTS = 512, (256, 683)
#: Share of boxes touching the top/left (real: 11%) and bottom/right (real: 4-5%) border.
EDGE_START, EDGE_END = 0.09, 0.03
#: Concept ratings: the mean of 3..7 crowd votes on the -3..+3 scale.
RATING_VOTERS = (3, 8)
RATING_VOTE_SD = 0.8
RATING_MEAN = {"acc": 0.02, "bank": -0.42, "it": 0.02, "wait": 0.28}
RATING_LOADING = {"acc": 0.85, "bank": 0.8, "it": 0.7, "wait": 0.75}
RATING_IDIOSYNCRATIC = {"acc": 0.05, "bank": 0.12, "it": 0.1, "wait": 0.25}
RATING_TOPIC_SD = 0.2
#: Chance that a concept is irrelevant to a situation: every voter says 0 (real: 14% zeros).
RATING_IRRELEVANT = 0.06
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


@dataclass(frozen=True, eq=False)
class SyntheticData:
    """A generated data set plus the truth behind it.

    dataset: the `Dataset` (layout "synthetic"), with labels for train and val only.
    clean_labels: noise-free appeal of every user (columns split, user + SITUATIONS).
    withheld_labels: the noisy labels of the splits not in `dataset.labels` (test).
    noise_ceiling: split -> {situation: Pearson(clean, noisy labels), "mean": ...}: the best
        score any model can expect on that split.
    """

    dataset: Dataset
    clean_labels: pd.DataFrame
    withheld_labels: pd.DataFrame
    seed: int
    n_users: int
    noise_ceiling: dict[str, dict[str, float]]
    appeal: AppealModel
    user_topics: pd.DataFrame = field(repr=False)

    def truth_json(self) -> dict[str, Any]:
        """What `synthetic_truth.json` holds: parameters, ceilings and the clean labels."""

        def records(frame: pd.DataFrame) -> dict[str, dict[str, dict[str, float]]]:
            out: dict[str, dict[str, dict[str, float]]] = {}
            for split, rows in frame.groupby("split", sort=False):
                values = rows[list(SITUATIONS)].to_numpy(dtype=float).tolist()
                out[str(split)] = {
                    str(user): dict(zip(SITUATIONS, row, strict=True))
                    for user, row in zip(rows["user"], values, strict=True)
                }
            return out

        return {
            "generator": "ltr.data.synthetic",
            "seed": self.seed,
            "n_users": self.n_users,
            "n_annotators": N_ANNOTATORS,
            "noise_ceiling": {
                split: {k: (None if math.isnan(v) else v) for k, v in scores.items()}
                for split, scores in self.noise_ceiling.items()
            },
            "appeal_model": self.appeal.to_json(),
            "clean_labels": records(self.clean_labels),
            "withheld_labels": records(self.withheld_labels),
        }


# ------------------------------------------------------------------------------ helpers
def _random_ids(rng: np.random.Generator, count: int) -> pa.Array:
    """`count` distinct random 16-character [a-z0-9] ids (like the real user/image ids)."""
    codes = rng.integers(0, len(ID_ALPHABET), size=(count, ID_LENGTH), dtype=np.uint8)
    while True:  # collisions are astronomically rare; redraw them deterministically
        # Distinct 12-character prefixes (a base-36 number < 2**64) imply distinct ids.
        prefix = np.zeros(count, dtype=np.uint64)
        for position in range(12):
            prefix = prefix * np.uint64(len(ID_ALPHABET)) + codes[:, position]
        order = np.argsort(prefix, kind="stable")
        repeated = np.zeros(count, dtype=bool)
        repeated[order[1:]] = prefix[order[1:]] == prefix[order[:-1]]
        if not repeated.any():
            break
        codes[repeated] = rng.integers(0, len(ID_ALPHABET), size=(int(repeated.sum()), ID_LENGTH))
    raw = ID_ALPHABET[codes].view(f"S{ID_LENGTH}").ravel()
    return pa.array(raw, type=pa.binary(ID_LENGTH)).cast(pa.string())


def _text_column(values: pa.Array, rows: np.ndarray | None = None) -> pd.Series:
    """A pandas string column from an Arrow array (optionally `values[rows]`), without a
    round trip through Python objects."""
    if rows is not None:
        values = values.take(pa.array(rows))
    return pd.Series(values, dtype="str")


def _standardise(values: np.ndarray) -> np.ndarray:
    """Zero mean, unit sd over the population (columns independently); constant -> zeros."""
    centred = values - values.mean(axis=0)
    sd = values.std(axis=0)
    return np.divide(centred, sd, out=np.zeros_like(centred), where=sd > 0)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def _concept_frequencies() -> np.ndarray:
    """Share of detections by frequency rank: long-tailed, a few concepts never occur."""
    ranks, shares = zip(*FREQUENCY_ANCHORS, strict=True)
    log_share = np.interp(np.arange(N_CONCEPTS), ranks, np.log(shares))
    freq = np.exp(log_share)
    freq[N_CONCEPTS - N_NEVER :] = 0.0
    return freq / freq.sum()


# -------------------------------------------------------------------------------- world
@dataclass(frozen=True)
class _World:
    concepts: np.ndarray  # names, VC0..VC235
    topic_cdf: np.ndarray  # (N_TOPICS, N_CONCEPTS) cumulative concept distribution per topic
    owner: np.ndarray  # topic owning each concept, -1 for generic concepts
    ratings: np.ndarray  # (N_CONCEPTS, 4) published crowd ratings
    topic_impression: np.ndarray  # (N_TOPICS, 4) visible overall impression of each topic
    appeal: AppealModel
    key_index: dict[str, np.ndarray]
    key_weight: dict[str, np.ndarray]
    pair_index: dict[str, tuple[int, int]]


def _draw_world(rng: np.random.Generator) -> _World:
    """Everything that depends on the seed only, not on the number of users."""
    concepts = np.array([f"VC{i}" for i in range(N_CONCEPTS)])
    rank = rng.permutation(N_CONCEPTS)  # rank[c]: frequency rank of concept c
    base = _concept_frequencies()[rank]

    owner = rng.integers(0, N_TOPICS, size=N_CONCEPTS)
    owner[rng.random(N_CONCEPTS) < GENERIC_SHARE] = -1
    owner[rank < N_GENERIC_TOP] = -1
    own = owner[None, :] == np.arange(N_TOPICS)[:, None]
    # Each owned concept keeps TOPIC_LEAK of its frequency in every topic; the rest is
    # concentrated in its owner, so the average over topics is still its base frequency.
    lift = np.where(owner[None, :] < 0, 1.0, TOPIC_LEAK + (1 - TOPIC_LEAK) * N_TOPICS * own)
    weights = base[None, :] * lift
    topic_cdf = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    topic_cdf[:, -1] = 1.0

    # Ratings: a shared valence (a few very negative concepts), a topic tint, an idiosyncratic
    # part per situation, then the mean of a handful of integer votes as the crowd published.
    negative = rng.random(N_CONCEPTS) < 0.1
    valence = np.where(
        negative, rng.normal(-1.7, 0.6, N_CONCEPTS), rng.normal(0.45, 0.5, N_CONCEPTS)
    )
    topic_tint = rng.normal(0.0, RATING_TOPIC_SD, size=(N_TOPICS + 1, len(SITUATIONS)))
    topic_tint[-1] = 0.0  # generic concepts (owner -1 indexes this row)
    true = np.column_stack(
        [
            RATING_MEAN[s]
            + RATING_LOADING[s] * valence
            + rng.normal(0.0, RATING_IDIOSYNCRATIC[s], N_CONCEPTS)
            for s in SITUATIONS
        ]
    )
    true += topic_tint[owner]
    voters = rng.integers(*RATING_VOTERS, size=N_CONCEPTS)
    votes = np.rint(true[:, :, None] + rng.normal(0, RATING_VOTE_SD, (*true.shape, 7)))
    votes = np.clip(votes, -3, 3)
    counted = np.arange(7)[None, None, :] < voters[:, None, None]
    ratings = (votes * counted).sum(axis=2) / voters[:, None]
    ratings[rng.random(ratings.shape) < RATING_IRRELEVANT] = 0.0

    chol = np.linalg.cholesky(IMPRESSION_CORRELATION)
    topic_impression = rng.standard_normal((N_TOPICS, len(SITUATIONS))) @ chol.T
    # The impression must carry no rating information, or BASE would profit from it by chance:
    # remove from each situation's topic impressions their projection on the topics' mean
    # published rating (frequency-weighted over the concepts of the topic).
    topic_freq = np.diff(topic_cdf, axis=1, prepend=0.0)
    topic_rating = topic_freq @ ratings
    for column in range(len(SITUATIONS)):
        design = np.column_stack([np.ones(N_TOPICS), topic_rating[:, column]])
        coef, *_ = np.linalg.lstsq(design, topic_impression[:, column], rcond=None)
        topic_impression[:, column] -= design @ coef
    topic_impression = _standardise(topic_impression)

    # Key concepts and pairs: distinct frequent-enough concepts (frequency ranks 3..44). The
    # first key concept of a situation is a clearly rated one acting against its rating; the
    # others are neutrally rated concepts that matter anyway (in a random direction).
    candidates = np.flatnonzero((rank >= N_GENERIC_TOP) & (rank < 45))
    free = np.ones(N_CONCEPTS, dtype=bool)
    key_index: dict[str, np.ndarray] = {}
    key_weight: dict[str, np.ndarray] = {}
    pair_index: dict[str, tuple[int, int]] = {}
    key_concepts: dict[str, dict[str, float]] = {}
    pairs: dict[str, tuple[str, str, float]] = {}

    def pick(count: int, allowed: np.ndarray) -> np.ndarray:
        pool = candidates[free[candidates] & allowed[candidates]]
        if len(pool) < count:  # fall back to any free candidate
            pool = candidates[free[candidates]]
        chosen = rng.choice(pool, size=count, replace=False)
        free[chosen] = False
        return chosen

    for column, situation in enumerate(SITUATIONS):
        rating = ratings[:, column]
        sizes = np.array(APPEAL_WEIGHTS[situation]["keys"], dtype=float)
        against = pick(1, np.abs(rating) >= 0.5)
        neutral = pick(len(sizes) - 1, np.abs(rating) <= 0.35)
        idx = np.concatenate([against, neutral])
        signs = rng.choice([-1.0, 1.0], size=len(sizes))
        signs[0] = -np.sign(rating[against[0]]) or 1.0
        key_index[situation] = idx
        key_weight[situation] = signs * sizes
        key_concepts[situation] = {
            str(concepts[i]): float(w) for i, w in zip(idx, signs * sizes, strict=True)
        }
        a, b = pick(2, np.ones(N_CONCEPTS, dtype=bool))
        pair_weight = float(rng.choice([-1.0, 1.0]) * APPEAL_WEIGHTS[situation]["pair"])
        pair_index[situation] = (int(a), int(b))
        pairs[situation] = (str(concepts[a]), str(concepts[b]), pair_weight)
    weights = {s: dict(w) for s, w in APPEAL_WEIGHTS.items()}
    appeal = AppealModel(key_concepts=key_concepts, pairs=pairs, weights=weights)
    return _World(
        concepts=concepts,
        topic_cdf=topic_cdf,
        owner=owner,
        ratings=ratings,
        topic_impression=topic_impression,
        appeal=appeal,
        key_index=key_index,
        key_weight=key_weight,
        pair_index=pair_index,
    )


# ---------------------------------------------------------------------------- profiles
def _split_sizes(n_users: int) -> list[int]:
    sizes = [int(round(share * n_users)) for _, share in SPLITS[:-1]]
    return [*sizes, n_users - sum(sizes)]


def _sample_concepts(
    rng: np.random.Generator, world: _World, det_topic: np.ndarray, det_position: np.ndarray
) -> np.ndarray:
    """A concept per detection from its image's topic; later detections may repeat one."""
    draws = rng.random(len(det_topic))
    concept = np.empty(len(det_topic), dtype=np.int64)
    for topic in range(N_TOPICS):  # a loop over topics, not detections
        mask = det_topic == topic
        concept[mask] = np.searchsorted(world.topic_cdf[topic], draws[mask], side="right")
    np.minimum(concept, N_CONCEPTS - 1, out=concept)
    repeat = rng.random(len(det_topic)) < REPEAT_CONCEPT
    for position in range(1, len(DETECTIONS_PER_IMAGE)):  # at most 7 passes
        rows = np.flatnonzero((det_position == position) & repeat)
        concept[rows] = concept[rows - 1]
    return concept


def _boxes(rng: np.random.Generator, n_images: int, det_image: np.ndarray) -> np.ndarray:
    """Whole-pixel boxes, x0 < x1 and y0 < y1 inside [0, 1] (columns x0, y0, x1, y1)."""
    n = len(det_image)
    height = rng.integers(*IMAGE_HEIGHTS, size=n_images)[det_image].astype(float)
    out = np.empty((n, 4))
    for axis, pixels in ((0, np.full(n, float(IMAGE_WIDTH))), (1, height)):
        size = 0.02 + 0.98 * rng.beta(1.3, 0.9, size=n)
        start = rng.random(n) * (1.0 - size)
        start[rng.random(n) < EDGE_START] = 0.0  # objects cut by the image border
        end = rng.random(n) < EDGE_END
        start[end] = 1.0 - size[end]
        low = np.floor(start * pixels)
        high = np.maximum(np.ceil((start + size) * pixels), low + 1)
        high = np.minimum(high, pixels)
        low = np.minimum(low, high - 1)
        out[:, axis] = low / pixels
        out[:, axis + 2] = high / pixels
    return out


# ------------------------------------------------------------------------------- labels
def _appeal(
    world: _World,
    rng: np.random.Generator,
    det_image: np.ndarray,
    concept: np.ndarray,
    image_user: np.ndarray,
    image_topic: np.ndarray,
    n_images: np.ndarray,
) -> np.ndarray:
    """Clean appeal (n_users, 4) of every profile; see `AppealModel` and the README."""
    n_users = len(n_images)
    n_img = len(image_user)
    # Distinct concepts per image: drop a detection whose concept an earlier detection of the
    # same image already has (images hold at most 8 detections: 7 vectorised passes).
    repeated = np.zeros(len(concept), dtype=bool)
    for lag in range(1, len(DETECTIONS_PER_IMAGE)):
        same = np.zeros(len(concept), dtype=bool)
        same[lag:] = (concept[lag:] == concept[:-lag]) & (det_image[lag:] == det_image[:-lag])
        repeated |= same
    pair_image, pair_concept = det_image[~repeated], concept[~repeated]
    pair_user = image_user[pair_image]

    def share(concept_id: int) -> np.ndarray:
        hits = np.bincount(pair_user[pair_concept == concept_id], minlength=n_users)
        return hits / n_images

    def presence(concept_id: int) -> np.ndarray:
        return 1.0 - np.exp(-share(concept_id) / PRESENCE_SCALE)

    visible = np.empty((n_users, len(SITUATIONS)))
    for column in range(len(SITUATIONS)):
        per_image = world.topic_impression[image_topic, column]
        visible[:, column] = np.bincount(image_user, weights=per_image, minlength=n_users)
    visible = _standardise(visible / n_images[:, None])
    chol = np.linalg.cholesky(IMPRESSION_CORRELATION)
    hidden = rng.standard_normal((n_users, len(SITUATIONS))) @ chol.T
    impression = IMPRESSION_VISIBLE * visible + math.sqrt(1 - IMPRESSION_VISIBLE**2) * hidden
    size = _standardise(n_images.astype(float))

    appeal = np.empty((n_users, len(SITUATIONS)))
    for column, situation in enumerate(SITUATIONS):
        weights = APPEAL_WEIGHTS[situation]
        image_score = np.bincount(
            pair_image, weights=world.ratings[pair_concept, column], minlength=n_img
        )
        mean_score = np.bincount(image_user, weights=image_score, minlength=n_users) / n_images
        total = weights["ratings"] * _standardise(np.tanh(SATURATION * _standardise(mean_score)))
        for concept_id, weight in zip(
            world.key_index[situation], world.key_weight[situation], strict=True
        ):
            total += weight * _standardise(presence(int(concept_id)))
        a, b = world.pair_index[situation]
        pair_weight = world.appeal.pairs[situation][2]
        total += pair_weight * _standardise(presence(a) * presence(b))
        total += weights["size"] * size
        total += weights["impression"] * impression[:, column]
        appeal[:, column] = total
    return CLEAN_SD * _standardise(appeal)


def _annotate(rng: np.random.Generator, clean: np.ndarray) -> np.ndarray:
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
    return clean + per_judgement * unit.mean(axis=1)


# --------------------------------------------------------------------------- generator
def generate_synthetic(n_users: int = 1000, seed: int = 0) -> SyntheticData:
    """Generate a synthetic data set of `n_users` profiles (60/20/20 % train/val/test)."""
    if isinstance(n_users, bool) or not isinstance(n_users, (int, np.integer)):
        raise LtrError(f"synthetic data: the number of users must be an integer, not {n_users!r}")
    if n_users < MIN_USERS:
        raise LtrError(f"synthetic data: need at least {MIN_USERS} users, got {n_users}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise LtrError(f"synthetic data: the seed must be a non-negative integer, not {seed!r}")
    n_users, seed = int(n_users), int(seed)
    world_seq, user_seq, image_seq, label_seq = np.random.SeedSequence(seed).spawn(4)
    world = _draw_world(np.random.default_rng(world_seq))

    # Users: ids, split, topic mixture, profile size.
    rng = np.random.default_rng(user_seq)
    sizes = _split_sizes(n_users)
    split_of_user = np.repeat([name for name, _ in SPLITS], sizes)
    user_ids = _random_ids(rng, n_users)
    topic_mix = rng.gamma(TOPIC_ALPHA, size=(n_users, N_TOPICS))
    topic_mix /= topic_mix.sum(axis=1, keepdims=True)
    n_images = IMAGES_MIN + np.rint(rng.gamma(IMAGES_SHAPE, IMAGES_SCALE, size=n_users))
    n_images = np.minimum(n_images, IMAGES_MAX).astype(np.int64)

    # Images and detections.
    rng = np.random.default_rng(image_seq)
    image_user = np.repeat(np.arange(n_users), n_images)
    n_img = len(image_user)
    image_ids = _random_ids(rng, n_img)
    cdf = np.cumsum(topic_mix, axis=1)
    image_topic = np.zeros(n_img, dtype=np.int64)
    draws = rng.random(n_img)
    for topic in range(N_TOPICS - 1):  # loop over topics: count cdf steps below each draw
        image_topic += draws >= cdf[image_user, topic]
    probabilities = DETECTIONS_PER_IMAGE / DETECTIONS_PER_IMAGE.sum()
    per_image = 1 + rng.choice(len(probabilities), size=n_img, p=probabilities)
    det_image = np.repeat(np.arange(n_img), per_image)
    first = np.cumsum(per_image) - per_image
    det_position = np.arange(len(det_image)) - first[det_image]
    concept = _sample_concepts(rng, world, image_topic[det_image], det_position)
    alpha, beta = CONFIDENCE_BETA
    confidence = CONFIDENCE_MIN + (1 - CONFIDENCE_MIN) * rng.beta(alpha, beta, len(det_image))
    # Detector scores are float32, like the real ones; keep them >= the 0.3 threshold.
    confidence = np.maximum(confidence.astype(np.float32), np.float32(CONFIDENCE_MIN))
    boxes = _boxes(rng, n_img, det_image)

    # Labels: clean appeal, then the annotators' noisy mean.
    rng = np.random.default_rng(label_seq)
    clean = _appeal(world, rng, det_image, concept, image_user, image_topic, n_images)
    noisy = _annotate(rng, clean)

    det_user = image_user[det_image]
    split_names = pa.array([name for name, _ in SPLITS], type=pa.string())
    split_index = np.repeat(np.arange(len(SPLITS)), sizes)
    concept_names = pa.array(world.concepts.tolist(), type=pa.string())
    detections = pd.DataFrame(
        {
            "split": _text_column(split_names, split_index[det_user]),
            "user": _text_column(user_ids, det_user),
            "image": _text_column(image_ids, det_image),
            "concept": _text_column(concept_names, concept),
            "confidence": confidence.astype(np.float64),
            "x0": boxes[:, 0],
            "y0": boxes[:, 1],
            "x1": boxes[:, 2],
            "y1": boxes[:, 3],
        }
    )
    images = pd.DataFrame(
        {
            "split": _text_column(split_names, split_index[image_user]),
            "user": _text_column(user_ids, image_user),
            "image": _text_column(image_ids),
        }
    )
    users = pd.DataFrame(
        {"split": _text_column(split_names, split_index), "user": _text_column(user_ids)}
    )

    def label_frame(values: np.ndarray, mask: np.ndarray) -> pd.DataFrame:
        frame = users[mask].reset_index(drop=True)
        for column, situation in enumerate(SITUATIONS):
            frame[situation] = values[mask, column]
        return frame

    labelled = np.isin(split_of_user, LABELLED_SPLITS)
    ratings = pd.DataFrame(world.ratings, columns=list(SITUATIONS))
    ratings.index = pd.Index(world.concepts, name="concept", dtype="str")
    dataset = Dataset(
        ratings=ratings,
        detections=detections,
        images=images,
        users=users,
        labels=label_frame(noisy, labelled),
        layout="synthetic",
    )
    ceiling: dict[str, dict[str, float]] = {}
    for name, _ in SPLITS:
        rows = split_of_user == name
        scores = {s: _pearson(clean[rows, c], noisy[rows, c]) for c, s in enumerate(SITUATIONS)}
        scores["mean"] = float(np.mean(list(scores.values())))
        ceiling[name] = scores
    topics = pd.DataFrame(topic_mix, columns=[f"topic{k}" for k in range(N_TOPICS)])
    topics.insert(0, "user", users["user"])
    return SyntheticData(
        dataset=dataset,
        clean_labels=label_frame(clean, np.ones(n_users, dtype=bool)),
        withheld_labels=label_frame(noisy, ~labelled),
        seed=seed,
        n_users=n_users,
        noise_ceiling=ceiling,
        appeal=world.appeal,
        user_topics=topics,
    )


def write_synthetic(out_dir: Path, n_users: int = 1000, seed: int = 0) -> SyntheticData:
    """Generate a synthetic set and write it in the challenge layout plus `synthetic_truth.json`.

    Refuses a non-empty folder unless it already holds a synthetic set (which is overwritten,
    file by file, atomically): a typo must never clobber real data.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise LtrError(f"{out_dir}: exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / TRUTH_FILE).is_file():
        raise LtrError(
            f"{out_dir}: folder is not empty and holds no synthetic data set ({TRUTH_FILE}); "
            "choose an empty or new folder"
        )
    data = generate_synthetic(n_users=n_users, seed=seed)
    # The truth file first: a folder left half-written by a crash is still recognised as
    # synthetic and can simply be generated again. Compact JSON: at 100,000 users an indented
    # file takes seconds more to write.
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out_dir / TRUTH_FILE, json.dumps(data.truth_json(), allow_nan=False))
        write_challenge_layout(data.dataset, out_dir)
    except OSError as error:
        where = error.filename or out_dir
        raise LtrError(f"{where}: cannot write the synthetic data set ({error.strerror})") from None
    return data
