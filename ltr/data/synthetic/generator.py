"""`generate_synthetic`: world, profiles and labels assembled into a `Dataset` plus its truth.

The seed is split into four independent streams (world, users, images, labels), so e.g. the
world of a seed is the same whatever the number of users.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from ltr.data.challenge import SPLITS
from ltr.data.dataset import Dataset
from ltr.data.synthetic.labels import AppealModel, annotate, appeal, noise_ceiling
from ltr.data.synthetic.truth import truth_document
from ltr.data.synthetic.world import N_TOPICS, Profiles, draw_world, sample_profiles
from ltr.errors import LtrError
from ltr.situations import SITUATIONS

MIN_USERS = 10
#: Share of the users in each split (`SPLITS` order, which is also the file order).
SPLIT_SHARES: dict[str, float] = {"train": 0.6, "val": 0.2, "test": 0.2}
#: Splits whose (noisy) labels go into the data set; test labels are withheld, like the real data.
LABELLED_SPLITS: tuple[str, ...] = ("train", "val")


@dataclass(frozen=True, eq=False)
class SyntheticData:
    """A generated data set plus the truth behind it.

    Attributes:
        dataset: The `Dataset` (layout ``synthetic``), with labels for train and val only.
        clean_labels: Noise-free appeal of every user (columns ``split, user`` + `SITUATIONS`).
        withheld_labels: The noisy labels of the splits not in ``dataset.labels`` (test).
        seed: The seed everything was drawn with.
        n_users: Users over all splits.
        noise_ceiling: ``split -> {situation: Pearson(clean, noisy labels), "mean": ...}``: the
            best score any model can expect on that split.
        appeal: The appeal model drawn for this seed (what the labels are made of).
        user_topics: Each user's mix of lifestyle topics.
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
        return truth_document(self)


def split_sizes(n_users: int) -> list[int]:
    """Users per split (`SPLITS` order); the last split takes the rounding remainder."""
    sizes = [int(round(SPLIT_SHARES[name] * n_users)) for name in SPLITS[:-1]]
    return [*sizes, n_users - sum(sizes)]


def _text_column(values: pa.Array, rows: np.ndarray | None = None) -> pd.Series:
    """A pandas string column from an Arrow array (optionally `values[rows]`), without a
    round trip through Python objects."""
    if rows is not None:
        values = values.take(pa.array(rows))
    return pd.Series(values, dtype="str")


def _check_arguments(n_users: object, seed: object) -> tuple[int, int]:
    if isinstance(n_users, bool) or not isinstance(n_users, (int, np.integer)):
        raise LtrError(f"synthetic data: the number of users must be an integer, not {n_users!r}")
    if n_users < MIN_USERS:
        raise LtrError(f"synthetic data: need at least {MIN_USERS} users, got {n_users}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise LtrError(f"synthetic data: the seed must be a non-negative integer, not {seed!r}")
    return int(n_users), int(seed)


def generate_synthetic(n_users: int = 1000, seed: int = 0) -> SyntheticData:
    """Generate a synthetic data set in memory, calibrated to the real challenge data.

    Args:
        n_users: Users over all splits (60 / 20 / 20 % train / val / test).
        seed: Seed of everything drawn: the same seed gives the same data set.

    Returns:
        The data set with its truth (noise-free labels, withheld test labels, noise ceiling).

    Example:
        >>> data = generate_synthetic(n_users=50, seed=0)
        >>> data.dataset.users.groupby("split").size().to_dict()
        {'test': 10, 'train': 30, 'val': 10}
        >>> data.dataset.has_labels("val"), data.dataset.has_labels("test")
        (True, False)
    """
    n_users, seed = _check_arguments(n_users, seed)
    world_seq, user_seq, image_seq, label_seq = np.random.SeedSequence(seed).spawn(4)
    world = draw_world(np.random.default_rng(world_seq))
    profiles = sample_profiles(
        world, n_users, np.random.default_rng(user_seq), np.random.default_rng(image_seq)
    )
    sizes = split_sizes(n_users)
    split_index = np.repeat(np.arange(len(SPLITS)), sizes)
    split_of_user = np.asarray(SPLITS)[split_index]

    # Labels: clean appeal, then the annotators' noisy mean.
    rng = np.random.default_rng(label_seq)
    clean = appeal(world, profiles, rng)
    noisy = annotate(rng, clean)

    users, images, detections = _frames(profiles, world.concepts, split_index)

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
    topics = pd.DataFrame(profiles.topic_mix, columns=[f"topic{k}" for k in range(N_TOPICS)])
    topics.insert(0, "user", users["user"])
    return SyntheticData(
        dataset=dataset,
        clean_labels=label_frame(clean, np.ones(n_users, dtype=bool)),
        withheld_labels=label_frame(noisy, ~labelled),
        seed=seed,
        n_users=n_users,
        noise_ceiling=noise_ceiling(clean, noisy, split_of_user, SPLITS),
        appeal=world.appeal,
        user_topics=topics,
    )


def _frames(
    profiles: Profiles, concepts: np.ndarray, split_index: np.ndarray
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The `users`, `images` and `detections` frames of the `Dataset`, built from Arrow
    arrays by index (no Python object per row)."""
    det_image, image_user = profiles.det_image, profiles.image_user
    det_user = image_user[det_image]
    split_names = pa.array(list(SPLITS), type=pa.string())
    concept_names = pa.array(concepts.tolist(), type=pa.string())
    boxes = profiles.boxes
    detections = pd.DataFrame(
        {
            "split": _text_column(split_names, split_index[det_user]),
            "user": _text_column(profiles.user_ids, det_user),
            "image": _text_column(profiles.image_ids, det_image),
            "concept": _text_column(concept_names, profiles.concept),
            "confidence": profiles.confidence.astype(np.float64),
            "x0": boxes[:, 0],
            "y0": boxes[:, 1],
            "x1": boxes[:, 2],
            "y1": boxes[:, 3],
        }
    )
    images = pd.DataFrame(
        {
            "split": _text_column(split_names, split_index[image_user]),
            "user": _text_column(profiles.user_ids, image_user),
            "image": _text_column(profiles.image_ids),
        }
    )
    users = pd.DataFrame(
        {"split": _text_column(split_names, split_index), "user": _text_column(profiles.user_ids)}
    )
    return users, images, detections
