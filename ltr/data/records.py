"""Checks shared by every loader: turning raw records into validated, normalised frames.

Loaders flatten their nested JSON into plain columns (one Python pass over the records is
unavoidable for JSON); every check below is then vectorised and reports the first bad record.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ltr.data.dataset import BOX_COLUMNS, Dataset
from ltr.errors import DataError
from ltr.situations import SITUATIONS


def expect_mapping(value: object, path: Path, record: str, what: str) -> Mapping:
    """Raise unless `value` is a JSON object (dict)."""
    if not isinstance(value, Mapping):
        raise DataError(
            path, f"expected {what} (a JSON object), got {type(value).__name__}", record=record
        )
    return value


def to_number(value: object, path: Path, record: str) -> float:
    """A finite number from a JSON number or a string holding one (class_scores.json style)."""
    if isinstance(value, bool):
        raise DataError(path, f"expected a number, got {value!r}", record=record)
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise DataError(path, f"not a number: {value!r}", record=record) from None
    if not np.isfinite(number):
        raise DataError(path, f"not a finite number: {value!r}", record=record)
    return number


def situation_values(
    entry: object, path: Path, record: str, keys: Mapping[str, str] | None = None
) -> list[float]:
    """The four situation values of one `{acc, bank, it, wait}` object, in SITUATIONS order.

    `keys` maps file keys to situation codes (identity by default). Missing keys are an error;
    unknown keys too, since they usually mean a typo or a different data set.
    """
    mapping = expect_mapping(entry, path, record, "an object of situation values")
    keys = keys or {code: code for code in SITUATIONS}
    by_code = {keys[k]: v for k, v in mapping.items() if k in keys}
    missing = [code for code in SITUATIONS if code not in by_code]
    if missing:
        raise DataError(path, f"missing situation key(s) {', '.join(missing)}", record=record)
    unknown = [k for k in mapping if k not in keys]
    if unknown:
        raise DataError(
            path, f"unknown situation key(s) {', '.join(map(str, unknown))}", record=record
        )
    return [to_number(by_code[code], path, f"{record}, situation {code!r}") for code in SITUATIONS]


def detection_record(frame: pd.DataFrame, row: int) -> str:
    """Human-readable location of detection `row` of `frame`."""
    item = frame.iloc[row]
    where = f"user {item['user']!r}, image {item['image']!r}"
    if "position" in frame.columns:
        where += f", detection {int(item['position']) + 1}"
    return where


def check_detections(frame: pd.DataFrame, path: Path) -> None:
    """Confidences must be in [0, 1] (NaN refused); boxes, when present, need x0<=x1, y0<=y1."""
    conf = frame["confidence"].to_numpy(dtype=float)
    bad = np.flatnonzero(~((conf >= 0.0) & (conf <= 1.0)))  # NaN fails both comparisons
    if bad.size:
        row = int(bad[0])
        raise DataError(
            path,
            f"confidence {conf[row]!r} is outside [0, 1]"
            + (f" ({bad.size} such detections)" if bad.size > 1 else ""),
            record=detection_record(frame, row),
        )
    boxes = frame[list(BOX_COLUMNS)].to_numpy(dtype=float)
    has_box = ~np.isnan(boxes).all(axis=1)
    partial = has_box & np.isnan(boxes).any(axis=1)
    if partial.any():
        row = int(np.flatnonzero(partial)[0])
        raise DataError(
            path, "box has missing or non-finite corners", record=detection_record(frame, row)
        )
    for lo, hi, axis in ((0, 2, "x"), (1, 3, "y")):
        inverted = has_box & (boxes[:, lo] > boxes[:, hi])
        if inverted.any():
            row = int(np.flatnonzero(inverted)[0])
            raise DataError(
                path,
                f"box has {axis}0 > {axis}1 ({boxes[row, lo]!r} > {boxes[row, hi]!r})",
                record=detection_record(frame, row),
            )
    outside = has_box & ((boxes < 0.0) | (boxes > 1.0)).any(axis=1)
    if outside.any():
        row = int(np.flatnonzero(outside)[0])
        raise DataError(
            path,
            f"box corners {boxes[row].tolist()} are outside [0, 1]",
            record=detection_record(frame, row),
        )


def check_unique_splits(users: pd.DataFrame, files: Mapping[str, Path]) -> None:
    """A user may belong to one split only (otherwise CV and evaluation would leak)."""
    dup = users[users.duplicated("user", keep=False)]
    if len(dup):
        user = dup["user"].iloc[0]
        splits = dup.loc[dup["user"] == user, "split"].tolist()
        if len(set(splits)) == 1:
            raise DataError(files[splits[0]], "user listed twice", record=f"user {user!r}")
        names = " and ".join(str(files[s].name) for s in splits)
        raise DataError(
            files[splits[1]], f"user is in two splits ({names})", record=f"user {user!r}"
        )


def check_labels_have_users(
    labels: pd.DataFrame, users: pd.DataFrame, label_files: Mapping[str, Path]
) -> None:
    """Every labelled user must exist in the detections of the same split."""
    known = set(zip(users["split"], users["user"], strict=True))
    for split, user in zip(labels["split"], labels["user"], strict=True):
        if (split, user) not in known:
            raise DataError(
                label_files[split],
                f"label for a user with no detections in split {split!r}",
                record=f"user {user!r}",
            )


def unrated_concepts_warning(
    detections: pd.DataFrame, ratings: pd.DataFrame, ratings_file: Path, *, strict: bool
) -> list[str]:
    """Concepts detected but not rated: a warning (rating 0 is used), or an error if `strict`."""
    unrated = detections.loc[~detections["concept"].isin(ratings.index), "concept"]
    if unrated.empty:
        return []
    counts = unrated.value_counts()
    listing = ", ".join(f"{c} ({n} detections)" for c, n in counts.head(10).items())
    more = f" and {len(counts) - 10} more" if len(counts) > 10 else ""
    message = (
        f"{len(counts)} detected concept(s) have no rating in {ratings_file.name}: "
        f"{listing}{more}; they count as rating 0"
    )
    if strict:
        raise DataError(
            ratings_file,
            message.replace("; they count as rating 0", ""),
            record=f"concept {counts.index[0]!r}",
        )
    return [message]


def finish(
    *,
    ratings: pd.DataFrame,
    detections: pd.DataFrame,
    images: pd.DataFrame,
    users: pd.DataFrame,
    labels: pd.DataFrame,
    layout: str,
    source: Path,
    warnings: list[str],
) -> Dataset:
    """Normalise dtypes and build the `Dataset`."""
    ratings = ratings.astype(float)
    ratings.index = ratings.index.astype(str)
    ratings.index.name = "concept"
    detections = detections.drop(columns=["position"], errors="ignore")
    for column in ("split", "user", "image", "concept"):
        detections[column] = detections[column].astype(str)
    for column in ("confidence", *BOX_COLUMNS):
        detections[column] = detections[column].astype(float)
    labels = labels.astype({code: float for code in SITUATIONS})
    return Dataset(
        ratings=ratings,
        detections=detections.reset_index(drop=True),
        images=images.reset_index(drop=True),
        users=users.reset_index(drop=True),
        labels=labels.reset_index(drop=True),
        layout=layout,
        source=source,
        warnings=tuple(warnings),
    )
