"""The challenge layout (ImageCLEFaware 2022/2023): class_scores.json, predictions_*, gt_*.

class_scores.json        {concept: {acc, it, bank, wait}}  values are strings holding numbers
predictions_{split}.json {user: {image: ["VC12 0.43 x0 y0 x1 y1", ...]}}
gt_{split}.json          {user: {acc, bank, it, wait}}      only where labels are published
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ltr.data.dataset import BOX_COLUMNS, Dataset
from ltr.data.jsonfile import read_json
from ltr.data.records import (
    SplitFrames,
    check_detections,
    check_labels_have_users,
    check_not_empty,
    combine_splits,
    detection_record,
    expect_mapping,
    finish,
    json_type,
    situation_values,
    such,
)
from ltr.errors import DataError, quoted
from ltr.situations import SITUATIONS

RATINGS_FILE = "class_scores.json"
#: The split names, in file order: the one definition every module uses (the synthetic
#: generator's shares are keyed by them).
SPLITS: tuple[str, ...] = ("train", "val", "test")
#: The prediction file names, for messages: ``predictions_{train,val,test}.json``.
PREDICTIONS_FILES = f"predictions_{{{','.join(SPLITS)}}}.json"
#: The two accepted shapes of a detection string.
DETECTION_FORMS = "'concept confidence' or 'concept confidence x0 y0 x1 y1'"
#: Characters of a detection string a message quotes (the real ones are up to 88 long).
DETECTION_QUOTE = 100


def predictions_file(root: Path, split: str) -> Path:
    return root / f"predictions_{split}.json"


def labels_file(root: Path, split: str) -> Path:
    return root / f"gt_{split}.json"


def is_challenge_layout(root: Path) -> bool:
    return (root / RATINGS_FILE).is_file() and any(
        predictions_file(root, s).is_file() for s in SPLITS
    )


def read_ratings(path: Path) -> pd.DataFrame:
    """Concept x situation ratings from class_scores.json (numbers or numeric strings)."""
    raw = expect_mapping(read_json(path), path, "top level", "an object of concepts")
    if not raw:
        raise DataError(path, "no concept ratings in the file")
    rows = {
        str(concept): situation_values(entry, path, f"concept {concept!r}", what="rating")
        for concept, entry in raw.items()
    }
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(SITUATIONS))


def _flatten(path: Path, split: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """users, images and raw detection strings of one predictions file, in file order."""
    raw = expect_mapping(read_json(path), path, "top level", "an object of users")
    users, images = [], []
    det_user, det_image, det_text = [], [], []
    det_pos: list[int] = []
    for user, photos in raw.items():
        photos = expect_mapping(photos, path, f"user {user!r}", "an object of images")
        users.append(user)
        for image, found in photos.items():
            if not isinstance(found, list):
                raise DataError(
                    path,
                    f"expected an array of detection strings, got {json_type(found)}",
                    record=f"user {user!r}, image {image!r}",
                )
            images.append((user, image))
            n = len(found)
            det_user.extend([user] * n)
            det_image.extend([image] * n)
            det_pos.extend(range(n))
            det_text.extend(found)
    detections = pd.DataFrame(
        {
            "split": split,
            "user": det_user,
            "image": det_image,
            "position": np.asarray(det_pos, dtype=np.int64),
            "text": pd.Series(det_text, dtype=object),
        }
    )
    return (
        pd.DataFrame({"split": split, "user": users}),
        pd.DataFrame(images, columns=["user", "image"]).assign(split=split)[
            ["split", "user", "image"]
        ],
        detections,
    )


def parse_detections(raw: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Split "concept conf [x0 y0 x1 y1]" strings into typed columns (vectorised).

    `raw` has columns ``split, user, image, position, text``; the result has ``split, user,
    image, position, concept, confidence, x0, y0, x1, y1`` (NaN boxes for 2-field strings).
    Every problem is a `DataError` naming the detection; nothing else is raised.
    """
    text = raw["text"]
    is_str = text.map(lambda value: type(value) is str).to_numpy(dtype=bool)
    if not is_str.all():
        row = int(np.flatnonzero(~is_str)[0])
        raise DataError(
            path,
            f"detection is {json_type(text.iloc[row])}, expected a string {DETECTION_FORMS}",
            record=detection_record(raw, row),
        )
    # One split; missing trailing fields come back as None (pandas pads to the widest row).
    fields = text.str.split(expand=True) if len(text) else pd.DataFrame(index=text.index)
    width = fields.notna().sum(axis=1).to_numpy()
    bad = np.flatnonzero((width != 2) & (width != 6))
    if bad.size:
        row = int(bad[0])
        raise DataError(
            path,
            f"detection {quoted(text.iloc[row], DETECTION_QUOTE)} does not parse: "
            f"{width[row]} field(s), expected "
            f"{DETECTION_FORMS}" + such(bad.size, "detections"),
            record=detection_record(raw, row),
        )
    out = raw.drop(columns=["text"])
    out["concept"] = fields[0] if len(text) else pd.Series(dtype=object)
    for i, column in enumerate(["confidence", *BOX_COLUMNS], start=1):
        source = fields[i] if i in fields.columns else pd.Series(np.nan, index=text.index)
        values = pd.to_numeric(source, errors="coerce").astype(float)
        wrong = np.flatnonzero((source.notna() & values.isna()).to_numpy())
        if wrong.size:
            row = int(wrong[0])
            field = str(source.iloc[row])  # not null, so one of the split strings
            problem = "is NaN" if field.lower() == "nan" else "is not a number"
            raise DataError(
                path,
                f"{column} {quoted(field)} {problem} in detection "
                f"{quoted(text.iloc[row], DETECTION_QUOTE)}",
                record=detection_record(raw, row),
            )
        out[column] = values
    check_detections(out, path)
    return out[["split", "user", "image", "position", "concept", "confidence", *BOX_COLUMNS]]


