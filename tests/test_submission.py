"""Run files: the challenge's JSON format (and CSV), validation, writing, `ltr submission check`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from ltr.cli.main import app
from ltr.data.loading import load_dataset
from ltr.errors import RunFileError
from ltr.situations import SITUATIONS
from ltr.submission import JSON_KEYS, read_run, validate_run, write_run

runner = CliRunner()


def run_frame(users: list[str], values: np.ndarray | list[list[float]]) -> pd.DataFrame:
    return pd.DataFrame(
        np.asarray(values, dtype=float),
        index=pd.Index(users, name="user"),
        columns=list(SITUATIONS),
    )


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


GOOD_JSON = json.dumps(
    {
        "a": {"acc": 0.5, "it": -1, "bank": 2e-3, "wait": 0},
        "b": {"wait": 1.5, "bank": -0.25, "it": 3, "acc": -7.125},
    }
)


# ------------------------------------------------------------------------------------- JSON
def test_read_json_run(tmp_path: Path) -> None:
    run = read_run(write(tmp_path / "run.json", GOOD_JSON))
    expected = run_frame(["a", "b"], [[0.5, 2e-3, -1, 0], [-7.125, -0.25, 3, 1.5]])
    pd.testing.assert_frame_equal(run, expected)


def test_the_organisers_dummy_run_is_rejected_with_line_and_column(aware2023: Path) -> None:
    path = aware2023 / "dummy_run.json"
    with pytest.raises(RunFileError) as error:
        read_run(path)
    assert (error.value.line, error.value.column) == (4, 9)  # the missing comma after "acc"
    assert str(error.value).startswith(f"{path}:4:9: invalid JSON")


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"acc": "0.5", "it": 1, "bank": 1, "wait": 1}, "the challenge refuses quoted numbers"),
        ({"acc": True, "it": 1, "bank": 1, "wait": 1}, "true is not a number"),
        ({"acc": None, "it": 1, "bank": 1, "wait": 1}, "null is not a number"),
        ({"acc": [1], "it": 1, "bank": 1, "wait": 1}, "expected a number, got list"),
        ({"acc": 1, "it": 1, "bank": 1}, "missing key(s) 'wait'"),
        ({"acc": 1, "it": 1, "bank": 1, "wait": 1, "x": 2}, "unexpected key(s) 'x'"),
        ({"accommodation": 1, "it": 1, "bank": 1, "wait": 1}, "missing key(s) 'acc'"),
        ([1, 2, 3, 4], "expected an object with keys acc, it, bank, wait"),
    ],
)
def test_json_entries_the_challenge_refuses(tmp_path: Path, entry, message: str) -> None:
    path = write(
        tmp_path / "run.json", json.dumps({"ok": dict.fromkeys(JSON_KEYS, 1), "u9": entry})
    )
    with pytest.raises(RunFileError) as error:
        read_run(path)
    assert message in str(error.value)
    assert str(error.value).startswith(f"{path}: user 'u9'")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"u": {"acc": 1e999, "it": 1, "bank": 1, "wait": 1}}', "inf is not a finite number"),
        ('{"u": {"acc": NaN, "it": 1, "bank": 1, "wait": 1}}', "NaN"),
        ('{"u": {"acc": 1, "acc": 2, "it": 1, "bank": 1, "wait": 1}}', "'acc' appears twice"),
        ('[{"acc": 1}]', "expected an object of users at the top level, got list"),
        ("{}", "the run holds no users"),
        ('{"": {"acc": 1, "it": 1, "bank": 1, "wait": 1}}', "empty user id"),
        ('{"\\ud800": {"acc": 1, "it": 1, "bank": 1, "wait": 1}}', "not valid Unicode"),
        ("", "file is empty"),
        ('{"u": {"acc": 1, "it": 1, "bank": 1, "wait": 1},}', "trailing comma"),
    ],
)
def test_malformed_json_runs(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "run.json", text)
    with pytest.raises(RunFileError) as error:
        read_run(path)
    assert message in str(error.value)
    assert str(path) in str(error.value)


def test_missing_file_and_unknown_extension(tmp_path: Path) -> None:
    with pytest.raises(RunFileError, match="file not found"):
        read_run(tmp_path / "absent.json")
    with pytest.raises(RunFileError, match="file not found"):
        read_run(tmp_path / "absent.csv")
    with pytest.raises(RunFileError, match=r"unknown run file extension '\.txt'"):
        read_run(write(tmp_path / "run.txt", GOOD_JSON))


# -------------------------------------------------------------------------------------- CSV
def test_read_csv_run_columns_in_any_order_quotes_blank_lines_and_bom(tmp_path: Path) -> None:
    text = '\ufeffwait,user,acc,it,bank\n1,"u,1",2,3,4\n\n-0.5,u2,1e-3,+2,.25\n'
    run = read_run(write(tmp_path / "run.csv", text))
    expected = run_frame(["u,1", "u2"], [[2, 4, 3, 1], [1e-3, 0.25, 2, -0.5]])
    pd.testing.assert_frame_equal(run, expected)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file: expected the header user,acc,bank,it,wait"),
        ("user,acc,it,wait\n", ":1: header 'user,acc,it,wait' is not"),
        ("user,acc,bank,it,wait\nu1,1,2,3\n", ":2: expected 5 fields, got 4"),
        ("user,acc,bank,it,wait\nu1,1,2,3,4\nu1,1,2,3,4\n", "(first on line 2)"),
        ("user,acc,bank,it,wait\nu1,1,2,three,4\n", ":2: user 'u1', column 'it': 'three' is not"),
        ("user,acc,bank,it,wait\nu1,1,2,nan,4\n", "'nan' is not a finite number"),
        ("user,acc,bank,it,wait\nu1,1,-inf,3,4\n", "'-inf' is not a finite number"),
        ("user,acc,bank,it,wait\nu1,1,1e999,3,4\n", "'1e999' is not a finite number"),
        ("user,acc,bank,it,wait\nu1,1_0,2,3,4\n", "'1_0' is not a number"),
        ("user,acc,bank,it,wait\nu1,,2,3,4\n", "column 'acc': missing value"),
        ("user,acc,bank,it,wait\n,1,2,3,4\n", "empty user id"),
        ('user,acc,bank,it,wait\n"u1"x,1,2,3,4\n', "invalid CSV"),
    ],
)
def test_malformed_csv_runs(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "run.csv", text)
    with pytest.raises(RunFileError) as error:
        read_run(path)
    assert message in str(error.value)
    assert str(error.value).startswith(str(path))


# ------------------------------------------------------------------------------- validation
def test_validate_run_names_file_missing_and_extra_users_and_reorders() -> None:
    run = run_frame(["c", "a", "b"], np.arange(12).reshape(3, 4))
    ordered = validate_run(run, ["a", "b", "c"], "run.json", split="val")
    assert list(ordered.index) == ["a", "b", "c"]
    pd.testing.assert_frame_equal(ordered, run.loc[["a", "b", "c"]])
    users = [f"u{i}" for i in range(10)]
    with pytest.raises(RunFileError) as error:
        validate_run(run, users, "run.json", split="val")
    message = str(error.value)
    assert message.startswith("run.json: ")
    assert "10 user(s) of split 'val' missing: 'u0', 'u1', 'u2', ..." in message
    assert "3 user(s) not in split 'val': 'c', 'a', 'b'" in message
    assert "(the run has 3 users, split 'val' has 10)" in message


def test_validate_run_checks_columns_and_values() -> None:
    run = run_frame(["a", "b"], [[1, 2, 3, 4], [5, 6, 7, 8]])
    with pytest.raises(RunFileError, match=r"missing situation\(s\) wait"):
        validate_run(run.drop(columns="wait"), ["a", "b"], "r.json")
    with pytest.raises(RunFileError, match=r"unexpected column\(s\) extra"):
        validate_run(run.assign(extra=1.0), ["a", "b"], "r.json")
    bad = run.copy()
    bad.loc["b", "it"] = np.inf
    with pytest.raises(
        RunFileError, match=r"r.json: user 'b', situation 'it': inf is not a finite"
    ):
        validate_run(bad, ["a", "b"], "r.json")
    with pytest.raises(RunFileError, match=r"appear more than once: 'a'"):
        validate_run(pd.concat([run, run.iloc[:1]]), ["a", "b"], "r.json")
    with pytest.raises(RunFileError, match="user ids must be strings, got int 0"):
        validate_run(run.reset_index(drop=True), ["a", "b"], "r.json")


# ---------------------------------------------------------------------------------- writing
def test_write_json_is_the_challenge_format(tmp_path: Path) -> None:
    run = run_frame(["a", "b"], [[0.1, 0.2, 0.3, 1 / 3], [1, 2, 3, 4]])
    path = write_run(run, tmp_path / "out" / "run.json", users=["b", "a"])
    raw = json.loads(path.read_text())
    assert list(raw) == ["b", "a"]  # the split's order
    assert all(list(entry) == list(JSON_KEYS) for entry in raw.values())
    assert raw["a"] == {"acc": 0.1, "bank": 0.2, "it": 0.3, "wait": 1 / 3}
    assert all(type(v) is float for entry in raw.values() for v in entry.values())


def test_write_refuses_invalid_runs_and_leaves_no_file(tmp_path: Path) -> None:
    run = run_frame(["a", "b"], [[0.1, 0.2, 0.3, 0.4], [1, 2, 3, np.nan]])
    with pytest.raises(RunFileError, match="user 'b', situation 'wait': nan"):
        write_run(run, tmp_path / "run.json")
    with pytest.raises(RunFileError, match=r"1 user\(s\) of the split missing: 'c'"):
        write_run(run.fillna(0.0), tmp_path / "run.csv", users=["a", "b", "c"])
    with pytest.raises(RunFileError, match=r"unknown run file extension '\.parquet'"):
        write_run(run.fillna(0.0), tmp_path / "run.parquet")
    assert list(tmp_path.iterdir()) == []  # nothing written, no temporary left behind


def test_write_replaces_an_existing_file_atomically(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    write_run(run_frame(["a", "b"], [[1, 2, 3, 4], [5, 6, 7, 8]]), path)
    before = path.read_text()
    with pytest.raises(RunFileError):
        write_run(run_frame(["a", "b"], [[1, 2, 3, 4], [5, 6, 7, np.inf]]), path)
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


user_ids = st.text(
    # no lone surrogates (not encodable) and no NUL (Python 3.10's csv module refuses it)
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=12,
)
tricky_ids = st.sampled_from(["a,b", 'say "hi"', "line\nbreak", "cr\ronly", " padded ", "é😀"])
values = st.floats(allow_nan=False, allow_infinity=False)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    users=st.lists(st.one_of(tricky_ids, user_ids), min_size=1, max_size=8, unique=True),
    data=st.data(),
    extension=st.sampled_from([".json", ".csv"]),
)
def test_round_trip_is_exact(tmp_path: Path, users: list[str], data, extension: str) -> None:
    numbers = data.draw(st.lists(values, min_size=4 * len(users), max_size=4 * len(users)))
    run = run_frame(users, np.array(numbers).reshape(len(users), 4))
    path = write_run(run, tmp_path / f"run{extension}")
    back = read_run(path)
    assert list(back.index) == users
    assert list(back.columns) == list(SITUATIONS)
    # bit for bit, so -0.0, subnormals and the last digit of every float survive
    assert back.to_numpy().tobytes() == run.to_numpy().tobytes()


# -------------------------------------------------------------------------------------- CLI
def write_challenge_folder(root: Path) -> Path:
    """The smallest challenge-layout folder `submission check` needs: ratings + one split."""
    root.mkdir()
    ratings = {"VC0": dict.fromkeys(JSON_KEYS, "0.5"), "VC1": dict.fromkeys(JSON_KEYS, "-1")}
    (root / "class_scores.json").write_text(json.dumps(ratings))
    predictions = {
        f"user{u}": {f"img{i}": [f"VC{i % 2} 0.{4 + u} 0 0 1 1"] for i in range(2)}
        for u in range(3)
    }
    (root / "predictions_val.json").write_text(json.dumps(predictions))
    return root


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return write_challenge_folder(tmp_path / "data")


def check(run_file: Path, data: Path, split: str = "val"):
    return runner.invoke(
        app, ["submission", "check", str(run_file), "--data", str(data), "--split", split]
    )


def test_cli_check_accepts_a_valid_json_and_csv_run(folder: Path, tmp_path: Path) -> None:
    run = run_frame(["user0", "user1", "user2"], np.arange(12).reshape(3, 4) / 7)
    editions = {"run.json": "2022 and 2023 editions (JSON)", "run.csv": "2021 edition (CSV"}
    for name, edition in editions.items():
        result = check(write_run(run, tmp_path / name), folder)
        assert result.exit_code == 0, result.output
        assert result.output.startswith("valid: 3 users (data val); ")
        assert edition in result.output and "warning" not in result.output


def test_cli_check_rejects_with_the_challenge_messages(folder: Path, tmp_path: Path) -> None:
    entry = dict.fromkeys(JSON_KEYS, 0.5)
    wrong_users = write(tmp_path / "users.json", json.dumps({"user0": entry, "userX": entry}))
    result = check(wrong_users, folder)
    assert result.exit_code == 1
    assert f"{wrong_users}: 2 user(s) of split 'val' missing: 'user1', 'user2'" in result.output
    assert "1 user(s) not in split 'val': 'userX'" in result.output
    quoted = {u: dict(entry) for u in ("user0", "user1", "user2")}
    quoted["user1"]["bank"] = "0.5"
    result = check(write(tmp_path / "quoted.json", json.dumps(quoted)), folder)
    assert result.exit_code == 1
    assert "user 'user1', key 'bank': the string '0.5' is not a number" in result.output
    result = check(write(tmp_path / "run.txt", ""), folder)
    assert result.exit_code == 1 and "unknown run file extension" in result.output
    result = check(write(tmp_path / "run.json", "{}"), folder, split="test")
    assert result.exit_code == 1 and "no split 'test'" in result.output
    assert "Traceback" not in result.output


def test_cli_check_rejects_the_dummy_run_on_real_data(aware2023: Path) -> None:
    result = check(aware2023 / "dummy_run.json", aware2023)
    assert result.exit_code == 1
    assert f"{aware2023 / 'dummy_run.json'}:4:9: invalid JSON" in result.output


def test_cli_check_and_evaluate_a_csv_run_on_real_data(aware2023: Path, tmp_path: Path) -> None:
    dataset = load_dataset(aware2023)
    users = dataset.split_users("val")
    rng = np.random.default_rng(0)
    run_file = write_run(
        run_frame(list(users), rng.normal(size=(len(users), 4))), tmp_path / "v.csv"
    )
    result = check(run_file, aware2023)
    assert result.exit_code == 0, result.output
    assert "valid: 200 users (aware2023 val)" in result.output
    result = runner.invoke(app, ["evaluate", str(run_file), "-d", str(aware2023), "-s", "val"])
    assert result.exit_code == 1
    assert "split 'val' has no labels" in result.output
