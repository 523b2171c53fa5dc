"""Fuzzing every parser of user input: whatever the file holds, the result is a valid object or
the project's own error (`ltr.errors.LtrError` and subclasses), never another exception.

Each target starts from a valid file and mutates it, byte-wise (truncation, random bytes,
inserted JSON punctuation, cut UTF-8 sequences) or structurally (a value replaced by one of the
wrong type, a huge, negative or non-finite number, odd unicode; a key deleted, added or
repeated; an object or array emptied). Hypothesis runs a fixed, derandomised budget so CI stays
fast and deterministic; `benchmarks/fuzz/` holds an atheris harness for longer local runs.

Targets: the two data loaders (challenge and research layouts), `ltr.submission.read_run`
(JSON and CSV run files) and `ltr.models.spec.ModelSpec.from_dict` fed by `read_json`.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import math
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import pandas as pd
import pytest
from casefiles import DATA
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ltr.data import Dataset, load_dataset
from ltr.data.challenge_writer import write_challenge_layout
from ltr.data.jsonfile import read_json
from ltr.data.summary import summarize
from ltr.errors import LtrError
from ltr.models import PRESETS
from ltr.models.spec import ModelSpec
from ltr.situations import SITUATIONS
from ltr.submission import read_run

FUZZ = settings(
    max_examples=200,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# ------------------------------------------------------------------- writing odd JSON
class Raw(str):
    """Text written into a JSON document as it is (non-JSON numbers, odd escapes)."""


class Pairs(tuple):
    """An object written with its (key, value) pairs in order, so keys may repeat."""


def dump(value: Any, indent: int | None = None, level: int = 0) -> str:
    """JSON text of `value`, allowing what `json.dumps` cannot write: repeated keys (`Pairs`),
    NaN/Infinity, integers too long for `str`, and any raw token (`Raw`)."""
    pad = "" if indent is None else "\n" + " " * (indent * (level + 1))
    end = "" if indent is None else "\n" + " " * (indent * level)
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, (Pairs, dict)):
        items = value if isinstance(value, Pairs) else value.items()
        body = ",".join(
            f"{pad}{json.dumps(str(k))}: {dump(v, indent, level + 1)}" for k, v in items
        )
        return "{" + body + (end if body else "") + "}"
    if isinstance(value, list):
        body = ",".join(f"{pad}{dump(v, indent, level + 1)}" for v in value)
        return "[" + body + (end if body else "") + "]"
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return json.dumps(value)


# ------------------------------------------------------------------------- mutations
#: Numbers and tokens at the edges of what parsers handle.
ODD_TOKENS = [
    Raw("1" + "0" * 5000),  # more digits than Python converts to int by default
    Raw("1e400"),
    Raw("-1e400"),
    Raw("1e-400"),
    Raw("-0.0"),
    Raw("NaN"),
    Raw("-Infinity"),
    Raw('"\\ud800"'),  # a lone surrogate
    Raw('"\\u0000"'),
    10**400,
    -(2**63),
    2**64,
    -1,
    -0.5,
    1.7976931348623157e308,
    5e-324,
    "",
    " ",
    "nan",
    "1e999",
    "VC0 0.5",
    "VC0 0.5 0 0 1 1",
    "VC0 nan 0 0 1 1",
    "VC0 0.5 0.9 0.9 0.1 0.1",
    "é ü 中 😀",
    "\t\n",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(),
    st.text(max_size=8),
    st.sampled_from(ODD_TOKENS),
)
weird_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=6,
)
keys = st.one_of(st.text(max_size=6), st.sampled_from(["", " ", "u1", "acc", "VC0", "100"]))


def _places(node: Any) -> Iterator[tuple[Any, Any]]:
    """(container, key) of every value below `node`, depth first."""
    keys = (
        list(node) if isinstance(node, dict) else range(len(node)) if isinstance(node, list) else []
    )
    for key in keys:
        yield node, key
        yield from _places(node[key])


@st.composite
def structural_mutation(draw: st.DrawFn, document: Any) -> Any:
    """`document` with one to three edits, each at a place drawn uniformly from the tree (the
    whole document one time in 20)."""
    document = copy.deepcopy(document)
    for _ in range(draw(st.integers(1, 3))):
        places = list(_places(document))
        if places and draw(st.integers(0, 19)):
            parent, key = draw(st.sampled_from(places))
            node = parent[key]
        else:
            parent, key, node = None, None, document
        operations = ["replace"]
        if isinstance(node, dict):
            operations += ["delete key", "add key", "repeat key", "empty"]
        elif isinstance(node, list):
            operations += ["delete item", "append", "empty"]
        operation = draw(st.sampled_from(operations))
        if operation == "replace":
            new = draw(scalars if draw(st.booleans()) else weird_values)
        elif operation == "delete key" and node:
            new = dict(node)
            del new[draw(st.sampled_from(list(node)))]
        elif operation == "add key":
            new = {**node, draw(keys): draw(weird_values)}
        elif operation == "repeat key" and node:
            repeated = draw(st.sampled_from(list(node)))
            new = Pairs([*node.items(), (repeated, draw(weird_values))])
        elif operation == "delete item" and node:
            new = list(node)
            del new[draw(st.integers(0, len(node) - 1))]
        elif operation == "append":
            new = [*node, draw(weird_values)]
        else:
            new = type(node)()
        if parent is None:
            document = new
        else:
            parent[key] = new
    return document


#: Byte strings worth inserting: JSON punctuation, escapes, a NUL, broken UTF-8, CSV quoting.
INSERTS = [
    *(bytes([c]) for c in b'{}[]",:\\ \r\n\x00\xff\xc3'),
    *(b"\xe2\x82", b"NaN", b"-1e999", b"\xef\xbb\xbf", "\u00e9".encode(), b'""'),
]


@st.composite
def byte_mutation(draw: st.DrawFn, original: bytes) -> bytes:
    """`original` truncated, or with bytes replaced, inserted or deleted, or random bytes."""
    kind = draw(st.sampled_from(["truncate", "replace", "insert", "delete", "random"]))
    at = draw(st.integers(0, len(original)))
    if kind == "truncate":
        return original[:at]
    if kind == "random":
        return draw(st.binary(max_size=64))
    if kind == "delete":
        return original[:at] + original[at + draw(st.integers(1, 16)) :]
    piece = draw(st.sampled_from(INSERTS) | st.binary(min_size=1, max_size=4))
    return original[:at] + piece + original[at + (1 if kind == "replace" else 0) :]


#: Numbers at the edges: huge, tiny, negative, non-finite, more digits than Python converts.
ODD_NUMBERS = [
    *(10**400, -(10**400), 2**64, -1, -0.5, 1.7976931348623157e308, 5e-324),
    *(Raw("1e400"), Raw("-0.0"), Raw("NaN"), Raw("-Infinity"), Raw("1" + "0" * 5000)),
]


def _is_number_text(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


@st.composite
def numeric_mutation(draw: st.DrawFn, document: Any) -> Any:
    """`document` with one number replaced by an odd one: a JSON number, a number held in a
    string (class_scores.json), or one field of a detection string ("VC1 0.5 0 0 1 1")."""
    document = copy.deepcopy(document)
    places = [
        (parent, key)
        for parent, key in _places(document)
        if isinstance(parent[key], (int, float, str)) and not isinstance(parent[key], bool)
        and (not isinstance(parent[key], str) or any(map(_is_number_text, parent[key].split())))
    ]  # fmt: skip
    if not places:
        return document
    parent, key = draw(st.sampled_from(places))
    odd = draw(st.sampled_from(ODD_NUMBERS))
    value = parent[key]
    if isinstance(value, str):  # the number stays inside the string
        fields = value.split()
        numeric = [i for i, field in enumerate(fields) if _is_number_text(field)]
        fields[draw(st.sampled_from(numeric))] = str(odd) if not isinstance(odd, Raw) else odd
        parent[key] = " ".join(fields)
    else:
        parent[key] = odd
    return document


@st.composite
def mutated_json(draw: st.DrawFn, original: bytes) -> bytes:
    """A byte-wise, structural or numeric mutation of a JSON file (compact or indented)."""
    kind = draw(st.sampled_from(["bytes", "structure", "number"]))
    if kind == "bytes":
        return draw(byte_mutation(original))
    mutation = structural_mutation if kind == "structure" else numeric_mutation
    document = draw(mutation(json.loads(original)))
    text = dump(document, indent=draw(st.sampled_from([None, 4])))
    return text.encode("utf-8", "surrogatepass")


# ----------------------------------------------------------------------- the property
@contextmanager
def replaced(path: Path, content: bytes) -> Iterator[None]:
    """`path` holds `content` inside the block, its original bytes again afterwards."""
    original = path.read_bytes()
    path.write_bytes(content)
    try:
        yield
    finally:
        path.write_bytes(original)


@contextmanager
def no_fsync() -> Iterator[None]:
    with mock.patch("os.fsync", lambda fd: None):
        yield


def outcome(call: Callable[[], Any]) -> Any:
    """The result of `call`, or None when it raised the project's own error."""
    try:
        return call()
    except LtrError as error:
        assert str(error).strip(), "an error must say something"
        assert "\n" not in str(error).strip(), "one line"
        return None


