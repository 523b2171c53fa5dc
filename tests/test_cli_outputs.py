"""Every command that writes: a path that cannot be written fails at once with one line and
exit code 1 and leaves nothing behind; results are never replaced silently; `.` as the data
folder names the data by the folder it stands for."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ltr.cli.main import app
from ltr.data.synthetic import write_synthetic

runner = CliRunner()
#: An unprivileged user for the "not writable" cases (root ignores permission bits).
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


@dataclass(frozen=True)
class World:
    """Inputs every writing command needs, in a folder any user can read."""

    root: Path
    data: Path
    model: Path
    db: Path
    table: Path


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    root = Path(tempfile.mkdtemp(prefix="ltr-outputs-"))
    root.chmod(0o755)  # readable by the unprivileged user too (pytest's tmp_path is 0700)
    data = root / "data"
    write_synthetic(data, n_users=300, seed=2)
    model = root / "model"
    db = root / "studies.db"
    table = root / "table"
    for args in (
        ["train", data, "--model-dir", model, "--model", "ridge"],
        ["data", "synth", table, "--users", 60, "--format", "parquet"],
        ["tune", data, "--study", "s", "--storage", db, "--trials", 1, "--model", "ridge"]
        + ["--folds", 3, "--repeats", 1],
    ):
        result = runner.invoke(app, [str(a) for a in args])
        assert result.exit_code == 0, result.output
    for path in root.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    yield World(root, data, model, db, table)
    shutil.rmtree(root, ignore_errors=True)


def a_user(world: World) -> str:
    return next(iter(json.loads((world.data / "predictions_test.json").read_text())))


#: command -> (arguments with OUT where the written path goes, whether it writes a folder)
WRITERS: dict[str, tuple[Callable[[World], list[str]], bool]] = {
    "predict --out": (lambda w: ["predict", w.model, w.data, "-s", "val", "--out", "OUT"], False),
    "baseline --out": (lambda w: ["baseline", w.data, "-s", "test", "--out", "OUT"], False),
    "cv --report": (
        lambda w: ["cv", w.data, "-m", "base", "-k", 3, "-r", 1, "--report", "OUT"],
        False,
    ),
    "features --out": (lambda w: ["features", w.data, "-s", "val", "--out", "OUT"], False),
    "explain --out": (
        lambda w: ["explain", w.model, w.data, "-s", "test", "-u", a_user(w), "--out", "OUT"],
        False,
    ),
    "explain --html": (
        lambda w: ["explain", w.model, w.data, "-s", "test", "-u", a_user(w), "--html", "OUT"],
        False,
    ),
    "explain --html-dir": (
        lambda w: ["explain", w.model, w.data, "-s", "test", "--html-dir", "OUT"],
        True,
    ),
    "predict TABLE --out": (lambda w: ["predict", w.model, w.table, "--out", "OUT"], False),
    "studies show --export": (
        lambda w: ["studies", "show", "s", "--storage", w.db, "--export", "OUT"],
        False,
    ),
    "studies report --out": (
        lambda w: ["studies", "report", "s", "--storage", w.db, "--out", "OUT"],
        True,
    ),
    "train --model-dir": (
        lambda w: ["train", w.data, "-m", "ridge", "--model-dir", "OUT"],
        True,
    ),
    "data synth": (lambda w: ["data", "synth", "OUT", "--users", 50], True),
    "data synth --format parquet": (
        lambda w: ["data", "synth", "OUT", "--users", 50, "--format", "parquet"],
        True,
    ),
    "quickstart": (lambda w: ["quickstart", "--workdir", "OUT/w", "--submissions", "OUT/s"], True),
}


def suffix(writer: str) -> str:
    """The extension `writer` accepts for its output ("" for a folder)."""
    suffixes = {"features --out": ".csv", "explain --html": ".html"}
    folder = WRITERS[writer][1]
    return suffixes.get(writer, ".parquet" if "TABLE" in writer else "" if folder else ".json")


def arguments(world: World, writer: str, target: Path) -> list[str]:
    build, _ = WRITERS[writer]
    out = str(target) + suffix(writer) if target.name == "x" else str(target)
    return [
        str(a).replace("OUT", out) if str(a).startswith("OUT") else str(a) for a in build(world)
    ]


def listing(folder: Path) -> dict[str, bytes | None]:
    """Everything under `folder` (files with their bytes), to compare before and after."""
    return {
        str(p.relative_to(folder)): None if p.is_dir() else p.read_bytes()
        for p in sorted(folder.rglob("*"))
    }


def one_error_line(stderr: str, path: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ") and path in lines[0], stderr
    assert "Traceback" not in stderr


SCENARIOS = ("existing folder", "under a file", "/proc")


@pytest.mark.slow
@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("writer", list(WRITERS))
def test_an_unwritable_path_is_one_line_and_leaves_nothing(
    world: World, writer: str, scenario: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder_output = WRITERS[writer][1]
    work = tmp_path / "work"
    work.mkdir()
    (work / "a-file").write_text("keep me")
    for name in ("a-folder.json", "a-folder.csv", "a-folder.parquet"):  # named like a file
        (work / name).mkdir()
        (work / name / "inside").write_text("keep me too")
    if scenario == "existing folder":
        # a file output given an existing folder; a folder output given an existing file
        folder = {"features --out": "a-folder.csv", "predict TABLE --out": "a-folder.parquet"}.get(
            writer, "a-folder.json"
        )
        target = work / ("a-file" if folder_output else folder)
        expected = "is a file, not a folder" if folder_output else "is a folder"
    elif scenario == "under a file":
        target = work / "a-file" / "x"
        expected = "a-file: it is a file, not a folder"
    else:
        target = Path("/proc/x")
        expected = "cannot write in /proc"
    monkeypatch.chdir(work)  # default outputs (submissions/, reports/) would land here
    before = listing(work) | listing(world.root)
    result = runner.invoke(app, arguments(world, writer, target))
    assert result.exit_code == 1, result.output
    one_error_line(result.stderr, str(target))
    assert expected in result.stderr
    assert listing(work) | listing(world.root) == before


def nobody_can_run() -> bool:
    if os.geteuid() != 0:
        return False
    try:
        probe = subprocess.run([*NOBODY, "true"], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


@pytest.mark.slow
@pytest.mark.parametrize("writer", list(WRITERS))
def test_a_folder_without_write_permission_is_one_line_and_leaves_nothing(
    world: World, writer: str
) -> None:
    """Run as an unprivileged user: permission bits do not stop root."""
    if os.geteuid() != 0:
        locked = Path(tempfile.mkdtemp(dir=world.root))
        locked.chmod(0o555)
        prefix: list[str] = []
    elif nobody_can_run():
        locked = Path(tempfile.mkdtemp(dir=world.root))
        locked.chmod(0o755)  # owned by root: the unprivileged user may read, not write
        prefix = NOBODY
    else:
        pytest.skip("running as root and setpriv cannot switch to an unprivileged user")
    try:
        target = locked / "x"
        before = listing(world.root)
        command = [*prefix, sys.executable, "-c", "from ltr.cli.main import main; main()"]
        done = subprocess.run(
            [*command, *arguments(world, writer, target)],
            capture_output=True,
            text=True,
            cwd=locked,
            timeout=300,
            env={**os.environ, "MPLCONFIGDIR": str(locked)},
        )
        assert done.returncode == 1, done.stdout + done.stderr
        one_error_line(done.stderr, str(locked))
        assert "Permission denied" in done.stderr
        assert listing(world.root) == before
    finally:
        locked.chmod(0o755)
        shutil.rmtree(locked, ignore_errors=True)


# ------------------------------------------------------------- results are never replaced
def test_predict_default_name_identifies_the_model_and_is_never_replaced_silently(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    other = tmp_path / "other-model"
    shutil.copytree(world.model, other)
    first = runner.invoke(app, ["predict", str(world.model), str(world.data), "-s", "val"])
    assert first.exit_code == 0, first.output
    path = Path("submissions/data-model-val.json")
    assert f"wrote {path} (60 users of data val)" in first.stdout
    written = path.read_bytes()
    # another model gets another default name
    second = runner.invoke(app, ["predict", str(other), str(world.data), "-s", "val"])
    assert second.exit_code == 0 and "submissions/data-other-model-val.json" in second.stdout
    # the same model again: refused, the file is untouched
    path.write_bytes(b"an earlier result")
    again = runner.invoke(app, ["predict", str(world.model), str(world.data), "-s", "val"])
    assert again.exit_code == 1
    one_error_line(again.stderr, str(path))
    assert "exists; pass --force to replace it, or --out to write elsewhere" in again.stderr
    assert path.read_bytes() == b"an earlier result"
    forced = runner.invoke(
        app, ["predict", str(world.model), str(world.data), "-s", "val", "--force"]
    )
    assert forced.exit_code == 0 and path.read_bytes() == written
    # an explicit --out is the user's choice: replaced, and the path is printed
    explicit = runner.invoke(
        app, ["predict", str(world.model), str(world.data), "-s", "val", "--out", str(path)]
    )
    assert explicit.exit_code == 0 and f"wrote {path} " in explicit.stdout


def test_cv_default_report_names_the_model_or_the_comparison(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    quick = ["-k", "3", "-r", "1"]
    one = runner.invoke(app, ["cv", str(world.data), "-m", "base", *quick])
    assert one.exit_code == 0, one.output
    assert "report: reports/cv-data-base.json" in one.stdout
    compare = runner.invoke(app, ["cv", str(world.data), "--models", "base,ridge", *quick])
    assert compare.exit_code == 0 and "report: reports/cv-data-compare.json" in compare.stdout
    report = Path("reports/cv-data-base.json")
    saved = report.read_bytes()
    again = runner.invoke(app, ["cv", str(world.data), "-m", "base", *quick])
    assert again.exit_code == 1 and report.read_bytes() == saved
    one_error_line(again.stderr, str(report))
    assert "pass --force to replace it, or --report to write elsewhere" in again.stderr
    assert "users" not in again.stdout  # refused before loading or cross-validating anything
    forced = runner.invoke(app, ["cv", str(world.data), "-m", "base", *quick, "--force"])
    assert forced.exit_code == 0 and "report: reports/cv-data-base.json" in forced.stdout


def test_quickstart_refuses_to_replace_an_earlier_run_without_force(tmp_path: Path) -> None:
    submissions = tmp_path / "sub"
    submissions.mkdir()
    earlier = submissions / "synthetic-quickstart-val.json"
    earlier.write_text("an earlier result")
    args = ["quickstart", "--workdir", str(tmp_path / "w"), "--submissions", str(submissions)]
    result = runner.invoke(app, [*args, "--users", "300"])
    assert result.exit_code == 1
    one_error_line(result.stderr, str(earlier))
    assert "--force" in result.stderr
    assert earlier.read_text() == "an earlier result" and not (tmp_path / "w").exists()


# ------------------------------------------------------------- outputs never touch inputs
def input_targets(world: World, writer: str) -> list[Path]:
    """Where `writer` must refuse to write: each input it reads, a place directly in an input
    folder, and a folder holding the inputs."""
    build, folder = WRITERS[writer]
    used = [
        p
        for p in (world.data, world.model, world.table, world.db)
        if str(p) in map(str, build(world))
    ]
    targets = []
    for source in used:
        if folder:
            targets += [source] if source.is_dir() else []
            targets += [source / "pages"] if source.is_dir() else []
        elif source.is_dir():
            existing = sorted(p for p in source.iterdir() if p.suffix == suffix(writer))
            targets += [*existing[:1], source / "x"]
        else:
            targets += [source]
    return targets + ([world.root] if folder else [])


READERS = [
    w for w in WRITERS if w not in ("data synth", "data synth --format parquet", "quickstart")
]


@pytest.mark.slow
@pytest.mark.parametrize("writer", READERS)
def test_an_output_never_replaces_or_enters_an_input(world: World, writer: str) -> None:
    """`--out DATA/gt_val.json`, `--html-dir DATA --force`, `--export studies.db`...: the
    command refuses before any work, and every input is left as it was."""
    before = listing(world.root)
    for target in input_targets(world, writer):
        args = arguments(world, writer, target)
        if writer == "explain --html-dir":
            args.append("--force")
        result = runner.invoke(app, args)
        assert result.exit_code == 1, (target, result.output)
        one_error_line(result.stderr, str(target))
        assert any(
            why in result.stderr
            for why in ("input of this command", "earlier pages", "not a model directory")
        )
        assert listing(world.root) == before, target


def test_two_outputs_of_one_command_cannot_share_a_path(world: World, tmp_path: Path) -> None:
    same = tmp_path / "x.json"
    args = ["explain", world.model, world.data, "-s", "test", "-u", a_user(world)]
    result = runner.invoke(app, [*map(str, args), "--out", str(same), "--html", str(same)])
    assert result.exit_code == 1
    one_error_line(result.stderr, "is given for two outputs")
    assert not same.exists()


def test_html_dir_force_replaces_earlier_pages_only(world: World, tmp_path: Path) -> None:
    """--force replaces earlier pages, never a folder holding anything else."""
    args = ["explain", str(world.model), str(world.data), "-s", "test", "--html-dir"]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    result = runner.invoke(app, [*args, str(mine), "--force"])
    assert result.exit_code == 1
    one_error_line(result.stderr, f"{mine}: exists and does not hold earlier pages")
    assert (mine / "thesis.tex").read_text() == "years of work"
    pages = tmp_path / "pages"
    assert runner.invoke(app, [*args, str(pages)]).exit_code == 0
    assert runner.invoke(app, [*args, str(pages), "--force"]).exit_code == 0
    assert sorted(p.name for p in pages.iterdir()) == ["index.html", "users"]


# ------------------------------------------------------------------ `.` as the data folder
def test_dot_as_the_data_folder_is_named_after_the_folder(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "mydata"
    shutil.copytree(world.data, data)
    monkeypatch.chdir(data)
    result = runner.invoke(app, ["predict", str(world.model), ".", "-s", "test"])
    assert result.exit_code == 0, result.output
    assert "wrote submissions/mydata-model-test.json (60 users of mydata test)" in result.stdout
    base = runner.invoke(app, ["baseline", ".", "-s", "train"])
    assert base.exit_code == 0 and "BASE on mydata train" in base.stdout
    monkeypatch.chdir(data / "submissions")
    up = runner.invoke(app, ["baseline", "..", "-s", "train"])
    assert up.exit_code == 0 and "BASE on mydata train" in up.stdout
