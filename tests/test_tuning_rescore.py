"""Multi-fidelity pruning, fresh-fold rescoring, and what `ltr train --study` trains.

Small synthetic data and the ridge family (a fold takes a few hundredths of a second); the
cases where the tuned configuration wins or loses are made deterministic by writing trials and
rescoring attributes by hand.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState
from typer.testing import CliRunner

from ltr.cli.main import app
from ltr.cv import fold_indices
from ltr.data.synthetic import write_synthetic
from ltr.errors import StudyError
from ltr.models import PRESETS, ModelSpec
from ltr.tuning import fidelity
from ltr.tuning import rescore as rescore_module
from ltr.tuning.objective import CVObjective, CVProtocol, TuningData, load_tuning_data
from ltr.tuning.rescore import (
    RESCORE_SEED_OFFSET,
    default_spec,
    rescore_choice,
    rescore_protocol,
    rescore_trial,
    stored_rescoring,
)
from ltr.tuning.runner import tune
from ltr.tuning.space import get_space
from ltr.tuning.studies import chosen_trial, load_existing_study, study_summary
from ltr.workflow import study_choice, training_set

optuna.logging.set_verbosity(optuna.logging.WARNING)
runner = CliRunner()
FAST = CVProtocol(folds=3, repeats=1, seed=0)


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rescore") / "synth"
    write_synthetic(path, n_users=150, seed=3)
    return path


@pytest.fixture(scope="module")
def data(synth_dir: Path) -> TuningData:
    return load_tuning_data(synth_dir)


def _cli(*args: object) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes else "")


def _bad_ridge() -> ModelSpec:
    """Clearly worse than the ridge preset: one feature family, pooled."""
    return ModelSpec("ridge", formulation="pooled", families=("freq",))


def _lucky_trial(study: optuna.Study, spec: ModelSpec, value: float = 0.99) -> int:
    """A completed trial whose search score is far above everything (a lucky split), holding
    `spec`: the trial the study chooses."""
    cv = {
        "mean": value,
        "std": 0.0,
        "per_situation": dict.fromkeys(("acc", "bank", "it", "wait"), value),
        "per_situation_std": dict.fromkeys(("acc", "bank", "it", "wait"), 0.0),
        "fold_pearson": [[value] * 4] * FAST.n_folds,
        "folds_done": FAST.n_folds,
        "seconds": 0.1,
    }
    study.add_trial(
        optuna.trial.create_trial(value=value, user_attrs={"cv": cv, "spec": spec.to_dict()})
    )
    return study.get_trials(deepcopy=False)[-1].number


# --------------------------------------------------------------------------- fidelity
def test_halving_rungs_and_expected_cost() -> None:
    assert fidelity.rungs(10) == [2, 4]  # the default 5-fold x 2: compared after 2 and 4 folds
    assert fidelity.rungs(15) == [2, 4, 10]
    assert fidelity.rungs(3) == [2] and fidelity.rungs(2) == []
    assert fidelity.expected_folds(10) == pytest.approx(2 + 2 / 3 + 6 / 9)
    assert fidelity.DEFAULT_PRUNER == fidelity.PRUNERS[0] == "halving"
    for kind in fidelity.PRUNERS:
        assert isinstance(fidelity.make_pruner(kind), optuna.pruners.BasePruner)
    with pytest.raises(StudyError, match="unknown pruner"):
        fidelity.make_pruner("nope")


def _run(study: optuna.Study, level: float, n_folds: int = 10) -> int:
    """A trial whose running mean is `level` at every fold; returns the folds it ran."""
    trial = study.ask()
    for step in range(n_folds):
        trial.report(level, step)
        if step + 1 < n_folds and trial.should_prune():
            study.tell(trial, state=TrialState.PRUNED)
            return step + 1
    study.tell(trial, level)
    return n_folds


def test_halving_runs_the_first_trial_fully_and_stops_others_at_their_rungs() -> None:
    """The documented schedule: the first trial (the enqueued default) is alone at its rungs
    and runs every fold; a later trial goes past a rung only when in the top third there
    (the first ones: only when the best there), else it stops after 2 (or 4) folds."""
    study = optuna.create_study(direction="maximize", pruner=fidelity.make_pruner("halving"))
    assert _run(study, 0.50) == 10  # the default
    assert _run(study, 0.40) == 2  # behind the default after 2 folds
    assert _run(study, 0.60) == 10  # ahead at both rungs
    assert _run(study, 0.55) == 2  # 4 trials at the rung: only the top one (0.60) passes
    for level in (0.30, 0.31, 0.32, 0.33, 0.34):
        assert _run(study, level) == 2
    # 9 trials reached the first rung: the top 3 pass it, so 0.55 now goes on to the next
    assert _run(study, 0.55) == 4  # ... where it is behind 0.60 among 3 trials
    never = optuna.create_study(direction="maximize", pruner=fidelity.make_pruner("none"))
    assert [_run(never, level) for level in (0.5, 0.1)] == [10, 10]


def test_the_objective_stops_a_bad_trial_after_two_folds(data: TuningData) -> None:
    space = get_space("ridge")
    bad = {
        **space.defaults,
        **{k: False for k in space.defaults if k.startswith("use_")},
        "formulation": "pooled",
    }
    protocol = CVProtocol(folds=3, repeats=2, seed=0)
    study = optuna.create_study(direction="maximize", pruner=fidelity.make_pruner("halving"))
    study.enqueue_trial(dict(space.defaults))
    study.enqueue_trial(bad)
    study.optimize(CVObjective(space, data, protocol), n_trials=2)
    default, pruned = study.trials
    assert default.state == TrialState.COMPLETE
    assert default.user_attrs["cv"]["folds_done"] == protocol.n_folds
    assert pruned.state == TrialState.PRUNED
    assert pruned.user_attrs["cv"]["folds_done"] == fidelity.rungs(protocol.n_folds)[0] == 2


def test_tune_defaults_to_halving(data: TuningData, tmp_path: Path) -> None:
    import inspect

    assert inspect.signature(tune).parameters["pruner"].default == "halving"
    url = f"sqlite:///{tmp_path / 's.db'}"
    tune(data, "s", storage=url, space="ridge", protocol=CVProtocol(3, 2, 0), n_trials=8, seed=1)
    trials = load_existing_study("s", url).trials
    assert trials[0].state == TrialState.COMPLETE  # the default runs every fold
    folds = {len(t.intermediate_values) for t in trials if t.state == TrialState.PRUNED}
    assert folds <= set(fidelity.rungs(6))  # pruned only at the rungs


# -------------------------------------------------------------------------- rescoring
@pytest.fixture()
def study_url(data: TuningData, tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    tune(data, "s", storage=url, space="ridge", protocol=FAST, n_trials=1)
    return url


def test_rescoring_uses_fresh_folds_and_is_stored(
    data: TuningData, study_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = load_existing_study("s", study_url)
    number = _lucky_trial(study, _bad_ridge())
    calls: list[str] = []
    original = rescore_module._cross_validate

    def counting(spec, data, protocol, label, threads, progress):  # type: ignore[no-untyped-def]
        calls.append(label)
        return original(spec, data, protocol, label, threads, progress)

    monkeypatch.setattr(rescore_module, "_cross_validate", counting)
    result = rescore_trial(data, study, number)
    assert calls == ["default", f"trial {number}"]
    # fresh folds: another CV seed than the search's, hence other held-out users
    assert result.protocol.seed == FAST.seed + RESCORE_SEED_OFFSET != FAST.seed
    assert result.protocol == rescore_protocol(FAST, data.features.shape[0])
    n = data.features.shape[0]
    search = [set(held) for _, held in fold_indices(n, FAST.folds, FAST.repeats, FAST.seed)]
    fresh = [
        set(held) for _, held in fold_indices(n, result.protocol.folds, 1, result.protocol.seed)
    ]
    assert not any(f == s for f in fresh for s in search)
    assert result.tuned_spec == _bad_ridge().to_dict()
    assert result.default_spec == default_spec(study).to_dict()
    assert ModelSpec.from_dict(result.default_spec) == PRESETS["ridge"]
    assert result.comparison["mean"] == pytest.approx(
        result.tuned["mean"] - result.default["mean"], abs=1e-5
    )
    assert result.comparison["folds"] == result.protocol.n_folds
    assert result.tuned["mean"] < result.default["mean"] - 0.05  # clearly worse, fresh
    assert not result.tuned_wins
    # stored in the study, read back by every command
    again = load_existing_study("s", study_url)
    assert stored_rescoring(again, number) == result
    assert study_summary(again)["rescoring"]["trial"] == number
    # a second rescoring reuses the default's figures; only the trial is cross-validated
    calls.clear()
    other = _lucky_trial(again, PRESETS["ridge-wide"], value=0.98)
    rescore_trial(data, again, other)
    assert calls == [f"trial {other}"]


def test_rescoring_the_default_itself_compares_nothing(data: TuningData, study_url: str) -> None:
    score, result = rescore_choice(data, "s", study_url)
    assert score.number == 0 and result.same_as_default and result.comparison is None
    assert result.tuned == result.default and not result.tuned_wins
    # stored: asking again computes nothing
    assert rescore_choice(data, "s", study_url)[1] == result


def _training(synth_dir: Path):  # type: ignore[no-untyped-def]
    from ltr.data import load_dataset

    return training_set(load_dataset(synth_dir), "train")


def _set_means(study: optuna.Study, trial: int, tuned: float, default: float) -> None:
    """Rewrite a stored rescoring so the tuned trial wins or loses by construction."""
    key = f"ltr:rescore:{trial}"
    stored = dict(study.user_attrs[key])
    stored["tuned"] = {**stored["tuned"], "mean": tuned}
    stored["default"] = {**stored["default"], "mean": default}
    study.set_user_attr(key, stored)


def test_study_choice_follows_the_stored_comparison(
    data: TuningData, synth_dir: Path, study_url: str
) -> None:
    study = load_existing_study("s", study_url)
    number = _lucky_trial(study, PRESETS["ridge-wide"])
    rescore_trial(data, study, number)
    training = _training(synth_dir)

    _set_means(study, number, tuned=0.60, default=0.50)
    choice = study_choice(training, "s", study_url)
    assert choice.tuned and choice.spec == PRESETS["ridge-wide"]
    assert choice.cv["mean_pearson"] == 0.60 and choice.cv["model"] == "tuned"
    assert "beats the default on fresh folds" in choice.reason

    _set_means(study, number, tuned=0.49, default=0.50)
    choice = study_choice(training, "s", study_url)
    assert not choice.tuned and choice.spec == PRESETS["ridge"]
    assert choice.name == "default (study s)"
    assert choice.cv["mean_pearson"] == 0.50 and choice.cv["model"] == "default"
    assert "training the default instead" in choice.reason

    forced = study_choice(training, "s", study_url, force_tuned=True)
    assert forced.tuned and forced.spec == PRESETS["ridge-wide"]
    assert forced.cv["mean_pearson"] == 0.49 and "--force-tuned" in forced.reason
    # the search's figure is kept for reference, never as the model's CV figure
    assert forced.cv["search"]["mean_pearson"] == 0.99 != forced.cv["mean_pearson"]


def test_study_choice_reads_the_study_once(
    data: TuningData, synth_dir: Path, study_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PostgreSQL study of hundreds of trials takes seconds to load: `train --study` reads
    it once for the choice, the rescoring and the manifest's record."""
    import ltr.tuning.studies as studies

    study = load_existing_study("s", study_url)
    rescore_trial(data, study, _lucky_trial(study, PRESETS["ridge-wide"]))
    loads = []
    real = studies.load_existing_study

    def counted(*args: Any, **kwargs: Any) -> Any:
        loads.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(studies, "load_existing_study", counted)
    choice = study_choice(_training(synth_dir), "s", study_url)
    assert len(loads) == 1
    assert choice.cv["study"] == "s"


