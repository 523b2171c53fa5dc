"""The documentation says what the code does: the README's and the docs' commands parse against
the application, the README's real-data steps chain (each file a step reads is the one the step
before wrote), and the committed CLI reference is the one the application generates.

What runs and what only parses:

* every ``ltr`` command in a ``console`` block of README.md and docs/*.md is parsed by the Typer
  app itself (unknown commands or options, missing arguments, bad values fail);
* the README's synthetic command (``ltr quickstart``) runs verbatim in an empty folder (slow);
* the README's real-data commands run verbatim, with ``LTR_DATA`` at the real data, where it is
  present (slow); the long ones (``cv``, ``tune``, ``train --study``) are only parsed.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main
from conftest import shared_data_root
from typer import _click
from typer.core import TyperGroup
from typer.testing import CliRunner

from ltr.cli.common import DATA_ENV
from ltr.cli.main import app
from ltr.outputs import folder_name, submission_path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
CLI_REFERENCE = DOCS / "cli.md"
#: The one command that regenerates docs/cli.md (docs/development.md shows it).
REGENERATE = ["ltr.cli.app", "utils", "docs", "--name", "ltr", "--title", "CLI reference"]
#: The data sets the README's real-data section puts under $LTR_DATA.
DATA_NAMES = {"aware2023", "lervup2021"}
#: Parameters that name a data folder.
DATA_PARAMS = {"data_dir", "data", "folder"}
#: README commands too long to run in the suite: parsed only.
LONG = {"ltr cv", "ltr tune"}
OPERATORS = {"&&", "||", ";", "|"}
LTR = str(Path(sys.executable).with_name("ltr"))


# ----------------------------------------------------------------------- reading the commands
def console_lines(text: str) -> Iterator[str]:
    """The command lines of the ``console`` blocks: lines after a ``$ `` prompt, or every line
    of a block that has no prompt (a block of commands to paste)."""
    for block in re.findall(r"```console\n(.*?)```", text, flags=re.S):
        lines = [line.strip() for line in block.splitlines()]  # blocks may be indented
        prompts = [line[2:] for line in lines if line.startswith("$ ")]
        yield from prompts if prompts else (line for line in lines if line)


def ltr_commands(line: str) -> Iterator[list[str]]:
    """The ``ltr`` invocations of one shell line (``a && ltr x | head`` -> ``["x"]``)."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    words: list[str] = []
    tokens = list(lexer)
    index = 0
    while index <= len(tokens):
        token = tokens[index] if index < len(tokens) else ";"
        if token in OPERATORS:
            if words and (words[0] == "ltr" or words[0].endswith("/ltr")):
                yield words[1:]
            words = []
        elif token in {">", ">>", "2>", "<"}:
            index += 1  # the redirection's target is no argument
        else:
            words.append(token)
        index += 1


def commands_of(path: Path) -> list[list[str]]:
    return [args for line in console_lines(path.read_text()) for args in ltr_commands(line)]


def parse(args: list[str]) -> tuple[str, dict[str, Any]]:
    """(command path, parameters) as the app parses `args`; a usage error raises."""
    command: Any = typer.main.get_command(app)
    context = command.make_context("ltr", list(args))
    while isinstance(command, TyperGroup):
        rest = [*getattr(context, "_protected_args", []), *context.args]
        name, command, rest = command.resolve_command(context, rest)
        context = command.make_context(name, rest, parent=context)
    return context.command_path, context.params


DOC_FILES = [README, *sorted(p for p in DOCS.rglob("*.md") if p != CLI_REFERENCE)]
DOC_COMMANDS = [
    pytest.param(args, id=f"{path.relative_to(ROOT)}: ltr {shlex.join(args)}"[:120])
    for path in DOC_FILES
    for args in commands_of(path)
]


def test_the_readme_and_the_docs_show_commands() -> None:
    readme = commands_of(README)
    assert ["quickstart"] in readme
    assert len(readme) >= 8 and len(DOC_COMMANDS) >= 60


@pytest.mark.parametrize("args", DOC_COMMANDS)
def test_every_documented_command_parses(args: list[str]) -> None:
    try:
        parse(args)
    except _click.exceptions.UsageError as error:
        pytest.fail(f"ltr {shlex.join(args)}: {error}")


# --------------------------------------------------------------------- the README's real data
def readme_real_data() -> list[list[str]]:
    """The commands of the README's real-data section, in order."""
    text = README.read_text()
    section = text.split("## Use it on the real data", 1)[1].split("\n## ", 1)[0]
    return [args for line in console_lines(section) for args in ltr_commands(line)]


def test_the_real_data_steps_name_data_sets_under_the_data_variable() -> None:
    section = README.read_text().split("## Use it on the real data", 1)[1].split("\n## ", 1)[0]
    assert f"export {DATA_ENV}=" in section
    for args in readme_real_data():
        _path, params = parse(args)
        for name in DATA_PARAMS & params.keys():
            assert str(params[name]) in DATA_NAMES, (args, name)


