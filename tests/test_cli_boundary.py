"""The one error boundary of the CLI: whatever fails, the user gets one line on stderr and the
right exit code (1, or 130 after Ctrl-C), never a traceback; warnings are shown once per
command and `--quiet` silences them."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

import ltr.workflow
from ltr.cli import common
from ltr.cli.main import app
from ltr.data.synthetic import write_synthetic

runner = CliRunner()
LTR = [sys.executable, "-c", "from ltr.cli.main import main; main()"]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("boundary") / "data"
    write_synthetic(folder, n_users=300, seed=2)
    return folder


@pytest.fixture(scope="module")
def unrated(tmp_path_factory: pytest.TempPathFactory, data: Path) -> Path:
    """The synthetic data with two detected concepts left unrated (a loader warning)."""
    folder = tmp_path_factory.mktemp("unrated") / "data"
    folder.mkdir()
    for path in data.iterdir():
        folder.joinpath(path.name).write_bytes(path.read_bytes())
    ratings = json.loads((folder / "class_scores.json").read_text())
    for concept in ("VC0", "VC1"):
        del ratings[concept]
    (folder / "class_scores.json").write_text(json.dumps(ratings))
    return folder


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


# ---------------------------------------------------------------------------- failures
def test_an_ltr_error_is_one_line_and_exit_1(data: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["predict", str(tmp_path / "nowhere"), str(data), "-s", "val"])
    assert result.exit_code == 1
    assert one_line(result.stderr).startswith("error: ") and "nowhere" in result.stderr


def test_an_os_error_names_the_path_and_the_reason(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreadable(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", "/some/run.json")

    monkeypatch.setattr(ltr.workflow, "evaluate_run", unreadable)
    result = runner.invoke(app, ["evaluate", "run.json", "-d", str(data), "-s", "val"])
    assert result.exit_code == 1
    assert one_line(result.stderr) == "error: /some/run.json: Permission denied"


def test_an_unexpected_error_is_reported_as_a_bug_in_one_line(
    data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(ltr.workflow, "run_baseline", broken)
    monkeypatch.delenv("LTR_DEBUG", raising=False)
    result = runner.invoke(app, ["baseline", str(data), "-s", "train"])
    assert result.exit_code == 1
    line = one_line(result.stderr)
    assert line.startswith("error: this is a bug in ltr: ZeroDivisionError: boom")
    assert "LTR_DEBUG=1" in line
    # developers see the real exception
    monkeypatch.setenv("LTR_DEBUG", "1")
    debug = runner.invoke(app, ["baseline", str(data), "-s", "train"])
    assert isinstance(debug.exception, ZeroDivisionError)


def test_usage_errors_keep_clicks_message(data: Path) -> None:
    result = runner.invoke(app, ["cv", str(data), "--folds", "abc"])
    assert result.exit_code == 2
    assert "Invalid value" in result.output and "bug in ltr" not in result.output


def test_ctrl_c_says_nothing_was_written_and_exits_130(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(ltr.workflow, "run_baseline", interrupted)
    out = tmp_path / "base.json"
    result = runner.invoke(app, ["baseline", str(data), "-s", "test", "--out", str(out)])
    assert result.exit_code == 130
    assert one_line(result.stderr) == "interrupted; nothing was written"
    assert not out.exists()


def test_ctrl_c_after_a_write_says_what_was_kept(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "base.json"

    def write_then_interrupt(*args: object, **kwargs: object) -> None:
        out.write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(ltr.workflow, "run_baseline", write_then_interrupt)
    result = runner.invoke(app, ["baseline", str(data), "-s", "test", "--out", str(out)])
    assert result.exit_code == 130
    assert one_line(result.stderr) == f"interrupted; written before the interruption: {out}"


# ------------------------------------------------------------------ Ctrl-C, for real
@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Enough users that each command runs for seconds after its first line."""
    folder = tmp_path_factory.mktemp("big") / "data"
    write_synthetic(folder, n_users=4000, seed=2)  # same ratings as `data` (same seed)
    return folder


@pytest.fixture(scope="module")
def model(data: Path) -> Path:
    out = data.parent / "model"
    result = runner.invoke(app, ["train", str(data), "--model-dir", str(out), "-m", "ridge"])
    assert result.exit_code == 0, result.output
    return out