def test_train_study_rescores_first_and_falls_back_to_the_default(
    data: TuningData, synth_dir: Path, study_url: str, tmp_path: Path
) -> None:
    """A study whose chosen trial was lucky on the search folds and has no rescoring (as after
    an interrupted tune): `train --study` rescores it, sees it lose, trains the default and
    stores the default's fresh-fold figure; --force-tuned trains the trial with its own."""
    study = load_existing_study("s", study_url)
    number = _lucky_trial(study, _bad_ridge())
    assert stored_rescoring(study, number) is None
    db = study_url.removeprefix("sqlite:///")
    code, out = _cli(
        "train", synth_dir, "--study", "s", "--storage", db, "--model-dir", tmp_path / "m"
    )
    assert code == 0, out
    lines = [line for line in out.splitlines() if "fresh folds" in line]
    assert len(lines) == 1 and "training the default instead" in lines[0]
    rescoring = stored_rescoring(load_existing_study("s", study_url), number)
    assert rescoring is not None and not rescoring.tuned_wins
    manifest = json.loads((tmp_path / "m" / "model.json").read_text())
    assert manifest["spec"] == rescoring.default_spec == PRESETS["ridge"].to_dict()
    assert manifest["cv"]["mean_pearson"] == rescoring.default["mean"]
    assert manifest["cv"]["seed"] == FAST.seed + RESCORE_SEED_OFFSET
    assert manifest["cv"]["model"] == "default" and manifest["cv"]["trial"] == number

    code, out = _cli(
        "train",
        synth_dir,
        "--study",
        "s",
        "--storage",
        db,
        "--force-tuned",
        "--model-dir",
        tmp_path / "forced",
    )
    assert code == 0, out
    manifest = json.loads((tmp_path / "forced" / "model.json").read_text())
    assert manifest["spec"] == _bad_ridge().to_dict()
    assert manifest["cv"]["mean_pearson"] == rescoring.tuned["mean"] != 0.99
    assert manifest["cv"]["tuned_minus_default"]["mean"] < 0
    code, out = _cli("train", synth_dir, "--force-tuned", "--model-dir", tmp_path / "x")
    assert code == 1 and "--force-tuned only applies to --study" in out


