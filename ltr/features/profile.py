"""Vectorised featurisation of photo profiles: `featurize(dataset, split) -> FeatureMatrix`.

Users, (user, image) pairs and concepts become integer codes once; every feature is then a
grouped sum / max / sort over those codes (np.bincount, sorting + ufunc.reduceat, scipy.sparse).
There is no Python loop per detection, image or user, so 100k profiles take seconds.
`ltr.features.reference` computes the same numbers with a plain loop, for the tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ltr.data.dataset import Dataset
from ltr.errors import DataError, LtrError
from ltr.features.config import (
    FAMILIES,
    SIZE_NAMES,
    FeatureConfig,
    active_families,
    concept_vocabulary,
    feature_columns,
    quantile_label,
    threshold_label,
)
from ltr.features.matrix import FeatureMatrix
from ltr.situations import SITUATIONS

N_SITUATIONS = len(SITUATIONS)


# ------------------------------------------------------------------------ public helpers
def split_frames(
    dataset: Dataset, split: str | None
) -> tuple[pd.Index, pd.DataFrame, pd.DataFrame]:
    """Users, detections and images of `split` (None = every split, users in file order)."""
    if split is None:
        users = pd.Index(dataset.users["user"].to_numpy(), name="user")
        if users.has_duplicates:
            user = users[users.duplicated()][0]
            raise LtrError(
                f"{dataset.name}: user {user!r} is in two splits; featurise one split at a time"
            )
        return users, dataset.detections, dataset.images
    return dataset.split_users(split), dataset.split_detections(split), dataset.split_images(split)


def rating_matrix(dataset: Dataset, concepts: pd.Index) -> np.ndarray:
    """``len(concepts) x 4`` ratings in `SITUATIONS` order; unrated concepts get 0."""
    ratings = dataset.ratings[list(SITUATIONS)].astype(float)
    return ratings.reindex(concepts).fillna(0.0).to_numpy(dtype=np.float64)


def focal_ratings(ratings: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """fr(r) = r / (1 - |r|/K)^gamma with K = k_factor x max |rating| of the data set.

    `ratings` must hold every rating of the data set (unrated concepts add zeros only).
    """
    top = float(np.abs(ratings).max()) if ratings.size else 0.0
    if top == 0.0:
        return ratings.copy()
    k = config.focal_k_factor * top
    return ratings / (1.0 - np.abs(ratings) / k) ** config.focal_gamma


def _codes(values: pd.Series, index: pd.Index) -> np.ndarray:
    """Position of each value in `index` (-1 if absent), hashing only the distinct values."""
    codes, uniques = pd.factorize(values, sort=False)
    return index.get_indexer(pd.Index(uniques, dtype=object))[codes] if len(codes) else codes


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.zeros(np.broadcast(num, den).shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _contains(sorted_unique: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Whether each of `values` occurs in the sorted, duplicate-free array."""
    if not sorted_unique.size:
        return np.zeros(values.shape, dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_unique, values), sorted_unique.size - 1)
    return sorted_unique[pos] == values


def group_sums(codes: np.ndarray, weights: np.ndarray, n_groups: int) -> np.ndarray:
    """Sums of `weights` (length n, or n x k) per group code -> n_groups (x k)."""
    if weights.ndim == 1:
        return np.bincount(codes, weights=weights, minlength=n_groups)
    out = np.empty((n_groups, weights.shape[1]))
    for k in range(weights.shape[1]):  # a loop over the few columns, not the rows
        out[:, k] = np.bincount(codes, weights=weights[:, k], minlength=n_groups)
    return out


def _group_starts(sorted_keys: np.ndarray) -> np.ndarray:
    """First position of each run of equal keys in a sorted array."""
    if not sorted_keys.size:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])


