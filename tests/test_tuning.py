"""Tuning: search spaces, the CV objective, studies (resume, refusals, choice), reports, CLI.

Everything runs on a small synthetic data set with few folds and trials; the subprocess tests
(kill -9, Ctrl-C, several workers) are in test_tuning_processes.py.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
from hypothesis import given
from hypothesis import strategies as st
from optuna.trial import TrialState
from typer.testing import CliRunner

from ltr.cli.main import app
from ltr.cv import cross_validate
from ltr.data.synthetic import write_synthetic
from ltr.errors import StudyError
from ltr.models import PRESETS, ModelSpec, build_model
from ltr.tuning import space as space_module
from ltr.tuning.objective import CVObjective, CVProtocol, TuningData, load_tuning_data
from ltr.tuning.runner import _shares, tune
from ltr.tuning.space import SPACES, SearchSpace, default_preset, get_space
from ltr.tuning.storage import DEFAULT_STORAGE, fail_orphaned_trials, open_storage, storage_url
from ltr.tuning.studies import (
    chosen_spec,
    chosen_trial,
    list_studies,
    load_existing_study,
    scored_trials,
    study_summary,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)
runner = CliRunner()
FAST = CVProtocol(folds=3, repeats=1, seed=0)


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tuning") / "synth"
    write_synthetic(path, n_users=150, seed=3)
    return path


@pytest.fixture(scope="module")
def other_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tuning") / "other"
    write_synthetic(path, n_users=150, seed=4)
    return path


@pytest.fixture(scope="module")
def data(synth_dir: Path) -> TuningData:
    return load_tuning_data(synth_dir)


def _sqlite(tmp_path: Path, name: str = "studies.db") -> str:
    return f"sqlite:///{tmp_path / name}"


def _cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes else "")


# ----------------------------------------------------------------------- search spaces
def _leaves(spec: ModelSpec) -> list[ModelSpec]:
    return [leaf for m in spec.members for leaf in _leaves(m)] if spec.members else [spec]


@pytest.mark.parametrize("name", sorted(SPACES))
def test_every_space_samples_buildable_specs_that_rebuild_from_params(name: str) -> None:
    space = get_space(name)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=1))
    study.enqueue_trial(dict(space.defaults))
    for i in range(12):
        trial = study.ask()
        spec = space.sample(trial)
        if i == 0:  # the enqueued default: every active parameter comes from it
            assert set(trial.params) <= set(space.defaults)
            assert all(trial.params[k] == space.defaults[k] for k in trial.params)
        build_model(spec)  # a valid model
        assert ModelSpec.from_dict(spec.to_dict()) == spec
        assert space.spec_from_params(trial.params) == spec
        assert all("freq" in leaf.families for leaf in _leaves(spec))
        active = {p.name for p in space.params if p.active(trial.params)}
        assert set(trial.params) == active  # inactive (conditional) parameters never sampled
        study.tell(trial, 0.0)


@pytest.mark.parametrize("name", sorted(SPACES))
def test_every_familys_default_trial_is_its_preset(name: str) -> None:
    """The enqueued first trial builds the preset itself (the ensemble family: the default
    model), not an approximation of it, so "tuned vs default" compares with what `ltr train`
    trains untuned."""
    space = get_space(name)
    assert space.default_spec() == PRESETS[default_preset(name)]
    assert space.spec_from_params(space.defaults) == PRESETS[default_preset(name)]


def test_the_ensemble_space_is_derived_from_its_preset_at_run_time() -> None:
    """Nothing about the default is copied into the space: built on other ensemble presets,
    its default trial is that preset (members, weights or stacking options included)."""
    for basis in ("default", "ridge-xgb", "stacked", "stacked-cross"):
        space = space_module._ensemble_space(basis)
        assert space.default_spec() == PRESETS[basis], basis
    members = [m.learner for m in PRESETS["default"].members]
    names = space_module.member_names(PRESETS["default"].members)
    assert len(names) == len(members) == len(set(names))
    ensemble = get_space("ensemble")
    assert ensemble.basis == PRESETS["default"].to_dict()
    # every member but the first can be left out; the optional extras start out
    switches = {p.name for p in ensemble.params if p.name.startswith("use.")}
    assert switches == {f"use.{n}" for n in names[1:]} | {
        f"use.{e}" for e in space_module.EXTRA_MEMBERS if e not in names
    }


def test_ensemble_space_covers_members_objectives_combination_and_features() -> None:
    space = get_space("ensemble")
    names = space_module.member_names(PRESETS["default"].members)
    boosting = [
        n
        for n, m in zip(names, PRESETS["default"].members, strict=True)
        if m.learner in space_module.BOOSTING
    ]
    assert boosting, "the default has a boosting member whose objective is tuned"
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen_learners: set[str] = set()
    seen_combine: set[str] = set()
    for _ in range(60):
        trial = study.ask()
        spec = space.sample(trial)
        values = trial.params
        seen_combine.add(values["combine"])
        assert bool(spec.weights) == (values["combine"] == "fixed")
        if values["combine"] == "stacked":
            assert dict(spec.params) == space_module.STACKED_OPTIONS
        expected = 1 + sum(values.get(f"use.{n}", False) for n in names[1:])
        extras = [e for e in space_module.EXTRA_MEMBERS if e not in names]
        expected += sum(values.get(f"use.{e}", False) for e in extras)
        assert len(spec.members) == expected
        for name in boosting:
            if not values[f"use.{name}"]:
                assert not any(k.startswith(f"{name}.") for k in values)
                continue
            learner = values[f"{name}.learner"]
            seen_learners.add(learner)
            assert learner in [m.learner for m in spec.members]
            sampled = {
                k.split(".")[1] for k in values if k.startswith(f"{name}.") and k.count(".") == 2
            }
            assert sampled == {learner}  # only the chosen back-end's parameters
        for leaf in spec.members:
            off = [f for f in space_module.FAMILY_SWITCHES if not values[f"use_{f}"]]
            own = set(PRESETS["ridge-wide"].families) - set(PRESETS["ridge"].families)
            assert not (set(off) - own) & set(leaf.families)
        if "ridge.alpha" in values:
            assert not values["ridge.alpha_auto"]
            assert spec.members[0].params["alpha"] == values["ridge.alpha"]
        study.tell(trial, 0.0)
    assert seen_combine == {"fixed", "stacked"}
    assert {"xgb-pearson", "lgbm-pearson", "xgb-regression"} <= seen_learners
    ranking = get_space("lgbm-lambdarank")
    for _ in range(20):
        trial = study.ask()
        values = ranking.suggest(trial)
        assert ("subqueries" in values) == (values["formulation"] == "per-situation")
        assert 2 <= values["n_grades"] <= 31
        study.tell(trial, 0.0)


def test_key_parameter_ranges_are_centred_on_the_back_ends_defaults() -> None:
    """A few parameters per learner, each range holding the default in its (log) middle, and
    values equal to the defaults left out of the spec."""
    from ltr.models.learners import LEARNERS

    for key in ("xgb-regression", "xgb-pearson", "lgbm-regression", "lgbm-pearson", "extra-trees"):
        params = space_module.learner_params(key)
        assert 2 <= len(params) <= 7
        defaults = space_module.learner_defaults(key)
        for p in params:
            value = defaults[p.name]
            assert p.low <= value <= p.high, (key, p.name)
            if p.log and p.kind == "float" and p.high < 1.0:  # not capped at 1
                assert np.sqrt(p.low * p.high) == pytest.approx(value, rel=0.01), (key, p.name)
        assert space_module.native_params(key, defaults) == {}
        assert LEARNERS[key]  # a real back-end
    lgbm = space_module.native_params("lgbm-pearson", {"max_depth": 4, "learning_rate": 0.05})
    assert lgbm == {"max_depth": 4, "num_leaves": 15, "learning_rate": 0.05}


def test_space_fingerprint_is_stable_and_tracks_changes() -> None:
    space = get_space("xgb-regression")
    assert space.fingerprint() == get_space("xgb-regression").fingerprint()
    assert len({s.fingerprint() for s in SPACES.values()}) == len(SPACES)
    wider = dataclasses.replace(
        space,
        params=tuple(
            dataclasses.replace(p, high=3000) if p.name == "num_boost_round" else p
            for p in space.params
        ),
    )
    assert wider.fingerprint() != space.fingerprint()
    assert dataclasses.replace(space, version=99).fingerprint() != space.fingerprint()
    # another preset to start from is another space, even with the same parameters
    other = dataclasses.replace(space, basis=PRESETS["xgb-regression-pooled"].to_dict())
    assert other.fingerprint() != space.fingerprint()


def test_space_declaration_errors() -> None:
    a = space_module.choice("a", 1, 2)
    with pytest.raises(ValueError, match="not declared before"):
        SearchSpace("x", "", (space_module.integer("b", 1, 2, when={"a": (1,)}), a), dict)
    with pytest.raises(ValueError, match="repeats"):
        SearchSpace("x", "", (a, a), dict)
    with pytest.raises(Exception, match="unknown model family"):
        get_space("nope")


# ---------------------------------------------------------------------------- objective
def test_objective_records_spec_and_folds_and_matches_cross_validate(data: TuningData) -> None:
    space = get_space("ridge")
    objective = CVObjective(space, data, FAST)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(0))
    study.enqueue_trial(dict(space.defaults))
    study.optimize(objective, n_trials=3)
    for trial in study.trials:
        assert trial.state == TrialState.COMPLETE
        cv = trial.user_attrs["cv"]
        folds = np.asarray(cv["fold_pearson"])
        assert folds.shape == (FAST.n_folds, 4)
        assert cv["folds_done"] == FAST.n_folds
        assert trial.value == pytest.approx(folds.mean(), abs=1e-5)
        assert cv["std"] == pytest.approx(folds.mean(axis=1).std(ddof=1), abs=1e-5)
        assert set(trial.intermediate_values) == set(range(FAST.n_folds))
        assert trial.user_attrs["worker"]["pid"] == os.getpid()
        # the stored spec reproduces the trial's value with plain cross-validation
        spec = ModelSpec.from_dict(trial.user_attrs["spec"])
        result = cross_validate(
            spec, data.features, data.labels, folds=FAST.folds, repeats=FAST.repeats, seed=0
        )
        assert result.mean == pytest.approx(trial.value, abs=1e-5)


def test_objective_prunes_a_trial_behind_after_a_fold(data: TuningData) -> None:
    space = get_space("ridge")
    bad = {
        **space.defaults,
        **{f"use_{f}": False for f in space_module.FAMILY_SWITCHES},
        "formulation": "pooled",
        "calibration": "none",
    }
    objective = CVObjective(space, data, CVProtocol(folds=3, repeats=2))
    study = optuna.create_study(
        direction="maximize",
        pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0),
    )
    study.enqueue_trial(dict(space.defaults))
    study.enqueue_trial(bad)
    study.optimize(objective, n_trials=2)
    good, pruned = study.trials
    assert good.state == TrialState.COMPLETE
    assert pruned.state == TrialState.PRUNED
    assert pruned.user_attrs["cv"]["folds_done"] < 6
    assert len(pruned.intermediate_values) == pruned.user_attrs["cv"]["folds_done"]


def test_tuning_data_fingerprint_is_content_based(data: TuningData, synth_dir: Path) -> None:
    again = load_tuning_data(synth_dir)
    assert again.fingerprint == data.fingerprint
    labels = data.labels.copy()
    labels.iloc[0, 0] += 0.5
    changed = dataclasses.replace(data, labels=labels)
    from ltr.tuning.objective import training_fingerprint

    assert training_fingerprint(changed.features, changed.labels) != data.fingerprint


# ------------------------------------------------------------------------------ studies
def test_tune_creates_then_resumes_and_adds_trials(data: TuningData, tmp_path: Path) -> None:
    url = _sqlite(tmp_path)
    seen = []
    first = tune(
        data, "s", storage=url, space="ridge", protocol=FAST, n_trials=3, progress=seen.append
    )
    assert first.created and first.trials_before == 0
    assert sum(first.new_trials.values()) == 3
    study = load_existing_study("s", url)
    assert study.trials[0].user_attrs["enqueued"] == "untuned default"
    assert study.trials[0].params == {
        k: v for k, v in get_space("ridge").defaults.items() if k in study.trials[0].params
    }
    identity = study.user_attrs["ltr:identity"]
    assert identity["space"]["name"] == "ridge"
    assert identity["data"]["fingerprint"] == data.fingerprint
    assert identity["cv"] == FAST.to_dict()
    assert [p.done for p in seen] == sorted(p.done for p in seen) and seen[-1].done == 3
    assert seen[-1].best_value == max(t.value for t in study.trials if t.value is not None)
    # same name + storage: resumed with the study's own family and folds
    second = tune(data, "s", storage=url, n_trials=2)
    assert not second.created and second.trials_before == 3
    assert second.space == "ridge" and second.protocol == FAST
    numbers = [t.number for t in load_existing_study("s", url).trials]
    assert numbers == list(range(5))


def test_resume_refuses_other_space_data_or_folds(
    data: TuningData, other_dir: Path, tmp_path: Path
) -> None:
    url = _sqlite(tmp_path)
    tune(data, "s", storage=url, space="ridge", protocol=FAST, n_trials=1)
    with pytest.raises(StudyError, match="search space: study has 'ridge'"):
        tune(data, "s", storage=url, space="xgb-regression", protocol=FAST, n_trials=1)
    with pytest.raises(StudyError, match="data: study was tuned on synth train"):
        tune(load_tuning_data(other_dir), "s", storage=url, n_trials=1)
    with pytest.raises(StudyError, match="cross-validation: study uses 3-fold x 1"):
        tune(data, "s", storage=url, protocol=CVProtocol(5, 1, 0), n_trials=1)
    with pytest.raises(StudyError, match="this run 3-fold x 1 repeats, seed 9"):
        tune(data, "s", storage=url, cv_seed=9, n_trials=1)  # the rest from the study
    assert len(load_existing_study("s", url).trials) == 1  # nothing was added
    outcome = tune(data, "s", storage=url, repeats=1, n_trials=1)  # same as the study's
    assert outcome.protocol == FAST and not outcome.created


def test_a_new_study_is_reproducible_and_a_resume_does_not_replay(
    data: TuningData, tmp_path: Path
) -> None:
    runs = []
    for name in ("a.db", "b.db"):
        url = _sqlite(tmp_path, name)
        tune(data, "s", storage=url, space="ridge", protocol=FAST, n_trials=4, seed=7)
        runs.append(load_existing_study("s", url))
    assert [t.params for t in runs[0].trials] == [t.params for t in runs[1].trials]
    assert [t.value for t in runs[0].trials] == [t.value for t in runs[1].trials]
    url = _sqlite(tmp_path, "a.db")
    tune(data, "s", storage=url, n_trials=3, seed=7)
    params = [json.dumps(t.params, sort_keys=True) for t in load_existing_study("s", url).trials]
    assert len(set(params)) == len(params)


def test_failing_trials_stop_the_run_with_the_error(data: TuningData, tmp_path: Path) -> None:
    broken = dataclasses.replace(data, labels=data.labels.iloc[:5])  # most users unlabelled
    with pytest.raises(StudyError, match="trials in a row failed; the last one: ModelError"):
        tune(broken, "s", storage=_sqlite(tmp_path), space="ridge", protocol=FAST, n_trials=20)


def test_a_run_whose_every_trial_failed_is_an_error_without_traceback(
    data: TuningData, tmp_path: Path
) -> None:
    """Fewer failures than the guard's limit, but none succeeded: not a successful run (it
    used to exit 0 after printing Optuna's traceback of each failure)."""
    import io
    import logging

    log = io.StringIO()
    handler = logging.StreamHandler(log)  # Optuna's logger, as its own handler prints it
    logging.getLogger("optuna").addHandler(handler)
    broken = dataclasses.replace(data, labels=data.labels.iloc[:5])
    try:
        with pytest.raises(StudyError, match=r"every trial of this run failed \(2\); the last"):
            tune(broken, "s", storage=_sqlite(tmp_path), space="ridge", protocol=FAST, n_trials=2)
    finally:
        logging.getLogger("optuna").removeHandler(handler)
    assert "failed with parameters" in log.getvalue()
    assert "Traceback" not in log.getvalue()


