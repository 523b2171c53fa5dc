"""Write a `Dataset` in the challenge layout (the file set of the real `aware2023` folder).

Used by the synthetic generator, and by anyone who wants to hand a data set to tools that read
the challenge files. The files are built as plain nested objects and written with the standard
`json` module, indented like the real files. A vectorised writer (Arrow string kernels, 160
lines) wrote the same bytes faster, but `benchmarks/challenge_writer.py` showed the gain is
small at realistic sizes (1,000 users, the size of the real sets: 0.19 s against 0.29 s); it
only matters at sizes no real set has (100,000 users: 11 s against 42 s), so the simpler code
won (figures in docs/benchmarks.md, "Writing the challenge layout").
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ltr.data.challenge import RATINGS_FILE, labels_file, predictions_file
from ltr.data.dataset import BOX_COLUMNS, Dataset
from ltr.errors import LtrError
from ltr.fileio import write_text_atomic
from ltr.situations import SITUATIONS

#: Key order of the real `class_scores.json` (not the canonical SITUATIONS order).
CLASS_SCORE_KEYS: tuple[str, ...] = ("acc", "it", "bank", "wait")
INDENT = 4
_SPACE = re.compile(r"\s")


def write_challenge_layout(dataset: Dataset, out_dir: Path) -> list[Path]:
    """Write `class_scores.json`, `predictions_{split}.json` and `gt_{split}.json`.

    `gt_{split}.json` is written only for splits with labels. Every user and every image is
    written, an image without a detection as an empty list and a user without images as
    ``{}``, so loading the files back gives the same data set (profile sizes included). Floats
    are written with their shortest round-trip representation (Python's repr), so reading them
    back is exact. Every file is written atomically; values the layout cannot hold (NaN, a
    partial box, a concept name with white space) are an `LtrError` before anything is written
    for that file.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [_write_json(out_dir / RATINGS_FILE, _class_scores(dataset))]
    for split in dataset.splits:
        written.append(_write_json(predictions_file(out_dir, split), _predictions(dataset, split)))
        if dataset.has_labels(split):
            written.append(_write_json(labels_file(out_dir, split), _gt(dataset, split)))
    return written


def _write_json(path: Path, obj: object) -> Path:
    """Indented like the real files; json.dumps then one write (json.dump writes per token)."""
    return write_text_atomic(path, json.dumps(obj, indent=INDENT, allow_nan=False))


def _finite(value: float, what: str) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise LtrError(f"cannot write {what}: {value!r} is not a finite number")
    return value


def _class_scores(dataset: Dataset) -> dict[str, dict[str, str]]:
    """`{concept: {acc, it, bank, wait}}` with numbers as JSON strings, like the real file."""
    ratings = dataset.ratings
    columns = {s: ratings[s].to_numpy(dtype=float) for s in CLASS_SCORE_KEYS}
    return {
        str(concept): {
            s: repr(_finite(columns[s][row], f"rating of {concept!r} for {s}"))
            for s in CLASS_SCORE_KEYS
        }
        for row, concept in enumerate(ratings.index)
    }


def _gt(dataset: Dataset, split: str) -> dict[str, dict[str, float]]:
    labels = dataset.split_labels(split)
    values = labels.to_numpy(dtype=float)
    bad = ~np.isfinite(values)
    if bad.any():
        row, column = np.argwhere(bad)[0]
        raise LtrError(
            f"cannot write labels of split {split!r}: user {labels.index[row]!r} has "
            f"{SITUATIONS[column]} = {values[row, column]!r}"
        )
    return {
        str(user): dict(zip(SITUATIONS, row, strict=True))
        for user, row in zip(labels.index, values.tolist(), strict=True)
    }


def _predictions(dataset: Dataset, split: str) -> dict[str, dict[str, list[str]]]:
    """`{user: {image: [detection string, ...]}}` in the data set's order: users as listed,
    each user's images as listed (then any image known only from a detection)."""
    out: dict[str, dict[str, list[str]]] = {str(user): {} for user in dataset.split_users(split)}
    images = dataset.split_images(split)
    for user, image in zip(
        images["user"].astype(str).tolist(), images["image"].astype(str).tolist(), strict=True
    ):
        out.setdefault(user, {}).setdefault(image, [])
    detections = dataset.split_detections(split)
    for user, image, text in zip(
        detections["user"].astype(str).tolist(),
        detections["image"].astype(str).tolist(),
        _detection_strings(detections),
        strict=True,
    ):
        out.setdefault(user, {}).setdefault(image, []).append(text)
    return out


def _detection_strings(detections: pd.DataFrame) -> list[str]:
    """ "VC12 0.4312 x0 y0 x1 y1" per detection ("VC12 0.4312" when it has no box)."""
    confidence = detections["confidence"].to_numpy(dtype=np.float64)
    boxes = detections[list(BOX_COLUMNS)].to_numpy(dtype=np.float64)
    present = np.isfinite(boxes)
    has_box = present.all(axis=1)
    concepts = detections["concept"].astype(str)
    unwritable = concepts.str.contains(_SPACE).to_numpy() | (concepts == "").to_numpy()
    problems = (
        (~np.isfinite(confidence), "confidence {confidence!r} is not a number"),
        (present.any(axis=1) & ~has_box, "its box is only partly given"),
        (unwritable, "concept {concept!r} is empty or holds white space (fields are spaced)"),
    )
    for mask, problem in problems:
        if mask.any():
            row = detections.iloc[int(np.flatnonzero(mask)[0])]
            raise LtrError(
                f"cannot write detection of user {row['user']!r}, image {row['image']!r}: "
                + problem.format(confidence=row["confidence"], concept=row["concept"])
            )
    return [
        f"{concept} {conf!r} {box[0]!r} {box[1]!r} {box[2]!r} {box[3]!r}"
        if boxed
        else f"{concept} {conf!r}"
        for concept, conf, box, boxed in zip(
            concepts.tolist(), confidence.tolist(), boxes.tolist(), has_box.tolist(), strict=True
        )
    ]
