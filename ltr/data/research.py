"""The organisers' research layout (LERVUP 2021): visual_concepts/*.txt, split and label JSON.

visual_concepts/{accommodation_search,bank_credit,job_search_IT,
                 job_search_waiter_waitress}.txt   one "concept rating" pair per line
train_test_split_*.json   {"train": {"5": ..., "100": {user: {photo: {concept: [conf]}}}},
                           "test": {user: ...}, ...}; split train = train["100"]
gt_usr_exposure_v1.json   {situation_name: {user: score}}  (training users only)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ltr.data.dataset import BOX_COLUMNS, Dataset
from ltr.data.jsonfile import json_path, read_json
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
    key_mismatch,
    such,
    to_number,
)
from ltr.errors import DataError, quoted
from ltr.fileio import read_text
from ltr.situations import RESEARCH_NAMES, SITUATIONS

CONCEPTS_DIR = "visual_concepts"
LABELS_FILE = "gt_usr_exposure_v1.json"
SPLIT_GLOB = "train_test_split_*.json"
#: Which part of the split file each split comes from: train = the full ("100") training set.
SPLIT_KEYS: dict[str, tuple[str, ...]] = {"train": ("train", "100"), "test": ("test",)}


def is_research_layout(root: Path) -> bool:
    return (root / CONCEPTS_DIR).is_dir() and any(root.glob(SPLIT_GLOB))


def read_rating_file(path: Path) -> dict[str, float]:
    """One `concept rating` pair per line; blank lines are skipped."""
    if not path.exists():
        raise DataError(
            path,
            "file not found (the research layout needs one ratings file per situation: "
            + ", ".join(f"{name}.txt" for name in RESEARCH_NAMES)
            + ")",
        )
    lines = read_text(path).splitlines()  # not UTF-8 (e.g. an encoded surrogate): the line
    ratings: dict[str, float] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2:
            raise DataError(
                path,
                f"expected 'concept rating', got {quoted(line.strip(), 100)} "
                f"({len(fields)} fields)",
                line=number,
            )
        concept, value = fields
        if concept in ratings:
            raise DataError(path, "concept rated twice", line=number, record=f"concept {concept!r}")
        ratings[concept] = to_number(
            value, path, f"concept {concept!r}", what="rating", line=number
        )
    if not ratings:
        raise DataError(path, "no ratings in the file")
    return ratings


def read_ratings(root: Path) -> tuple[pd.DataFrame, Path]:
    """Concept x situation ratings from the four files; every concept needs all four."""
    folder = root / CONCEPTS_DIR
    files = {code: folder / f"{name}.txt" for name, code in RESEARCH_NAMES.items()}
    per_situation = {code: read_rating_file(path) for code, path in files.items()}
    concepts = list(dict.fromkeys(c for ratings in per_situation.values() for c in ratings))
    for code, ratings in per_situation.items():
        missing = [c for c in concepts if c not in ratings]
        if missing:
            others = [files[c].name for c, r in per_situation.items() if missing[0] in r]
            raise DataError(
                files[code],
                f"concept has no rating for situation {code!r}, but {', '.join(others)} "
                "rate it; every concept needs a rating in all four files"
                + such(len(missing), "concepts"),
                record=f"concept {missing[0]!r}",
            )
    frame = pd.DataFrame({code: pd.Series(per_situation[code]) for code in SITUATIONS})
    return frame.loc[concepts], folder


def split_file(root: Path) -> Path:
    found = sorted(root.glob(SPLIT_GLOB))
    if len(found) != 1:
        names = ", ".join(p.name for p in found) or "none"
        raise DataError(root, f"expected exactly one {SPLIT_GLOB} file, found {names}")
    return found[0]


def _split_part(raw: Mapping, keys: tuple[str, ...], path: Path) -> Mapping:
    """`raw[keys[0]][keys[1]]...`, each level checked to be an object holding the next key."""
    part: object = raw
    for depth, key in enumerate(keys):
        here = json_path(list(keys[:depth]))
        part = expect_mapping(part, path, here, "an object")
        if key not in part:
            present = ", ".join(map(repr, list(part)[:8])) or "none"
            raise DataError(path, f"missing key {key!r} (keys present: {present})", record=here)
        part = part[key]
    return expect_mapping(part, path, json_path(list(keys)), "an object of users")


def _flatten(users_raw: Mapping, split: str, path: Path) -> SplitFrames:
    """users, images and detections (one row per confidence) of one split, in file order."""
    users, images = [], []
    det_user, det_image, det_concept, det_conf = [], [], [], []
    det_pos: list[int] = []
    for user, photos in users_raw.items():
        photos = expect_mapping(
            photos, path, f"split {split!r}, user {user!r}", "an object of photos"
        )
        users.append(user)
        for photo, concepts in photos.items():
            concepts = expect_mapping(
                concepts, path, f"user {user!r}, image {photo!r}", "an object of concepts"
            )
            images.append((user, photo))
            for concept, confs in concepts.items():
                if not isinstance(confs, list):
                    raise DataError(
                        path,
                        f"expected an array of confidences, got {json_type(confs)}",
                        record=f"user {user!r}, image {photo!r}, concept {concept!r}",
                    )
                n = len(confs)
                det_user.extend([user] * n)
                det_image.extend([photo] * n)
                det_concept.extend([concept] * n)
                det_pos.extend(range(n))
                det_conf.extend(confs)
    detections = pd.DataFrame(
        {
            "split": split,
            "user": det_user,
            "image": det_image,
            "concept": det_concept,
            "position": np.asarray(det_pos, dtype=np.int64),
            "per_concept": True,
        }
    )
    if not set(map(type, det_conf)) <= {int, float}:  # JSON numbers only, not booleans
        row = next(i for i, c in enumerate(det_conf) if type(c) not in (int, float))
        raise DataError(
            path,
            f"confidence must be a number, got {json_type(det_conf[row])}",
            record=detection_record(detections, row),
        )
    try:
        detections["confidence"] = np.asarray(det_conf, dtype=float)
    except OverflowError:  # an integer beyond the float range: infinite, refused below
        detections["confidence"] = [
            float(c) if abs(c) < 2**1024 else (math.inf if c > 0 else -math.inf) for c in det_conf
        ]
    for column in BOX_COLUMNS:
        detections[column] = np.nan
    check_detections(detections, path)
    return SplitFrames(
        users=pd.DataFrame({"split": split, "user": users}),
        images=pd.DataFrame(images, columns=["user", "image"]).assign(split=split)[
            ["split", "user", "image"]
        ],
        detections=detections,
    )


def read_labels(path: Path, users: pd.DataFrame, users_file: Path) -> pd.DataFrame:
    """Labels per user, assigned to the split the user belongs to in `users_file`."""
    raw = expect_mapping(read_json(path), path, "top level", "an object of situations")
    problem = key_mismatch(raw, RESEARCH_NAMES, "situation(s)")
    if problem:
        raise DataError(path, problem, record="top level")
    columns = {}
    for name, code in RESEARCH_NAMES.items():
        scores = expect_mapping(raw[name], path, f"situation {name!r}", "an object of users")
        columns[code] = {
            str(u): to_number(v, path, f"situation {name!r}, user {u!r}", what="label")
            for u, v in scores.items()
        }
    all_users = list(dict.fromkeys(u for scores in columns.values() for u in scores))
    if not all_users:
        raise DataError(path, "no labels in the file (delete it if no split has labels)")
    for name, code in RESEARCH_NAMES.items():
        lacking = [u for u in all_users if u not in columns[code]]
        if lacking:
            raise DataError(
                path,
                f"user has labels in other situations but not in {name!r}"
                + such(len(lacking), "users"),
                record=f"situation {name!r}, user {lacking[0]!r}",
            )
    frame = pd.DataFrame({code: pd.Series(columns[code]) for code in SITUATIONS}).loc[all_users]
    frame.index.name = "user"
    frame = frame.reset_index()
    split_of = pd.Series(users["split"].to_numpy(), index=users["user"].to_numpy())
    frame.insert(0, "split", frame["user"].map(split_of))
    unknown_users = np.flatnonzero(frame["split"].isna().to_numpy())
    if unknown_users.size:
        user = frame["user"].iloc[unknown_users[0]]
        raise DataError(
            path,
            f"label for a user who is in no split of {users_file.name}"
            + such(unknown_users.size, "users"),
            record=f"user {user!r}",
        )
    return frame


def load_research(root: str | Path, *, strict_ratings: bool = False) -> Dataset:
    """Load a research-layout folder into a `Dataset` (splits train and test, no boxes).

    `strict_ratings` turns "a detected concept has no rating" from a warning into an error.
    """
    root = Path(root)
    ratings, ratings_dir = read_ratings(root)
    path = split_file(root)
    raw = expect_mapping(read_json(path), path, "top level", "an object")
    parts = []
    for split, keys in SPLIT_KEYS.items():
        part = _flatten(_split_part(raw, keys, path), split, path)
        check_not_empty(part.users, path, json_path(list(keys)))
        parts.append(part)
    split_files = {s: path for s in SPLIT_KEYS}
    frames = combine_splits(parts, split_files)
    labels_path = root / LABELS_FILE
    if labels_path.is_file():
        labels = read_labels(labels_path, frames.users, path)
        check_labels_have_users(
            labels, frames.users, {s: labels_path for s in SPLIT_KEYS}, split_files
        )
    else:
        labels = Dataset.empty_labels()
    return finish(
        ratings=ratings,
        frames=frames,
        labels=labels,
        layout="research",
        source=root,
        ratings_file=ratings_dir,
        strict_ratings=strict_ratings,
    )
