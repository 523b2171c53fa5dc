"""Vectorised featurisation of photo profiles: `featurize(dataset, split) -> FeatureMatrix`.

Users, (user, image) pairs and concepts become integer codes once; every feature is then a
grouped sum / max / sort over those codes (np.bincount, sorting + ufunc.reduceat, scipy.sparse).
There is no Python loop per detection, image or user, so 100k profiles take seconds.
`tests/reference_features.py` computes the same numbers with a plain loop, for the tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ltr.data.dataset import BOX_COLUMNS, Dataset
from ltr.errors import DataError, LtrError
from ltr.features.config import (
    FAMILIES,
    SIZE_NAMES,
    FeatureConfig,
    active_families,
    feature_columns,
    profile_names,
    quantile_label,
    threshold_label,
)
from ltr.features.embedding import project
from ltr.features.matrix import FeatureMatrix
from ltr.features.vocabulary import Vocabulary
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


def focal_ratings(ratings: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """fr(r) = r / (1 - |r|/K)^gamma with K = k_factor x max |rating| of the data set.

    `ratings` must hold every rating of the data set (unrated concepts add zeros only).
    """
    top = float(np.abs(ratings).max()) if ratings.size else 0.0
    if top == 0.0:
        return ratings.copy()
    k = config.focal_k_factor * top
    focal: np.ndarray = ratings / (1.0 - np.abs(ratings) / k) ** config.focal_gamma
    return focal


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
    found: np.ndarray = sorted_unique[pos] == values
    return found


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
    """A set of profiles reduced to (image, concept) pairs: the one pass over detections.

    Detections are sorted once by (image, concept); every later quantity is computed on the
    pairs or on the (user, concept) groups of pairs, and rating sums are sparse products with
    the ``concepts x situations`` rating matrix, so no ``detections x situations`` array exists.
    Image codes are grouped by user (user-major), so pairs are sorted by user, image, concept.
    """

    n_users: int
    n_concepts: int
    ratings: np.ndarray  # concepts x situations
    image_user: np.ndarray  # user code of each image with a detection; non-decreasing
    n_images: np.ndarray  # profile images per user (with or without a detection)
    pair_image: np.ndarray
    pair_concept: np.ndarray
    pair_count: np.ndarray  # detections of the concept in the image
    pair_conf_sum: np.ndarray
    pair_conf_max: np.ndarray
    pair_area_conf_sum: np.ndarray  # confidence x box area (detections without a box add 0)
    user_area_sum: np.ndarray  # box areas per user
    user_boxes: np.ndarray  # detections with a box per user
    embedding: np.ndarray | None = None  # components x concepts of the `embed` family

    @classmethod
    def build(
        cls,
        users: pd.Index,
        detections: pd.DataFrame,
        images: pd.DataFrame,
        concepts: pd.Index,
        ratings: np.ndarray,
        source: str | Path | None = None,
        embedding: np.ndarray | None = None,
    ) -> Profiles:
        n_users, n_concepts = len(users), len(concepts)
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
        sorted_keys = det_key[order]
        del det_key
        starts = _group_starts(sorted_keys)
        image_keys = sorted_keys[starts]  # sorted, so image codes are grouped by user
        runs = np.zeros(n_det, dtype=np.int64)
        runs[starts] = 1
        det_image = np.empty(n_det, dtype=np.int64)
        det_image[order] = np.cumsum(runs) - 1
        del order, sorted_keys, runs, starts
        listed = np.sort(img_user * n_str + image_str[n_det:])
        listed = listed[_group_starts(listed)]
        unlisted = image_keys[~_contains(listed, image_keys)]  # tolerate incomplete `images`
        n_images = np.bincount(listed // n_str, minlength=n_users) + np.bincount(
            unlisted // n_str, minlength=n_users
        )

        # The one sort of detections: by (image, concept).
        pair_key = det_image * n_concepts + det_concept
        del det_image, det_concept
        order = np.argsort(pair_key, kind="stable")
        keys = pair_key[order]
        del pair_key
        starts = _group_starts(keys)
        first = keys[starts]
        del keys
        conf = detections["confidence"].to_numpy(dtype=np.float64)
        x0, y0, x1, y1 = (detections[c].to_numpy(dtype=np.float64) for c in BOX_COLUMNS)
        area = (x1 - x0) * (y1 - y0)
        has_box = ~np.isnan(area)
        area[~has_box] = 0.0
        user_area_sum = np.bincount(det_user, weights=area, minlength=n_users)
        user_boxes = np.bincount(det_user, weights=has_box, minlength=n_users)
        area *= conf
        del det_user, has_box
        area_conf = area[order]
        del area
        conf = conf[order]
        del order

        def sums(values: np.ndarray) -> np.ndarray:
            return np.add.reduceat(values, starts) if starts.size else np.zeros(0)

        return cls(
            n_users=n_users,
            n_concepts=n_concepts,
            ratings=ratings,
            image_user=image_keys // n_str,
            n_images=n_images.astype(np.float64),
            pair_image=first // n_concepts,
            pair_concept=first % n_concepts,
            pair_count=np.diff(np.r_[starts, n_det]).astype(np.float64),
            pair_conf_sum=sums(conf),
            pair_conf_max=np.maximum.reduceat(conf, starts) if starts.size else np.zeros(0),
            pair_area_conf_sum=sums(area_conf),
            user_area_sum=user_area_sum,
            user_boxes=user_boxes,
            embedding=embedding,
        )

    # ------------------------------------------------------------------ grouped helpers
    @property
    def n_image_codes(self) -> int:
        return len(self.image_user)

    @cached_property
    def n_det_images(self) -> np.ndarray:
        return np.bincount(self.image_user, minlength=self.n_users).astype(np.float64)

    @cached_property
    def pair_user(self) -> np.ndarray:
        users: np.ndarray = self.image_user[self.pair_image]
        return users

    def image_matrix(self, data: np.ndarray) -> sp.csr_matrix:
        """``images x concepts`` CSR of a per-pair quantity (pairs are sorted by image)."""
        per_row = np.bincount(self.pair_image, minlength=self.n_image_codes)
        indptr = np.r_[0, np.cumsum(per_row)]
        shape = (self.n_image_codes, self.n_concepts)
        return sp.csr_matrix((data, self.pair_concept, indptr), shape=shape, dtype=np.float64)

    @cached_property
    def _user_concept_groups(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pairs ordered by (user, concept), start of each group, and the group keys."""
        key = self.pair_user * self.n_concepts + self.pair_concept
        order = np.argsort(key, kind="stable")
        keys = key[order]
        starts = _group_starts(keys)
        return order, starts, keys[starts]

    def user_concept_reduce(self, ufunc: np.ufunc, pair_values: np.ndarray) -> np.ndarray:
        """Reduce a per-pair quantity over each (user, concept) group (`user_concept` order)."""
        order, starts, _ = self._user_concept_groups
        return ufunc.reduceat(pair_values[order], starts) if starts.size else np.zeros(0)

    @cached_property
    def user_concept(self) -> dict[str, np.ndarray]:
        """Per (user, concept) with a detection, sorted by user then concept: ``user``,
        ``concept``, ``images`` (showing it), ``count``, ``conf_sum``, ``conf_max``."""
        _, starts, first = self._user_concept_groups
        return {
            "user": first // self.n_concepts,
            "concept": first % self.n_concepts,
            "images": np.diff(np.r_[starts, self.pair_user.size]).astype(np.float64),
            "count": self.user_concept_reduce(np.add, self.pair_count),
            "conf_sum": self.user_concept_reduce(np.add, self.pair_conf_sum),
            "conf_max": self.user_concept_reduce(np.maximum, self.pair_conf_max),
        }

    def concept_block(self, data: np.ndarray) -> sp.csr_matrix:
        """``users x concepts`` CSR of a per-(user, concept) quantity."""
        uc = self.user_concept
        indptr = np.r_[0, np.cumsum(np.bincount(uc["user"], minlength=self.n_users))]
        shape = (self.n_users, self.n_concepts)
        return sp.csr_matrix((data, uc["concept"], indptr), shape=shape, dtype=np.float64)

    @cached_property
    def conf_matrix(self) -> sp.csr_matrix:
        """Per user and concept, the sum of confidences: rating sums are products with it."""
        return self.concept_block(self.user_concept["conf_sum"])

    def image_scores(self) -> np.ndarray:
        """``images x situations``: per-image sum of rating x confidence."""
        return np.asarray(self.image_matrix(self.pair_conf_sum) @ self.ratings)