def _scored_trial(study: optuna.Study, mean: float, std: float) -> None:
    cv = {
        "mean": mean,
        "std": std,
        "per_situation": dict.fromkeys(("acc", "bank", "it", "wait"), mean),
        "per_situation_std": dict.fromkeys(("acc", "bank", "it", "wait"), std),
        "fold_pearson": [[mean] * 4] * 3,
        "folds_done": 3,
        "seconds": 1.0,
    }
    study.add_trial(
        optuna.trial.create_trial(
            value=mean,
            user_attrs={"cv": cv, "spec": ModelSpec("ridge").to_dict()},
        )
    )


def test_choice_by_penalised_score() -> None:
    study = optuna.create_study(direction="maximize")
    _scored_trial(study, 0.50, 0.10)  # best mean, but its folds disagree
    _scored_trial(study, 0.48, 0.01)
    _scored_trial(study, 0.30, 0.00)
    study.add_trial(optuna.trial.create_trial(state=TrialState.FAIL))
    assert chosen_trial(study, penalty=0).number == 0
    assert chosen_trial(study, penalty=1).number == 1
    assert chosen_trial(study, penalty=1).penalised == pytest.approx(0.47)
    assert [s.number for s in scored_trials(study, 1)] == [1, 0, 2]
    summary = study_summary(study, 1)
    assert summary["best"]["number"] == 0 and summary["chosen"]["number"] == 1
    empty = optuna.create_study(direction="maximize")
    with pytest.raises(StudyError, match="no completed trial"):
        chosen_trial(empty)


