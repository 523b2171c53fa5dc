"""What a loaded data set holds, in numbers a person can check against what they expect.

`summarize(dataset)` is what `ltr data check` prints; it is a library function so notebooks and
reports can use the same numbers. Everything is computed with grouped counts (no loop over
detections), so it costs a few milliseconds on the real data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ltr.data.dataset import Dataset
from ltr.situations import SITUATIONS

#: Columns of `LabelSummary.stats`.
LABEL_STATS: tuple[str, ...] = ("n", "mean", "sd", "min", "max")
#: Confidence quantiles reported per split.
CONFIDENCE_QUANTILES: tuple[float, ...] = (0.1, 0.5, 0.9)


@dataclass(frozen=True)
class SplitSummary:
    """Sizes of one split. Users without images count as 0 images (they are still scored)."""

    split: str
    users: int
    images: int
    detections: int
    images_per_user_min: int
    images_per_user_mean: float
    images_per_user_max: int
    detections_per_image_mean: float
    concepts_detected: int
    confidence_quantiles: tuple[float, ...]
    labelled_users: int

    @property
    def labelled(self) -> bool:
        return self.labelled_users > 0


@dataclass(frozen=True)
class ConceptSummary:
    """Which concepts have a rating, which occur in detections, and the mismatch both ways."""

    rated: int
    detected: int
    detected_unrated: tuple[str, ...]
    rated_undetected: int


@dataclass(frozen=True)
class LabelSummary:
    """Label statistics of one labelled split.

    `stats`: index situations, columns `LABEL_STATS` (sd with ddof=1).
    `correlation`: Pearson correlation between situations over the split's users.
    """

    split: str
    stats: pd.DataFrame
    correlation: pd.DataFrame


@dataclass(frozen=True)
class DataSummary:
    """Everything `ltr data check` reports about one data set."""

    name: str
    layout: str
    source: Path | None
    fingerprint: str
    has_boxes: bool
    splits: tuple[SplitSummary, ...]
    concepts: ConceptSummary
    labels: tuple[LabelSummary, ...]
    warnings: tuple[str, ...]

    def split(self, name: str) -> SplitSummary:
        for item in self.splits:
            if item.split == name:
                return item
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable form (NaN becomes None)."""

        def clean(value: Any) -> Any:
            if isinstance(value, float) and not np.isfinite(value):
                return None
            return value

        def frame(df: pd.DataFrame) -> dict[str, dict[str, Any]]:
            return {
                str(r): {str(c): clean(float(v)) for c, v in row.items()}
                for r, row in df.iterrows()
            }

        return {
            "name": self.name,
            "layout": self.layout,
            "source": None if self.source is None else str(self.source),
            "fingerprint": self.fingerprint,
            "has_boxes": self.has_boxes,
            "splits": [
                {
                    **{k: clean(v) for k, v in vars(s).items() if k != "confidence_quantiles"},
                    "confidence_quantiles": [clean(q) for q in s.confidence_quantiles],
                }
                for s in self.splits
            ],
            "concepts": {
                "rated": self.concepts.rated,
                "detected": self.concepts.detected,
                "detected_unrated": list(self.concepts.detected_unrated),
                "rated_undetected": self.concepts.rated_undetected,
            },
            "labels": [
                {"split": s.split, "stats": frame(s.stats), "correlation": frame(s.correlation)}
                for s in self.labels
            ],
            "warnings": list(self.warnings),
        }


def _split_summary(dataset: Dataset, split: str) -> SplitSummary:
    users = dataset.users.loc[dataset.users["split"] == split, "user"]
    images = dataset.images[dataset.images["split"] == split]
    detections = dataset.detections[dataset.detections["split"] == split]
    per_user = images["user"].value_counts().reindex(users.to_numpy(), fill_value=0)
    conf = detections["confidence"].to_numpy(dtype=float)
    quantiles = (
        tuple(float(q) for q in np.quantile(conf, CONFIDENCE_QUANTILES))
        if conf.size
        else tuple(float("nan") for _ in CONFIDENCE_QUANTILES)
    )
    return SplitSummary(
        split=split,
        users=len(users),
        images=len(images),
        detections=len(detections),
        images_per_user_min=int(per_user.min()) if len(per_user) else 0,
        images_per_user_mean=float(per_user.mean()) if len(per_user) else float("nan"),
        images_per_user_max=int(per_user.max()) if len(per_user) else 0,
        detections_per_image_mean=len(detections) / len(images) if len(images) else float("nan"),
        concepts_detected=int(detections["concept"].nunique()),
        confidence_quantiles=quantiles,
        labelled_users=int((dataset.labels["split"] == split).sum()),
    )


def _label_summary(dataset: Dataset, split: str) -> LabelSummary:
    values = dataset.split_labels(split)
    with np.errstate(over="ignore", invalid="ignore"):  # labels near the float limit: inf, NaN
        return _label_statistics(split, values)


def _label_statistics(split: str, values: pd.DataFrame) -> LabelSummary:
    stats = pd.DataFrame(
        {
            "n": values.count(),
            "mean": values.mean(),
            "sd": values.std(ddof=1),
            "min": values.min(),
            "max": values.max(),
        }
    ).reindex(index=list(SITUATIONS), columns=list(LABEL_STATS))
    correlation = values.corr(method="pearson").reindex(
        index=list(SITUATIONS), columns=list(SITUATIONS)
    )
    return LabelSummary(split=split, stats=stats.astype(float), correlation=correlation)


def summarize(dataset: Dataset) -> DataSummary:
    """Counts per split, concept coverage, label statistics and the loader's warnings."""
    rated = set(dataset.ratings.index)
    detected = set(pd.unique(dataset.detections["concept"]))
    return DataSummary(
        name=dataset.name,
        layout=dataset.layout,
        source=dataset.source,
        fingerprint=dataset.fingerprint(),
        has_boxes=dataset.has_boxes,
        splits=tuple(_split_summary(dataset, split) for split in dataset.splits),
        concepts=ConceptSummary(
            rated=len(rated),
            detected=len(detected),
            detected_unrated=tuple(sorted(detected - rated)),
            rated_undetected=len(rated - detected),
        ),
        labels=tuple(
            _label_summary(dataset, split) for split in dataset.splits if dataset.has_labels(split)
        ),
        warnings=dataset.warnings,
    )