# ------------------------------------------------------------------------------ families
def _size(p: Profiles, config: FeatureConfig) -> dict[str, np.ndarray]:
    uc = p.user_concept
    n_det = np.bincount(uc["user"], weights=uc["count"], minlength=p.n_users)
    n_concepts = np.bincount(uc["user"], minlength=p.n_users).astype(np.float64)
    values = (p.n_images, p.n_det_images, n_det, _safe_div(n_det, p.n_det_images), n_concepts)
    return dict(zip(SIZE_NAMES, values, strict=True))


def _freq(p: Profiles, config: FeatureConfig) -> sp.csr_matrix:
    uc = p.user_concept
    return p.concept_block(uc["images"] / p.n_images[uc["user"]])


def _count(p: Profiles, config: FeatureConfig) -> sp.csr_matrix:
    return p.concept_block(p.user_concept["count"])


def _maxconf(p: Profiles, config: FeatureConfig) -> sp.csr_matrix:
    return p.concept_block(p.user_concept["conf_max"])


def _meanconf(p: Profiles, config: FeatureConfig) -> sp.csr_matrix:
    uc = p.user_concept
    return p.concept_block(uc["conf_sum"] / uc["count"])


def _per_situation(stat: str, values: np.ndarray) -> dict[str, np.ndarray]:
    """``users x situations`` -> ``{stat:situation: column}``."""
    return {f"{stat}:{s}": values[:, k] for k, s in enumerate(SITUATIONS)}


