"""One normalised, in-memory data set, whatever file layout it came from.

Every loader (challenge layout, research layout, synthetic generator) produces a `Dataset`;
everything downstream (features, BASE, models, submissions) only ever sees this model.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ltr.errors import LtrError
from ltr.situations import SITUATIONS

#: Columns of `Dataset.detections`, one row per detected object. Boxes are NaN when the layout
#: has none (research layout).
DETECTION_COLUMNS: tuple[str, ...] = (
    "split",
    "user",
    "image",
    "concept",
    "confidence",
    "x0",
    "y0",
    "x1",
    "y1",
)
BOX_COLUMNS: tuple[str, ...] = ("x0", "y0", "x1", "y1")


def _frame(columns: tuple[str, ...] | list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})


@dataclass(frozen=True, eq=False)
class Dataset:
    """Concept ratings, detections, users and labels of one data folder.

    Attributes:
        ratings: index ``concept`` (str), columns `SITUATIONS` (float64); one crowd rating of
            each concept per situation. Exact zeros are real values, not missing ones.
        detections: columns `DETECTION_COLUMNS`, long form, one row per detection, in file order.
        images: columns ``split, user, image``: every image the files list, with or without
            a detection, so profile sizes are right.
        users: columns ``split, user``: every user of every split (a user with no detection is
            still scored by `ltr predict`).
        labels: columns ``split, user`` + `SITUATIONS`: crowd appeal scores, only for the users
            and splits whose labels the files contain.
        layout: ``challenge``, ``research`` or ``synthetic``.
        source: the folder the data came from (None for in-memory data).
        warnings: non-fatal problems found while loading (e.g. concepts without a rating).
    """

    ratings: pd.DataFrame
    detections: pd.DataFrame
    images: pd.DataFrame
    users: pd.DataFrame
    labels: pd.DataFrame
    layout: str = "synthetic"
    source: Path | None = None
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        missing = [c for c in DETECTION_COLUMNS if c not in self.detections.columns]
        missing += [c for c in SITUATIONS if c not in self.ratings.columns]
        missing += [c for c in ("split", "user", *SITUATIONS) if c not in self.labels.columns]
        missing += [c for c in ("split", "user", "image") if c not in self.images.columns]
        missing += [c for c in ("split", "user") if c not in self.users.columns]
        if missing:  # a programming error in a loader, not a user error
            raise ValueError(f"Dataset frames lack columns {missing}")

    # ----------------------------------------------------------------- construction helpers
    @staticmethod
    def empty_labels() -> pd.DataFrame:
        """An empty labels frame with the right columns (``split, user`` + `SITUATIONS`)."""
        return _frame(["split", "user", *SITUATIONS])

    @staticmethod
    def empty_detections() -> pd.DataFrame:
        """An empty detections frame with the right columns (`DETECTION_COLUMNS`)."""
        return _frame(list(DETECTION_COLUMNS))

    # ----------------------------------------------------------------------------- queries
    @property
    def name(self) -> str:
        """The folder's name; for ``.`` or ``..`` that of the folder they stand for."""
        if self.source is None:
            return "in-memory"
        return Path(os.path.abspath(self.source)).name or str(self.source)

    @property
    def splits(self) -> tuple[str, ...]:
        """Split names in the order they first appear (e.g. train, val, test)."""
        return tuple(pd.unique(self.users["split"]))

    @property
    def has_boxes(self) -> bool:
        """Whether the detections carry bounding boxes (the research layout has none)."""
        return bool(len(self.detections)) and bool(self.detections["x0"].notna().any())

    def _check_split(self, split: str) -> None:
        if split not in self.splits:
            known = ", ".join(self.splits) or "none"
            raise LtrError(f"{self.name}: no split {split!r} (splits here: {known})")

    def split_users(self, split: str) -> pd.Index:
        """Users of `split`, in file order."""
        self._check_split(split)
        users = self.users.loc[self.users["split"] == split, "user"]
        index: pd.Index = pd.Index(users.to_numpy(), name="user")
        return index

    def split_detections(self, split: str) -> pd.DataFrame:
        """The detections of one split, in file order.

        Args:
            split: A split of the data set.

        Returns:
            Rows of `detections` whose split is `split`, with a fresh index.

        Raises:
            LtrError: `split` is not a split of the data set.
        """
        self._check_split(split)
        return self.detections[self.detections["split"] == split].reset_index(drop=True)

    def split_images(self, split: str) -> pd.DataFrame:
        """The images of one split (with or without a detection), in file order.

        Args:
            split: A split of the data set.

        Returns:
            Rows of `images` whose split is `split`, with a fresh index.

        Raises:
            LtrError: `split` is not a split of the data set.
        """
        self._check_split(split)
        return self.images[self.images["split"] == split].reset_index(drop=True)

    def has_labels(self, split: str) -> bool:
        """Whether the folder holds labels for a split.

        Args:
            split: A split name.

        Returns:
            True when `labels` has rows for `split` (the real val and test labels are withheld).
        """
        return bool((self.labels["split"] == split).any())

    def split_labels(self, split: str) -> pd.DataFrame:
        """Labels of `split`, index ``user`` (file order), columns `SITUATIONS`.

        Raises a clear error when the split has no labels (e.g. withheld val/test labels).
        """
        self._check_split(split)
        if not self.has_labels(split):
            raise LtrError(f"{self.name}: split {split!r} has no labels in these files")
        rows = self.labels[self.labels["split"] == split]
        return rows.set_index("user")[list(SITUATIONS)].astype(float)

    @property
    def unrated_concepts(self) -> list[str]:
        """Concepts that occur in detections but have no rating (treated as rating 0)."""
        seen = pd.unique(self.detections["concept"])
        return sorted(set(seen) - set(self.ratings.index))

    def fingerprint(self) -> str:
        """A content hash of ratings, detections, users and labels (not of the file paths).

        Saved models and Optuna studies store it to refuse data they were not built on.
        """
        digest = hashlib.sha256()
        for frame in (
            self.ratings.reset_index(),
            self.detections,
            self.images,
            self.users,
            self.labels,
        ):
            hashed = pd.util.hash_pandas_object(frame, index=False)
            digest.update(np.asarray(hashed, dtype=np.uint64).tobytes())
            digest.update(",".join(map(str, frame.columns)).encode())
        return digest.hexdigest()[:16]