@pytest.fixture(scope="module")
def folders() -> Iterator[Path]:
    """A private copy of the valid hand-made folders (examples edit a file and restore it)."""
    with tempfile.TemporaryDirectory(prefix="ltr-fuzz-") as tmp:
        root = Path(tmp)
        for name in ("challenge_ok", "research_ok"):
            shutil.copytree(DATA / name, root / name)
        yield root


def _check_loaded(data: Dataset | None) -> None:
    """What a loaded data set must allow: `ltr data check`'s summary, and writing it in the
    challenge layout (or a clear refusal) and reading it back unchanged."""
    if data is None:
        return
    summary = summarize(data)
    assert summary.fingerprint == data.fingerprint()
    # Durability is not under test here: skipping fsync makes the examples 3x faster.
    with tempfile.TemporaryDirectory(prefix="ltr-fuzz-out-") as out, no_fsync():
        written = outcome(lambda: write_challenge_layout(data, Path(out)))
        if written is None:
            return
        again = load_dataset(out)
        assert _comparable(summarize(again)) == _comparable(summary)


def _comparable(summary: Any) -> dict[str, Any]:
    plain = summary.to_dict()
    # The warnings name the layout's rating file (class_scores.json, visual_concepts/).
    for key in ("name", "layout", "source", "fingerprint", "warnings"):
        plain.pop(key)
    return plain


