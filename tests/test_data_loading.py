"""Loading both layouts: valid folders, every bad-input case, parser properties, real data."""

from __future__ import annotations

import json
import random
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from casefiles import DATA
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from ltr.cli.main import app
from ltr.data import Dataset, detect_layout, load_dataset
from ltr.data.challenge import load_challenge, parse_detections
from ltr.data.jsonfile import read_json
from ltr.data.research import load_research
from ltr.errors import DataError
from ltr.situations import SITUATIONS

runner = CliRunner()


def build_case(root: Path, layout: str, case: str | None, removed: tuple[str, ...] = ()) -> Path:
    """`<layout>_ok` with the files of `bad/<layout>/<case>` over it and `removed` deleted."""
    folder = root / (case or f"{layout}_ok")
    shutil.copytree(DATA / f"{layout}_ok", folder)
    if case is not None and (DATA / "bad" / layout / case).is_dir():
        shutil.copytree(DATA / "bad" / layout / case, folder, dirs_exist_ok=True)
    for name in removed:
        target = folder / name
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink()
    return folder


# --------------------------------------------------------------------------- valid folders
def test_challenge_folder_loads_into_the_normalised_model() -> None:
    data = load_dataset(DATA / "challenge_ok")
    assert data.layout == "challenge" and data.splits == ("train", "val", "test")
    assert data.users.groupby("split", sort=False).size().to_dict() == {
        "train": 3,
        "val": 2,
        "test": 1,
    }
    assert data.ratings.loc["VC1", "acc"] == pytest.approx(1 / 3)
    assert data.ratings.loc["VC4"].tolist() == [-0.25, 0.5, 0.75, -0.5]  # acc, bank, it, wait
    first = data.detections.iloc[0]
    assert (first["user"], first["image"], first["concept"]) == ("u1", "u1img1", "VC0")
    assert first[["confidence", "x0", "y0", "x1", "y1"]].tolist() == [0.45, 0.1, 0.2, 0.5, 0.6]
    assert len(data.split_detections("train")) == 9  # 4 + 4 + 1, the same concept twice kept
    labels = data.split_labels("train")
    assert labels.loc["u2"].tolist() == [-0.4, -0.6, 0.2, -0.1]
    assert not data.has_labels("val") and data.warnings == ()
    assert data.has_boxes


def test_research_folder_loads_into_the_normalised_model() -> None:
    data = load_dataset(DATA / "research_ok")
    assert data.layout == "research" and data.splits == ("train", "test")
    # train = train["100"], not the nested 50% subset
    assert data.split_users("train").tolist() == ["u1", "u2", "u3"]
    u3 = data.detections[data.detections["user"] == "u3"]
    assert u3["concept"].tolist() == ["dog", "cat", "cat", "cat"]
    assert u3["confidence"].tolist() == [0.3, 0.8, 0.45, 0.3]
    assert data.detections[["x0", "y0", "x1", "y1"]].isna().all().all() and not data.has_boxes
    assert data.ratings.loc["laptop"].tolist() == [0.1, 0.3, 0.46, -0.1]
    assert data.split_labels("train").loc["u2"].tolist() == [-0.2, -0.4, 0.6, 0.1]
    assert not data.has_labels("test")


def test_both_layouts_share_dtypes() -> None:
    a, b = load_dataset(DATA / "challenge_ok"), load_dataset(DATA / "research_ok")
    for name in ("ratings", "detections", "images", "users", "labels"):
        assert getattr(a, name).dtypes.to_dict() == getattr(b, name).dtypes.to_dict(), name


def test_layout_specific_loaders_and_detection() -> None:
    assert detect_layout(DATA / "challenge_ok") == "challenge"
    assert detect_layout(DATA / "research_ok") == "research"
    assert load_challenge(DATA / "challenge_ok").fingerprint() == (
        load_dataset(DATA / "challenge_ok").fingerprint()
    )
    assert load_research(DATA / "research_ok").layout == "research"


def test_labels_file_is_optional(tmp_path: Path) -> None:
    data = load_dataset(build_case(tmp_path, "research", None, ("gt_usr_exposure_v1.json",)))
    assert data.labels.empty and list(data.labels.columns) == ["split", "user", *SITUATIONS]