def test_chosen_spec_refuses_other_data(data: TuningData, other_dir: Path, tmp_path: Path) -> None:
    url = _sqlite(tmp_path)
    tune(data, "s", storage=url, space="ridge", protocol=FAST, n_trials=2)
    spec, score, study = chosen_spec("s", url, data=data)
    assert spec.to_dict() == study.trials[score.number].user_attrs["spec"]
    with pytest.raises(StudyError, match="was tuned on synth train"):
        chosen_spec("s", url, data=load_tuning_data(other_dir))
    with pytest.raises(StudyError, match=r"no study named 'x' .*studies there: s"):
        chosen_spec("x", url)


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")
def test_orphaned_trials_of_dead_local_workers_are_failed(tmp_path: Path) -> None:
    study = optuna.create_study(storage=open_storage(_sqlite(tmp_path)), direction="maximize")
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(dead.stdout)
    workers = [
        {"host": socket.gethostname(), "pid": dead_pid, "start": 1},  # gone
        {"host": socket.gethostname(), "pid": os.getpid(), "start": None},  # this process
        {"host": "another-machine", "pid": dead_pid, "start": 1},  # left to the heartbeat
    ]
    for worker in workers:
        trial = study.ask()
        trial.set_user_attr("worker", worker)
    assert fail_orphaned_trials(study) == [0]
    states = [t.state for t in study.trials]
    # the dead worker's trial is queued again (same parameters), without that worker's identity
    assert states == [TrialState.FAIL, TrialState.RUNNING, TrialState.RUNNING, TrialState.WAITING]
    assert "died" in study.trials[0].user_attrs["error"]
    assert study.trials[3].system_attrs["failed_trial"] == 0
    assert "worker" not in study.trials[3].user_attrs