def _sum_and_mean(p: Profiles, stat: str, total: np.ndarray) -> dict[str, np.ndarray]:
    """A per-user sum and its per-image mean (over images with a detection)."""
    return {
        **_per_situation(f"{stat}_sum", total),
        **_per_situation(f"{stat}_mean", _safe_div(total, p.n_det_images[:, None])),
    }


def _conf(p: Profiles, config: FeatureConfig) -> dict[str, np.ndarray]:
    return _sum_and_mean(p, "conf", np.asarray(p.conf_matrix @ p.ratings))


def _base(p: Profiles, config: FeatureConfig) -> dict[str, np.ndarray]:
    """Mean over images with a detection >= t of sum(rating x max confidence per concept).

    The max over detections >= t of a concept in an image is the overall max when that max is
    >= t, and absent otherwise, so one (image, concept) grouping serves every threshold.
    """
    out: dict[str, np.ndarray] = {}
    for t in config.thresholds:
        keep = p.pair_conf_max >= t
        # the sum over images of a user = the sum over its (user, concept) groups
        kept_max = p.user_concept_reduce(np.add, np.where(keep, p.pair_conf_max, 0.0))
        total = p.concept_block(kept_max) @ p.ratings
        has = np.zeros(p.n_image_codes, dtype=np.float64)
        has[p.pair_image[keep]] = 1.0  # images with a detection >= t
        count = group_sums(p.image_user, has, p.n_users)
        out |= _per_situation(f"base@{threshold_label(t)}", _safe_div(total, count[:, None]))
    return out


def _posneg(p: Profiles, config: FeatureConfig) -> dict[str, np.ndarray]:
    """Confidences are >= 0, so max(r x c, 0) = max(r, 0) x c: split the ratings."""
    pos = np.asarray(p.conf_matrix @ np.maximum(p.ratings, 0.0))
    neg = np.asarray(p.conf_matrix @ np.minimum(p.ratings, 0.0))
    per_image = p.n_det_images[:, None]
    return {
        **_per_situation("pos_sum", pos),
        **_per_situation("neg_sum", neg),
        **_per_situation("pos_mean", _safe_div(pos, per_image)),
        **_per_situation("neg_mean", _safe_div(neg, per_image)),
    }


def _focal(p: Profiles, config: FeatureConfig) -> dict[str, np.ndarray]:
    return _sum_and_mean(p, "focal", np.asarray(p.conf_matrix @ focal_ratings(p.ratings, config)))


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
        within: np.ndarray = padded[group, column]
        return within
    order = np.argsort(values, kind="stable")
    return values[order[np.argsort(group[order], kind="stable")]]


#: `sorted_within_groups` pads when that costs at most this many cells per value.
PADDED_SORT_CELLS_PER_VALUE = 4


def _dist(p: Profiles, config: FeatureConfig) -> dict[str, np.ndarray]:
    """Std, min, max, quantiles and negative share of the per-image scores of each user.

    Quantiles interpolate linearly between order statistics (numpy's default method).
    """
    scores, users = p.image_scores(), p.image_user  # images grouped by user, in user order
    count = p.n_det_images
    present = np.flatnonzero(count > 0)
    n = count[present].astype(np.int64)
    starts = np.cumsum(n) - n
    levels = {"img_min": 0.0, "img_max": 1.0}
    levels |= {f"img_{quantile_label(q)}": q for q in config.quantiles}
    stats: dict[str, np.ndarray] = {}
    for k, situation in enumerate(SITUATIONS):  # one situation at a time bounds the memory
        x = np.ascontiguousarray(scores[:, k])
        mean = _safe_div(group_sums(users, x, p.n_users), count)
        dev = x - mean[users]
        var = _safe_div(group_sums(users, dev * dev, p.n_users), count)
        del dev
        stats[f"img_std:{situation}"] = np.sqrt(var)
        negative = group_sums(users, (x < 0).astype(np.float64), p.n_users)
        stats[f"img_negshare:{situation}"] = _safe_div(negative, count)
        ordered = sorted_within_groups(x, n)
        for name, q in levels.items():
            pos = q * (n - 1)
            lo = np.floor(pos).astype(np.int64)
            hi = np.minimum(lo + 1, n - 1)
            below, above = ordered[starts + lo], ordered[starts + hi]
            column = np.zeros(p.n_users)
            column[present] = below + (pos - lo) * (above - below)
            stats[f"{name}:{situation}"] = column
    return stats