def test_tune_rescores_unless_told_not_to(synth_dir: Path, tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    common = ["--storage", db, "--model", "ridge", "--folds", 3, "--repeats", 1]
    code, out = _cli("tune", synth_dir, "--study", "a", "--trials", 2, "--no-rescore", *common)
    assert code == 0, out
    assert "fresh folds" not in out
    assert study_summary(load_existing_study("a", db))["rescoring"] is None
    code, out = _cli("tune", synth_dir, "--study", "a", "--trials", 1, *common)
    assert code == 0, out
    assert "fresh folds (4-fold x 3 repeats, seed 1000, never used by the search)" in out
    summary = study_summary(load_existing_study("a", db))
    chosen = chosen_trial(load_existing_study("a", db)).number
    assert summary["rescoring"]["trial"] == chosen
    code, out = _cli("studies", "show", "a", "--storage", db)
    assert code == 0 and "fresh folds" in out


def test_rescoring_refuses_other_data(data: TuningData, study_url: str, tmp_path: Path) -> None:
    other_dir = tmp_path / "other"
    write_synthetic(other_dir, n_users=150, seed=4)
    study = load_existing_study("s", study_url)
    with pytest.raises(StudyError, match="tuned on other data"):
        rescore_trial(load_tuning_data(other_dir), study, 0)
    with pytest.raises(StudyError, match="no completed trial 7"):
        rescore_trial(data, study, 7)
    assert np.isfinite(rescore_choice(data, "s", study_url)[1].default["mean"])
