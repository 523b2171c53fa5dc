"""`ltr cv`, `ltr train`, `ltr predict` and `ltr quickstart` end to end on synthetic data, with the
files they write checked by `ltr submission check` / `ltr evaluate`, and bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import BACKEND_REFUSALS
from typer.testing import CliRunner

from ltr.cli.main import app
from ltr.cv import cross_validate
from ltr.data import load_dataset
from ltr.data.synthetic import write_synthetic
from ltr.features import featurize
from ltr.metrics import score_run
from ltr.models import PRESETS, build_model
from ltr.situations import SITUATIONS
from ltr.submission import JSON_KEYS, read_run
from ltr.workflow import resolve_spec

runner = CliRunner()
#: Users of each split whose profile has no detection at all (written as `{}`).
EMPTY = 2


def invoke(*args: object) -> object:
    return runner.invoke(app, [str(a) for a in args])


def ok(*args: object):  # type: ignore[no-untyped-def]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result


def fails(message: str, *args: object) -> str:
    """The command exits 1 with `message` on the console and no traceback."""
    result = invoke(*args)
    assert result.exit_code == 1, result.output
    assert "error:" in result.output and message in result.output, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    return result.output


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic challenge-layout data; the first users of every split have no detection."""
    folder = tmp_path_factory.mktemp("cli") / "data"
    write_synthetic(folder, n_users=300, seed=5)
    for split in ("train", "val", "test"):
        path = folder / f"predictions_{split}.json"
        raw = json.loads(path.read_text())
        for user in list(raw)[:EMPTY]:
            raw[user] = {}
        path.write_text(json.dumps(raw))
    return folder


@pytest.fixture(scope="module")
def fast_params(data: Path) -> Path:
    path = data.parent / "fast.json"
    path.write_text('{"params": {"num_boost_round": 20}}')
    return path


@pytest.fixture(scope="module")
def model_dir(data: Path, fast_params: Path) -> Path:
    out = data.parent / "model"
    ok("train", data, "--model-dir", out, "--model", "xgb-regression", "--params", fast_params)
    return out


def empty_users(data: Path, split: str) -> list[str]:
    raw = json.loads((data / f"predictions_{split}.json").read_text())
    return [user for user, images in raw.items() if not images]


# ------------------------------------------------------------------------------------ cv
def test_cv_one_model_prints_and_reports_the_library_figures(
    data: Path, fast_params: Path, tmp_path: Path
) -> None:
    report = tmp_path / "reports [1]" / "cv.json"  # brackets are not rich markup here
    args = ("cv", data, "-m", "xgb-regression", "--params", fast_params, "-k", "3", "-r", "2")
    result = ok(*args, "--seed", "1", "--report", report)
    assert "180 users" in result.output and "3-fold x 2 repeats, seed 1" in result.output
    assert f"report: {report}\n" in result.output  # on one line, whatever its length
    saved = json.loads(report.read_text())
    dataset = load_dataset(data)
    assert saved["fingerprint"] == dataset.fingerprint() and saved["n_users"] == 180
    (entry,) = saved["models"]
    assert entry["name"] == "xgb-regression+fast.json"
    assert (entry["folds"], entry["repeats"], entry["seed"]) == (3, 2, 1)
    spec = resolve_spec("xgb-regression", fast_params).with_seed(1)
    assert entry["spec"] == spec.to_dict()
    expected = cross_validate(
        spec, featurize(dataset, "train"), dataset.split_labels("train"), folds=3, repeats=2, seed=1
    )
    assert entry["fold_pearson"] == expected.fold_pearson.tolist()
    assert entry["mean_pearson"] == expected.mean


def test_cv_compare_runs_the_chosen_models_on_the_same_folds(data: Path, tmp_path: Path) -> None:
    report = tmp_path / "compare.json"
    models = "base,ridge,ridge-pooled"
    ok("cv", data, "--compare", "--models", models, "-k", "3", "-r", "1", "--report", report)
    saved = json.loads(report.read_text())
    assert [m["name"] for m in saved["models"]] == models.split(",")
    assert {(m["folds"], m["repeats"], m["seed"]) for m in saved["models"]} == {(3, 1, 0)}
    by_name = {m["name"]: m["mean_pearson"] for m in saved["models"]}
    assert by_name["ridge"] > by_name["base"] + 0.1
    # --models alone means the same
    again = tmp_path / "again.json"
    ok("cv", data, "--models", models, "-k", "3", "-r", "1", "--report", again)
    assert [m["fold_pearson"] for m in json.loads(again.read_text())["models"]] == [
        m["fold_pearson"] for m in saved["models"]
    ]


def test_cv_names_a_whole_spec_file_by_itself(data: Path, tmp_path: Path) -> None:
    whole = tmp_path / "my-ridge.json"
    whole.write_text(json.dumps({"learner": "ridge", "params": {"alpha": 10.0}}))
    report = tmp_path / "cv.json"
    ok("cv", data, "--params", whole, "-k", "3", "-r", "1", "--report", report)
    (entry,) = json.loads(report.read_text())["models"]
    assert entry["name"] == "my-ridge" and entry["spec"]["learner"] == "ridge"