CHALLENGE_FILES = ["class_scores.json", "predictions_train.json", "predictions_val.json",
                   "predictions_test.json", "gt_train.json"]  # fmt: skip
RESEARCH_JSON = ["train_test_split_v1.json", "gt_usr_exposure_v1.json"]
RESEARCH_TEXT = [f"visual_concepts/{name}.txt" for name in ("accommodation_search", "bank_credit",
                 "job_search_IT", "job_search_waiter_waitress")]  # fmt: skip


# --------------------------------------------------------------------------- loaders
@FUZZ
@given(st.sampled_from(CHALLENGE_FILES), st.data())
def test_challenge_loader_survives_any_file(folders: Path, name: str, data: st.DataObject) -> None:
    path = folders / "challenge_ok" / name
    content = data.draw(mutated_json(path.read_bytes()), label="content")
    with replaced(path, content):
        _check_loaded(outcome(lambda: load_dataset(path.parent)))


@FUZZ
@given(st.sampled_from(RESEARCH_JSON + RESEARCH_TEXT), st.data())
def test_research_loader_survives_any_file(folders: Path, name: str, data: st.DataObject) -> None:
    path = folders / "research_ok" / name
    original = path.read_bytes()
    mutation = mutated_json(original) if name.endswith(".json") else byte_mutation(original)
    with replaced(path, data.draw(mutation, label="content")):
        _check_loaded(outcome(lambda: load_dataset(path.parent)))


