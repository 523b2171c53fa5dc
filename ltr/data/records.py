"""Checks shared by every loader: turning raw records into validated, normalised frames.

Loaders flatten their nested JSON into plain columns (one Python pass over the records is
unavoidable for JSON); every check below is then vectorised and reports the first bad record,
with a count when several records share the problem.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ltr.data.dataset import BOX_COLUMNS, Dataset
from ltr.errors import DataError, quoted
from ltr.situations import SITUATIONS

#: The largest rating or label, in absolute value, a data file may hold. Crowd ratings are means
#: of votes on -3..+3 and appeal labels are on a scale of a few units (-2.2..2.4 in the real
#: data); a value beyond this is a corrupt or mis-scaled file, and would break the work later
#: (the features square it: 1e308 squared is infinite, and models fail on the NaN that follows).
VALUE_LIMIT = 1e6


def out_of_range(what: str, shown: str) -> str:
    """The problem of a rating or label beyond `VALUE_LIMIT` (`shown`: the value as quoted)."""
    return (
        f"{what} {shown} is outside [{-VALUE_LIMIT:,.0f}, {VALUE_LIMIT:,.0f}] (ratings and labels "
        "are on a scale of a few units; the file is probably corrupt or mis-scaled)"
    )


def json_type(value: object) -> str:
    """The JSON name of a parsed value's type, for messages (``an array``, ``null``...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, (int, float)):
        return f"the number {quoted(value)}"
    if isinstance(value, str):
        return f"the string {quoted(value)}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def expect_mapping(value: object, path: Path, record: str, what: str) -> Mapping:
    """Raise unless `value` is a JSON object (dict); `what` says what the object should hold."""
    if type(value) is not dict and not isinstance(value, Mapping):  # fast path: parsed JSON
        raise DataError(
            path, f"expected {what} (a JSON object), got {json_type(value)}", record=record
        )
    return value


