"""Feedback a person can act on: which photos and concepts help or hurt a profile, per situation.

The question a user asks is "what if I did not share this photo?". `explain_user` answers it
literally, for any trained model: it scores the profile without each photo, and without all
detections of each concept, next to the full profile and every other user of the split, all in one
batch. An effect is the drop in the situation's score (and in the user's percentile among the
split's users) when the photo or concept is removed: positive = it helps, negative = it hurts.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ltr.data import Dataset
from ltr.errors import LtrError, LtrWarning
from ltr.models.persistence import TrainedModel
from ltr.situations import SITUATIONS

#: Separates the parts of a variant's user id; cannot occur in ids read from JSON keys or text
#: files of the supported layouts (they are printable).
_SEP = "\x1f"


@dataclass(frozen=True)
class Explanation:
    """What each photo and concept of one profile does to its score in each situation.

    An effect is the score the item adds: the profile's score minus its score without the
    photo (or without every detection of the concept). Positive helps, negative hurts.

    Attributes:
        user: The user.
        split: The split the user belongs to.
        scores: The full profile's score per situation.
        percentiles: Its percentile per situation (share of the split's other users scored
            lower, in %).
        photos: One row per photo: ``concepts`` (what was detected), then per situation the
            effect on the score (``{s}``) and on the percentile (``{s}_pct``).
        concepts: One row per detected concept: ``photos`` (how many show it), its crowd rating
            per situation (``rating_{s}``), then the effects as for photos.
    """

    user: str
    split: str
    scores: pd.Series
    percentiles: pd.Series
    photos: pd.DataFrame
    concepts: pd.DataFrame

    def to_dict(self) -> dict:
        """The explanation as JSON-ready data (what ``ltr explain --out`` writes)."""
        return {
            "user": self.user,
            "split": self.split,
            "scores": self.scores.to_dict(),
            "percentiles": self.percentiles.to_dict(),
            "photos": self.photos.reset_index().to_dict(orient="records"),
            "concepts": self.concepts.reset_index().to_dict(orient="records"),
        }


def _variant_id(user: str, kind: str, name: str) -> str:
    return _SEP.join((user, kind, name))


def _with_variants(dataset: Dataset, split: str, user: str) -> tuple[Dataset, list, list]:
    """`split` plus, for `user`, one extra profile per removed photo and per removed concept."""
    detections = dataset.split_detections(split)
    images = dataset.split_images(split)
    mine = detections[detections["user"] == user]
    my_images = images.loc[images["user"] == user, "image"].tolist()
    my_concepts = sorted(pd.unique(mine["concept"]))
    extra_det, extra_img, extra_users = [], [], []
    for image in my_images:
        vid = _variant_id(user, "photo", image)
        extra_det.append(mine[mine["image"] != image].assign(user=vid))
        extra_img.append(
            pd.DataFrame(
                {"split": split, "user": vid, "image": [i for i in my_images if i != image]}
            )
        )
        extra_users.append(vid)
    for concept in my_concepts:
        vid = _variant_id(user, "concept", concept)
        extra_det.append(mine[mine["concept"] != concept].assign(user=vid))
        extra_img.append(pd.DataFrame({"split": split, "user": vid, "image": my_images}))
        extra_users.append(vid)
    users = pd.concat(
        [
            dataset.users[dataset.users["split"] == split],
            pd.DataFrame({"split": split, "user": extra_users}),
        ],
        ignore_index=True,
    )
    batch = Dataset(
        ratings=dataset.ratings,
        detections=pd.concat([detections, *extra_det], ignore_index=True),
        images=pd.concat([images, *extra_img], ignore_index=True),
        users=users,
        labels=Dataset.empty_labels(),
        layout=dataset.layout,
        source=dataset.source,
    )
    return batch, my_images, my_concepts


def _percentile(scores: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Share (%) of `reference` scores strictly below each score, per situation column."""
    ordered = np.sort(reference, axis=0)
    return np.column_stack(
        [np.searchsorted(ordered[:, j], scores[:, j], side="left") for j in range(scores.shape[1])]
    ) * (100.0 / len(reference))


