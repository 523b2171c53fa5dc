"""Detections tables: a folder of Parquet files, one row per detection, for scoring at scale.

    TABLE/
      part-00000.parquet ...   columns user, image, concept, confidence, x0, y0, x1, y1
      ratings.parquet          optional: concept, acc, bank, it, wait (the concept ratings)
      _ltr_table.json          optional: written by ltr (what generated the table)

Every ``*.parquet`` file except ``ratings.parquet`` (and names starting with ``_`` or ``.``) is a
part of the table; a part without rows (only a schema, as Spark or Dask write for an empty
partition) is checked and skipped, and a table whose parts hold no row at all is an error. A
user's rows are all in one file, so a file is a unit of work that can be scored alone
(`ltr.scoring`). Boxes may be null (no box). A row with a null ``concept`` (and
null confidence and box) lists an image without a detection, and a row with a null ``image``
too lists a user without images: profile sizes count them, as the JSON layouts do.

`open_table` checks the files' schemas and that no user is in two files (reading only the user
column); `read_part` validates one file's values. Errors name the file and the row (counting
from 0, as Parquet readers do) and say what is wrong.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ltr.data.dataset import BOX_COLUMNS, Dataset
from ltr.data.records import VALUE_LIMIT, out_of_range
from ltr.errors import DataError, LtrError, quoted
from ltr.fileio import write_text_atomic
from ltr.situations import SITUATIONS

#: Columns of a detections table, in this order.
TABLE_COLUMNS: tuple[str, ...] = ("user", "image", "concept", "confidence", *BOX_COLUMNS)
TEXT_COLUMNS: tuple[str, ...] = ("user", "image", "concept")
NUMBER_COLUMNS: tuple[str, ...] = ("confidence", *BOX_COLUMNS)
RATINGS_FILE = "ratings.parquet"
MARKER_FILE = "_ltr_table.json"
#: The split name a table's users get in a `Dataset` (a table has no splits).
SPLIT = "all"
#: Users per file written by `write_table` / `write_synthetic_table`.
USERS_PER_FILE = 25_000


# ------------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class DetectionTable:
    """An opened, schema-checked table: its part files that hold rows (sorted by name), rows
    and users per file, and its own concept ratings if it has a ratings file."""

    root: Path
    files: tuple[Path, ...]
    rows: tuple[int, ...]
    users: tuple[int, ...]
    ratings: pd.DataFrame | None

    @property
    def n_rows(self) -> int:
        return sum(self.rows)

    @property
    def n_users(self) -> int:
        return sum(self.users)


def is_table(folder: str | Path) -> bool:
    """Whether `folder` is meant as a detections table: it holds Parquet files and is not a
    data folder of the JSON layouts (which may hold a stray Parquet file, e.g. features)."""
    from ltr.data.challenge import is_challenge_layout
    from ltr.data.research import is_research_layout

    folder = Path(folder)
    if not folder.is_dir() or is_challenge_layout(folder) or is_research_layout(folder):
        return False
    return any(_part_files(folder)) or (folder / RATINGS_FILE).is_file()


def _part_files(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.glob("*.parquet")):
        if path.name != RATINGS_FILE and not path.name.startswith(("_", ".")):
            yield path


def _is_text(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return bool(
        pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_null(kind)
    )


def _is_number(kind: pa.DataType) -> bool:
    return bool(pa.types.is_floating(kind) or pa.types.is_integer(kind) or pa.types.is_null(kind))


def _parquet_file(path: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as error:
        raise DataError(path, f"not a readable Parquet file ({error})") from None


def _check_schema(path: Path, schema: pa.Schema, columns: tuple[str, ...], table: str) -> None:
    missing = [c for c in columns if c not in schema.names]
    if missing:
        raise DataError(
            path,
            f"missing column(s) {', '.join(map(repr, missing))} (a {table} has columns "
            f"{', '.join(columns)}; found {', '.join(schema.names) or 'none'})",
        )


def _first_non_number(path: Path, column: str, values: pa.ChunkedArray) -> DataError:
    """The error for a text column where numbers are expected, at its first bad row."""
    text = values.to_pandas()
    parsed = pd.to_numeric(text, errors="coerce")
    bad = np.flatnonzero(text.notna().to_numpy() & parsed.isna().to_numpy())
    row = int(bad[0]) if bad.size else int(np.flatnonzero(text.notna().to_numpy())[0])
    shown = text.iloc[row]
    what = "is not a number" if bad.size else "is text, expected a number"
    count = f" ({bad.size} such rows)" if bad.size > 1 else ""
    return DataError(path, f"{column} {quoted(shown)} {what}{count}", record=f"row {row}")


def open_table(folder: str | Path) -> DetectionTable:
    """Check a table's files (readable Parquet, the columns, their types) and that no user is
    in two files; read its ratings file if any. Reads only schemas and the user column.

    Parts without rows are left out of the result (there is nothing in them to score); a table
    without any row is a `DataError`."""
    root = Path(folder)
    if not root.exists():
        raise DataError(root, "folder not found")
    if not root.is_dir():
        raise DataError(root, "not a folder: expected a folder of Parquet files")
    files = tuple(_part_files(root))
    if not files:
        raise DataError(
            root, f"no Parquet file: expected part files with columns {', '.join(TABLE_COLUMNS)}"
        )
    kept, rows, users, uniques = [], [], [], []
    for path in files:
        handle = _parquet_file(path)
        schema = handle.schema_arrow
        _check_schema(path, schema, TABLE_COLUMNS, "detections table")
        for column in TEXT_COLUMNS:
            if not _is_text(schema.field(column).type):
                raise DataError(
                    path, f"column {column!r} holds {schema.field(column).type}, expected text"
                )
        column = handle.read(columns=["user"]).column("user")
        nulls = np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))
        if nulls.size:
            raise DataError(path, "user is missing (null)", record=f"row {int(nulls[0])}")
        if handle.metadata.num_rows == 0:  # an empty partition: legitimate, nothing to score
            continue
        distinct = pc.unique(column.combine_chunks().cast(pa.string()))
        kept.append(path)
        rows.append(handle.metadata.num_rows)
        users.append(len(distinct))
        uniques.append(distinct)
    if not kept:
        names = ", ".join(p.name for p in files[:5]) + (" ..." if len(files) > 5 else "")
        raise DataError(
            root,
            f"the table holds no rows: its {len(files)} part file(s) ({names}) have columns "
            "but no rows (an empty export?)",
        )
    _check_users_in_one_file(tuple(kept), uniques)
    ratings = read_ratings(root / RATINGS_FILE) if (root / RATINGS_FILE).is_file() else None
    return DetectionTable(root, tuple(kept), tuple(rows), tuple(users), ratings)


def _check_users_in_one_file(files: tuple[Path, ...], uniques: list[pa.Array]) -> None:
    """A user split across files would be scored twice, on half a profile each time."""
    if len(files) < 2:
        return
    users = pa.concat_arrays(uniques).to_pandas()
    repeated = users.duplicated(keep=False).to_numpy()
    if not repeated.any():
        return
    owner = np.repeat(np.arange(len(files)), [len(u) for u in uniques])
    user = users.iloc[int(np.flatnonzero(repeated)[0])]
    first, second = owner[(users == user).to_numpy()][:2]
    column = pq.read_table(files[second], columns=["user"]).column("user").to_pandas()
    row = int(np.flatnonzero((column == user).to_numpy())[0])
    n_users = int(users[repeated].nunique())
    count = f" ({n_users} such users)" if n_users > 1 else ""
    raise DataError(
        files[second],
        f"user is also in {files[first].name}; all rows of a user must be in one file{count}",
        record=f"row {row}, user {user!r}",
    )


def read_ratings(path: Path) -> pd.DataFrame:
    """A ratings file: index ``concept``, columns `SITUATIONS` (finite numbers within
    ±`VALUE_LIMIT`, one row per concept)."""
    handle = _parquet_file(path)
    _check_schema(path, handle.schema_arrow, ("concept", *SITUATIONS), "ratings file")
    table = handle.read(columns=["concept", *SITUATIONS])
    concepts = table.column("concept").to_pandas()
    if concepts.isna().any():
        row = int(np.flatnonzero(concepts.isna().to_numpy())[0])
        raise DataError(path, "concept is missing (null)", record=f"row {row}")
    if concepts.duplicated().any():
        row = int(np.flatnonzero(concepts.duplicated().to_numpy())[0])
        raise DataError(
            path, "concept listed twice", record=f"row {row}, concept {concepts[row]!r}"
        )
    values = {}
    for situation in SITUATIONS:
        column = table.column(situation)
        if not _is_number(column.type):
            raise _first_non_number(path, situation, column)
        array = column.to_numpy(zero_copy_only=False).astype(np.float64)
        bad = np.flatnonzero(~np.isfinite(array))
        if bad.size:
            row = int(bad[0])
            raise DataError(
                path,
                f"rating for {situation!r} is {'missing' if np.isnan(array[row]) else array[row]}",
                record=f"row {row}, concept {concepts[row]!r}",
            )
        huge = np.flatnonzero(np.abs(array) > VALUE_LIMIT)
        if huge.size:
            row = int(huge[0])
            raise DataError(
                path,
                out_of_range("rating", quoted(float(array[row]))),
                record=f"row {row}, concept {concepts[row]!r}, situation {situation!r}",
            )
        values[situation] = array
    frame = pd.DataFrame(values, index=pd.Index(concepts.astype(str), name="concept"))
    return frame


def read_part(path: Path) -> pd.DataFrame:
    """One part file, validated: columns `TABLE_COLUMNS`, text as strings, numbers as float64
    (null = NaN). Refuses, naming the row: a missing user, a detection without an image, a
    confidence that is not a number or outside [0, 1], a confidence or box without a concept,
    a box with missing corners, outside [0, 1] or inverted."""
    handle = _parquet_file(path)
    _check_schema(path, handle.schema_arrow, TABLE_COLUMNS, "detections table")
    table = handle.read(columns=list(TABLE_COLUMNS))
    frame = pd.DataFrame(
        {c: table.column(c).cast(pa.string()).to_pandas().astype("str") for c in TEXT_COLUMNS}
    )
    for column in NUMBER_COLUMNS:
        values = table.column(column)
        if not _is_number(values.type):
            raise _first_non_number(path, column, values)
        frame[column] = values.to_numpy(zero_copy_only=False).astype(np.float64)
    _check_values(frame, path)
    return frame


def _check_values(frame: pd.DataFrame, path: Path) -> None:
    def fail(mask: np.ndarray, problem: str | Callable[[int], str]) -> None:
        rows = np.flatnonzero(mask)
        if rows.size:
            row = int(rows[0])
            count = f" ({rows.size} such rows)" if rows.size > 1 else ""
            where = f"row {row}, user {frame['user'].iat[row]!r}"
            if isinstance(frame["image"].iat[row], str):
                where += f", image {frame['image'].iat[row]!r}"
            raise DataError(
                path, problem(row) if callable(problem) else problem + count, record=where
            )

    user = frame["user"].isna().to_numpy()
    image = frame["image"].notna().to_numpy()
    concept = frame["concept"].notna().to_numpy()
    conf = frame["confidence"].to_numpy()
    boxes = frame[list(BOX_COLUMNS)].to_numpy()
    has_box = ~np.isnan(boxes).all(axis=1)
    fail(user, "user is missing (null)")
    fail(concept & ~image, "a detection without an image (image is null)")
    fail(~concept & (~np.isnan(conf) | has_box), "confidence or box without a concept")
    fail(concept & np.isnan(conf), "confidence is missing (null or NaN)")
    outside = concept & ~((conf >= 0.0) & (conf <= 1.0))
    fail(outside, lambda row: f"confidence {float(conf[row])!r} is outside [0, 1]")
    fail(has_box & np.isnan(boxes).any(axis=1), "box has missing corners")
    bad_box = has_box & ~((boxes >= 0.0) & (boxes <= 1.0)).all(axis=1)
    fail(bad_box, lambda row: f"box corners {boxes[row].tolist()} are outside [0, 1]")
    for lo, hi, axis in ((0, 2, "x"), (1, 3, "y")):
        inverted = has_box & (boxes[:, lo] > boxes[:, hi])

        def corners(row: int, lo: int = lo, hi: int = hi, axis: str = axis) -> str:
            return (
                f"box has {axis}0 > {axis}1 ({float(boxes[row, lo])!r} > {float(boxes[row, hi])!r})"
            )

        fail(inverted, corners)


def part_dataset(
    frame: pd.DataFrame, ratings: pd.DataFrame, source: Path | None, *, all_images: bool = False
) -> Dataset:
    """A validated part as a `Dataset` of one split (`SPLIT`): users in order of appearance,
    the detections in file order, and the images without a detection (`featurize` counts the
    images of the detections itself; listing them too only costs a pass over every row), or
    every image with `all_images`."""
    users = pd.unique(frame["user"])
    detected = frame["concept"].notna()
    listed = frame[frame["image"].notna() & (all_images | ~detected)]
    images = listed[["user", "image"]].drop_duplicates(ignore_index=True)
    detections = frame[detected].reset_index(drop=True) if not detected.all() else frame
    detections = detections.assign(split=SPLIT)
    images.insert(0, "split", SPLIT)
    labels = Dataset.empty_labels()
    return Dataset(
        ratings=ratings,
        detections=detections,
        images=images,
        users=pd.DataFrame({"split": SPLIT, "user": pd.Series(users, dtype="str")}),
        labels=labels,
        layout="parquet",
        source=source,
    )


def read_dataset(folder: str | Path, ratings: pd.DataFrame | None = None) -> Dataset:
    """A whole (small) table as one in-memory `Dataset` (split `SPLIT`), for tests and checks;
    `ratings` default to the table's ratings file."""
    table = open_table(folder)
    if ratings is None:
        if table.ratings is None:
            raise DataError(table.root / RATINGS_FILE, "file not found: pass the ratings")
        ratings = table.ratings
    frame = pd.concat([read_part(p) for p in table.files], ignore_index=True)
    return part_dataset(frame, ratings, table.root, all_images=True)