# ------------------------------------------------------------------------ coded profiles
@dataclass(frozen=True, eq=False)
class Profiles:
    """Detections of a set of users as integer codes; the shared grouped quantities."""

    n_users: int
    n_concepts: int
    det_user: np.ndarray  # user code of each detection
    det_image: np.ndarray  # image code of each detection (images with a detection)
    det_concept: np.ndarray  # concept code (position in the vocabulary)
    conf: np.ndarray
    area: np.ndarray  # box area, NaN without a box
    image_user: np.ndarray  # user code of each image code; non-decreasing
    n_images: np.ndarray  # profile images per user (with or without a detection)
    ratings: np.ndarray  # concepts x situations

    @classmethod
    def build(
        cls,
        users: pd.Index,
        detections: pd.DataFrame,
        images: pd.DataFrame,
        concepts: pd.Index,
        ratings: np.ndarray,
        source: object = None,
    ) -> Profiles:
        n_users = len(users)
        det_user = _codes(detections["user"], users).astype(np.int64)
        img_user = _codes(images["user"], users).astype(np.int64)
        for frame, codes in ((detections, det_user), (images, img_user)):
            if (codes < 0).any():
                row = int(np.flatnonzero(codes < 0)[0])
                raise DataError(
                    source,
                    "a detection or image belongs to a user not listed in its split",
                    record=f"user {frame['user'].iloc[row]!r}, image {frame['image'].iloc[row]!r}",
                )
        det_concept = _codes(detections["concept"], concepts).astype(np.int64)
        if (det_concept < 0).any():  # programming error: the vocabulary covers every concept
            raise ValueError("concept vocabulary misses a detected concept")
        # Image ids are only unique per user: an image is the pair (user code, image string).
        image_str, _ = pd.factorize(
            pd.concat([detections["image"], images["image"]], ignore_index=True), sort=False
        )
        n_str = int(image_str.max()) + 1 if image_str.size else 1
        n_det = len(detections)
        det_key = det_user * n_str + image_str[:n_det]
        order = np.argsort(det_key, kind="stable")
        starts = _group_starts(det_key[order])
        first = np.zeros(n_det, dtype=np.int64)
        first[starts] = 1
        det_image = np.empty(n_det, dtype=np.int64)
        det_image[order] = np.cumsum(first) - 1
        image_keys = det_key[order][starts]  # sorted: image codes are grouped by user
        listed = np.sort(img_user * n_str + image_str[n_det:])
        listed = listed[_group_starts(listed)]
        unlisted = image_keys[~_contains(listed, image_keys)]  # tolerate incomplete `images`
        n_images = np.bincount(listed // n_str, minlength=n_users) + np.bincount(
            unlisted // n_str, minlength=n_users
        )
        boxes = detections[["x0", "y0", "x1", "y1"]].to_numpy(dtype=np.float64)
        return cls(
            n_users=n_users,
            n_concepts=len(concepts),
            det_user=det_user,
            det_image=det_image,
            det_concept=det_concept,
            conf=detections["confidence"].to_numpy(dtype=np.float64),
            area=(boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]),
            image_user=image_keys // n_str,
            n_images=n_images.astype(np.float64),
            ratings=ratings,
        )

    # ------------------------------------------------------------------ grouped helpers
    def user_sum(self, weights: np.ndarray) -> np.ndarray:
        """Per-user sums of a per-detection quantity (length n or n x k)."""
        return group_sums(self.det_user, weights, self.n_users)

    @property
    def n_detections(self) -> np.ndarray:
        return np.bincount(self.det_user, minlength=self.n_users).astype(np.float64)

    @cached_property
    def n_det_images(self) -> np.ndarray:
        return np.bincount(self.image_user, minlength=self.n_users).astype(np.float64)

    @cached_property
    def det_ratings(self) -> np.ndarray:
        """``detections x situations`` rating of each detection's concept."""
        return self.ratings[self.det_concept]

    @cached_property
    def det_scores(self) -> np.ndarray:
        """``detections x situations``: rating x confidence."""
        return self.det_ratings * self.conf[:, None]

    @cached_property
    def image_scores(self) -> np.ndarray:
        """``images x situations``: per-image sum of rating x confidence."""
        return group_sums(self.det_image, self.det_scores, len(self.image_user))

    @cached_property
    def user_concept(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per (user, concept) with a detection: user, concept, count, confidence sum and max."""
        key = self.det_user * self.n_concepts + self.det_concept
        order = np.argsort(key, kind="stable")
        keys = key[order]
        starts = _group_starts(keys)
        conf = self.conf[order]
        first = keys[starts]
        if starts.size:
            count = np.diff(np.r_[starts, keys.size]).astype(np.float64)
            total = np.add.reduceat(conf, starts)
            top = np.maximum.reduceat(conf, starts)
        else:
            count = total = top = np.zeros(0)
        return first // self.n_concepts, first % self.n_concepts, count, total, top

    @cached_property
    def image_concept(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per (image, concept) with a detection: image code, concept, max confidence."""
        key = self.det_image * self.n_concepts + self.det_concept
        order = np.argsort(key, kind="stable")
        keys = key[order]
        starts = _group_starts(keys)
        first = keys[starts]
        top = np.maximum.reduceat(self.conf[order], starts) if starts.size else np.zeros(0)
        return first // self.n_concepts, first % self.n_concepts, top

    def concept_block(self, data: np.ndarray) -> sp.csr_matrix:
        users, concepts = self.user_concept[:2]
        return sp.csr_matrix(
            (data, (users, concepts)), shape=(self.n_users, self.n_concepts), dtype=np.float64
        )


# ------------------------------------------------------------------------------ families
def _size(p: Profiles, config: FeatureConfig) -> dict[str, np.ndarray]:
    n_det = p.n_detections
    n_concepts = np.bincount(p.user_concept[0], minlength=p.n_users).astype(np.float64)
    values = (p.n_images, p.n_det_images, n_det, _safe_div(n_det, p.n_det_images), n_concepts)
    return dict(zip(SIZE_NAMES, values, strict=True))


def _freq(p: Profiles, config: FeatureConfig) -> sp.csr_matrix:
    images, concepts, _ = p.image_concept
    shown = sp.csr_matrix(
        (np.ones(images.size), (p.image_user[images], concepts)),
        shape=(p.n_users, p.n_concepts),
        dtype=np.float64,
    )  # duplicates are summed: number of images showing each concept
    return sp.diags(_safe_div(1.0, p.n_images)) @ shown


def _count(p: Profiles, config: FeatureConfig) -> sp.csr_matrix:
    return p.concept_block(p.user_concept[2])


def _maxconf(p: Profiles, config: FeatureConfig) -> sp.csr_matrix:
    return p.concept_block(p.user_concept[4])


def _meanconf(p: Profiles, config: FeatureConfig) -> sp.csr_matrix:
    _, _, count, total, _ = p.user_concept
    return p.concept_block(total / count if count.size else count)


def _per_situation(stat: str, values: np.ndarray) -> dict[str, np.ndarray]:
    """``users x situations`` -> ``{stat:situation: column}``."""
    return {f"{stat}:{s}": values[:, k] for k, s in enumerate(SITUATIONS)}


def _weighted(p: Profiles, stat: str, weights: np.ndarray) -> dict[str, np.ndarray]:
    """Sum over detections and per-image mean (images with a detection) of `weights`."""
    total = p.user_sum(weights)
    return {
        **_per_situation(f"{stat}_sum", total),
        **_per_situation(f"{stat}_mean", _safe_div(total, p.n_det_images[:, None])),
    }


def _conf(p: Profiles, config: FeatureConfig) -> dict[str, np.ndarray]:
    return _weighted(p, "conf", p.det_scores)


def _base(p: Profiles, config: FeatureConfig) -> dict[str, np.ndarray]:
    """Mean over images with a detection >= t of sum(rating x max confidence per concept).

    The max over detections >= t of a concept in an image is the overall max when that max is
    >= t, and absent otherwise, so one (image, concept) grouping serves every threshold.
    """
    images, concepts, top = p.image_concept
    n_img = len(p.image_user)
    out: dict[str, np.ndarray] = {}
    for t in config.thresholds:
        keep = top >= t
        img = images[keep]
        scores = group_sums(img, p.ratings[concepts[keep]] * top[keep, None], n_img)
        has = np.zeros(n_img, dtype=np.float64)
        has[img] = 1.0  # images with a detection >= t
        total = group_sums(p.image_user, scores, p.n_users)
        count = group_sums(p.image_user, has, p.n_users)
        out |= _per_situation(f"base@{threshold_label(t)}", _safe_div(total, count[:, None]))
    return out


def _posneg(p: Profiles, config: FeatureConfig) -> dict[str, np.ndarray]:
    pos = p.user_sum(np.maximum(p.det_scores, 0.0))
    neg = p.user_sum(np.minimum(p.det_scores, 0.0))
    per_image = p.n_det_images[:, None]
    return {
        **_per_situation("pos_sum", pos),
        **_per_situation("neg_sum", neg),
        **_per_situation("pos_mean", _safe_div(pos, per_image)),
        **_per_situation("neg_mean", _safe_div(neg, per_image)),
    }


def _focal(p: Profiles, config: FeatureConfig) -> dict[str, np.ndarray]:
    focal = focal_ratings(p.ratings, config)
    return _weighted(p, "focal", focal[p.det_concept] * p.conf[:, None])


def sorted_within_groups(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Sort `values` within consecutive groups of sizes `counts` (groups stay in place).

    Profiles hold at most a few hundred images, so a padded ``groups x max size`` matrix sorted
    along rows is ~10x faster than a global two-key sort; very uneven groups (one huge
    profile) fall back to the global sort to bound memory.
    """
    counts = np.asarray(counts, dtype=np.int64)
    if not values.size:
        return values.copy()
    group = np.repeat(np.arange(counts.size), counts)
    width = int(counts.max())
    if counts.size * width <= PADDED_SORT_CELLS_PER_VALUE * values.size + 100_000:
        starts = np.cumsum(counts) - counts
        column = np.arange(values.size) - starts[group]
        padded = np.full((counts.size, width), np.inf)
        padded[group, column] = values
        padded.sort(axis=1)
        return padded[group, column]
    order = np.argsort(values, kind="stable")
    return values[order[np.argsort(group[order], kind="stable")]]


#: `sorted_within_groups` pads when that costs at most this many cells per value.
PADDED_SORT_CELLS_PER_VALUE = 4


def _dist(p: Profiles, config: FeatureConfig) -> dict[str, np.ndarray]:
    """Std, min, max, quantiles and negative share of the per-image scores of each user.

    Quantiles interpolate linearly between order statistics (numpy's default method).
    """
    scores, users = p.image_scores, p.image_user  # images are grouped by user, in user order
    count = p.n_det_images[:, None]
    mean = _safe_div(group_sums(users, scores, p.n_users), count)
    dev = scores - mean[users]
    stats = {
        "img_std": np.sqrt(_safe_div(group_sums(users, dev * dev, p.n_users), count)),
        "img_negshare": _safe_div(group_sums(users, (scores < 0).astype(float), p.n_users), count),
    }
    present = np.flatnonzero(p.n_det_images > 0)
    n = p.n_det_images[present].astype(np.int64)
    starts = np.cumsum(n) - n
    ordered = np.column_stack(
        [sorted_within_groups(scores[:, s], n) for s in range(N_SITUATIONS)]
    ).reshape(-1, N_SITUATIONS)
    levels = {"img_min": 0.0, "img_max": 1.0}
    levels |= {f"img_{quantile_label(q)}": q for q in config.quantiles}
    for name, q in levels.items():
        pos = q * (n - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, n - 1)
        below, above = ordered[starts + lo], ordered[starts + hi]
        values = np.zeros((p.n_users, N_SITUATIONS))
        values[present] = below + (pos - lo)[:, None] * (above - below)
        stats[name] = values
    out: dict[str, np.ndarray] = {}
    for name, values in stats.items():
        out |= _per_situation(name, values)
    return out


def _area(p: Profiles, config: FeatureConfig) -> dict[str, np.ndarray]:
    has_box = ~np.isnan(p.area)
    area = np.where(has_box, p.area, 0.0)
    mean_area = _safe_div(p.user_sum(area), p.user_sum(has_box.astype(np.float64)))
    return {
        "box_area_mean": mean_area,
        **_weighted(p, "area", p.det_ratings * (p.conf * area)[:, None]),
    }


FAMILY_FUNCTIONS: dict[str, Callable[[Profiles, FeatureConfig], object]] = {
    "size": _size,
    "freq": _freq,
    "count": _count,
    "maxconf": _maxconf,
    "meanconf": _meanconf,
    "conf": _conf,
    "base": _base,
    "posneg": _posneg,
    "focal": _focal,
    "dist": _dist,
    "area": _area,
}
assert set(FAMILY_FUNCTIONS) == set(FAMILIES)


def _family_block(family: str, result: object, names: list[str], n_users: int) -> sp.csr_matrix:
    """A family's values as CSR, columns in the order of `feature_columns`."""
    if sp.issparse(result):
        block = sp.csr_matrix(result, dtype=np.float64)
    else:
        assert isinstance(result, dict)
        if sorted(result) != sorted(names):  # a programming error, caught by the tests
            raise ValueError(f"family {family!r} computed {sorted(result)} != {sorted(names)}")
        dense = np.column_stack([result[n] for n in names]) if names else np.zeros((n_users, 0))
        block = sp.csr_matrix(dense, dtype=np.float64)
    if block.shape != (n_users, len(names)):
        raise ValueError(f"family {family!r} block shape {block.shape}")
    block.eliminate_zeros()
    return block


def featurize(
    dataset: Dataset, split: str | None, config: FeatureConfig | None = None
) -> FeatureMatrix:
    """Features of every user of `split` (None = all splits), in `split_users` order.

    Users without any detection get a row of zeros (profile sizes still count their images).
    The columns depend only on the data set and `config`, never on the split.
    """
    config = config or FeatureConfig()
    users, detections, images = split_frames(dataset, split)
    concepts = concept_vocabulary(dataset)
    columns = feature_columns(concepts, dataset.has_boxes, config)
    profiles = Profiles.build(
        users, detections, images, concepts, rating_matrix(dataset, concepts), dataset.source
    )
    blocks = []
    for family in active_families(dataset.has_boxes, config):
        names = columns.loc[columns["family"] == family, "name"].tolist()
        result = FAMILY_FUNCTIONS[family](profiles, config)
        if FAMILIES[family][0] == "concept":
            assert names == [f"{family}:{c}" for c in concepts]
        blocks.append(_family_block(family, result, names, len(users)))
    values = (
        sp.hstack(blocks, format="csr", dtype=np.float64)
        if blocks
        else sp.csr_matrix((len(users), 0), dtype=np.float64)
    )
    return FeatureMatrix(users=users, values=values, columns=columns)
