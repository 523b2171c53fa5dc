"""Run (submission) files: read, validate and write them the way the challenge expects.

Formats, chosen by the file extension:

* ``.json`` — the challenge's run format ``{user: {"acc": x, "it": x, "bank": x, "wait": x}}``:
  exactly those four keys, JSON numbers only (a quoted number such as ``"0.5"`` is refused, as
  the challenge refuses it), finite;
* ``.csv`` — a header ``user,acc,bank,it,wait`` (columns in any order) then one row per user;
  handy for spreadsheets, never accepted by the challenge itself.

In memory a run is a DataFrame: index ``user`` (str), columns `SITUATIONS` (float64). Numbers
are written with full precision (``repr``), so a written file reads back identical.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from ltr.data.jsonfile import read_json
from ltr.errors import RunFileError, quoted
from ltr.fileio import read_text, write_atomic, write_json_atomic
from ltr.metrics import situation_numbers
from ltr.situations import SITUATIONS

#: Key order of the challenge's example run file, used when writing JSON.
JSON_KEYS: tuple[str, ...] = ("acc", "it", "bank", "wait")
CSV_HEADER: tuple[str, ...] = ("user", *SITUATIONS)
FORMATS: dict[str, str] = {".json": "json", ".csv": "csv"}
#: A plain decimal number, as JSON writes them (no "nan", "inf", "0x1p3" or "1_000").
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def run_format(path: str | Path) -> str:
    """The run format a file name asks for.

    Args:
        path: A run file's path.

    Returns:
        ``json`` (the challenge's format) or ``csv``.

    Raises:
        RunFileError: The extension is neither ``.json`` nor ``.csv``.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise RunFileError(
            path,
            f"unknown run file extension {suffix or '(none)'!r}: use .json (the challenge's "
            "format) or .csv",
        )
    return FORMATS[suffix]


def _examples(users: Iterable[object], count: int = 3) -> str:
    users = list(users)
    shown = ", ".join(repr(u) for u in users[:count])
    return shown + (", ..." if len(users) > count else "")


def _frame(users: list[str], rows: list[list[float]]) -> pd.DataFrame:
    return pd.DataFrame(
        np.array(rows, dtype=float).reshape(len(rows), len(SITUATIONS)),
        index=pd.Index(users, name="user"),
        columns=list(SITUATIONS),
    )


# ----------------------------------------------------------------------------------- reading
def _json_value(value: Any, path: Path, user: str, key: str) -> float:
    record = f"user {user!r}, key {key!r}"
    if isinstance(value, bool) or value is None:
        raise RunFileError(path, f"{json.dumps(value)} is not a number", record=record)
    if isinstance(value, str):
        raise RunFileError(
            path,
            f"the string {quoted(value)} is not a number (the challenge refuses quoted numbers)",
            record=record,
        )
    if not isinstance(value, (int, float)):
        raise RunFileError(
            path, f"expected a number, got {type(value).__name__} {quoted(value)}", record=record
        )
    try:
        number = float(value)
    except OverflowError:  # an integer beyond the float range (JSON allows any length)
        number = math.inf
    if not math.isfinite(number):
        raise RunFileError(path, f"{quoted(value)} is not a finite number", record=record)
    return number


def _read_json(path: Path) -> pd.DataFrame:
    raw = read_json(path, error=RunFileError)
    if not isinstance(raw, dict):
        raise RunFileError(
            path, f"expected an object of users at the top level, got {type(raw).__name__}"
        )
    users, rows = [], []
    wanted = set(JSON_KEYS)
    for user, entry in raw.items():
        if not isinstance(entry, dict):
            raise RunFileError(
                path,
                f"expected an object with keys {', '.join(JSON_KEYS)}, got "
                f"{type(entry).__name__} {quoted(entry)}",
                record=f"user {user!r}",
            )
        missing = [k for k in JSON_KEYS if k not in entry]
        extra = [k for k in entry if k not in wanted]
        if missing or extra:
            problems = []
            if missing:
                problems.append(f"missing key(s) {', '.join(map(repr, missing))}")
            if extra:
                problems.append(f"unexpected key(s) {', '.join(map(repr, extra))}")
            raise RunFileError(
                path,
                "; ".join(problems) + f" (a run holds exactly {', '.join(JSON_KEYS)})",
                record=f"user {user!r}",
            )
        users.append(user)
        rows.append([_json_value(entry[s], path, user, s) for s in SITUATIONS])
    return _frame(users, rows)


def _csv_number(text: str, path: Path, line: int, user: str, column: str) -> float:
    record = f"user {user!r}, column {column!r}"
    stripped = text.strip()
    if not stripped:
        raise RunFileError(path, "missing value", line=line, record=record)
    if not _NUMBER.fullmatch(stripped):
        problem = f"{quoted(text)} is not a number"
        if stripped.lower().lstrip("+-") in {"nan", "inf", "infinity"}:
            problem = f"{quoted(text)} is not a finite number"
        raise RunFileError(path, problem, line=line, record=record)
    number = float(stripped)
    if not math.isfinite(number):  # e.g. 1e999
        raise RunFileError(path, f"{quoted(text)} is not a finite number", line=line, record=record)
    return number


def _read_csv(path: Path) -> pd.DataFrame:
    # keep line breaks inside quoted user ids exactly as written
    text = read_text(path, RunFileError, keep_newlines=True)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        return _parse_csv(reader, path)
    except csv.Error as exc:
        raise RunFileError(path, f"invalid CSV: {exc}", line=reader.line_num) from None


def _parse_csv(reader: Any, path: Path) -> pd.DataFrame:
    header = next(reader, None)
    if header is None:
        raise RunFileError(path, f"empty file: expected the header {','.join(CSV_HEADER)}")
    names = [name.strip() for name in header]
    if sorted(names) != sorted(CSV_HEADER):
        raise RunFileError(
            path,
            f"header {quoted(','.join(header))} is not {','.join(CSV_HEADER)!r} (in any order)",
            line=reader.line_num,
        )
    position = {name: i for i, name in enumerate(names)}
    users, rows = [], []
    first_line: dict[str, int] = {}  # user -> line
    for fields in reader:
        line = reader.line_num
        if not fields:  # a blank line
            continue
        if len(fields) != len(CSV_HEADER):
            raise RunFileError(
                path, f"expected {len(CSV_HEADER)} fields, got {len(fields)}", line=line
            )
        user = fields[position["user"]]
        if user in first_line:
            raise RunFileError(
                path,
                f"user appears more than once (first on line {first_line[user]})",
                line=line,
                record=f"user {user!r}",
            )
        first_line[user] = line
        users.append(user)
        rows.append([_csv_number(fields[position[s]], path, line, user, s) for s in SITUATIONS])
    return _frame(users, rows)


def read_run(path: str | Path) -> pd.DataFrame:
    """Read a run file into a frame.

    Refuses what the challenge refuses (syntax errors with line and column, quoted numbers,
    missing or extra keys, non-finite values) plus repeated users or keys and empty user ids.
    It does not know the split: `validate_run` checks the set of users.

    Args:
        path: A ``.json`` file (``{user: {"acc": x, "it": x, "bank": x, "wait": x}}``) or a
            ``.csv`` file (header ``user,acc,bank,it,wait``).

    Returns:
        Index user, columns `SITUATIONS`, float64, in file order.

    Raises:
        RunFileError: The file breaks a rule; the message names the file, the position or
            user and the problem.
        OSError: The file cannot be read.
    """
    path = Path(path)
    run = _read_json(path) if run_format(path) == "json" else _read_csv(path)
    check_run(run, path)
    return run


# -------------------------------------------------------------------------------- validation
def check_run(run: pd.DataFrame, path: str | Path | None = None) -> pd.DataFrame:
    """Check the shape of a run without a split: the four columns, unique non-empty string user
    ids, finite numbers. Returns it as float64 with columns in `SITUATIONS` order."""
    missing = [s for s in SITUATIONS if s not in run.columns]
    extra = [str(c) for c in run.columns if c not in SITUATIONS]
    if missing or extra:
        problems = [f"missing situation(s) {', '.join(missing)}"] if missing else []
        problems += [f"unexpected column(s) {', '.join(extra)}"] if extra else []
        raise RunFileError(path, "; ".join(problems) + f" (expected {', '.join(SITUATIONS)})")
    if not len(run):
        raise RunFileError(path, "the run holds no users")
    not_text = [u for u in run.index if not isinstance(u, str)]
    if not_text:
        raise RunFileError(
            path,
            f"user ids must be strings, got {type(not_text[0]).__name__} {quoted(not_text[0])}",
        )
    if (run.index == "").any():
        raise RunFileError(path, "empty user id")
    repeated = run.index[run.index.duplicated()].unique()
    if len(repeated):
        raise RunFileError(
            path, f"{len(repeated)} user(s) appear more than once: {_examples(repeated)}"
        )
    return situation_numbers(
        run, lambda problem, record: RunFileError(path, problem, record=record)
    )


def validate_run(
    run: pd.DataFrame,
    users: Iterable[str],
    path: str | Path | None = None,
    *,
    split: str | None = None,
) -> pd.DataFrame:
    """Apply the challenge's checks to a run.

    Args:
        run: Index user, columns `SITUATIONS`.
        users: Exactly the users of the evaluated split.
        path: The run's file, named in messages.
        split: The split's name, for messages.

    Returns:
        The run in the order of `users`.

    Raises:
        RunFileError: Users are missing or extra (a few are named and all counted), a
            situation is missing, or a value is not a finite number.
    """
    numbers = check_run(run, path)
    expected = pd.Index(list(users))
    given = set(numbers.index)
    wanted = set(expected)
    missing = [u for u in expected if u not in given]
    extra = [u for u in numbers.index if u not in wanted]
    if missing or extra:
        of_split = f"split {split!r}" if split else "the split"
        problems = []
        if missing:
            problems.append(f"{len(missing)} user(s) of {of_split} missing: {_examples(missing)}")
        if extra:
            problems.append(f"{len(extra)} user(s) not in {of_split}: {_examples(extra)}")
        raise RunFileError(
            path,
            "; ".join(problems)
            + f" (the run has {len(numbers)} users, {of_split} has {len(expected)})",
        )
    return numbers.loc[expected]


# ----------------------------------------------------------------------------------- writing
def _write_csv(numbers: pd.DataFrame, handle: IO[str]) -> None:
    # "\r\n" (RFC 4180, the csv module's default) also makes the writer quote a user id that
    # holds a lone "\r", which a "\n" terminator would leave bare and break on reading.
    writer = csv.writer(handle, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for user, row in zip(numbers.index, numbers.to_numpy().tolist(), strict=True):
        writer.writerow([user, *(repr(float(v)) for v in row)])


def write_run(
    run: pd.DataFrame,
    path: str | Path,
    users: Iterable[str] | None = None,
    *,
    split: str | None = None,
) -> Path:
    """Validate a run, then write it atomically with full float precision.

    A written file reads back bit for bit with `read_run`; the same run written twice gives the
    same bytes.

    Args:
        run: Index user, columns `SITUATIONS`.
        path: Where to write; the extension picks the format (``.json`` = the challenge's,
            or ``.csv``).
        users: The split's users, checked with `validate_run` when given.
        split: The split's name, for messages.

    Returns:
        The path written.

    Raises:
        RunFileError: The run is invalid or the extension unknown.
        OSError: The file cannot be written.

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> import pandas as pd
        >>> run = pd.DataFrame(
        ...     {"acc": [0.1, -0.2], "bank": [0.3, 0.0], "it": [1.5, 0.25], "wait": [-1.0, 2.0]},
        ...     index=pd.Index(["u1", "u2"], name="user"),
        ... )
        >>> path = write_run(run, Path(tempfile.mkdtemp()) / "run.json", users=["u1", "u2"])
        >>> read_run(path).equals(run)
        True
    """
    path = Path(path)
    kind = run_format(path)
    numbers = check_run(run, path) if users is None else validate_run(run, users, path, split=split)
    if kind == "json":
        values = numbers.to_numpy().tolist()
        obj = {
            user: {key: float(row[SITUATIONS.index(key)]) for key in JSON_KEYS}
            for user, row in zip(numbers.index, values, strict=True)
        }
        return write_json_atomic(path, obj, indent=2)
    try:
        return write_atomic(path, lambda handle: _write_csv(numbers, handle))
    except UnicodeEncodeError as exc:
        raise RunFileError(
            path, f"a user id cannot be written as UTF-8 text ({exc.reason}): {exc.object!r}"
        ) from None


# ---------------------------------------------------------------------------------- checking
#: Which challenge edition's run format each file format is.
EDITIONS: dict[str, str] = {
    "json": "the run format of the ImageCLEFaware 2022 and 2023 editions (JSON)",
    "csv": "the format of the 2021 edition (CSV user,acc,bank,it,wait)",
}


@dataclass(frozen=True)
class SubmissionCheck:
    """What `check_submission` found in a valid run file.

    Attributes:
        n_users: Users in the file.
        edition: Which challenge edition's format the file follows.
        constant: Situations whose scores are all equal (their Pearson correlation is
            undefined, so the challenge cannot score them).
    """

    n_users: int
    edition: str  # which challenge edition's format the file matches
    constant: tuple[str, ...]  # situations whose scores are all equal (Pearson undefined)


def constant_situations(run: pd.DataFrame) -> tuple[str, ...]:
    """Situations in which every user has the same score: no correlation can be computed."""
    values = run[list(SITUATIONS)].to_numpy(dtype=float)
    if len(values) == 0:
        return ()
    same = (values == values[0]).all(axis=0)
    return tuple(s for s, flat in zip(SITUATIONS, same, strict=True) if flat)


def check_submission(
    path: str | Path, users: Iterable[str], *, split: str | None = None
) -> SubmissionCheck:
    """Validate a run file for a split exactly as the challenge does.

    Args:
        path: The run file.
        users: The split's users.
        split: The split's name, for messages.

    Returns:
        The number of users, the edition whose format the file follows, and the situations
        that cannot be scored.

    Raises:
        RunFileError: The file breaks one of the challenge's rules.
    """
    path = Path(path)
    run = validate_run(read_run(path), users, path, split=split)
    return SubmissionCheck(len(run), EDITIONS[run_format(path)], constant_situations(run))