def to_number(
    value: object, path: Path, record: str, *, what: str, line: int | None = None
) -> float:
    """A rating or label (`what`): a finite number within ±`VALUE_LIMIT`, from a JSON number or
    a string holding one (class_scores.json style)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise DataError(
            path, f"expected a number, got {json_type(value)}", record=record, line=line
        )
    try:
        number = float(value)
    except ValueError:
        raise DataError(path, f"not a number: {quoted(value)}", record=record, line=line) from None
    except OverflowError:  # an integer beyond the float range (JSON allows any length)
        number = math.inf
    if not math.isfinite(number):
        raise DataError(
            path,
            f"not a finite number: {quoted(value)} (NaN and infinities are refused)",
            record=record,
            line=line,
        )
    if abs(number) > VALUE_LIMIT:
        raise DataError(path, out_of_range(what, quoted(value)), record=record, line=line)
    return number


def situation_values(
    entry: object, path: Path, record: str, *, what: str, keys: Mapping[str, str] | None = None
) -> list[float]:
    """The four situation values (ratings or labels: `what`) of one `{acc, bank, it, wait}`
    object, in SITUATIONS order.

    `keys` maps file keys to situation codes (identity by default). Missing keys are an error;
    unknown keys too, since they usually mean a typo or a different data set.
    """
    mapping = expect_mapping(entry, path, record, "an object of situation values")
    keys = keys or {code: code for code in SITUATIONS}
    problem = key_mismatch(mapping, keys, "situation key(s)")
    if problem:
        raise DataError(path, problem, record=record)
    by_code = {keys[k]: v for k, v in mapping.items()}
    return [
        to_number(by_code[code], path, f"{record}, situation {code!r}", what=what)
        for code in SITUATIONS
    ]


def key_mismatch(found: Iterable[str], expected: Iterable[str], what: str) -> str | None:
    """What is wrong with the keys of an object that must hold exactly `expected`, or None:
    ``missing situation key(s) 'bank'; unknown key(s) 'bnak' (expected acc, bank, it, wait)``.
    Unknown keys count too: they usually mean a typo or a different data set."""
    found, expected = list(found), list(expected)
    missing = [k for k in expected if k not in found]
    unknown = [k for k in found if k not in expected]
    if not missing and not unknown:
        return None
    problems = [f"missing {what} {', '.join(map(repr, missing))}"] if missing else []
    problems += [f"unknown key(s) {', '.join(map(repr, unknown))}"] if unknown else []
    return f"{'; '.join(problems)} (expected {', '.join(expected)})"


def detection_record(frame: pd.DataFrame, row: int) -> str:
    """Human-readable location of detection `row` of `frame`.

    Challenge layout: ``user 'u', image 'i', detection 2`` (position in the image's list).
    Research layout (frame has ``concept`` and a per-concept ``position``, flagged by the
    ``per_concept`` column): ``user 'u', image 'i', concept 'dog', confidence 2``.
    """
    item = frame.iloc[row]
    where = f"user {item['user']!r}, image {item['image']!r}"
    if "position" not in frame.columns:
        return where
    number = int(item["position"]) + 1
    if "per_concept" in frame.columns:
        return f"{where}, concept {item['concept']!r}, confidence {number}"
    return f"{where}, detection {number}"


def such(count: int, what: str) -> str:
    """`` (3 such users)`` after a message about the first of several bad records, else ""."""
    return f" ({count} such {what})" if count > 1 else ""


def check_detections(frame: pd.DataFrame, path: Path) -> None:
    """Confidences must be in [0, 1] (NaN refused); boxes, when present, need finite corners in
    [0, 1] with x0 <= x1 and y0 <= y1."""
    conf = frame["confidence"].to_numpy(dtype=float)
    nan = np.flatnonzero(np.isnan(conf))
    if nan.size:
        raise DataError(
            path,
            "confidence is NaN (not a number)" + such(nan.size, "detections"),
            record=detection_record(frame, int(nan[0])),
        )
    bad = np.flatnonzero(~((conf >= 0.0) & (conf <= 1.0)))
    if bad.size:
        row = int(bad[0])
        raise DataError(
            path,
            f"confidence {float(conf[row])!r} is outside [0, 1]" + such(bad.size, "detections"),
            record=detection_record(frame, row),
        )
    boxes = frame[list(BOX_COLUMNS)].to_numpy(dtype=float)
    if not len(boxes):
        return
    has_box = ~np.isnan(boxes).all(axis=1)
    partial = has_box & np.isnan(boxes).any(axis=1)
    if partial.any():
        row = int(np.flatnonzero(partial)[0])
        raise DataError(path, "box has missing corners", record=detection_record(frame, row))
    outside = has_box & ~((boxes >= 0.0) & (boxes <= 1.0)).all(axis=1)
    if outside.any():
        row = int(np.flatnonzero(outside)[0])
        raise DataError(
            path,
            f"box corners {boxes[row].tolist()} are outside [0, 1] (boxes are normalised)"
            + such(int(outside.sum()), "detections"),
            record=detection_record(frame, row),
        )
    for lo, hi, axis in ((0, 2, "x"), (1, 3, "y")):
        inverted = has_box & (boxes[:, lo] > boxes[:, hi])
        if inverted.any():
            row = int(np.flatnonzero(inverted)[0])
            low, high = float(boxes[row, lo]), float(boxes[row, hi])
            raise DataError(
                path,
                f"box has {axis}0 > {axis}1 ({low!r} > {high!r}); "
                f"expected corners 'x0 y0 x1 y1' with x0 <= x1 and y0 <= y1"
                + such(int(inverted.sum()), "detections"),
                record=detection_record(frame, row),
            )


def check_not_empty(users: pd.DataFrame, path: Path, record: str) -> None:
    """A split without users is a truncated or wrong file, not an empty split to score."""
    if users.empty:
        raise DataError(path, "no users (the split is empty)", record=record)


def check_unique_splits(users: pd.DataFrame, files: Mapping[str, Path]) -> None:
    """A user may belong to one split only (otherwise CV and evaluation would leak)."""
    dup = users[users.duplicated("user", keep=False)]
    if len(dup):
        user = dup["user"].iloc[0]
        splits = dup.loc[dup["user"] == user, "split"].tolist()
        if len(set(splits)) == 1:
            raise DataError(files[splits[0]], "user listed twice", record=f"user {user!r}")
        names = list(dict.fromkeys(files[s].name for s in splits))
        where = f" (in {' and '.join(names)})" if len(names) > 1 else ""
        n_users = dup["user"].nunique()
        raise DataError(
            files[splits[1]],
            f"user is in two splits, {splits[0]!r} and {splits[1]!r}{where}; a user must "
            f"belong to one split only" + such(n_users, "users"),
            record=f"user {user!r}",
        )


def check_labels_have_users(
    labels: pd.DataFrame,
    users: pd.DataFrame,
    label_files: Mapping[str, Path],
    user_files: Mapping[str, Path],
) -> None:
    """Every labelled user exists in the same split, and a labelled split has every label.

    A label without a user would be silently dropped; a split with some labels missing would
    train or evaluate on a different set of users than the one scored.
    """
    for split in pd.unique(labels["split"]):
        labelled = labels.loc[labels["split"] == split, "user"]
        split_users = users.loc[users["split"] == split, "user"]
        orphan = np.flatnonzero(~labelled.isin(split_users).to_numpy())
        if orphan.size:
            in_file = user_files.get(split)
            where = f"not in {in_file.name}" if in_file is not None else "in no split"
            raise DataError(
                label_files[split],
                f"label for a user who is {where} (split {split!r})" + such(orphan.size, "users"),
                record=f"user {labelled.iloc[orphan[0]]!r}",
            )
        unlabelled = split_users[~split_users.isin(labelled).to_numpy()]
        if len(unlabelled):
            raise DataError(
                label_files[split],
                f"{len(unlabelled)} of {len(split_users)} users of split {split!r} have no "
                f"label; a labelled split needs a label for every user",
                record=f"user {unlabelled.iloc[0]!r}",
            )


def unrated_concepts_warning(
    detections: pd.DataFrame, ratings: pd.DataFrame, ratings_file: Path, *, strict: bool
) -> list[str]:
    """Concepts detected but not rated: a warning (rating 0 is used), or an error if `strict`.

    Rating 0 is the neutral point of the crowd scale, so an unrated concept neither raises nor
    lowers a profile's score; refusing the data instead would block the real lervup2021 set,
    whose detector knows two concepts the crowd never rated.
    """
    unrated = detections.loc[~detections["concept"].isin(ratings.index), "concept"]
    if unrated.empty:
        return []
    counts = (
        unrated.value_counts(sort=False).sort_index().sort_values(ascending=False, kind="stable")
    )
    listing = ", ".join(f"{c} ({n})" for c, n in counts.head(10).items())
    more = f" and {len(counts) - 10} more" if len(counts) > 10 else ""
    source = ratings_file.name + ("/" if ratings_file.is_dir() else "")
    message = (
        f"{len(counts)} detected concept(s) have no rating in {source} "
        f"({len(unrated):,} of {len(detections):,} detections): {listing}{more}"
    )
    if strict:
        raise DataError(
            ratings_file,
            f"{message}; strict ratings need a rating for every detected concept",
            record=f"concept {counts.index[0]!r}",
        )
    return [f"{message}; rating 0 is used for them"]


@dataclass(frozen=True)
class SplitFrames:
    """What a loader read of one split (or of all of them): users, images, detections."""

    users: pd.DataFrame
    images: pd.DataFrame
    detections: pd.DataFrame


def combine_splits(parts: list[SplitFrames], files: Mapping[str, Path]) -> SplitFrames:
    """The splits' frames in one, in order; a user may belong to one split only (`files`:
    split -> the file naming it, for the message)."""
    users = pd.concat([part.users for part in parts], ignore_index=True)
    check_unique_splits(users, files)
    return SplitFrames(
        users=users,
        images=pd.concat([part.images for part in parts], ignore_index=True),
        detections=pd.concat([part.detections for part in parts], ignore_index=True),
    )


def _as_str(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """`frame` with `columns` as pandas' string dtype (cast only where needed: it is not free)."""
    todo = [c for c in columns if not isinstance(frame[c].dtype, pd.StringDtype)]
    return frame.astype(dict.fromkeys(todo, str)) if todo else frame