def explain_user(trained: TrainedModel, dataset: Dataset, split: str, user: str) -> Explanation:
    """The effect of each photo and concept of one profile on its scores.

    The profile is scored without each photo, and without every detection of each concept, in
    one batch with the split's other users (the reference of the percentiles).

    Args:
        trained: A trained model (`ltr.models.persistence.load_trained`).
        dataset: The data set holding the user.
        split: The user's split.
        user: The user.

    Returns:
        The profile's scores and percentiles, and the effects of its photos and concepts.

    Raises:
        LtrError: `user` is not in `split`.
    """
    if user not in set(dataset.split_users(split)):
        raise LtrError(f"{dataset.name}: no user {user!r} in split {split!r}")
    batch, photos, concepts = _with_variants(dataset, split, user)
    scores = trained.predict(batch, split)
    others = scores.loc[[u for u in dataset.split_users(split) if u != user]].to_numpy()
    full = scores.loc[[user]].to_numpy()
    full_pct = _percentile(full, others)

    def effects(kind: str, names: list[str]) -> pd.DataFrame:
        ids = [_variant_id(user, kind, n) for n in names]
        without = scores.loc[ids].to_numpy() if ids else np.zeros((0, len(SITUATIONS)))
        frame = pd.DataFrame(
            full - without, index=pd.Index(names, name=kind), columns=list(SITUATIONS)
        )
        pct = full_pct - _percentile(without, others) if ids else without
        for j, situation in enumerate(SITUATIONS):
            frame[f"{situation}_pct"] = pct[:, j]
        return frame

    mine = dataset.split_detections(split)
    mine = mine[mine["user"] == user]
    photo_frame = effects("photo", photos)
    shown = mine.groupby("image")["concept"].agg(lambda c: ", ".join(sorted(set(c))))
    photo_frame.insert(0, "concepts", shown.reindex(photo_frame.index).fillna("").to_numpy())
    concept_frame = effects("concept", concepts)
    counts = mine.groupby("concept")["image"].nunique()
    ratings = dataset.ratings.reindex(concept_frame.index)[list(SITUATIONS)].fillna(0.0)
    for j, situation in enumerate(SITUATIONS):
        concept_frame.insert(j, f"rating_{situation}", ratings[situation].to_numpy())
    concept_frame.insert(0, "photos", counts.reindex(concept_frame.index).to_numpy())
    return Explanation(
        user=user,
        split=split,
        scores=pd.Series(full[0], index=list(SITUATIONS)),
        percentiles=pd.Series(full_pct[0], index=list(SITUATIONS)),
        photos=photo_frame,
        concepts=concept_frame,
    )


# ------------------------------------------------------------------- many users at once
#: Users whose what-if variants go into one model call: ~60 variants of ~40 detections each per
#: user of aware2023's size, so 250 users are ~15k profiles and ~600k detection rows per call.
BATCH_USERS = 250


def population_scores(trained: TrainedModel, dataset: Dataset, split: str) -> pd.DataFrame:
    """Scores of every user of a split: the reference of percentiles and distributions.

    Args:
        trained: A trained model.
        dataset: The data set.
        split: The split.

    Returns:
        Index user, columns `SITUATIONS`.
    """
    return trained.predict(dataset, split)