def _area(p: Profiles, config: FeatureConfig) -> dict[str, np.ndarray]:
    """Mean box area, and rating x confidence x box area summed (detections without a box
    add nothing)."""
    weighted = p.concept_block(p.user_concept_reduce(np.add, p.pair_area_conf_sum)) @ p.ratings
    return {
        "box_area_mean": _safe_div(p.user_area_sum, p.user_boxes),
        **_sum_and_mean(p, "area", weighted),
    }


def _embed(p: Profiles, config: FeatureConfig) -> dict[str, np.ndarray]:
    """Coordinates on the vocabulary's first `embed_dim` components (`ltr.features.embedding`)."""
    if p.embedding is None:  # featurize skips the family then; a programming error here
        raise ValueError("the embed family needs a vocabulary with embedding components")
    counts = p.concept_block(p.user_concept["images"])
    coordinates = project(counts, p.embedding[: config.embed_dim])
    names = profile_names("embed", config)
    return {name: coordinates[:, j] for j, name in enumerate(names)}


FAMILY_FUNCTIONS: dict[
    str, Callable[[Profiles, FeatureConfig], sp.csr_matrix | dict[str, np.ndarray]]
] = {
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
    "embed": _embed,
}
assert set(FAMILY_FUNCTIONS) == set(FAMILIES)


def _family_block(
    family: str, result: sp.csr_matrix | dict[str, np.ndarray], names: list[str], n_users: int
) -> sp.csr_matrix:
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
    dataset: Dataset,
    split: str | None,
    config: FeatureConfig | None = None,
    vocabulary: Vocabulary | None = None,
) -> FeatureMatrix:
    """The feature matrix of every user of a split.

    Users without any detection get a row of zeros (profile sizes still count their images).
    The columns depend only on the vocabulary and `config`, never on the split, so train, val
    and test matrices line up.

    Args:
        dataset: The data set.
        split: The split whose users are the rows (``None``: every split), in
            `Dataset.split_users` order.
        config: Families and their parameters (default: `FeatureConfig()`, every family).
        vocabulary: Concepts, ratings and embedding that define the columns. Default: the data
            set's own; a trained model passes the one it was trained with, so other data gets
            the model's columns (concepts outside it are ignored with a warning).

    Returns:
        The users x features matrix (sparse) with one metadata row per column.

    Raises:
        LtrError: `split` is not a split of the data set.

    Example:
        >>> from ltr.data.synthetic import generate_synthetic
        >>> dataset = generate_synthetic(n_users=50, seed=0).dataset
        >>> matrix = featurize(dataset, "train", FeatureConfig(families=("size", "base")))
        >>> matrix.shape
        (30, 13)
        >>> list(matrix.names[:2]), matrix.families
        (['n_images', 'n_det_images'], ('size', 'base'))
    """
    config = config or FeatureConfig()
    users, detections, images = split_frames(dataset, split)
    if vocabulary is None:
        # fitting the embedding costs a pass over every split's detections: only when wanted
        vocabulary = Vocabulary.from_dataset(dataset, embedding=config.wants("embed"))
    else:
        where = dataset.name if split is None else f"{dataset.name} {split}"
        detections = vocabulary.known_detections(detections, where)
    concepts, has_boxes = vocabulary.concepts, vocabulary.has_boxes
    has_embedding = vocabulary.embedding is not None
    columns = feature_columns(concepts, has_boxes, config, has_embedding)
    profiles = Profiles.build(
        users,
        detections,
        images,
        concepts,
        np.asarray(vocabulary.ratings),
        dataset.source,
        vocabulary.embedding,
    )
    blocks = []
    for family in active_families(has_boxes, config, has_embedding):
        names = columns.loc[columns["family"] == family, "name"].tolist()
        result = FAMILY_FUNCTIONS[family](profiles, config)
        if FAMILIES[family][0] == "concept":
            assert names == [f"{family}:{c}" for c in concepts]
        blocks.append(_family_block(family, result, names, len(users)))
    del profiles  # free the grouped arrays before the blocks are copied together
    values = (
        sp.hstack(blocks, format="csr", dtype=np.float64)
        if blocks
        else sp.csr_matrix((len(users), 0), dtype=np.float64)
    )
    return FeatureMatrix(users=users, values=values, columns=columns)