# ----------------------------------------------------------------------- bad-input cases
#: (layout, case folder under bad/<layout>/ or None, files removed, file named in the message,
#:  record (or line:column) named, problem described)
CASES = [
    # challenge layout
    ("challenge", "missing_comma", (), "predictions_train.json", ":4:9:",
     "invalid JSON: Expecting ',' delimiter (a comma is probably missing"),
    ("challenge", "trailing_comma", (), "gt_train.json", ":5:1:", "trailing comma before '}'"),
    ("challenge", "bad_detection_string", (), "predictions_train.json",
     "user 'u1', image 'u1img3', detection 1",
     "detection 'VC2 0.9 0.3 0.3 0.4' does not parse: 5 field(s)"),
    ("challenge", "detection_not_string", (), "predictions_val.json",
     "user 'u4', image 'u4img2', detection 1", "detection is the number 33"),
    ("challenge", "non_numeric_confidence", (), "predictions_train.json",
     "user 'u3', image 'u3img1', detection 1", "confidence 'high' is not a number"),
    ("challenge", "confidence_out_of_range", (), "predictions_train.json",
     "user 'u1', image 'u1img2', detection 2", "confidence 1.62 is outside [0, 1]"),
    ("challenge", "nan_confidence", (), "predictions_test.json",
     "user 'u6', image 'u6img2', detection 1", "confidence 'nan' is NaN"),
    ("challenge", "inverted_box", (), "predictions_val.json",
     "user 'u5', image 'u5img1', detection 2", "box has x0 > x1 (0.9 > 0.2)"),
    ("challenge", "box_outside_unit", (), "predictions_val.json",
     "user 'u5', image 'u5img1', detection 2", "box corners [0.5, 0.5, 1.0, 480.0] are outside"),
    ("challenge", "non_numeric_rating", (), "class_scores.json",
     "concept 'VC2', situation 'bank'", "not a number: 'high'"),
    ("challenge", "huge_rating", (), "class_scores.json", "concept 'VC1', situation 'acc'",
     "rating '1e308' is outside [-1,000,000, 1,000,000] (ratings and labels are on a scale of a "
     "few units"),
    ("challenge", "huge_label", (), "gt_train.json", "user 'u2', situation 'bank'",
     "label -1e+308 is outside [-1,000,000, 1,000,000]"),
    ("challenge", "missing_situation_rating", (), "class_scores.json", "concept 'VC3'",
     "missing situation key(s) 'wait'"),
    ("challenge", "wrong_type_ratings", (), "class_scores.json", "concept 'VC3'",
     "expected an object of situation values (a JSON object), got an array"),
    ("challenge", None, ("class_scores.json",), "class_scores.json", "",
     "file not found: the challenge layout needs the concept ratings next to predictions_train"),
    ("challenge", "user_in_two_splits", (), "predictions_test.json", "user 'u2'",
     "user is in two splits, 'train' and 'test'"),
    ("challenge", "label_without_user", (), "gt_train.json", "user 'u9'",
     "label for a user who is not in predictions_train.json"),
    ("challenge", "label_missing_for_user", (), "gt_train.json", "user 'u3'",
     "1 of 3 users of split 'train' have no label"),
    ("challenge", "labels_without_predictions", ("predictions_val.json",), "gt_val.json", "",
     "labels for split 'val' but there is no predictions_val.json"),
    ("challenge", "missing_situation_label", (), "gt_train.json", "user 'u2'",
     "missing situation key(s) 'bank'"),
    ("challenge", "unknown_situation_label", (), "gt_train.json", "user 'u2'",
     "unknown key(s) 'bnak'"),
    ("challenge", "duplicate_user", (), "gt_train.json", "object at top level",
     "key 'u1' appears twice in the same object"),
    ("challenge", "wrong_type_top", (), "predictions_train.json", "top level",
     "expected an object of users (a JSON object), got an array"),
    ("challenge", "wrong_type_image", (), "predictions_test.json", "user 'u6', image 'u6img2'",
     "expected an array of detection strings, got the string 'VC0 0.3 0.6 0.6 0.7 0.7'"),
    ("challenge", "empty_split", (), "predictions_val.json", "top level",
     "no users (the split is empty)"),
    ("challenge", "lone_surrogate_user", (), "predictions_train.json", ":7:5:",
     "invalid JSON: the key 'u2\\ud800' is not valid Unicode text (\\ud800 is half of a "
     "UTF-16 surrogate pair, without its other half)"),
    ("challenge", "lone_surrogate_concept", (), "class_scores.json", ":6:5:",
     "invalid JSON: the key '\\udc80VC3' is not valid Unicode text"),
    # research layout
    ("research", "missing_comma", (), "train_test_split_v1.json", ":9:13:",
     "invalid JSON: Expecting ',' delimiter"),
    ("research", "trailing_comma", (), "gt_usr_exposure_v1.json", ":4:56:",
     "trailing comma before '}'"),
    ("research", "bad_rating_line", (), "job_search_IT.txt", ":4:",
     "expected 'concept rating', got 'laptop 0.46 0.1' (3 fields)"),
    ("research", "non_numeric_rating", (), "bank_credit.txt", ":3: concept 'beer'",
     "not a number: 'high'"),
    ("research", "nan_rating", (), "accommodation_search.txt", ":2: concept 'cat'",
     "not a finite number: 'nan'"),
    ("research", "undecodable_rating", (), "job_search_IT.txt", ":3:",
     "not UTF-8 text (invalid continuation byte at byte 19)"),
    ("research", "huge_rating", (), "bank_credit.txt", ":3: concept 'beer'",
     "rating '2e6' is outside [-1,000,000, 1,000,000]"),
    ("research", "huge_label", (), "gt_usr_exposure_v1.json",
     "situation 'job_search_IT', user 'u2'", "label 6e+200 is outside [-1,000,000, 1,000,000]"),
    ("research", "missing_situation_rating", (), "job_search_waiter_waitress.txt",
     "concept 'beer'", "concept has no rating for situation 'wait'"),
    ("research", None, ("visual_concepts/bank_credit.txt",), "bank_credit.txt", "",
     "file not found (the research layout needs one ratings file per situation"),
    ("research", None, ("visual_concepts",), "visual_concepts", "",
     "folder not found: the research layout needs the concept ratings"),
    ("research", "confidence_out_of_range", (), "train_test_split_v1.json",
     "user 'u3', image 'p31', concept 'cat', confidence 2", "confidence 1.45 is outside [0, 1]"),
    ("research", "nan_confidence", (), "train_test_split_v1.json",
     "14:47: value at ['test']['u5']['p51']['dog'][0]", "NaN is not a number in JSON"),
    ("research", "string_confidence", (), "train_test_split_v1.json",
     "user 'u4', image 'p42', concept 'laptop', confidence 1",
     "confidence must be a number, got the string '0.95'"),
    ("research", "confidences_not_list", (), "train_test_split_v1.json",
     "user 'u2', image 'p21', concept 'laptop'",
     "expected an array of confidences, got the number 0.7"),
    ("research", "duplicate_concept", (), "train_test_split_v1.json",
     "object at ['test']['u5']['p51']", "key 'beer' appears twice in the same object"),
    ("research", "user_in_two_splits", (), "train_test_split_v1.json", "user 'u3'",
     "user is in two splits, 'train' and 'test'"),
    ("research", "wrong_type_split", (), "train_test_split_v1.json", "['test']",
     "expected an object of users (a JSON object), got an array"),
    ("research", "missing_train_100", (), "train_test_split_v1.json", "['train']",
     "missing key '100' (keys present: '50', '90')"),
    ("research", "label_without_user", (), "gt_usr_exposure_v1.json", "user 'u9'",
     "label for a user who is in no split of train_test_split_v1.json"),
    ("research", "missing_situation_label", (), "gt_usr_exposure_v1.json", "top level",
     "missing situation(s) 'bank_credit' (expected accommodation_search, bank_credit"),
    ("research", "missing_user_in_situation", (), "gt_usr_exposure_v1.json",
     "situation 'bank_credit', user 'u2'",
     "user has labels in other situations but not in 'bank_credit'"),
    ("research", "non_numeric_label", (), "gt_usr_exposure_v1.json",
     "situation 'job_search_waiter_waitress', user 'u2'", "expected a number, got null"),
]  # fmt: skip
CASE_IDS = [f"{c[0]}-{c[1] or 'removed-' + c[2][0].replace('/', '-')}" for c in CASES]