# ------------------------------------------------------------------------------- writing
def dataset_rows(dataset: Dataset) -> pd.DataFrame:
    """A `Dataset`'s profiles as table rows (every split): its detections in file order, plus
    a row for every image without a detection and every user without an image."""
    detections = dataset.detections[list(TABLE_COLUMNS)]
    pieces = [detections]
    detected = pd.MultiIndex.from_frame(detections[["user", "image"]])
    images = dataset.images[["user", "image"]]
    bare = images[~pd.MultiIndex.from_frame(images).isin(detected)]
    if len(bare):
        pieces.append(bare.assign(concept=None, **dict.fromkeys(NUMBER_COLUMNS, np.nan)))
    imaged = set(images["user"]) | set(detections["user"])
    lonely = dataset.users.loc[~dataset.users["user"].isin(imaged), ["user"]]
    if len(lonely):
        pieces.append(
            lonely.assign(image=None, concept=None, **dict.fromkeys(NUMBER_COLUMNS, np.nan))
        )
    frame = pd.concat(pieces, ignore_index=True) if len(pieces) > 1 else detections
    # keep each user's rows together, users in the data set's order, rows in file order
    order = pd.Index(pd.unique(dataset.users["user"]))
    rank = order.get_indexer(pd.Index(frame["user"]))
    return frame.iloc[np.argsort(rank, kind="stable")].reset_index(drop=True)