def interrupt_after_first_line(args: list[str], cwd: Path) -> tuple[int, str, str]:
    """Start `ltr ARGS`, wait for its first line on stdout, press Ctrl-C (SIGINT)."""
    process = subprocess.Popen(
        [*LTR, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    first = process.stdout.readline()
    # Press again if the first press is lost: Python swallows a KeyboardInterrupt raised
    # while a finaliser (`__del__`, e.g. a freed LightGBM handle) runs, as a person would.
    for _ in range(20):
        process.send_signal(signal.SIGINT)
        try:
            rest, stderr = process.communicate(timeout=3)
            break
        except subprocess.TimeoutExpired:
            continue
    else:
        process.kill()
        rest, stderr = process.communicate()
    return process.returncode, first + rest, stderr


@pytest.mark.slow
@pytest.mark.parametrize("command", ["cv", "train", "predict"])
def test_ctrl_c_during_a_long_command_is_one_line_and_130(
    command: str, big: Path, model: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    args = {
        "cv": ["cv", str(big), "-k", "3", "-r", "3", "--report", str(out)],
        "train": ["train", str(big), "--model-dir", str(out)],
        "predict": ["predict", str(model), str(big), "-s", "val", "--out", str(out) + ".json"],
    }[command]
    code, stdout, stderr = interrupt_after_first_line(args, tmp_path)
    assert stdout.strip(), stderr  # the command had started its work
    assert code == 130, stdout + stderr
    assert one_line(stderr) == "interrupted; nothing was written"
    assert sorted(p.name for p in tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------- warnings
def test_a_loader_warning_appears_once_per_command_and_quiet_silences_it(
    unrated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = ltr.workflow.run_baseline

    def loads_twice(dataset, split, **options):  # type: ignore[no-untyped-def]
        common.load_data(unrated)  # a second load of the same folder in the same command
        warnings.warn("a library noticed something", UserWarning, stacklevel=1)
        warnings.warn("a library noticed something", UserWarning, stacklevel=1)
        return original(dataset, split, **options)

    monkeypatch.setattr(ltr.workflow, "run_baseline", loads_twice)
    result = runner.invoke(app, ["baseline", str(unrated), "-s", "train"])
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    unrated_lines = [line for line in lines if "have no rating" in line]
    assert len(unrated_lines) == 1 and unrated_lines[0].startswith("warning: 2 detected")
    assert lines.count("warning: a library noticed something (UserWarning)") == 1
    # the next command shows it again: once per command, not once per process
    again = runner.invoke(app, ["baseline", str(unrated), "-s", "train"])
    assert sum("have no rating" in line for line in again.stderr.splitlines()) == 1
    quiet = runner.invoke(app, ["-q", "baseline", str(unrated), "-s", "train"])
    assert quiet.exit_code == 0 and quiet.stderr == ""
    assert quiet.stdout == result.stdout  # only the warnings went


def test_quiet_also_silences_the_warnings_of_data_check(unrated: Path) -> None:
    loud = runner.invoke(app, ["data", "check", str(unrated)])
    assert loud.exit_code == 0 and loud.stdout.count("warning: 2 detected") == 1
    quiet = runner.invoke(app, ["--quiet", "data", "check", str(unrated)])
    assert quiet.exit_code == 0 and "warning" not in quiet.stdout + quiet.stderr


def test_no_traceback_for_odd_input(data: Path, tmp_path: Path) -> None:
    """A few things a person might type; every one is a clean message."""
    (tmp_path / "spec.json").write_text("[1, 2]")
    cases = [
        ["cv", str(data), "--params", str(tmp_path / "spec.json")],
        ["cv", str(data), "--models", ","],
        ["features", str(data), "-s", "val", "-o", ""],
        ["predict", str(data), str(data), "-s", "val"],
        ["evaluate", str(data), "-d", str(data), "-s", "val"],
        ["explain", str(data), str(data), "-s", "val", "-u", "x", "--situation", "nope"],
        ["studies", "list", "--storage", str(tmp_path / "none.db")],
    ]
    for args in cases:
        result = runner.invoke(app, args)
        assert result.exit_code in (1, 2), (args, result.output)
        assert "Traceback" not in result.output and "bug in ltr" not in result.output, args
        if result.exit_code == 1:
            assert one_line(result.stderr).startswith("error: "), args
    assert os.listdir(tmp_path) == ["spec.json"]


DEEP = "[" * 100_000 + "]" * 100_000


@pytest.mark.parametrize(
    ("layout", "file", "command"),
    [
        ("challenge", "predictions_train.json", ["data", "check", "{data}"]),
        ("challenge", "class_scores.json", ["data", "check", "{data}"]),
        ("research", "train_test_split_v1.json", ["data", "check", "{data}"]),
        ("research", "gt_usr_exposure_v1.json", ["data", "check", "{data}"]),
        ("challenge", "run.json", ["submission", "check", "{file}", "-d", "{data}", "-s", "val"]),
        ("challenge", "run.json", ["evaluate", "{file}", "-d", "{data}", "-s", "train"]),
        ("challenge", "spec.json", ["cv", "{data}", "--params", "{file}"]),
        ("challenge", "spec.json", ["train", "{data}", "--params", "{file}", "--model-dir", "m"]),
    ],
)
def test_deeply_nested_json_in_any_input_is_one_line_naming_the_file(
    tmp_path: Path, layout: str, file: str, command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """100,000 nested arrays crashed every JSON reader with RecursionError ("bug in ltr")."""
    from casefiles import DATA

    folder = tmp_path / "data"
    shutil.copytree(DATA / f"{layout}_ok", folder)
    path = (folder if (folder / file).exists() else tmp_path) / file
    path.write_text(DEEP)
    args = [a.format(data=folder, file=path) for a in command]
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    line = one_line(result.stderr)
    assert line.startswith(f"error: {path}:1:101: ") and "nested too deeply" in line, line


def leaf_commands() -> list[tuple[list[str], object]]:
    """Every command of the app (path of names, click command), sub-groups walked."""
    import typer
    from typer.core import TyperGroup

    found: list[tuple[list[str], object]] = []

    def walk(command: object, path: list[str]) -> None:
        if isinstance(command, TyperGroup):
            for name, sub in command.commands.items():
                walk(sub, [*path, name])
        else:
            found.append((path, command))

    walk(typer.main.get_command(app), [])
    return found


def takes_input(command: object) -> bool:
    """Whether a command has an argument or a required option (the others, such as
    `quickstart` or `studies dashboard`, would simply run)."""
    return any(p.param_type_name == "argument" or p.required for p in command.params)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("path", "command"),
    [(p, c) for p, c in leaf_commands() if takes_input(c)],
    ids=[" ".join(p) for p, c in leaf_commands() if takes_input(c)],
)
def test_every_command_given_a_broken_file_everywhere_says_so_in_one_line(
    path: list[str], command: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every argument and required option of every command given a truncated JSON file:
    a usage message (2) or one line (1), never a traceback, never a crash report."""
    from typer.core import TyperArgument, TyperCommand

    assert isinstance(command, TyperCommand)
    broken = tmp_path / "broken.json"
    broken.write_text('{"a": [1, 2')
    args: list[str] = []
    for param in command.params:
        if isinstance(param, TyperArgument):
            args += [str(broken)] * (1 if param.nargs == 1 else 2)
        elif param.required:
            args += [param.opts[0], str(broken)]
    assert args
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LTR_STORAGE", f"sqlite:///{broken}")
    result = runner.invoke(app, [*path, *args])
    assert result.exit_code in (1, 2), result.output
    assert "Traceback" not in result.output and "bug in ltr" not in result.output, result.output
    if result.exit_code == 1:
        assert one_line(result.stderr).startswith("error: "), result.stderr


@pytest.mark.slow
def test_a_terminal_that_cannot_show_a_name_gets_an_escape_not_an_error(
    data: Path, tmp_path: Path
) -> None:
    """An unrated concept named 'ñandú' is named in a warning; on an ASCII-only stream it used
    to end the command with an encoding error reported as a bug."""
    folder = tmp_path / "data"
    folder.mkdir()
    for path in data.iterdir():
        folder.joinpath(path.name).write_bytes(path.read_bytes())
    detections = json.loads((folder / "predictions_train.json").read_text())
    user = next(iter(detections))
    image = next(iter(detections[user]))
    detections[user][image].append("ñandú 0.9 0.1 0.1 0.5 0.5")
    (folder / "predictions_train.json").write_text(json.dumps(detections))
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    done = subprocess.run(
        [*LTR, "data", "check", str(folder)], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    shown = done.stdout + done.stderr
    assert "no rating" in shown and "\\xf1and\\xfa" in shown