def test_every_case_folder_is_listed() -> None:
    listed = {(layout, case) for layout, case, *_ in CASES if case is not None}
    listed |= {("challenge", "unrated_concept"), ("research", "unrated_concept")}  # warnings
    on_disk = {(p.parent.name, p.name) for p in (DATA / "bad").glob("*/*") if p.is_dir()}
    assert on_disk == listed


@pytest.mark.parametrize(("layout", "case", "removed", "file", "record", "problem"), CASES,
                         ids=CASE_IDS)  # fmt: skip
def test_bad_input_raises_a_data_error(
    tmp_path: Path, layout: str, case: str | None, removed: tuple[str, ...],
    file: str, record: str, problem: str,
) -> None:  # fmt: skip
    folder = build_case(tmp_path, layout, case, removed)
    with pytest.raises(DataError) as caught:
        load_dataset(folder)
    message = str(caught.value)
    assert caught.value.file is not None and caught.value.file.name == Path(file).name
    assert file in message and record in message and problem in message, message


@pytest.mark.parametrize(("layout", "case", "removed", "file", "record", "problem"), CASES,
                         ids=CASE_IDS)  # fmt: skip
def test_bad_input_through_the_cli(
    tmp_path: Path, layout: str, case: str | None, removed: tuple[str, ...],
    file: str, record: str, problem: str,
) -> None:  # fmt: skip
    folder = build_case(tmp_path, layout, case, removed)
    result = runner.invoke(app, ["data", "check", str(folder)])
    assert result.exit_code == 1, result.output
    assert result.stdout == ""  # no half-printed summary
    assert "Traceback" not in result.output and result.exception is not None
    err = result.stderr
    assert err.startswith("error: ") and err.count("\n") == 1  # one line, even when long
    assert file in err and record in err and problem in err, err