def _ragged_rows(
    starts: np.ndarray, counts: np.ndarray, owner: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Row numbers of each variant's owner's block (``starts[o] .. starts[o] + counts[o]``),
    one block per variant, concatenated, and the variant of each: a cross product of variants
    and rows without a Python loop."""
    lengths = counts[owner]
    block = np.repeat(np.arange(len(owner)), lengths)
    offsets = np.cumsum(lengths) - lengths
    return starts[owner][block] + np.arange(int(lengths.sum())) - offsets[block], block


def _variant_batch(
    dataset: Dataset,
    split: str,
    detections: pd.DataFrame,
    images: pd.DataFrame,
    users: list[str],
) -> tuple[Dataset, dict[str, tuple[list[str], list[str]]], list[str]]:
    """Every what-if profile of `users` (one per removed photo, one per removed concept), as
    one data set of the split, built with array operations rather than one frame per variant.

    Returns the data set, each user's photos and concepts (in `explain_user`'s order), and the
    variant ids in row order.
    """
    code = {user: i for i, user in enumerate(users)}
    det = detections[detections["user"].isin(code)]
    img = images[images["user"].isin(code)]
    det_owner = det["user"].map(code).to_numpy(dtype=np.int64)
    img_owner = img["user"].map(code).to_numpy(dtype=np.int64)
    det_order = np.argsort(det_owner, kind="stable")
    img_order = np.argsort(img_owner, kind="stable")
    det = det.iloc[det_order].reset_index(drop=True)
    img = img.iloc[img_order].reset_index(drop=True)
    det_counts = np.bincount(det_owner, minlength=len(users))
    img_counts = np.bincount(img_owner, minlength=len(users))
    det_starts = np.cumsum(det_counts) - det_counts
    img_starts = np.cumsum(img_counts) - img_counts

    # photo variants: one per listed image, in file order; concept variants: sorted concepts
    photo_owner = img_owner[img_order]
    photo_name = img["image"].to_numpy(dtype=object)
    pairs = det[["user", "concept"]].drop_duplicates()
    pairs = pairs.assign(owner=pairs["user"].map(code)).sort_values(
        ["owner", "concept"], kind="stable"
    )
    concept_owner = pairs["owner"].to_numpy(dtype=np.int64)
    concept_name = pairs["concept"].to_numpy(dtype=object)
    user_array = np.asarray(users, dtype=object)
    ids = [
        *(
            _variant_id(u, "photo", n)
            for u, n in zip(user_array[photo_owner], photo_name, strict=True)
        ),
        *(
            _variant_id(u, "concept", n)
            for u, n in zip(user_array[concept_owner], concept_name, strict=True)
        ),
    ]
    n_photo = len(photo_owner)
    vid = np.asarray(ids, dtype=object)

    # detections: each variant repeats its owner's block, minus the removed photo or concept
    det_image = det["image"].to_numpy(dtype=object)
    det_concept = det["concept"].to_numpy(dtype=object)
    rows_p, var_p = _ragged_rows(det_starts, det_counts, photo_owner)
    keep_p = det_image[rows_p] != photo_name[var_p]
    rows_c, var_c = _ragged_rows(det_starts, det_counts, concept_owner)
    keep_c = det_concept[rows_c] != concept_name[var_c]
    det_rows = np.concatenate([rows_p[keep_p], rows_c[keep_c]])
    det_vars = np.concatenate([var_p[keep_p], n_photo + var_c[keep_c]])
    new_det = det.iloc[det_rows].reset_index(drop=True)
    new_det["user"] = vid[det_vars]

    # images: a photo variant lists its owner's other images, a concept variant all of them
    img_name = img["image"].to_numpy(dtype=object)
    rows_p, var_p = _ragged_rows(img_starts, img_counts, photo_owner)
    keep_p = img_name[rows_p] != photo_name[var_p]
    rows_c, var_c = _ragged_rows(img_starts, img_counts, concept_owner)
    img_rows = np.concatenate([rows_p[keep_p], rows_c])
    img_vars = np.concatenate([var_p[keep_p], n_photo + var_c])
    new_img = pd.DataFrame(
        {"split": split, "user": vid[img_vars], "image": img_name[img_rows]},
        columns=list(images.columns),
    )
    batch = Dataset(
        ratings=dataset.ratings,
        detections=new_det,
        images=new_img,
        users=pd.DataFrame({"split": split, "user": vid}),
        labels=Dataset.empty_labels(),
        layout=dataset.layout,
        source=dataset.source,
    )
    names: dict[str, tuple[list[str], list[str]]] = {u: ([], []) for u in users}
    for owner, name in zip(photo_owner.tolist(), photo_name.tolist(), strict=True):
        names[users[owner]][0].append(name)
    for owner, name in zip(concept_owner.tolist(), concept_name.tolist(), strict=True):
        names[users[owner]][1].append(name)
    return batch, names, ids


def explain_users(
    trained: TrainedModel,
    dataset: Dataset,
    split: str,
    users: list[str] | None = None,
    *,
    population: pd.DataFrame | None = None,
    batch_users: int = BATCH_USERS,
) -> Iterator[Explanation]:
    """`explain_user` for many users of a split, batched.

    The what-if variants of `batch_users` users are scored in one model call, so a whole split
    costs a few calls instead of one per user. A model scores each profile on its own, so the
    numbers are `explain_user`'s for each user alone, up to floating-point rounding (a model
    may sum a larger batch in another order: differences of ~1e-16).

    Args:
        trained: A trained model.
        dataset: The data set.
        split: The users' split.
        users: The users to explain (default: every user of the split, in file order).
        population: The scores of every user of the split (default: scored here).
        batch_users: Users whose variants are scored in one model call.

    Yields:
        One explanation per user, in the order of `users`.

    Raises:
        LtrError: A user is not in `split`, or the split has a single user (no percentile).
    """
    split_users = list(dataset.split_users(split))
    users = split_users if users is None else list(users)
    known = set(split_users)
    missing = [u for u in users if u not in known]
    if missing:
        raise LtrError(f"{dataset.name}: no user {missing[0]!r} in split {split!r}")
    if len(split_users) < 2:
        raise LtrError(f"{dataset.name}: split {split!r} has one user: no percentile to give")
    if population is None:
        population = population_scores(trained, dataset, split)
    population = population.reindex(split_users)[list(SITUATIONS)]
    pop_values = population.to_numpy(dtype=float)
    pop_row = {u: i for i, u in enumerate(split_users)}
    ordered = np.sort(pop_values, axis=0)
    scale = 100.0 / (len(split_users) - 1)
    n_sit = len(SITUATIONS)
    detections = dataset.split_detections(split)
    images = dataset.split_images(split)
    ratings = dataset.ratings.reindex(columns=list(SITUATIONS))

    def percentile(values: np.ndarray, own: np.ndarray) -> np.ndarray:
        # share of the *other* users below: the user's own score is below only values above it
        below = np.column_stack(
            [np.searchsorted(ordered[:, j], values[:, j], side="left") for j in range(n_sit)]
        )
        return (below - (own[None, :] < values)) * scale

    for start in range(0, len(users), max(1, batch_users)):
        chunk = users[start : start + max(1, batch_users)]
        batch, names, ids = _variant_batch(dataset, split, detections, images, chunk)
        with warnings.catch_warnings():
            # the population call already warned about concepts the model does not know
            warnings.simplefilter("ignore", LtrWarning)
            scores = trained.predict(batch, split).reindex(ids).to_numpy(dtype=float)
        row = dict(zip(ids, range(len(ids)), strict=True))
        shown, counts = _photo_concepts(detections, set(chunk))
        for user in chunk:
            full = pop_values[pop_row[user]][None, :]
            full_pct = percentile(full, full[0])
            photos, concepts = names[user]
            frames = []
            for kind, items in (("photo", photos), ("concept", concepts)):
                without = scores[[row[_variant_id(user, kind, n)] for n in items]]
                pct = full_pct - percentile(without, full[0])
                if kind == "photo":
                    first = {
                        "concepts": np.array([shown.get((user, n), "") for n in items], object)
                    }
                else:
                    rated = ratings.reindex(pd.Index(items, dtype=object)).fillna(0.0)
                    first = {"photos": np.array([counts[(user, n)] for n in items], np.int64)}
                    first.update({f"rating_{s}": rated[s].to_numpy() for s in SITUATIONS})
                frames.append(_effect_frame(kind, items, full, pct, without, first))
            yield Explanation(
                user=user,
                split=split,
                scores=pd.Series(full[0], index=list(SITUATIONS)),
                percentiles=pd.Series(full_pct[0], index=list(SITUATIONS)),
                photos=frames[0],
                concepts=frames[1],
            )


def _photo_concepts(
    detections: pd.DataFrame, users: set[str]
) -> tuple[dict[tuple[str, str], str], dict[tuple[str, str], int]]:
    """Per (user, photo) the concepts it shows ("a, b"); per (user, concept) its photo count."""
    mine = detections.loc[detections["user"].isin(users), ["user", "image", "concept"]]
    seen: dict[tuple[str, str], set[str]] = {}
    photos: dict[tuple[str, str], set[str]] = {}
    for user, image, concept in mine.itertuples(index=False, name=None):
        seen.setdefault((user, image), set()).add(concept)
        photos.setdefault((user, concept), set()).add(image)
    shown = {key: ", ".join(sorted(names)) for key, names in seen.items()}
    return shown, {key: len(images) for key, images in photos.items()}


def _effect_frame(
    kind: str,
    items: list[str],
    full: np.ndarray,
    pct: np.ndarray,
    without: np.ndarray,
    first: dict[str, np.ndarray],
) -> pd.DataFrame:
    """`first` columns, the score effects (``full - without``) and the percentile effects
    (`pct`) of removed items: `explain_user`'s frame, built in one constructor call."""
    effect = full - without
    columns = dict(first)
    columns.update({s: effect[:, j] for j, s in enumerate(SITUATIONS)})
    columns.update({f"{s}_pct": pct[:, j] for j, s in enumerate(SITUATIONS)})
    return pd.DataFrame(columns, index=pd.Index(items, name=kind))
