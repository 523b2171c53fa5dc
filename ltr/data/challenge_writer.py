"""Write a `Dataset` in the challenge layout (the file set of the real `aware2023` folder).

Used by the synthetic generator, and by anyone who wants to hand a data set to tools that read
the challenge files. The prediction files are large (100,000 users = 4.3M detections), so their
text is built with vectorised Arrow string kernels instead of a Python loop per detection; the
result is byte-identical to ``json.dumps(obj, indent=4)`` of the nested object.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ltr.data.dataset import BOX_COLUMNS, Dataset
from ltr.errors import LtrError
from ltr.fileio import write_atomic, write_text_atomic
from ltr.situations import SITUATIONS

#: Key order of the real `class_scores.json` (not the canonical SITUATIONS order).
CLASS_SCORE_KEYS: tuple[str, ...] = ("acc", "it", "bank", "wait")
INDENT = 4
#: Pieces joined into one string per write (bounds the memory of 100k-user files).
_CHUNK = 200_000


def class_scores_path(out_dir: Path) -> Path:
    return Path(out_dir) / "class_scores.json"


def predictions_path(out_dir: Path, split: str) -> Path:
    return Path(out_dir) / f"predictions_{split}.json"


def gt_path(out_dir: Path, split: str) -> Path:
    return Path(out_dir) / f"gt_{split}.json"


def write_challenge_layout(dataset: Dataset, out_dir: Path) -> list[Path]:
    """Write `class_scores.json`, `predictions_{split}.json` and `gt_{split}.json`.

    `gt_{split}.json` is written only for splits with labels. Images without a detection are
    left out (the challenge files list only images with >= 1 detection); a user with no
    detection is written as ``{}`` so the user is still there. Floats are written with their
    shortest round-trip representation (Python's repr), so reading them back is exact.
    Every file is written atomically.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [_write_json(class_scores_path(out_dir), _class_scores(dataset))]
    for split in dataset.splits:
        pieces = _prediction_pieces(dataset, split)
        written.append(write_atomic(predictions_path(out_dir, split), _writer(pieces)))
        if dataset.has_labels(split):
            written.append(_write_json(gt_path(out_dir, split), _gt(dataset, split)))
    return written


# ------------------------------------------------------------------------ small files
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
    return {
        str(concept): {
            s: repr(_finite(ratings.at[concept, s], f"rating of {concept!r} for {s}"))
            for s in CLASS_SCORE_KEYS
        }
        for concept in ratings.index
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


# ------------------------------------------------------------------ vectorised strings
def float_strings(values: np.ndarray) -> pa.Array:
    """Python ``repr`` of every float, vectorised.

    Arrow's cast gives the same shortest round-trip digits as repr and the same text for
    1e-4 <= |x| < 1e9 with a fractional part; the few other values (0.0, 1.0, tiny or huge
    numbers) take repr itself.
    """
    values = np.asarray(values, dtype=np.float64)
    text = pc.cast(pa.array(values), pa.string())
    magnitude = np.abs(values)
    odd = ~((magnitude >= 1e-4) & (magnitude < 1e9) & (values != np.round(values)))
    if not odd.any():
        return text
    # Odd values repeat a lot (0.0 and 1.0 box corners): format each distinct one once.
    # Factorise the bit patterns, not the floats: -0.0 == 0.0 but repr tells them apart.
    codes, distinct_bits = pd.factorize(values[odd].view(np.int64))
    distinct = np.asarray(distinct_bits, dtype=np.int64).view(np.float64)
    formatted = pa.array([repr(v) for v in distinct.tolist()], type=pa.string())
    rows = np.flatnonzero(odd)
    text = (
        pc.replace_with_mask(text, pa.array(odd), formatted.take(pa.array(codes)))
        if len(rows)
        else text
    )
    return text


def json_strings(values: pa.Array) -> pa.Array:
    """Each string as a JSON string literal, exactly as `json.dumps` writes it."""
    quoted = pc.binary_join_element_wise('"', values, '"', "")
    unusual = pc.match_substring_regex(values, r'[^ -~]|["\\]')
    if not pc.any(unusual).as_py():
        return quoted
    rows = np.flatnonzero(unusual.to_numpy(zero_copy_only=False))
    out = np.asarray(quoted.to_numpy(zero_copy_only=False), dtype=object)
    out[rows] = [json.dumps(v) for v in values.take(pa.array(rows)).to_pylist()]
    return pa.array(out, type=pa.string())


def _as_strings(column: pd.Series) -> pa.Array:
    """An id column as an Arrow string array (zero-copy for Arrow-backed string columns)."""
    if not pd.api.types.is_string_dtype(column.dtype) or column.dtype == object:
        column = column.astype(str)
    array = pa.array(column, from_pandas=True)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return array.cast(pa.string()) if array.type != pa.string() else array


def _detection_strings(detections: pd.DataFrame) -> pa.Array:
    """ "VC12 0.4312 x0 y0 x1 y1" per detection ("VC12 0.4312" when it has no box)."""
    confidence = detections["confidence"].to_numpy(dtype=np.float64)
    if not np.isfinite(confidence).all():
        row = detections.iloc[int(np.flatnonzero(~np.isfinite(confidence))[0])]
        raise LtrError(
            f"cannot write detection of user {row['user']!r}, image {row['image']!r}: "
            f"confidence {row['confidence']!r} is not a number"
        )
    boxes = detections[list(BOX_COLUMNS)].to_numpy(dtype=np.float64)
    present = np.isfinite(boxes)
    has_box = present.all(axis=1)
    partial = present.any(axis=1) & ~has_box
    if partial.any():
        row = detections.iloc[int(np.flatnonzero(partial)[0])]
        raise LtrError(
            f"cannot write detection of user {row['user']!r}, image {row['image']!r}: "
            "its box is only partly given"
        )
    head = pc.binary_join_element_wise(
        _as_strings(detections["concept"]), float_strings(confidence), " "
    )
    if not has_box.any():
        return head
    corners = [float_strings(np.where(has_box, boxes[:, k], 0.5)) for k in range(4)]
    with_box = pc.binary_join_element_wise(head, *corners, " ")
    return pc.if_else(pa.array(has_box), with_box, head)


def _prediction_pieces(dataset: Dataset, split: str) -> list[pa.Array]:
    """Text of `predictions_{split}.json` as string arrays, to be concatenated in order.

    Each detection becomes one piece carrying the headers and closers around it (user and
    image keys, brackets, separators); users without detections get a ``"user": {}`` piece.
    """
    users = list(dataset.split_users(split))
    detections = dataset.split_detections(split)
    user_codes, user_names = pd.factorize(detections["user"])
    known = set(users)
    users += [u for u in user_names if u not in known]  # defensive: users missing from `users`
    if not users:
        return [pa.array(["{}"])]

    # Group each user's detections image by image (first-appearance order), stably.
    det_user_rank = pd.Index(users).get_indexer(user_names)[user_codes]
    image_codes, image_names = pd.factorize(detections["image"])
    image_rank = pd.factorize(det_user_rank.astype(np.int64) * len(image_names) + image_codes)[0]
    order = np.lexsort((np.arange(len(detections)), image_rank, det_user_rank))
    if (order != np.arange(len(order))).any():  # already grouped in the usual case
        detections = detections.iloc[order].reset_index(drop=True)
        det_user_rank, image_rank = det_user_rank[order], image_rank[order]
        image_codes = image_codes[order]

    n = len(detections)
    new_image = np.ones(n, dtype=bool)
    new_image[1:] = image_rank[1:] != image_rank[:-1]
    new_user = np.ones(n, dtype=bool)
    new_user[1:] = det_user_rank[1:] != det_user_rank[:-1]
    end_image = np.roll(new_image, -1)
    end_user = np.roll(new_user, -1)
    if n:
        end_image[-1] = end_user[-1] = True

    pad = " " * INDENT
    # Headers are formatted once per distinct user/image, then placed by index ("" elsewhere).
    user_keys = json_strings(pa.array([str(u) for u in users], type=pa.string()))
    user_heads = pc.binary_join_element_wise(pad, user_keys, ": {\n", "")
    image_keys = json_strings(_as_strings(pd.Series(image_names)))
    image_heads = pc.binary_join_element_wise(pad * 2, image_keys, ": [\n", "")
    user_head = _place(user_heads, np.where(new_user, det_user_rank, -1))
    image_head = _place(image_heads, np.where(new_image, image_codes, -1))
    lines = json_strings(_detection_strings(detections))
    tails = pa.array(
        [",\n", f"\n{pad * 2}],\n", f"\n{pad * 2}]\n{pad}}},\n", f"\n{pad * 2}]\n{pad}}}"],
        type=pa.string(),
    )
    last_user = det_user_rank == len(users) - 1
    tail_code = np.where(~end_image, 0, np.where(~end_user, 1, np.where(last_user, 3, 2)))
    det_pieces = pc.binary_join_element_wise(
        user_head, image_head, pad * 3, lines, tails.take(pa.array(tail_code)), ""
    )

    # Users without detections: `"user": {}` at their place in the user order.
    with_detections = np.zeros(len(users), dtype=bool)
    with_detections[det_user_rank] = True
    idle = np.flatnonzero(~with_detections)
    if not len(idle):
        return [pa.array(["{\n"]), det_pieces, pa.array(["\n}"])]
    idle_tail = pa.array(np.where(idle == len(users) - 1, "", ",\n").tolist(), pa.string())
    idle_pieces = pc.binary_join_element_wise(
        pad, user_keys.take(pa.array(idle)), ": {}", idle_tail, ""
    )
    pieces = pa.concat_arrays([det_pieces, idle_pieces])
    rank = np.concatenate([det_user_rank, idle])
    pieces = pieces.take(pa.array(np.argsort(rank, kind="stable")))
    return [pa.array(["{\n"]), pieces, pa.array(["\n}"])]


def _place(texts: pa.Array, index: np.ndarray) -> pa.Array:
    """`texts[index]`, with "" where index is -1."""
    table = pa.concat_arrays([texts, pa.array([""], type=pa.string())])
    return table.take(pa.array(np.where(index < 0, len(texts), index)))


def _writer(pieces: list[pa.Array]):  # noqa: ANN202 - a callback for write_atomic
    def write(handle: IO[str]) -> None:
        for array in pieces:
            for start in range(0, len(array), _CHUNK):
                chunk = array.slice(start, _CHUNK)
                one_list = pa.ListArray.from_arrays(pa.array([0, len(chunk)], pa.int32()), chunk)
                handle.write(pc.binary_join(one_list, "")[0].as_py())

    return write