def test_missing_and_trailing_commas_report_the_first_one_with_its_position(
    tmp_path: Path,
) -> None:
    """Like the organisers' dummy_run.json: several missing and trailing commas."""
    path = tmp_path / "run.json"
    path.write_text('{\n  "u1": {"acc": 1.0\n    "bank": 2.0,},\n  "u2": {"acc": 0.5,},\n}\n')
    with pytest.raises(DataError) as caught:
        read_json(path)
    assert (caught.value.line, caught.value.column) == (3, 5)
    path.write_text('{\n  "u1": {"acc": 1.0, "bank": 2.0,}\n}\n')
    with pytest.raises(DataError, match="trailing comma before '}'") as caught:
        read_json(path)
    assert (caught.value.line, caught.value.column) == (2, 34)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "file is empty"),
        ('{"a": Infinity}', "Infinity is not a number in JSON"),
        ("[1, 2, -Infinity]", "-Infinity is not a number in JSON"),
        ('{"k": "NaN inside a string is fine", "n": NaN}', "value at ['n']"),
        ('{"a": {"x": 1, "y": 2, "x": 3}}', "object at ['a']: key 'x' appears twice"),
    ],
)
def test_read_json_refuses_what_python_json_lets_through(
    tmp_path: Path, text: str, problem: str
) -> None:
    path = tmp_path / "f.json"
    path.write_text(text)
    with pytest.raises(DataError, match="f.json") as caught:
        read_json(path)
    assert problem in str(caught.value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20,
)  # fmt: skip
json_documents = json_values.filter(lambda value: isinstance(value, (dict, list)))


@settings(max_examples=200, derandomize=True, deadline=None)
@given(json_documents, st.sampled_from([None, 1, 4]), st.booleans(), st.data())
def test_a_truncated_file_is_reported_as_ending_early(
    document: object, indent: int | None, ascii_only: bool, data: st.DataObject
) -> None:
    """Cut anywhere inside the document (never after its last bracket): whatever the parser
    meets at the cut, the message says the file ends early, with its size and the position."""
    text = json.dumps(document, indent=indent, ensure_ascii=ascii_only)
    cut = data.draw(st.integers(1, len(text) - 1), label="cut")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cut.json"
        path.write_text(text[:cut], encoding="utf-8")
        with pytest.raises(DataError) as caught:
            read_json(path)
        size = path.stat().st_size
    message = str(caught.value)
    assert f"invalid JSON: the file ends early, probably truncated ({size:,} bytes; " in message
    assert caught.value.line is not None and caught.value.column is not None
    assert message.startswith(f"{path}:{caught.value.line}:{caught.value.column}: ")


@pytest.mark.parametrize(
    ("text", "how", "where"),
    [
        ('{"u1": {"i1": ["VC1 0.5", "VC2 0.', "it stops inside a string", (1, 27)),
        ('{"u1": {"i1": ["VC1 0.5"]}, "u2": {"acc": tr', "2 object(s)/array(s) still open",
         (1, 43)),
        ('{\n  "u1": {"acc": 1.\n', "2 object(s)/array(s) still open", (2, 18)),
        ('{"a": "caf\\u00e', "it stops inside a string", (1, 12)),
        ("[1, 2,\n", "1 object(s)/array(s) still open", (2, 1)),
    ],
)  # fmt: skip
def test_truncation_names_the_size_and_what_is_open(
    tmp_path: Path, text: str, how: str, where: tuple[int, int]
) -> None:
    path = tmp_path / "f.json"
    path.write_text(text)
    with pytest.raises(DataError) as caught:
        read_json(path)
    size = len(text.encode())
    assert caught.value.problem == (
        f"invalid JSON: the file ends early, probably truncated ({size} bytes; {how})"
    )
    assert (caught.value.line, caught.value.column) == where


@pytest.mark.parametrize(
    "text",
    ['{"a": 1,}', '{"a": 1 "b": 2}', '{"a": [1, 2}', '{"a": 1}}', '{"a": 1 t'],
)
def test_syntax_errors_before_the_end_are_not_called_truncation(tmp_path: Path, text: str) -> None:
    path = tmp_path / "f.json"
    path.write_text(text)
    with pytest.raises(DataError) as caught:
        read_json(path)
    assert "ends early" not in str(caught.value)


def test_a_truncated_real_predictions_file_says_so(aware2023: Path, tmp_path: Path) -> None:
    data = (aware2023 / "predictions_train.json").read_bytes()
    path = tmp_path / "predictions_train.json"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"ends early, probably truncated \(1,628,942 bytes; "):
        read_json(path)


def test_an_integer_too_long_for_python_is_a_data_error_with_its_position(tmp_path: Path) -> None:
    """json.loads raises a bare ValueError past 4300 digits (found by fuzzing)."""
    path = tmp_path / "f.json"
    path.write_text(
        '{"a": "' + "1" * 5000 + '", "b": 0.' + "3" * 5000 + ',\n "c": [-' + "2" * 5000 + "]}"
    )
    with pytest.raises(DataError) as caught:
        read_json(path)
    assert caught.value.problem.startswith("invalid JSON: a number of 5,000 digits")
    assert (caught.value.line, caught.value.column) == (2, 8)