def test_the_real_data_steps_chain() -> None:
    """The run file checked is the default name `ltr predict` writes; trained model folders are
    the ones the later steps read."""
    written_models: set[str] = set()
    predicted: set[Path] = set()
    for args in readme_real_data():
        path, params = parse(args)
        if path == "ltr train":
            written_models.add(str(params["model_dir"]))
        elif path in {"ltr predict", "ltr explain"}:
            assert str(params["model_dir"]) in written_models, args
            if path == "ltr predict" and params["out"] is None:
                model = folder_name(params["model_dir"])
                predicted.add(submission_path(str(params["data_dir"]), model, params["split"]))
        elif path == "ltr submission check":
            assert params["run_file"] in predicted, args
    assert predicted


@pytest.mark.slow
def test_the_readme_real_data_steps_run_on_the_real_data(tmp_path: Path) -> None:
    """Verbatim, with LTR_DATA at the real data; the long steps are parsed above only."""
    shared_data = shared_data_root()
    if not all((shared_data / name).is_dir() for name in DATA_NAMES):
        pytest.skip(f"the real data sets are not in {shared_data}")
    env = {**os.environ, DATA_ENV: str(shared_data)}
    for args in readme_real_data():
        path, params = parse(args)
        if path in LONG or params.get("study"):
            continue
        done = subprocess.run([LTR, *args], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"ltr {shlex.join(args)}:\n{done.stdout}\n{done.stderr}"
    assert (tmp_path / "reports" / "profile.html").is_file()


@pytest.mark.slow
def test_the_readme_quickstart_runs_verbatim(tmp_path: Path) -> None:
    (line,) = [args for args in commands_of(README) if args and args[0] == "quickstart"]
    done = subprocess.run([LTR, *line], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "submissions" / "synthetic-quickstart-test.json").is_file()
    assert "val Pearson" in done.stdout


# ------------------------------------------------------------------------ the CLI reference
def generated_reference(tmp_path: Path) -> str:
    """docs/cli.md as `typer ltr.cli.app utils docs ...` writes it (fixed terminal width)."""
    from typer.cli import app as typer_cli

    out = tmp_path / "cli.md"
    result = CliRunner().invoke(
        typer_cli,
        [*REGENERATE, "--output", str(out)],
        env={"COLUMNS": "100", "TERMINAL_WIDTH": "100"},
    )
    assert result.exit_code == 0, result.output
    return out.read_text()


def test_the_cli_reference_is_up_to_date(tmp_path: Path) -> None:
    documented = re.findall(r"`\.venv/bin/typer ([^`]*)`", (DOCS / "development.md").read_text())
    assert [shlex.split(c) for c in documented] == [[*REGENERATE, "--output", "docs/cli.md"]]
    command = f".venv/bin/typer {documented[0]}"
    assert CLI_REFERENCE.read_text() == generated_reference(tmp_path), (
        f"docs/cli.md is out of date: regenerate it with `{command}`"
    )


def test_the_cli_reference_covers_every_command(tmp_path: Path) -> None:
    text = CLI_REFERENCE.read_text()
    for name in ("cv", "train", "predict", "tune", "explain", "data check", "studies report"):
        assert f"## `ltr {name}`" in text


def documented_output(page: Path, command: str) -> list[str]:
    """The lines a page shows after ``$ COMMAND`` in a console block, up to the next command
    or the end of the block."""
    lines = page.read_text(encoding="utf-8").splitlines()
    start = lines.index(f"$ {command}") + 1
    out = []
    for line in lines[start:]:
        if line.startswith(("$ ", "```")):
            break
        out.append(line)
    return out


@pytest.mark.slow
def test_the_documented_outputs_of_the_default_model_are_current(tmp_path: Path) -> None:
    """The pages show what today's default prints on the real data (a model change used to
    leave an older model's explanation and run file in the docs)."""
    shared_data = shared_data_root()
    if not (shared_data / "aware2023").is_dir():
        pytest.skip(f"the real data sets are not in {shared_data}")
    env = {**os.environ, DATA_ENV: str(shared_data), "COLUMNS": "100"}

    def ltr(command: str) -> str:
        args = shlex.split(command)
        done = subprocess.run([LTR, *args], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"ltr {command}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    ltr("train aware2023 --model-dir models/default")
    explain = (
        "ltr explain models/default aware2023 --split test --user u1zuw2lesw28ea7y "
        "--situation bank --situation wait --top 2"
    )
    shown = documented_output(DOCS / "feedback.md", explain)
    assert ltr(explain.removeprefix("ltr ")).splitlines() == shown

    ltr("predict models/default aware2023 --split val --out val.csv")
    shown = documented_output(DOCS / "models.md", "head -3 submissions/aware2023-val.csv")
    assert (tmp_path / "val.csv").read_text().splitlines()[:3] == shown
