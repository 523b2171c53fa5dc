"""``$LTR_DATA``: a bare data-set name on the command line is a folder in that parent folder.

The README's real-data commands say ``ltr cv aware2023`` after ``export LTR_DATA=...``; these
tests pin down what that means, on a small synthetic set.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from ltr.cli.common import DATA_ENV, resolve_data_dir
from ltr.cli.main import app
from ltr.data.synthetic import write_synthetic
from ltr.errors import DataError

runner = CliRunner()


@pytest.fixture(scope="module")
def parent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A parent folder holding one data set, ``synth``."""
    root = tmp_path_factory.mktemp("ltr-data")
    write_synthetic(root / "synth", n_users=60, seed=3)
    return root


def test_a_bare_name_is_looked_up_in_the_parent_folder(
    parent: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(DATA_ENV, str(parent))
    result = runner.invoke(app, ["data", "check", "synth"])
    assert result.exit_code == 0, result.output
    assert f"Data folder {parent / 'synth'}" in result.output


def test_the_option_form_resolves_too(
    parent: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(DATA_ENV, str(parent))
    run = tmp_path / "base.json"
    made = runner.invoke(app, ["baseline", "synth", "--split", "val", "--out", str(run)])
    assert made.exit_code == 0, made.output
    checked = runner.invoke(app, ["submission", "check", str(run), "--data", "synth", "-s", "val"])
    assert checked.exit_code == 0, checked.output
    assert checked.output.startswith("valid: ")


def test_a_folder_here_wins_over_the_parent_folder(
    parent: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "synth").mkdir()  # an empty folder of the same name in the working folder
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(DATA_ENV, str(parent))
    assert resolve_data_dir(Path("synth")) == Path("synth")
    result = runner.invoke(app, ["data", "check", "synth"])
    assert result.exit_code == 1
    assert "synth: folder is empty" in result.output


def test_a_path_with_a_folder_part_is_never_looked_up(
    parent: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DATA_ENV, str(parent))
    assert resolve_data_dir(Path("nowhere/synth")) == Path("nowhere/synth")
    assert resolve_data_dir(Path("/nowhere/synth")) == Path("/nowhere/synth")


def test_a_parent_folder_may_start_with_a_tilde(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_ENV, "~/ltr-data")
    monkeypatch.setenv("HOME", "/home/someone")
    assert resolve_data_dir(Path("aware2023")) == Path("/home/someone/ltr-data/aware2023")


def test_a_missing_name_names_the_folder_it_looked_in(
    parent: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(DATA_ENV, str(parent))
    result = runner.invoke(app, ["data", "check", "aware2023"])
    assert result.exit_code == 1
    assert f"{parent / 'aware2023'}: folder not found" in result.output


def test_without_the_variable_a_bare_name_says_where_names_are_looked_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(DATA_ENV, raising=False)
    with pytest.raises(DataError, match=r"\$LTR_DATA, which is not set"):
        resolve_data_dir(Path("aware2023"))
    result = runner.invoke(app, ["cv", "aware2023"])
    assert result.exit_code == 1
    assert "aware2023: folder not found (a bare data-set name is looked up in $LTR_DATA" in (
        result.output
    )