@pytest.mark.parametrize(
    ("layout", "file", "old", "problem"),
    [
        ("challenge", "gt_train.json", '"acc": 0.5', "user 'u1', situation 'acc': not a finite "
         f"number: 1{'0' * 39}… (401 digits) (NaN and infinities are refused)"),
        ("challenge", "class_scores.json", '"acc": -0.25', "situation 'acc': not a finite number: "
         f"1{'0' * 39}… (401 digits)"),
        ("research", "train_test_split_v1.json", '"p31": {"dog": [0.3]',
         "user 'u3', image 'p31', concept 'dog', confidence 1: confidence inf is outside [0, 1]"),
        ("research", "gt_usr_exposure_v1.json", '"u1": 0.5', "user 'u1': not a finite number"),
    ],
)  # fmt: skip
def test_integers_beyond_the_float_range_are_data_errors(
    tmp_path: Path, layout: str, file: str, old: str, problem: str
) -> None:
    """Found by fuzzing: float(10**400) raised OverflowError out of the loaders."""
    folder = build_case(tmp_path, layout, None)
    path = folder / file
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, old.replace(old.split()[-1].strip('[]"'), str(10**400))))
    with pytest.raises(DataError, match=re.escape(problem)):
        load_dataset(folder)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("[" * 100_000 + "]" * 100_000, (1, 101)),  # beyond what Python's parser can read
        ('{\n"a": ' + '{"a": ' * 150 + "1" + "}" * 151, (2, 600)),  # it can, ltr refuses
        ('["[[[[", [\n' + "[" * 200 + "]" * 202, (2, 99)),  # brackets inside a string skipped
    ],
)
def test_read_json_refuses_deep_nesting_with_its_position(
    tmp_path: Path, text: str, where: tuple[int, int]
) -> None:
    """100,000 nested arrays crashed with RecursionError (a bug report); a depth Python still
    parses would crash what walks the values (a model spec), so a limit applies to all."""
    path = tmp_path / "deep.json"
    path.write_text(text)
    with pytest.raises(DataError, match="deep.json") as caught:
        read_json(path)
    assert caught.value.problem.startswith(
        "invalid JSON: arrays/objects nested too deeply (more than 100 levels"
    )
    assert (caught.value.line, caught.value.column) == where


def test_read_json_reads_nesting_up_to_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 100 + "]" * 100)
    assert read_json(path) is not None


@pytest.mark.parametrize(
    ("text", "where", "problem"),
    [
        ('{"u1": 1,\n "a\\udc80": 2}', (2, 2), "the key 'a\\udc80' is not valid Unicode"),
        ('{"u1": ["VC1 0.5", "\\ud83d"]}', (1, 20), "the string '\\ud83d' is not valid"),
        ('["\\ude00\\ud83d"]', (1, 2), "the string '\\ude00\\ud83d' is not valid Unicode"),
    ],
)
def test_read_json_refuses_a_lone_surrogate_escape(
    tmp_path: Path, text: str, where: tuple[int, int], problem: str
) -> None:
    """ "\\ud800" parses into a str that cannot be written as UTF-8: `ltr data check` crashed
    printing it (UnicodeEncodeError)."""
    path = tmp_path / "f.json"
    path.write_text(text)
    with pytest.raises(DataError, match="f.json") as caught:
        read_json(path)
    assert problem in caught.value.problem
    assert (caught.value.line, caught.value.column) == where


def test_read_json_accepts_surrogate_pairs_and_escaped_backslashes(tmp_path: Path) -> None:
    path = tmp_path / "f.json"
    path.write_text('{"\\ud83d\\ude00": "\\\\ud800", "caf\\u00e9": 1}')
    assert read_json(path) == {"\U0001f600": "\\ud800", "café": 1}


def test_ratings_and_labels_up_to_the_bound_load(tmp_path: Path) -> None:
    folder = build_case(tmp_path, "challenge", None)
    for name, old, new in [("class_scores.json", '"-0.6"', '"1e6"'),
                           ("gt_train.json", '"acc": 0.5', '"acc": -1000000')]:  # fmt: skip
        path = folder / name
        path.write_text(path.read_text().replace(old, new, 1))
    data = load_dataset(folder)
    assert data.ratings.loc["VC0", "acc"] == 1e6
    assert data.labels.set_index("user").loc["u1", "acc"] == -1e6


def test_read_json_accepts_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "bom.json"
    path.write_bytes('{"a": [1, "NaN"]}'.encode("utf-8-sig"))
    assert read_json(path) == {"a": [1, "NaN"]}