@FUZZ
@given(st.binary(max_size=300))
def test_read_json_survives_any_bytes(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.json"
        path.write_bytes(content)
        outcome(lambda: read_json(path))


# ------------------------------------------------------------------------- run files
GOOD_RUN = {
    "u1": {"acc": 0.5, "it": -1, "bank": 2e-3, "wait": 0},
    "u2": {"acc": -7.125, "it": 3, "bank": -0.25, "wait": 1.5},
}


def _csv(rows: list[list[Any]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode("utf-8", "surrogatepass")


GOOD_CSV_ROWS = [["user", *SITUATIONS]] + [
    [user, *(values[s] for s in SITUATIONS)] for user, values in GOOD_RUN.items()
]


@st.composite
def mutated_csv(draw: st.DrawFn) -> bytes:
    """A byte-wise mutation of a valid CSV run, or one with a cell, row or header changed."""
    if draw(st.booleans()):
        return draw(byte_mutation(_csv(GOOD_CSV_ROWS)))
    rows = copy.deepcopy(GOOD_CSV_ROWS)
    row = draw(st.integers(0, len(rows) - 1))
    cell = st.one_of(st.text(max_size=8), st.sampled_from(["", "nan", "inf", "-1e999", "1e400",
                     "0x10", "1_000", " 1 ", "u1", "acc", "1" + "0" * 5000]))  # fmt: skip
    kind = draw(st.sampled_from(["cell", "drop cell", "add cell", "drop row", "repeat row"]))
    if kind == "cell":
        rows[row][draw(st.integers(0, len(rows[row]) - 1))] = draw(cell)
    elif kind == "drop cell":
        rows[row].pop(draw(st.integers(0, len(rows[row]) - 1)))
    elif kind == "add cell":
        rows[row].append(draw(cell))
    elif kind == "drop row":
        rows.pop(row)
    else:
        rows.append(list(rows[row]))
    return _csv(rows)


def _check_run(run: pd.DataFrame | None) -> None:
    if run is None:
        return
    assert list(run.columns) == list(SITUATIONS) and len(run)
    assert run.index.is_unique and all(isinstance(u, str) and u for u in run.index)
    assert run.dtypes.eq(float).all() and pd.notna(run.to_numpy()).all()


@FUZZ
@given(mutated_json(json.dumps(GOOD_RUN).encode()))
def test_json_run_reader_survives_any_file(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "run.json"
        path.write_bytes(content)
        _check_run(outcome(lambda: read_run(path)))


def test_a_run_value_beyond_the_float_range_is_a_run_file_error(tmp_path: Path) -> None:
    """Found by fuzzing: float(10**400) raised OverflowError out of read_run."""
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"u1": {**GOOD_RUN["u1"], "bank": 10**400}}))
    match = r"user 'u1', key 'bank': 1000+… \(401 digits\) is not a finite number"
    with pytest.raises(LtrError, match=match):
        read_run(path)


@pytest.mark.parametrize(
    ("name", "content", "shown"),
    [
        ("run.json", json.dumps({"u1": {**GOOD_RUN["u1"], "bank": "9" * 5000}}),
         f"the string '{'9' * 40}'… (5,000 characters) is not a number"),
        ("run.csv", f"user,acc,bank,it,wait\nu1,1,2,3,{'x' * 5000}\n",
         f"'{'x' * 40}'… (5,000 characters) is not a number"),
        ("spec.json", json.dumps({"learner": "ridge", "calibration": [[0]] * 2000}),
         "unknown calibration [[0], [0], [0], [0], [0], [0], [0], [0],… (10,000 characters)"),
    ],
)  # fmt: skip
def test_long_values_in_run_and_spec_files_are_quoted_shortened(
    tmp_path: Path, name: str, content: str, shown: str
) -> None:
    path = tmp_path / name
    path.write_text(content)
    read = _spec_from_file if name == "spec.json" else read_run
    with pytest.raises(LtrError) as caught:
        read(path)
    assert shown in str(caught.value) and len(str(caught.value)) < 300, str(caught.value)


@FUZZ
@given(mutated_csv())
def test_csv_run_reader_survives_any_file(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "run.csv"
        path.write_bytes(content)
        _check_run(outcome(lambda: read_run(path)))


# ------------------------------------------------------------------- model specs
#: Whole specs as `ltr cv --params` reads them: the default ensemble, a pooled ridge with
#: parameters, BASE.
SPECS = [
    PRESETS["default"].to_dict(),
    {**PRESETS["ridge-pooled"].to_dict(), "params": {"alpha": 2.5}, "calibration": "normal"},
    PRESETS["base"].to_dict(),
]


def _spec_from_file(path: Path) -> ModelSpec:
    return ModelSpec.from_dict(read_json(path), where=str(path))


@FUZZ
@given(st.sampled_from(SPECS), st.data())
def test_model_spec_reader_survives_any_file(spec: dict[str, Any], data: st.DataObject) -> None:
    content = data.draw(mutated_json(json.dumps(spec).encode()), label="content")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "params.json"
        path.write_bytes(content)
        result = outcome(lambda: _spec_from_file(path))
    if result is not None:
        assert ModelSpec.from_dict(result.to_dict()) == result


@pytest.mark.parametrize(
    "fields",
    [
        {"learner": "ensemble", "members": 5},
        {"learner": "ridge", "families": True},
        {"learner": "ensemble", "members": [{"learner": "ridge"}], "weights": [10**400]},
    ],
)
def test_spec_crashes_fuzzing_found_are_one_line_errors(fields: dict[str, Any]) -> None:
    """Fuzzing found these escaping as TypeError / OverflowError; now the project's error."""
    assert outcome(lambda: ModelSpec.from_dict(fields)) is None