def _arrow(frame: pd.DataFrame) -> pa.Table:
    arrays = {
        c: pa.array(frame[c].astype(object).where(frame[c].notna(), None), pa.string())
        for c in TEXT_COLUMNS
    }
    for c in NUMBER_COLUMNS:
        arrays[c] = pa.array(frame[c].to_numpy(dtype=np.float64), pa.float64(), from_pandas=True)
    return pa.table(arrays)


def ratings_table(ratings: pd.DataFrame) -> pa.Table:
    return pa.table(
        {
            "concept": pa.array([str(c) for c in ratings.index], pa.string()),
            **{s: pa.array(ratings[s].to_numpy(dtype=np.float64)) for s in SITUATIONS},
        }
    )


class TableWriter:
    """Writes a table into a temporary sibling folder and moves it into place at the end, so
    a reader never sees half a table. Refuses a folder holding anything but a table ltr wrote."""

    def __init__(self, out_dir: str | Path) -> None:
        self.out = Path(out_dir)
        if self.out.exists() and not self.out.is_dir():
            raise LtrError(f"{self.out}: exists and is not a folder")
        if self.out.is_dir() and any(self.out.iterdir()) and not (self.out / MARKER_FILE).is_file():
            raise LtrError(
                f"{self.out}: folder is not empty and holds no table written by ltr "
                f"({MARKER_FILE}); choose an empty or new folder"
            )
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = (
            self.out.parent / f".{self.out.name}.ltr-tmp-{os.getpid()}-{secrets.token_hex(4)}"
        )
        self.tmp.mkdir()
        self.files = 0

    def add_part(self, frame: pd.DataFrame) -> Path:
        path = self.tmp / f"part-{self.files:05d}.parquet"
        pq.write_table(_arrow(frame), path, compression="zstd")
        self.files += 1
        return path

    def finish(self, ratings: pd.DataFrame | None, marker: dict[str, Any]) -> Path:
        if ratings is not None:
            pq.write_table(ratings_table(ratings), self.tmp / RATINGS_FILE)
        write_text_atomic(self.tmp / MARKER_FILE, json.dumps(marker, indent=2))
        aside = None
        if self.out.exists():
            aside = self.tmp.with_name(self.tmp.name + "-old")
            os.replace(self.out, aside)
        os.replace(self.tmp, self.out)
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)
        return self.out

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def write_table(
    dataset: Dataset,
    out_dir: str | Path,
    *,
    users_per_file: int = USERS_PER_FILE,
    ratings: bool = True,
) -> Path:
    """Write a `Dataset`'s profiles (every split) as a table, `users_per_file` users per file,
    with its ratings file unless `ratings` is False."""
    if users_per_file < 1:
        raise LtrError("users per file must be >= 1")
    rows = dataset_rows(dataset)
    writer = TableWriter(out_dir)
    try:
        users = pd.Index(rows["user"])
        codes = pd.Index(pd.unique(users)).get_indexer(users) // users_per_file
        bounds = np.flatnonzero(np.diff(codes)) + 1
        for start, stop in zip(np.r_[0, bounds], np.r_[bounds, len(rows)], strict=True):
            writer.add_part(rows.iloc[start:stop])
        marker = {"written_by": "ltr", "source": str(dataset.source), "users": len(dataset.users)}
        return writer.finish(dataset.ratings if ratings else None, marker)
    except BaseException:
        writer.abort()
        raise