def test_read_json_on_binary_or_missing_files(tmp_path: Path) -> None:
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00{")
    with pytest.raises(DataError, match="not UTF-8 text"):
        read_json(tmp_path / "bin.json")
    with pytest.raises(DataError, match="nope.json: file not found"):
        read_json(tmp_path / "nope.json")
    with pytest.raises(DataError, match="is a folder"):
        read_json(tmp_path)


# ------------------------------------------------------------------ folders and layouts
def test_empty_unknown_and_missing_folders(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    cases = [
        (tmp_path / "empty", "empty: folder is empty: expected class_scores.json"),
        (DATA / "not_a_layout", "no known data layout (found notes.txt): expected"),
        (tmp_path / "absent", "absent: folder not found"),
        (DATA / "challenge_ok" / "gt_train.json", "gt_train.json: not a folder"),
    ]
    for folder, problem in cases:
        with pytest.raises(DataError) as caught:
            load_dataset(folder)
        assert problem in str(caught.value)
        result = runner.invoke(app, ["data", "check", str(folder)])
        assert result.exit_code == 1 and problem in result.stderr
        assert "Traceback" not in result.output


def test_half_a_layout_names_what_is_missing(tmp_path: Path) -> None:
    folder = build_case(tmp_path, "challenge", None, ("predictions_train.json",
                        "predictions_val.json", "predictions_test.json"))  # fmt: skip
    with pytest.raises(DataError, match=r"class_scores.json found but no predictions_"):
        load_dataset(folder)
    research = build_case(tmp_path, "research", None, ("train_test_split_v1.json",))
    with pytest.raises(DataError, match=r"visual_concepts/ found but no train_test_split_"):
        load_dataset(research)


# ------------------------------------------------------------------- unrated concepts
@pytest.mark.parametrize(
    ("layout", "expected"),
    [
        ("challenge", "2 detected concept(s) have no rating in class_scores.json "
         "(2 of 17 detections): VC7 (1), VC9 (1); rating 0 is used for them"),
        ("research", "2 detected concept(s) have no rating in visual_concepts/ "
         "(3 of 17 detections): balloon (2), football (1); rating 0 is used for them"),
    ],
)  # fmt: skip
def test_unrated_concepts_warn_by_default_and_fail_when_strict(
    tmp_path: Path, layout: str, expected: str
) -> None:
    folder = build_case(tmp_path, layout, "unrated_concept")
    data = load_dataset(folder)
    assert data.warnings == (expected,)
    assert len(data.unrated_concepts) == 2
    # the unrated detections are kept (they still count as detections, with rating 0)
    n_unrated = {"challenge": 2, "research": 3}[layout]
    assert data.detections["concept"].isin(data.unrated_concepts).sum() == n_unrated
    with pytest.raises(DataError, match="strict ratings need a rating") as caught:
        load_dataset(folder, strict_ratings=True)
    assert caught.value.record == f"concept {data.unrated_concepts[0]!r}"

    result = runner.invoke(app, ["data", "check", str(folder)])
    assert result.exit_code == 0 and f"warning: {expected}" in result.stdout
    strict = runner.invoke(app, ["data", "check", str(folder), "--strict-ratings"])
    assert strict.exit_code == 1 and "strict ratings need a rating" in strict.stderr


# ---------------------------------------------------------------- detection parser
def _parse(strings: list[object]) -> pd.DataFrame:
    raw = pd.DataFrame(
        {
            "split": "train",
            "user": "u",
            "image": "i",
            "position": np.arange(len(strings)),
            "text": pd.Series(strings, dtype=object),
        }
    )
    return parse_detections(raw, Path("predictions_train.json"))


concepts = st.text(min_size=1, max_size=12).filter(lambda s: s.split() == [s])
unit = st.floats(0.0, 1.0, allow_nan=False)
whitespace = st.sampled_from([" ", "  ", "\t", " \t "])


@st.composite
def detections(draw: st.DrawFn) -> tuple[str, float, list[float] | None]:
    concept, conf = draw(concepts), draw(unit)
    if draw(st.booleans()):
        return concept, conf, None
    x0, x1 = sorted([draw(unit), draw(unit)])
    y0, y1 = sorted([draw(unit), draw(unit)])
    return concept, conf, [x0, y0, x1, y1]


@given(st.lists(detections(), min_size=1, max_size=8), whitespace)
def test_well_formed_detection_strings_round_trip(
    items: list[tuple[str, float, list[float] | None]], sep: str
) -> None:
    strings = [sep.join([c, repr(p), *(repr(v) for v in (box or []))]) for c, p, box in items]
    parsed = _parse(strings)
    assert parsed["concept"].tolist() == [c for c, _, _ in items]
    assert parsed["confidence"].tolist() == [p for _, p, _ in items]  # exact, not approximate
    for (_, _, box), (_, row) in zip(items, parsed.iterrows(), strict=True):
        values = row[["x0", "y0", "x1", "y1"]].to_numpy(dtype=float)
        assert np.isnan(values).all() if box is None else values.tolist() == box


@given(
    st.lists(
        st.text(min_size=1, max_size=6).filter(lambda s: s.split() == [s]), max_size=10
    ).filter(lambda fields: len(fields) not in (2, 6)),
    whitespace,
)
def test_wrong_field_count_is_a_data_error(fields: list[str], sep: str) -> None:
    text = sep.join(fields)
    with pytest.raises(DataError, match=r"does not parse: \d+ field\(s\)") as caught:
        _parse(["VC1 0.5 0 0 1 1", text])
    assert caught.value.record == "user 'u', image 'i', detection 2"


LONG = "9" * 5000


@pytest.mark.parametrize(
    ("layout", "file", "old", "new", "shown"),
    [
        ("challenge", "predictions_train.json", '"VC1 0.31 ', f'"VC1 {LONG} ',
         f"confidence '{'9' * 40}'… (5,000 characters) is not a number in detection "
         f"'VC1 {'9' * 96}'… (5,020 characters)"),
        ("challenge", "class_scores.json", '"-0.6"', f'"x{LONG}"',
         f"not a number: 'x{'9' * 39}'… (5,001 characters)"),
        ("challenge", "gt_train.json", "0.5", f'"{LONG}"',
         f"not a finite number: '{'9' * 40}'… (5,000 characters)"),
        ("research", "visual_concepts/bank_credit.txt", "laptop 0.3", f"laptop 0.3 {LONG}",
         f"got 'laptop 0.3 {'9' * 89}'… (5,011 characters) (3 fields)"),
        ("research", "train_test_split_v1.json", "[0.3]", f'["{LONG}"]',
         f"confidence must be a number, got the string '{'9' * 40}'… (5,000 characters)"),
    ],
)  # fmt: skip
def test_long_values_are_quoted_shortened_in_messages(
    tmp_path: Path, layout: str, file: str, old: str, new: str, shown: str
) -> None:
    """A 5,000-digit number in a file gave a 10,000-character error line (quoted twice)."""
    folder = build_case(tmp_path, layout, None)
    path = folder / file
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    result = runner.invoke(app, ["data", "check", str(folder)])
    assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.output
    assert shown in result.stderr and len(result.stderr) < 400, result.stderr


@given(st.lists(st.one_of(st.text(max_size=40), st.integers(), st.none(), st.floats()),
                min_size=1, max_size=5))  # fmt: skip
def test_any_input_parses_or_raises_a_data_error(strings: list[object]) -> None:
    try:
        parsed = _parse(strings)
    except DataError as error:
        assert error.record is not None and error.record.startswith("user 'u', image 'i'")
        return
    assert len(parsed) == len(strings)
    assert parsed["confidence"].between(0, 1).all()


near_predictions = st.dictionaries(
    st.text(max_size=4),
    st.dictionaries(st.text(max_size=4), st.lists(st.one_of(
        st.sampled_from(["VC0 0.5 0.1 0.1 0.2 0.2", "VC1 0.4", "VC9 0.3 0 0 1 1", "VC0 2 0 0 1 1",
                         "VC0 0.5 0.5 0 0.1 1", "VC2", ""]),
        json_values), max_size=3), max_size=3),
    max_size=3,
)  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(json_values, near_predictions))
def test_any_predictions_file_loads_or_raises_a_data_error(content: object) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "data"
        shutil.copytree(DATA / "challenge_ok", folder)
        (folder / "predictions_test.json").write_text(json.dumps(content))
        try:
            data = load_dataset(folder)
        except DataError as error:
            assert error.file is not None
            return
        assert "test" in data.splits


near_split = st.fixed_dictionaries({
    "train": st.fixed_dictionaries({"100": st.dictionaries(
        st.sampled_from(["u1", "u2", "u3", "u7"]),
        st.dictionaries(st.text(max_size=3), st.dictionaries(
            st.sampled_from(["dog", "cat", "balloon"]),
            st.lists(st.one_of(unit, st.just(1.5), json_values), max_size=3) | json_values,
            max_size=2), max_size=2), max_size=3)}),
    "test": st.dictionaries(st.sampled_from(["u4", "u5", "u1"]), json_values, max_size=2),
})  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(json_values, near_split))
def test_any_split_file_loads_or_raises_a_data_error(content: object) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "data"
        shutil.copytree(DATA / "research_ok", folder)
        (folder / "train_test_split_v1.json").write_text(json.dumps(content))
        try:
            load_dataset(folder)
        except DataError as error:
            assert error.file is not None
            return


