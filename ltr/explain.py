"""Feedback a person can act on: which photos and concepts help or hurt a profile, per situation.

The question a user asks is "what if I did not share this photo?". `explain_user` answers it
literally, for any trained model: it scores the profile without each photo, and without all
detections of each concept, next to the full profile and every other user of the split, all in one
batch. An effect is the drop in the situation's score (and in the user's percentile among the
split's users) when the photo or concept is removed: positive = it helps, negative = it hurts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ltr.data import Dataset
from ltr.errors import LtrError
from ltr.models.persistence import TrainedModel
from ltr.situations import SITUATIONS

#: Separates the parts of a variant's user id; cannot occur in ids read from JSON keys or text
#: files of the supported layouts (they are printable).
_SEP = "\x1f"


@dataclass(frozen=True)
class Explanation:
    """What each photo and concept of one profile does to its score in each situation.

    Attributes:
        scores / percentiles: the full profile's score and its percentile (share of the split's
            other users scored lower, in %) per situation.
        photos: one row per photo: ``concepts`` (what was detected), then per situation the effect
            on the score (``{s}``) and on the percentile (``{s}_pct``).
        concepts: one row per detected concept: ``photos`` (how many show it), its crowd rating
            per situation (``rating_{s}``), then the effects as for photos.
    """

    user: str
    split: str
    scores: pd.Series
    percentiles: pd.Series
    photos: pd.DataFrame
    concepts: pd.DataFrame

    def to_dict(self) -> dict:
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
    """Effects of each photo and concept of `user` (a user of `split`) on its scores."""
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
