"""The help of every command follows the same rules (a walk over the whole app), options with
several values take a comma list and repetition alike, and `ltr --help` starts without the
heavy libraries."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from ltr.cli import vocabulary
from ltr.cli.main import app
from ltr.data.synthetic import write_synthetic

runner = CliRunner()
#: Options that take several values, each written `a,b` or repeated.
MULTI_VALUE = {"--models", "--situation", "--families", "--thresholds"}
#: The names of positional arguments, one per meaning.
ARGUMENT_NAMES = {
    "data_dir": "DATA_DIR",
    "folder": "DATA_DIR",
    "data": "DATA_DIR",
    "model_dir": "MODEL_DIR",
    "run_file": "RUN_FILE",
    "out_dir": "OUT_DIR",
    "name": "STUDY",
}
HEAVY = ("optuna", "lightgbm", "xgboost", "pandas", "sklearn", "matplotlib", "scipy", "pyarrow")


def commands() -> Iterator[tuple[list[str], Any]]:
    """(path, click command) of every command and group of the app, the root included."""

    def walk(path: list[str], command: Any) -> Iterator[tuple[list[str], Any]]:
        yield path, command
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk([*path, name], sub)

    yield from walk([], get_command(app))


def test_the_walk_sees_every_command() -> None:
    paths = {" ".join(path) for path, _ in commands()}
    expected = {"cv", "train", "predict", "tune", "studies report", "data synth"}
    assert expected <= paths and "submission check" in paths and len(paths) >= 17


def test_a_short_option_means_the_same_everywhere() -> None:
    meaning: dict[str, set[str]] = defaultdict(set)
    for _path, command in commands():
        for param in command.params:
            longs = [o for o in param.opts if o.startswith("--")]
            for short in (o for o in param.opts if re.fullmatch(r"-\w", o)):
                meaning[short].add(longs[0])
    assert meaning["-s"] == {"--split"} and meaning["-o"] == {"--out"}
    assert {short: longs for short, longs in meaning.items() if len(longs) > 1} == {}


@pytest.mark.parametrize("path", [p for p, _ in commands()], ids=lambda p: " ".join(p) or "ltr")
def test_help_has_no_value_type_for_flags_and_uppercase_argument_names(path: list[str]) -> None:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output and "BOOLEAN" not in result.output
    usage = next(line for line in result.output.splitlines() if "Usage:" in line)
    for name in re.findall(r"[{\[]([^}\]]+)[}\]]", usage):
        assert name == "OPTIONS" or name in ARGUMENT_NAMES.values() or name == "ARGS", usage


def test_arguments_have_one_uppercase_name_per_meaning() -> None:
    for path, command in commands():
        for param in command.params:
            if param.param_type_name == "argument":
                assert param.metavar == ARGUMENT_NAMES[param.name], (path, param.name)
            elif param.metavar is not None:
                assert re.fullmatch(r"[A-Z_]+", param.metavar), (path, param.name)


def test_several_value_options_take_a_comma_list_or_repetition() -> None:
    found = set()
    for path, command in commands():
        for param in command.params:
            name = next((o for o in param.opts if o.startswith("--")), "")
            if name in MULTI_VALUE or getattr(param, "multiple", False):
                assert name in MULTI_VALUE and param.multiple, (path, name)
                assert "comma list or repeated" in (param.help or ""), (path, name)
                found.add(name)
    assert found == MULTI_VALUE


def test_the_help_vocabulary_is_the_librarys() -> None:
    from ltr.data.synthetic import MIN_USERS
    from ltr.features import FAMILIES
    from ltr.models import COMPARE, PRESETS
    from ltr.tuning.runner import PRUNERS
    from ltr.tuning.space import DEFAULT_SPACE, SPACES
    from ltr.tuning.storage import DEFAULT_STORAGE, STORAGE_ENV
    from ltr.tuning.studies import DEFAULT_PENALTY

    assert tuple(PRESETS) == vocabulary.PRESETS and tuple(COMPARE) == vocabulary.COMPARE
    assert tuple(FAMILIES) == vocabulary.FEATURE_FAMILIES
    assert tuple(SPACES) == vocabulary.SPACES and vocabulary.DEFAULT_SPACE == DEFAULT_SPACE
    assert tuple(PRUNERS) == vocabulary.PRUNERS
    from ltr.tuning import fidelity, rescore

    assert vocabulary.DEFAULT_PRUNER == fidelity.DEFAULT_PRUNER
    assert (vocabulary.RESCORE_FOLDS, vocabulary.RESCORE_REPEATS) == (
        rescore.RESCORE_FOLDS,
        rescore.RESCORE_REPEATS,
    )
    assert vocabulary.RESCORE_SEED_OFFSET == rescore.RESCORE_SEED_OFFSET
    assert (vocabulary.DEFAULT_STORAGE, vocabulary.STORAGE_ENV) == (DEFAULT_STORAGE, STORAGE_ENV)
    assert vocabulary.DEFAULT_PENALTY == DEFAULT_PENALTY
    assert vocabulary.MIN_SYNTHETIC_USERS == MIN_USERS
    from ltr import quickstart
    from ltr.cv import MIN_FOLD_USERS
    from ltr.data.synthetic.generator import split_sizes

    assert vocabulary.MIN_QUICKSTART_USERS == quickstart.MIN_USERS
    fewest = quickstart.MIN_USERS
    assert split_sizes(fewest)[0] >= quickstart.QUICK_FOLDS * MIN_FOLD_USERS
    assert split_sizes(fewest - 1)[0] < quickstart.QUICK_FOLDS * MIN_FOLD_USERS


# ---------------------------------------------------------------- comma list = repetition
@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("help") / "data"
    write_synthetic(folder, n_users=300, seed=3)
    return folder


def test_models_comma_list_equals_repetition(data: Path, tmp_path: Path) -> None:
    reports = []
    for form in (["--models", "base,ridge"], ["--models", "base", "--models", "ridge"]):
        report = tmp_path / f"{len(reports)}.json"
        args = ["cv", str(data), *form, "-k", "3", "-r", "1", "--report", str(report)]
        assert runner.invoke(app, args).exit_code == 0
        reports.append(
            [(m["name"], m["fold_pearson"]) for m in json.loads(report.read_text())["models"]]
        )
    assert reports[0] == reports[1] and [name for name, _ in reports[0]] == ["base", "ridge"]


def test_families_and_thresholds_comma_list_equals_repetition(data: Path, tmp_path: Path) -> None:
    headers = []
    forms = (
        ["--families", "base,size", "--thresholds", "0,0.5"],
        ["-f", "base", "-f", "size", "--thresholds", "0", "--thresholds", "0.5"],
    )
    for i, form in enumerate(forms):
        out = tmp_path / f"{i}.csv"
        result = runner.invoke(app, ["features", str(data), "-s", "val", "-o", str(out), *form])
        assert result.exit_code == 0, result.output
        headers.append(out.read_text().splitlines()[0])
    assert headers[0] == headers[1] and "base@0.5:acc" in headers[0] and "n_images" in headers[0]


def test_situation_comma_list_equals_repetition(data: Path, tmp_path: Path) -> None:
    model = tmp_path / "model"
    assert (
        runner.invoke(app, ["train", str(data), "-m", "ridge", "--model-dir", str(model)]).exit_code
        == 0
    )
    user = next(iter(json.loads((data / "predictions_test.json").read_text())))
    base = ["explain", str(model), str(data), "-s", "test", "-u", user]
    comma = runner.invoke(app, [*base, "--situation", "bank,wait"])
    repeated = runner.invoke(app, [*base, "--situation", "bank", "--situation", "wait"])
    assert comma.exit_code == 0, comma.output
    assert comma.stdout == repeated.stdout
    assert "bank (bank loan)" in comma.stdout and "acc (" not in comma.stdout


# ------------------------------------------------------------------------------ fast start
DRIVER = """
import sys
from ltr.cli.main import main
for args in {runs!r}:
    sys.argv = ["ltr", *args]
    try:
        main()
    except SystemExit:
        pass
print("\\n" + " ".join(sorted({{m.split(".")[0] for m in sys.modules}})))
"""


@pytest.mark.slow
def test_help_and_version_do_not_import_the_heavy_libraries() -> None:
    runs = [["--version"], ["--help"], *([*path, "--help"] for path, _ in commands() if path)]
    done = subprocess.run(
        [sys.executable, "-c", DRIVER.format(runs=runs)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    loaded = set(done.stdout.strip().splitlines()[-1].split())
    assert "ltr" in loaded and "typer" in loaded  # the driver really ran the app
    assert "ltr 0.1.0" in done.stdout and "Usage: ltr tune" in done.stdout
    assert sorted(loaded.intersection(HEAVY)) == []
