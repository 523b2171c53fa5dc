"""Which features exist, how they are named, and the few parameters that shape them.

The column list is a pure function of (concept vocabulary, has boxes, config), never of the
split's content, so every split of one data set gets exactly the same columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from ltr.data.dataset import Dataset
from ltr.errors import LtrError
from ltr.features.embedding import MAX_COMPONENTS
from ltr.features.vocabulary import Vocabulary
from ltr.situations import SITUATIONS

#: Feature families in column order, with what each one holds. ``situation``: one value per
#: situation; ``concept``: one value per concept of the vocabulary; ``profile``: neither.
FAMILIES: dict[str, tuple[str, str]] = {
    "size": ("profile", "profile size: images, images with a detection, detections, concepts"),
    "freq": ("concept", "share of the profile's images showing the concept"),
    "count": ("concept", "number of detections of the concept"),
    "maxconf": ("concept", "highest confidence of the concept"),
    "meanconf": ("concept", "mean confidence of the concept's detections"),
    "conf": ("situation", "sum and per-image mean of rating x confidence"),
    "base": ("situation", "BASE: per-image sum of rating x max confidence per concept, mean"),
    "posneg": ("situation", "positive and negative parts of rating x confidence"),
    "focal": ("situation", "focal rating r / (1 - |r|/K)^gamma x confidence"),
    "dist": ("situation", "distribution of the per-image rating x confidence scores"),
    "area": ("situation", "box-area-weighted ratings (only when the data has boxes)"),
    "embed": ("profile", "low-rank concept embedding of the profile, fitted without labels"),
}

#: Families that need bounding boxes: skipped on data without boxes (e.g. the research layout).
BOX_FAMILIES: frozenset[str] = frozenset({"area"})

SIZE_NAMES: tuple[str, ...] = (
    "n_images",
    "n_det_images",
    "n_detections",
    "det_per_image",
    "n_concepts",
)


@dataclass(frozen=True)
class FeatureConfig:
    """Parameters of `featurize`.

    Attributes:
        thresholds: confidence thresholds of the BASE family (a detection counts when its
            confidence is >= the threshold); one BASE column per threshold and situation.
            Default: 0 (every detection) and 0.4, about the median confidence of both real
            data sets.
        focal_k_factor: K of the focal rating is this factor times the largest |rating| of the
            data set (all concepts, all situations); must be > 1 so the denominator stays > 0.
        focal_gamma: exponent of the focal rating (0 gives the plain rating).
        quantiles: per-image score quantiles of the ``dist`` family, in [0, 1].
        embed_dim: components of the ``embed`` family (1..32): the first `embed_dim` of those
            the vocabulary stores. Default 16: with the default model on aware2023 (5-fold x 3,
            seed 0) 8, 16 and 32 components gained +0.0023, +0.0045 and +0.0029.
        families: families to compute (None = all of `FAMILIES` the data supports).
    """

    thresholds: tuple[float, ...] = (0.0, 0.4)
    focal_k_factor: float = 1.05
    focal_gamma: float = 1.0
    quantiles: tuple[float, ...] = (0.25, 0.5, 0.75)
    embed_dim: int = 16
    families: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "thresholds", tuple(float(t) for t in self.thresholds))
        object.__setattr__(self, "quantiles", tuple(float(q) for q in self.quantiles))
        if self.families is not None:
            object.__setattr__(self, "families", tuple(self.families))
            check_families(self.families)
        if not all(0.0 <= t <= 1.0 for t in self.thresholds):
            raise LtrError(f"confidence thresholds must be in [0, 1], got {self.thresholds}")
        if len(set(self.thresholds)) != len(self.thresholds):
            raise LtrError(f"confidence thresholds repeat: {self.thresholds}")
        if not all(0.0 <= q <= 1.0 for q in self.quantiles):
            raise LtrError(f"quantiles must be in [0, 1], got {self.quantiles}")
        if len(set(self.quantiles)) != len(self.quantiles):
            raise LtrError(f"quantiles repeat: {self.quantiles}")
        if not self.focal_k_factor > 1.0:
            raise LtrError(f"focal K factor must be > 1, got {self.focal_k_factor}")
        if not self.focal_gamma >= 0.0:
            raise LtrError(f"focal gamma must be >= 0, got {self.focal_gamma}")
        dim = self.embed_dim
        if isinstance(dim, bool) or not isinstance(dim, int) or not 1 <= dim <= MAX_COMPONENTS:
            raise LtrError(
                f"embedding dimension must be an integer in 1..{MAX_COMPONENTS}, got {dim!r}"
            )

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly form, stored with saved models so prediction featurises the same way."""
        return {
            "thresholds": list(self.thresholds),
            "focal_k_factor": self.focal_k_factor,
            "focal_gamma": self.focal_gamma,
            "quantiles": list(self.quantiles),
            "embed_dim": self.embed_dim,
            "families": None if self.families is None else list(self.families),
        }

    @classmethod
    def from_dict(cls, data: dict) -> FeatureConfig:
        """The config `to_dict` wrote (stored with saved models).

        Args:
            data: The stored fields.

        Returns:
            The config.

        Raises:
            LtrError: A field is unknown or invalid.
        """
        known = {
            "thresholds",
            "focal_k_factor",
            "focal_gamma",
            "quantiles",
            "embed_dim",
            "families",
        }
        unknown = sorted(set(data) - known)
        if unknown:
            raise LtrError(f"unknown feature setting(s) {', '.join(unknown)}")
        values = dict(data)
        for key in ("thresholds", "quantiles", "families"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        return cls(**values)

    def wants(self, family: str) -> bool:
        """Whether the config asks for a family.

        Args:
            family: A key of `FAMILIES`.

        Returns:
            True when `families` is None (all) or lists it.
        """
        return self.families is None or family in self.families


def check_families(families: Sequence[str]) -> None:
    """A clear error naming the unknown families and the known ones."""
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        raise LtrError(
            f"unknown feature famil{'y' if len(unknown) == 1 else 'ies'} "
            f"{', '.join(map(repr, unknown))} (known: {', '.join(FAMILIES)})"
        )


def parse_families(text: str | None) -> tuple[str, ...] | None:
    """``"conf,base"`` -> ``("conf", "base")``; None or blank -> None (all families)."""
    if text is None or not text.strip():
        return None
    families = tuple(dict.fromkeys(f.strip() for f in text.split(",") if f.strip()))
    check_families(families)
    return families


def concept_vocabulary(dataset: Dataset) -> pd.Index:
    """Rated concepts in rating order, then detected-but-unrated ones sorted (rating 0)."""
    return Vocabulary.from_dataset(dataset, embedding=False).concepts


def threshold_label(threshold: float) -> str:
    """``0.5`` -> ``"0.5"``, ``0.0`` -> ``"0"``: short and stable in column names."""
    return f"{threshold:g}"


def quantile_label(q: float) -> str:
    """``0.25`` -> ``"q25"``, ``0.5`` -> ``"q50"``, ``0.125`` -> ``"q12.5"``."""
    return f"q{q * 100:g}"


def situation_stats(family: str, config: FeatureConfig) -> tuple[str, ...]:
    """Per-situation statistics of a family; the column is ``{stat}:{situation}``."""
    if family == "conf":
        return ("conf_sum", "conf_mean")
    if family == "base":
        return tuple(f"base@{threshold_label(t)}" for t in config.thresholds)
    if family == "posneg":
        return ("pos_sum", "neg_sum", "pos_mean", "neg_mean")
    if family == "focal":
        return ("focal_sum", "focal_mean")
    if family == "dist":
        quantiles = tuple(f"img_{quantile_label(q)}" for q in config.quantiles)
        return ("img_std", "img_min", "img_max", *quantiles, "img_negshare")
    if family == "area":
        return ("area_sum", "area_mean")
    raise ValueError(f"{family!r} is not a per-situation family")


#: Situation-agnostic columns of the per-situation families that have some.
FAMILY_PROFILE_NAMES: dict[str, tuple[str, ...]] = {"size": SIZE_NAMES, "area": ("box_area_mean",)}


def profile_names(family: str, config: FeatureConfig) -> tuple[str, ...]:
    """Situation- and concept-agnostic columns of a family: ``embed1`` .. ``embed{embed_dim}``
    for ``embed`` (component 1 has the largest singular value), fixed names otherwise."""
    if family == "embed":
        return tuple(f"embed{j}" for j in range(1, config.embed_dim + 1))
    return FAMILY_PROFILE_NAMES.get(family, ())


def active_families(
    has_boxes: bool, config: FeatureConfig, has_embedding: bool = True
) -> list[str]:
    """Families `featurize` computes for this data and config, in column order.

    ``area`` needs boxes; ``embed`` needs a vocabulary with components (one saved by an older
    `ltr` has none), otherwise they are skipped like any family the data cannot support.
    """
    return [
        f
        for f in FAMILIES
        if config.wants(f)
        and (has_boxes or f not in BOX_FAMILIES)
        and (has_embedding or f != "embed")
    ]


def feature_columns(
    concepts: pd.Index, has_boxes: bool, config: FeatureConfig, has_embedding: bool = True
) -> pd.DataFrame:
    """One row per feature: ``name, family, situation, concept`` (None where not applicable).

    Order: families as in `FAMILIES`; within a family, profile columns first, then concept
    columns in vocabulary order, then per-situation columns statistic by statistic, each in
    `SITUATIONS` order.
    """
    rows: list[tuple[str, str, str | None, str | None]] = []
    for family in active_families(has_boxes, config, has_embedding):
        kind = FAMILIES[family][0]
        for name in profile_names(family, config):
            rows.append((name, family, None, None))
        if kind == "concept":
            rows.extend((f"{family}:{c}", family, None, c) for c in concepts)
        elif kind == "situation":
            for stat in situation_stats(family, config):
                rows.extend((f"{stat}:{s}", family, s, None) for s in SITUATIONS)
    return pd.DataFrame(rows, columns=["name", "family", "situation", "concept"], dtype=object)