def test_cv_default_compare_list_is_known_presets() -> None:
    from ltr.models import COMPARE

    assert set(COMPARE) <= set(PRESETS) and {"base", "default", "ridge"} <= set(COMPARE)


# ------------------------------------------------------------------- train, predict, check
def test_train_stores_the_cv_figures_when_asked(
    data: Path, fast_params: Path, tmp_path: Path
) -> None:
    out = tmp_path / "model"
    args = ("train", data, "--model-dir", out, "-m", "xgb-regression", "--params", fast_params)
    result = ok(*args, "--cv-folds", "3")
    assert "trained xgb-regression on 180 users" in result.output
    manifest = json.loads((out / "model.json").read_text())
    assert manifest["cv"]["folds"] == 3 and manifest["cv"]["repeats"] == 1
    assert manifest["spec"]["params"] == {"num_boost_round": 20}
    assert manifest["data"]["source"] == str(data)


@pytest.mark.parametrize("split", ["val", "test"])
def test_predict_writes_valid_json_and_csv_runs_for_every_user(
    data: Path, model_dir: Path, tmp_path: Path, split: str
) -> None:
    dataset = load_dataset(data)
    users = list(dataset.split_users(split))
    for name in (f"{split}.json", f"{split}.csv"):
        out = tmp_path / "submissions" / name
        result = ok("predict", model_dir, data, "--split", split, "--out", out)
        assert f"({len(users)} users of data {split})" in result.output
        ok("submission", "check", out, "--data", data, "--split", split)
        run = read_run(out)
        assert sorted(run.index) == sorted(users) and np.isfinite(run.to_numpy()).all()
        assert run.loc[empty_users(data, split)].notna().all().all()  # scored, not dropped
    raw = json.loads((tmp_path / "submissions" / f"{split}.json").read_text())
    assert list(raw) == users
    assert all(list(v) == list(JSON_KEYS) for v in raw.values())
    assert all(type(x) is float for v in raw.values() for x in v.values())  # numbers, unquoted
    header = (tmp_path / "submissions" / f"{split}.csv").read_text().splitlines()[0]
    assert header == "user," + ",".join(SITUATIONS)
    csv_run = read_run(tmp_path / "submissions" / f"{split}.csv")
    json_run = read_run(tmp_path / "submissions" / f"{split}.json")
    assert csv_run.equals(json_run)


