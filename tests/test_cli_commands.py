"""What single commands tell the user: the run format's edition and unscoreable situations
(`submission check`), in-sample scores (`evaluate` on train), fold counts too small to score,
storage passwords kept out of every output; and the library calls the commands are thin
layers over."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ltr.baseline import base_scores, fit_base_threshold
from ltr.cli.main import app
from ltr.cv import check_folds, fold_indices
from ltr.data import load_dataset
from ltr.data.synthetic import write_synthetic
from ltr.errors import LtrError
from ltr.metrics import score_run
from ltr.situations import SITUATIONS
from ltr.submission import write_run
from ltr.workflow import run_baseline, study_choice, training_set

runner = CliRunner()


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("commands") / "data"
    write_synthetic(folder, n_users=300, seed=4)
    return folder


def val_run(data: Path) -> pd.DataFrame:
    users = load_dataset(data).split_users("val")
    values = np.random.default_rng(0).normal(size=(len(users), 4))
    return pd.DataFrame(values, index=pd.Index(users, name="user"), columns=list(SITUATIONS))


# ---------------------------------------------------------------------- submission check
def test_submission_check_names_the_edition_and_warns_on_a_constant_situation(
    data: Path, tmp_path: Path
) -> None:
    run = val_run(data)
    run["bank"] = 0.25
    for name, edition in (
        ("run.json", "the run format of the ImageCLEFaware 2022 and 2023 editions (JSON)"),
        ("run.csv", "the format of the 2021 edition (CSV user,acc,bank,it,wait)"),
    ):
        path = write_run(run, tmp_path / name)
        args = ["submission", "check", str(path), "-d", str(data), "-s", "val"]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        assert result.stdout.strip() == f"valid: 60 users (data val); {edition}"
        (warning,) = result.stderr.strip().splitlines()
        assert warning == (
            f"warning: {path}: every user has the same 'bank' score: its Pearson correlation "
            "is undefined, so the challenge cannot score this situation"
        )
        quiet = runner.invoke(app, ["-q", *args])
        assert quiet.exit_code == 0 and quiet.stderr == ""


# ------------------------------------------------------------------------- evaluate
def test_evaluate_on_the_training_split_says_the_score_may_be_in_sample(
    data: Path, tmp_path: Path
) -> None:
    dataset = load_dataset(data)
    train_run = base_scores(dataset, "train", 0.0)
    path = write_run(train_run, tmp_path / "train.json")
    result = runner.invoke(app, ["evaluate", str(path), "-d", str(data), "-s", "train"])
    assert result.exit_code == 0, result.output
    assert (
        "split 'train' holds the training labels: if the run comes from a model trained on "
        "them (or BASE's threshold fitted on them), this score is in-sample"
    ) in result.stdout
    val = write_run(val_run(data), tmp_path / "val.json")
    other = runner.invoke(app, ["evaluate", str(val), "-d", str(data), "-s", "val"])
    assert other.exit_code == 0 and "in-sample" not in other.stdout


# ---------------------------------------------------------------------------- folds
def test_check_folds_wants_20_users_per_held_out_fold() -> None:
    check_folds(180, 9, 1)  # 20 users per fold
    with pytest.raises(LtrError) as caught:
        check_folds(180, 10, 1)
    assert str(caught.value) == (
        "cannot make 10 folds of 180 users: a held-out fold would hold 18 users, fewer than 20 "
        "(a Pearson correlation on fewer is mostly noise); use at most 9 folds"
    )
    with pytest.raises(LtrError, match="30 users are too few to CV"):
        check_folds(30, 2, 1)
    # the fold maker itself only needs folds to exist
    assert len(list(fold_indices(50, 5, 1))) == 5


@pytest.mark.parametrize(
    "args",
    [
        ["cv", "-m", "base", "-k", "10", "-r", "1", "--report", "REPORT"],
        ["train", "-m", "ridge", "--cv-folds", "10", "--model-dir", "MODEL"],
        ["tune", "--study", "s", "--storage", "DB", "--folds", "10", "--trials", "1"],
    ],
    ids=["cv", "train", "tune"],
)
def test_commands_refuse_too_many_folds_before_any_work(
    data: Path, tmp_path: Path, args: list[str]
) -> None:
    names = {"MODEL": "model", "DB": "s.db", "REPORT": "report.json"}
    command, *rest = [str(tmp_path / names[a]) if a in names else a for a in args]
    result = runner.invoke(app, [command, str(data), *rest])
    assert result.exit_code == 1, result.output
    assert "cannot make 10 folds of 180 users: a held-out fold would hold 18 users" in (
        result.stderr
    )
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------- passwords
SECRET_URL = "postgresql://ltr:s3cret-pw@dbhost:5432/ltr"


@pytest.mark.slow
def test_storage_passwords_never_reach_output_reports_or_manifests(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_server
) -> None:
    """A study on a real PostgreSQL server whose URL holds the password: no command prints or
    writes it (output, report, the trained model's manifest)."""
    from ltr.redact import redact_url

    url = postgres_server.url(postgres_server.create_database("redaction"))
    shown, password = redact_url(url), postgres_server.password
    assert password in url and password not in shown
    monkeypatch.setenv("LTR_STORAGE", url)
    outputs, codes = [], []
    for args in (
        ["tune", str(data), "--study", "s", "--trials", "1", "-m", "ridge", "-k", "3", "-r", "1"],
        ["studies", "list"],
        ["studies", "show", "s"],
        ["studies", "show", "s", "--json"],
        ["studies", "report", "s", "--out", str(tmp_path / "report")],
        ["train", str(data), "--study", "s", "--model-dir", str(tmp_path / "model")],
        ["studies", "show", "nope"],
    ):
        result = runner.invoke(app, args)
        outputs.append(result.stdout + result.stderr)
        codes.append(result.exit_code)
    assert codes == [0, 0, 0, 0, 0, 0, 1], outputs
    assert f"in {shown}" in " ".join(outputs[0].split())  # the tune line
    assert f"1 studies in {shown}" in " ".join(outputs[1].split())
    assert f"no study named 'nope' in {shown}" in " ".join(outputs[-1].split())
    manifest = json.loads((tmp_path / "model" / "model.json").read_text())
    assert manifest["cv"]["storage"] == shown
    written = [p.read_text() for p in (tmp_path / "report").glob("*.*") if p.suffix != ".png"]
    assert len(written) == 2  # summary.json and index.html
    for text in [*outputs, *written, json.dumps(manifest)]:
        assert password not in text


def test_a_storage_error_does_not_print_the_password(tmp_path: Path) -> None:
    result = runner.invoke(app, ["studies", "list", "--storage", SECRET_URL])
    assert result.exit_code == 1
    assert "postgresql://ltr:***@dbhost" in result.stderr and "s3cret" not in result.output


# ---------------------------------------------------------------- thin commands' library
def test_run_baseline_is_the_whole_baseline_job(data: Path, tmp_path: Path) -> None:
    dataset = load_dataset(data)
    out = tmp_path / "base.csv"
    job = run_baseline(dataset, "train", grid=True, out=out)
    assert job.fitted and job.threshold == fit_base_threshold(dataset)
    labels = dataset.split_labels("train")
    expected = score_run(job.run.loc[labels.index], labels)
    assert job.scores is not None and job.scores.official == expected.official
    assert job.in_sample and job.grid is not None and job.written == out and out.is_file()
    given = run_baseline(dataset, "test", threshold=0.5)
    assert not given.fitted and given.scores is None and not given.in_sample
    pd.testing.assert_frame_equal(given.run, base_scores(dataset, "test", 0.5))


def test_study_choice_rebuilds_the_chosen_trial(data: Path, tmp_path: Path) -> None:
    from ltr.tuning.studies import chosen_spec

    db = tmp_path / "s.db"
    tuned = runner.invoke(
        app,
        ["tune", str(data), "--study", "s", "--storage", str(db), "--trials", "1"]
        + ["-m", "ridge", "-k", "3", "-r", "1"],
    )
    assert tuned.exit_code == 0, tuned.output
    training = training_set(load_dataset(data))
    choice = study_choice(training, "s", str(db))
    spec, score, _ = chosen_spec("s", str(db))
    assert choice.spec == spec and choice.name == f"study s trial {score.number}"
    # the model's CV figure is the fresh-fold one of the study's rescoring, not the search's
    assert choice.cv["mean_pearson"] == choice.rescoring.default["mean"] != score.mean
    assert choice.cv["seed"] == 1000 and choice.cv["storage"] == f"sqlite:///{db}"
    assert study_choice(training, "s", str(db), seed=7).spec == spec.with_seed(7)