def write_synthetic_table(
    out_dir: str | Path, n_users: int, seed: int = 0, *, users_per_file: int = USERS_PER_FILE
) -> Path:
    """A synthetic table of `n_users` profiles at any size, generated one file at a time so
    memory stays bounded (about 0.5 GB per 25,000 users in a file, whatever `n_users`).

    File k holds the profiles of the synthetic generator run with seed (`seed`, k) (file 0:
    `seed` itself, so a one-file table has the profiles of ``ltr data synth --seed S``); the
    ratings file holds the concept ratings of `seed`, so a model trained on the synthetic set
    of that seed scores it. Users of different files never collide (ids are prefixed by k).
    """
    from ltr.data.synthetic import MIN_USERS, generate_synthetic

    if n_users < MIN_USERS:
        raise LtrError(f"synthetic data: need at least {MIN_USERS} users, got {n_users}")
    n_files = max(1, -(-n_users // max(users_per_file, MIN_USERS)))
    sizes = [n_users // n_files + (k < n_users % n_files) for k in range(n_files)]
    writer = TableWriter(out_dir)
    ratings = None
    try:
        for k, size in enumerate(sizes):
            part_seed = (
                seed if k == 0 else int(np.random.SeedSequence([seed, k]).generate_state(1)[0])
            )
            data = generate_synthetic(size, seed=part_seed).dataset
            if k == 0:
                ratings = data.ratings
            rows = data.detections[list(TABLE_COLUMNS)]
            if k:
                rows = rows.assign(user=f"{k}-" + rows["user"])
            writer.add_part(rows)
            del data, rows
        marker = {"written_by": "ltr", "generator": "synthetic", "seed": seed, "users": n_users,
                  "files": n_files}  # fmt: skip
        return writer.finish(ratings, marker)
    except BaseException:
        writer.abort()
        raise