@given(st.text(max_size=60))
def test_read_json_never_raises_anything_but_a_data_error(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.json"
        path.write_text(text, encoding="utf-8")
        try:
            read_json(path)
        except DataError as error:
            assert error.file == path


@given(json_values)
def test_read_json_round_trips_valid_json(value: object) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.json"
        path.write_text(json.dumps(value, indent=1))
        assert read_json(path) == value


# -------------------------------------------------------------- no side effects, no state
def _snapshot(root: Path) -> dict[str, tuple[int, bytes]]:
    return {
        str(p.relative_to(root)): (p.stat().st_mtime_ns, p.read_bytes() if p.is_file() else b"")
        for p in sorted(root.rglob("*"))
    }


@pytest.mark.parametrize(("layout", "case"), [("challenge", None), ("research", None),
                                              ("challenge", "inverted_box")])  # fmt: skip
def test_loading_writes_nothing_and_keeps_no_state(
    tmp_path: Path, layout: str, case: str | None
) -> None:
    folder = build_case(tmp_path, layout, case)
    before = _snapshot(tmp_path)
    np_state, py_state = np.random.get_state()[1].copy(), random.getstate()
    results = []
    for _ in range(2):
        try:
            results.append(load_dataset(folder))
        except DataError as error:
            results.append(str(error))
    assert _snapshot(tmp_path) == before  # nothing written, renamed or touched, even on error
    assert (np.random.get_state()[1] == np_state).all() and random.getstate() == py_state
    if isinstance(results[0], Dataset):
        first, second = results
        assert first.fingerprint() == second.fingerprint()
        fingerprint = first.fingerprint()
        first.detections.loc[0, "confidence"] = 0.0  # a caller changing its copy ...
        first.ratings.iloc[0, 0] = 99.0
        assert load_dataset(folder).fingerprint() == fingerprint  # ... changes no later load
        assert second.fingerprint() == fingerprint
    else:
        assert results[0] == results[1]


# ---------------------------------------------------------------------------- real data
@pytest.fixture(scope="session")
def aware(aware2023: Path) -> Dataset:
    return load_dataset(aware2023)


@pytest.fixture(scope="session")
def lervup(lervup2021: Path) -> Dataset:
    return load_dataset(lervup2021)


def test_aware2023_facts(aware: Dataset) -> None:
    assert aware.layout == "challenge" and aware.splits == ("train", "val", "test")
    assert [len(aware.split_users(s)) for s in aware.splits] == [600, 200, 200]
    assert len(aware.split_images("train")) == 21_365
    train = aware.split_detections("train")
    assert len(train) == 25_978
    assert len(aware.ratings) == 236 and train["concept"].nunique() == 226
    per_user = aware.split_images("train").groupby("user").size()
    assert (per_user.min(), per_user.max(), round(per_user.mean(), 1)) == (13, 68, 35.6)
    per_image = train.groupby(["user", "image"]).size()
    assert per_image.max() == 8 and round((per_image == 1).mean(), 2) == 0.84
    assert train["confidence"].min() >= 0.3 and aware.has_boxes
    assert aware.has_labels("train") and not aware.has_labels("val")
    assert not aware.has_labels("test") and len(aware.split_labels("train")) == 600
    corr = aware.split_labels("train").corr()
    assert round(corr.loc["acc", "bank"], 2) == 0.77 and round(corr.loc["it", "bank"], 2) == 0.52
    assert aware.warnings == ()


def test_lervup2021_facts(lervup: Dataset, lervup2021: Path) -> None:
    assert lervup.layout == "research" and lervup.splits == ("train", "test")
    assert [len(lervup.split_users(s)) for s in lervup.splits] == [400, 100]
    assert len(lervup.ratings) == 282 and not lervup.has_boxes
    assert lervup.unrated_concepts == ["balloon", "football"]
    assert lervup.warnings == (
        "2 detected concept(s) have no rating in visual_concepts/ (296 of 36,296 detections): "
        "balloon (226), football (70); rating 0 is used for them",
    )
    labels = lervup.split_labels("train")
    assert len(labels) == 400 and set(labels.index) == set(lervup.split_users("train"))
    assert not lervup.has_labels("test")
    with pytest.raises(DataError, match="concept 'balloon'"):
        load_research(lervup2021, strict_ratings=True)


@pytest.mark.parametrize("name", ["aware2023", "lervup2021"])
def test_real_folder_loaded_twice_has_the_same_fingerprint(
    name: str, request: pytest.FixtureRequest
) -> None:
    folder = request.getfixturevalue(name)
    loaded = request.getfixturevalue("aware" if name == "aware2023" else "lervup")
    assert load_dataset(folder).fingerprint() == loaded.fingerprint()


def test_the_organisers_dummy_run_is_rejected_with_its_position(aware2023: Path) -> None:
    with pytest.raises(DataError) as caught:
        read_json(aware2023 / "dummy_run.json")
    assert str(caught.value) == (
        f"{aware2023 / 'dummy_run.json'}:4:9: invalid JSON: Expecting ',' delimiter "
        "(a comma is probably missing after the previous value)"
    )


# ------------------------------------------------------------------------ dataset name
def test_dataset_name_is_the_folders_name_even_for_dot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = build_case(tmp_path, "challenge", None)
    monkeypatch.chdir(folder)
    assert load_dataset(".").name == "challenge_ok"
    assert load_dataset(Path(".")).name == "challenge_ok"
    monkeypatch.chdir(folder / "..")
    assert load_dataset("challenge_ok").name == "challenge_ok"
    assert load_dataset("challenge_ok/.").name == "challenge_ok"
    assert Dataset(*_frames_of(load_dataset(folder))).name == "in-memory"


def _frames_of(data: Dataset) -> tuple[pd.DataFrame, ...]:
    return data.ratings, data.detections, data.images, data.users, data.labels