def read_labels(path: Path, split: str) -> pd.DataFrame:
    """`{user: {acc, bank, it, wait}}` into rows ``split, user, acc, bank, it, wait``."""
    raw = expect_mapping(read_json(path), path, "top level", "an object of users")
    if not raw:
        raise DataError(path, "no labels in the file (delete it if the split has no labels)")
    rows = [
        [split, str(user), *situation_values(entry, path, f"user {user!r}", what="label")]
        for user, entry in raw.items()
    ]
    return pd.DataFrame(rows, columns=["split", "user", *SITUATIONS])


def load_challenge(root: str | Path, *, strict_ratings: bool = False) -> Dataset:
    """Load a challenge-layout folder into a `Dataset`.

    `strict_ratings` turns "a detected concept has no rating" from a warning into an error.
    """
    root = Path(root)
    ratings_path = root / RATINGS_FILE
    split_files = {
        s: predictions_file(root, s) for s in SPLITS if predictions_file(root, s).is_file()
    }
    if not split_files:
        raise DataError(root, f"no {PREDICTIONS_FILES} file in the folder")
    ratings = read_ratings(ratings_path)
    parts = []
    for split, path in split_files.items():
        users, images, raw = _flatten(path, split)
        check_not_empty(users, path, "top level")
        parts.append(SplitFrames(users, images, parse_detections(raw, path)))
    frames = combine_splits(parts, split_files)

    label_frames, label_files = [], {}
    for split in SPLITS:
        path = labels_file(root, split)
        if not path.is_file():
            continue
        if split not in split_files:
            raise DataError(
                path,
                f"labels for split {split!r} but there is no {predictions_file(root, split).name}",
            )
        label_files[split] = path
        label_frames.append(read_labels(path, split))
    labels = pd.concat(label_frames, ignore_index=True) if label_frames else Dataset.empty_labels()
    check_labels_have_users(labels, frames.users, label_files, split_files)
    return finish(
        ratings=ratings,
        frames=frames,
        labels=labels,
        layout="challenge",
        source=root,
        ratings_file=ratings_path,
        strict_ratings=strict_ratings,
    )