def test_storage_urls_and_missing_storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LTR_STORAGE", raising=False)
    assert storage_url() == DEFAULT_STORAGE
    assert storage_url(tmp_path / "x.db") == f"sqlite:///{tmp_path / 'x.db'}"
    assert storage_url("postgresql://u@h/db") == "postgresql://u@h/db"
    monkeypatch.setenv("LTR_STORAGE", "sqlite:///env.db")
    assert storage_url() == "sqlite:///env.db"
    missing = tmp_path / "missing.db"
    with pytest.raises(StudyError, match="no study storage"):
        list_studies(missing)
    assert not missing.exists()
    with pytest.raises(StudyError, match="database driver is missing|cannot open"):
        open_storage("mysql+nosuchdriver://u@localhost/db")


# ---------------------------------------------------------------------------------- CLI
def test_cli_tune_show_list_report_export_and_train(
    synth_dir: Path, other_dir: Path, tmp_path: Path
) -> None:
    db = tmp_path / "cli.db"
    common = ["--storage", db, "--model", "ridge", "--folds", 3, "--repeats", 1]
    code, out = _cli(
        "tune", synth_dir, "--study", "demo", "--trials", 3, "--pruner", "none", *common
    )
    assert code == 0, out
    assert "study demo created: family ridge, 3-fold x 1 repeats" in out
    assert "this run: 3 complete" in " ".join(out.split())  # no pruner: all complete
    code, out = _cli("tune", synth_dir, "--study", "demo", "--storage", db, "--trials", 1)
    assert code == 0, out
    assert "resumed (3 trials)" in out
    code, out = _cli("tune", other_dir, "--study", "demo", "--storage", db, "--trials", 1)
    assert code == 1 and "cannot be resumed" in out and "Traceback" not in out

    code, out = _cli("studies", "list", "--storage", db)
    assert code == 0 and "demo" in out and "ridge" in out
    spec_file = tmp_path / "spec.json"
    code, out = _cli("studies", "show", "demo", "--storage", db, "--export", spec_file)
    assert code == 0, out
    assert "chosen (max mean - 0.5 std): trial" in out and "parameters of the chosen" in out
    code, out = _cli("studies", "show", "demo", "--storage", db, "--json")
    summary = json.loads(out)
    assert summary["states"]["complete"] + summary["states"].get("pruned", 0) == 4
    chosen = summary["chosen"]
    assert json.loads(spec_file.read_text()) == chosen["spec"]

    # `ltr cv --params` on the exported spec reproduces the trial's CV mean exactly
    report = tmp_path / "cv.json"
    code, out = _cli(
        "cv",
        synth_dir,
        "--params",
        spec_file,
        "--folds",
        3,
        "--repeats",
        1,
        "--seed",
        0,
        "--report",
        report,
    )
    assert code == 0, out
    assert json.loads(report.read_text())["models"][0]["mean_pearson"] == pytest.approx(
        chosen["mean"], abs=1e-5
    )

    figures = tmp_path / "report"
    code, out = _cli("studies", "report", "demo", "--storage", db, "--out", figures)
    assert code == 0, out
    page = (figures / "index.html").read_text()
    for name in (
        "history.png",
        "importances.png",
        "intermediate.png",
        "spread.png",
        "situations.png",
    ):
        assert (figures / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert f'src="{name}"' in page
    assert f"Trial {chosen['number']}" in page

    model_dir = tmp_path / "model"
    code, out = _cli(
        "train", synth_dir, "--study", "demo", "--storage", db, "--model-dir", model_dir
    )
    assert code == 0, out
    manifest = json.loads((model_dir / "model.json").read_text())
    # `ltr tune` re-scored the choice on fresh folds; train follows that comparison
    rescoring = summary["rescoring"]
    assert rescoring["trial"] == chosen["number"] and rescoring["protocol"]["seed"] == 1000
    wins = rescoring["comparison"] is not None and (
        rescoring["tuned"]["mean"] > rescoring["default"]["mean"]
    )
    picked = "tuned" if wins else "default"
    assert manifest["spec"] == rescoring[f"{picked}_spec"]
    assert manifest["cv"]["study"] == "demo" and manifest["cv"]["trial"] == chosen["number"]
    assert manifest["cv"]["mean_pearson"] == rescoring[picked]["mean"]
    assert manifest["cv"]["seed"] == 1000 and manifest["cv"]["model"] == picked
    code, out = _cli(
        "predict", model_dir, synth_dir, "--split", "val", "--out", tmp_path / "val.json"
    )
    assert code == 0, out
    code, out = _cli(
        "train", other_dir, "--study", "demo", "--storage", db, "--model-dir", tmp_path / "m2"
    )
    assert code == 1 and "was tuned on synth train" in out
    code, out = _cli(
        "train",
        synth_dir,
        "--study",
        "demo",
        "--storage",
        db,
        "--model",
        "ridge",
        "--model-dir",
        tmp_path / "m3",
    )
    assert code == 1 and "drop --model/--params" in out


def test_cli_errors_are_one_line(synth_dir: Path, tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    code, out = _cli("studies", "show", "nope", "--storage", db)
    assert code == 1 and "no study storage" in out and not db.exists()
    _cli(
        "tune",
        synth_dir,
        "--study",
        "a",
        "--storage",
        db,
        "--trials",
        1,
        "--model",
        "ridge",
        "--folds",
        2,
        "--repeats",
        1,
    )
    code, out = _cli("studies", "show", "nope", "--storage", db)
    assert code == 1 and "no study named 'nope'" in out and "studies there: a" in out
    code, out = _cli("tune", synth_dir, "--study", "b", "--storage", db, "--model", "nope")
    assert code == 1 and "unknown model family 'nope'" in out
    code, out = _cli("tune", synth_dir, "--study", "b", "--storage", db, "--pruner", "nope")
    assert code == 1 and "unknown pruner" in out
    assert "Traceback" not in out


@given(st.integers(1, 10_000), st.integers(1, 64))
def test_trials_are_shared_out_evenly_between_workers(n_trials: int, jobs: int) -> None:
    shares = _shares(n_trials, jobs)
    assert sum(shares) == n_trials and len(shares) == jobs
    assert max(shares) - min(shares) <= 1


@given(st.text(alphabet="abcxyz/._-", min_size=1, max_size=30))
def test_storage_url_is_idempotent_and_paths_become_sqlite(path: str) -> None:
    url = storage_url(path)
    assert url.startswith("sqlite:///") and storage_url(url) == url
