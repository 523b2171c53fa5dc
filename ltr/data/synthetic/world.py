"""The synthetic world and its profiles: concepts, topics, ratings, key concepts, sampling.

`draw_world` draws everything that depends on the seed only (concept frequencies and topics,
crowd ratings, the topics' visible impression, the label model's key concepts and pairs);
`sample_profiles` then draws users, images and detections from it. The constants are calibrated
to the published facts of the real challenge data (see /work/shared/DATA.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ltr.data.synthetic.labels import (
    APPEAL_WEIGHTS,
    IMPRESSION_CORRELATION,
    AppealModel,
    standardise,
)
from ltr.situations import SITUATIONS

N_CONCEPTS = 236
N_TOPICS = 8
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


@dataclass(frozen=True)
class World:
    """Everything drawn from the seed alone, shared by every profile."""

    concepts: np.ndarray  # names, VC0..VC235
    topic_cdf: np.ndarray  # (N_TOPICS, N_CONCEPTS) cumulative concept distribution per topic
    owner: np.ndarray  # topic owning each concept, -1 for generic concepts
    ratings: np.ndarray  # (N_CONCEPTS, 4) published crowd ratings
    topic_impression: np.ndarray  # (N_TOPICS, 4) visible overall impression of each topic
    appeal: AppealModel
    key_index: dict[str, np.ndarray]
    key_weight: dict[str, np.ndarray]
    pair_index: dict[str, tuple[int, int]]


@dataclass(frozen=True)
class Profiles:
    """Users, images and detections as flat arrays (indices into each other)."""

    user_ids: pa.Array  # (n_users,) 16-character ids
    topic_mix: np.ndarray  # (n_users, N_TOPICS) each user's topic mixture
    n_images: np.ndarray  # (n_users,) profile sizes
    image_user: np.ndarray  # (n_images,) user of each image
    image_ids: pa.Array  # (n_images,)
    image_topic: np.ndarray  # (n_images,) topic of each image
    det_image: np.ndarray  # (n_detections,) image of each detection
    concept: np.ndarray  # (n_detections,) concept index
    confidence: np.ndarray  # (n_detections,) float32 detector scores
    boxes: np.ndarray  # (n_detections, 4) x0, y0, x1, y1


# ------------------------------------------------------------------------------ helpers
def random_ids(rng: np.random.Generator, count: int) -> pa.Array:
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


def concept_frequencies() -> np.ndarray:
    """Share of detections by frequency rank: long-tailed, a few concepts never occur."""
    ranks, shares = zip(*FREQUENCY_ANCHORS, strict=True)
    log_share = np.interp(np.arange(N_CONCEPTS), ranks, np.log(shares))
    freq = np.exp(log_share)
    freq[N_CONCEPTS - N_NEVER :] = 0.0
    normalised: np.ndarray = freq / freq.sum()
    return normalised


# -------------------------------------------------------------------------------- world
def draw_world(rng: np.random.Generator) -> World:
    """Everything that depends on the seed only, not on the number of users."""
    concepts = np.array([f"VC{i}" for i in range(N_CONCEPTS)])
    rank = rng.permutation(N_CONCEPTS)  # rank[c]: frequency rank of concept c
    base = concept_frequencies()[rank]

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

    ratings = _draw_ratings(rng, owner)
    topic_impression = _draw_topic_impression(rng, topic_cdf, ratings)

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
    appeal_weights = {s: dict(w) for s, w in APPEAL_WEIGHTS.items()}
    appeal = AppealModel(key_concepts=key_concepts, pairs=pairs, weights=appeal_weights)
    return World(
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


def _draw_ratings(rng: np.random.Generator, owner: np.ndarray) -> np.ndarray:
    """Crowd ratings (N_CONCEPTS, 4): a shared valence (a few very negative concepts), a topic
    tint, an idiosyncratic part per situation, then the mean of a handful of integer votes as
    the crowd published them."""
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
    ratings: np.ndarray = (votes * counted).sum(axis=2) / voters[:, None]
    ratings[rng.random(ratings.shape) < RATING_IRRELEVANT] = 0.0
    return ratings


def _draw_topic_impression(
    rng: np.random.Generator, topic_cdf: np.ndarray, ratings: np.ndarray
) -> np.ndarray:
    """The visible overall impression of each topic (N_TOPICS, 4), standardised.

    It must carry no rating information, or BASE would profit from it by chance: each
    situation's topic impressions lose their projection on the topics' mean published rating
    (frequency-weighted over the concepts of the topic).
    """
    chol = np.linalg.cholesky(IMPRESSION_CORRELATION)
    topic_impression = rng.standard_normal((N_TOPICS, len(SITUATIONS))) @ chol.T
    topic_freq = np.diff(topic_cdf, axis=1, prepend=0.0)
    topic_rating = topic_freq @ ratings
    for column in range(len(SITUATIONS)):
        design = np.column_stack([np.ones(N_TOPICS), topic_rating[:, column]])
        coef, *_ = np.linalg.lstsq(design, topic_impression[:, column], rcond=None)
        topic_impression[:, column] -= design @ coef
    return standardise(topic_impression)


# ---------------------------------------------------------------------------- profiles
def sample_profiles(
    world: World, n_users: int, user_rng: np.random.Generator, image_rng: np.random.Generator
) -> Profiles:
    """Users (ids, topic mixture, profile size) from `user_rng`, then images and detections
    (topic, concepts, confidences, boxes) from `image_rng`."""
    rng = user_rng
    user_ids = random_ids(rng, n_users)
    topic_mix = rng.gamma(TOPIC_ALPHA, size=(n_users, N_TOPICS))
    topic_mix /= topic_mix.sum(axis=1, keepdims=True)
    n_images = IMAGES_MIN + np.rint(rng.gamma(IMAGES_SHAPE, IMAGES_SCALE, size=n_users))
    n_images = np.minimum(n_images, IMAGES_MAX).astype(np.int64)

    rng = image_rng
    image_user = np.repeat(np.arange(n_users), n_images)
    n_img = len(image_user)
    image_ids = random_ids(rng, n_img)
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
    return Profiles(
        user_ids=user_ids,
        topic_mix=topic_mix,
        n_images=n_images,
        image_user=image_user,
        image_ids=image_ids,
        image_topic=image_topic,
        det_image=det_image,
        concept=concept,
        confidence=confidence,
        boxes=boxes,
    )


def _sample_concepts(
    rng: np.random.Generator, world: World, det_topic: np.ndarray, det_position: np.ndarray
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