def test_evaluate_scores_a_predicted_val_run(data: Path, model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "val.json"
    ok("predict", model_dir, data, "--split", "val", "--out", out)
    result = ok("evaluate", out, "--data", data, "--split", "val")
    assert "pearson (official)" in result.output
    dataset = load_dataset(data)
    scores = score_run(read_run(out), dataset.split_labels("val"))
    assert f"{scores.official:.4f}" in result.output and scores.official > 0.2


def test_predict_writes_to_submissions_by_default(
    data: Path, model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    ok("predict", model_dir, data, "--split", "test")
    assert (tmp_path / "submissions" / "data-model-test.json").is_file()


# -------------------------------------------------------------------------- determinism
def test_same_commands_twice_give_byte_identical_files(data: Path, tmp_path: Path) -> None:
    """The default model (an ensemble) end to end: same model files, same submission bytes."""
    files = {}
    for run in ("a", "b"):
        model = tmp_path / run / "model"
        ok("train", data, "--model-dir", model)
        out = tmp_path / run / "val.csv"
        ok("predict", model, data, "--split", "val", "--out", out)
        files[run] = {p.name: p.read_bytes() for p in [*model.iterdir(), out]}
    assert files["a"] == files["b"] and len(files["a"]) > 10


def test_cv_twice_gives_the_same_numbers(data: Path, tmp_path: Path) -> None:
    reports = []
    for run in ("a", "b"):
        report = tmp_path / f"{run}.json"
        ok(
            "cv",
            data,
            "--models",
            "ridge,lgbm-regression",
            "-k",
            "3",
            "-r",
            "1",
            "--report",
            report,
        )
        reports.append([m["fold_pearson"] for m in json.loads(report.read_text())["models"]])
    assert reports[0] == reports[1]


# ---------------------------------------------------------------------------- quickstart
def test_quickstart_end_to_end_beats_base(tmp_path: Path) -> None:
    work, submissions = tmp_path / "work", tmp_path / "sub"
    result = ok("quickstart", "--workdir", work, "--submissions", submissions, "--users", "300")
    for step in ("1. synthetic data", "2. cross-validation", "3. default model", "4. submissions"):
        assert step in result.output
    assert "noise ceiling" in result.output and "BASE" in result.output
    dataset = load_dataset(work / "data")
    for split in ("val", "test"):
        path = submissions / f"synthetic-quickstart-{split}.json"
        ok("submission", "check", path, "--data", work / "data", "--split", split)
    labels = dataset.split_labels("val")
    default = score_run(read_run(submissions / "synthetic-quickstart-val.json"), labels)
    base = build_model(PRESETS["base"]).fit(
        featurize(dataset, "train"), dataset.split_labels("train")
    )
    base_val = score_run(base.predict(featurize(dataset, "val")), labels)
    assert default.official > base_val.official + 0.1
    assert (
        f"{default.official:.3f}" in result.output and f"{base_val.official:.3f}" in result.output
    )
    assert (work / "model" / "model.json").is_file()


# ---------------------------------------------------------------------------- bad inputs
def test_unknown_model_is_refused(data: Path, tmp_path: Path) -> None:
    fails("unknown model 'ridgee' (known: base,", "cv", data, "--model", "ridgee")
    fails("unknown model 'nope'", "cv", data, "--models", "base,nope")
    fails("unknown model 'nope'", "train", data, "--model-dir", tmp_path / "m", "--model", "nope")
    assert not (tmp_path / "m").exists()


def test_bad_params_files_are_refused(data: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"params": {"num_leaves": 15},}')
    fails(f"{bad}:1:31: invalid JSON", "cv", data, "--params", bad)
    typo = tmp_path / "typo.json"
    typo.write_text('{"calibraton": "normal"}')
    fails(
        "unknown field(s) calibraton",
        "train",
        data,
        "--model-dir",
        tmp_path / "m",
        "--params",
        typo,
    )
    fails("not usable with --compare", "cv", data, "--compare", "--params", typo)
    misspelt = tmp_path / "misspelt.json"
    misspelt.write_text('{"params": {"num_leavs": 3}}')
    output = fails(
        "unknown parameter 'num_leavs' for lgbm-regression; did you mean 'num_leaves'?",
        "cv",
        data,
        "--model",
        "lgbm-regression",
        "--params",
        misspelt,
    )
    assert str(misspelt) in output and len(output.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("model", "params", "message"),
    [
        *BACKEND_REFUSALS,
        ("ridge", {"alpha": "x"}, "ridge: alpha must be 'auto' or a number > 0, not 'x'"),
        ("lgbm-regression", {"n_estimators": -5}, "n_estimators must be an integer >= 1"),
        ("xgb-regression", {"objective": "nosuch"}, "parameter 'objective' cannot be set"),
    ],
)
def test_bad_parameter_values_are_one_line_for_cv_and_train(
    data: Path,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    model: str,
    params: dict,
    message: str,
) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"params": params}))
    report = tmp_path / "cv.json"
    for command in (
        ("cv", data, "-m", model, "--params", path, "-k", "2", "-r", "1", "--report", report),
        ("train", data, "-m", model, "--params", path, "--model-dir", tmp_path / "m"),
    ):
        output = fails(message, *command)
        errors = [line for line in output.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "bug in ltr" not in output, output
        assert output.strip().splitlines()[-1] == errors[0]  # nothing after it
    assert "[LightGBM]" not in "".join(capfd.readouterr())  # LightGBM's own Fatal lines
    assert not (tmp_path / "m").exists() and not report.exists()


def test_missing_model_dir_wrong_split_and_unknown_extension(
    data: Path, model_dir: Path, tmp_path: Path
) -> None:
    fails("not a model directory", "predict", tmp_path / "nowhere", data, "--split", "val")
    predict = ("predict", model_dir, data)
    fails("no split 'valid' (splits here: train, val, test)", *predict, "-s", "valid")
    text = tmp_path / "x.txt"
    fails("unknown run file extension '.txt'", *predict, "-s", "val", "--out", text)
    assert not text.exists()


def test_cv_refuses_unlabelled_splits_and_too_many_folds(data: Path) -> None:
    fails("split 'test' has no labels", "cv", data, "--split", "test", "-m", "base")
    fails("cannot make 100 folds of 180 users", "cv", data, "-m", "base", "-k", "100")


def test_quickstart_with_too_few_users_fails_cleanly(tmp_path: Path) -> None:
    """The option says how many users the quick start needs (its folds are not an option, so
    advice about folds would not help)."""
    from ltr.errors import LtrError
    from ltr.quickstart import MIN_USERS, run_quickstart

    args = ("--workdir", tmp_path / "w", "--submissions", tmp_path / "s", "--users", MIN_USERS - 1)
    result = invoke("quickstart", *args)
    assert result.exit_code == 2 and f"greater than or equal to {MIN_USERS}" in result.output
    with pytest.raises(LtrError, match=f"needs at least {MIN_USERS} users"):
        run_quickstart(tmp_path / "w", users=MIN_USERS - 1, submissions=tmp_path / "s")
    assert not (tmp_path / "s").exists() and not (tmp_path / "w").exists()


def test_predict_refuses_data_with_other_ratings(model_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    write_synthetic(other, n_users=60, seed=6)
    fails("concept ratings differ", "predict", model_dir, other, "--split", "val")