def finish(
    *,
    ratings: pd.DataFrame,
    frames: SplitFrames,
    labels: pd.DataFrame,
    layout: str,
    source: Path,
    ratings_file: Path,
    strict_ratings: bool,
) -> Dataset:
    """The last step of every loader: unrated concepts (a warning, or an error if
    `strict_ratings`), normalised dtypes, the `Dataset`."""
    warnings = unrated_concepts_warning(
        frames.detections, ratings, ratings_file, strict=strict_ratings
    )
    ratings = ratings.astype(float)
    ratings.index = ratings.index.astype(str)
    ratings.index.name = "concept"
    detections = frames.detections.drop(columns=["position", "per_concept"], errors="ignore")
    detections = _as_str(detections, ("split", "user", "image", "concept"))
    for column in ("confidence", *BOX_COLUMNS):
        detections[column] = detections[column].astype(float)
    labels = _as_str(labels, ("split", "user")).astype({code: float for code in SITUATIONS})
    return Dataset(
        ratings=ratings,
        detections=detections.reset_index(drop=True),
        images=_as_str(frames.images, ("split", "user", "image")).reset_index(drop=True),
        users=_as_str(frames.users, ("split", "user")).reset_index(drop=True),
        labels=labels.reset_index(drop=True),
        layout=layout,
        source=source,
        warnings=tuple(warnings),
    )
