"""The library behind `ltr cv / train / predict / baseline / quickstart`: what a notebook user
calls too. Each command is one call here plus printing; nothing a command decides lives only
in the CLI."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ltr.cv import MIN_FOLD_USERS, CVResult, check_folds, cross_validate
from ltr.data import Dataset
from ltr.data.jsonfile import read_json
from ltr.errors import DataError, LtrError
from ltr.features import FeatureConfig, FeatureMatrix, featurize
from ltr.metrics import Scores, score_run
from ltr.models import COMPARE, ModelSpec, build_model, preset
from ltr.models.persistence import TrainedModel, load_trained, save_trained
from ltr.outputs import SUBMISSIONS_DIR
from ltr.submission import read_run, validate_run, write_run

if TYPE_CHECKING:
    from ltr.tuning.rescore import Rescoring
    from ltr.tuning.studies import TrialScore

#: The split every model is trained on (and BASE's threshold fitted on).
TRAIN_SPLIT = "train"


def resolve_spec(model: str = "default", params_file: str | Path | None = None) -> ModelSpec:
    """The preset `model`, with the fields of a JSON `params_file` applied on top.

    The file holds either a whole spec (it has a ``learner`` field) or overrides such as
    ``{"params": {"num_leaves": 15}, "calibration": "normal"}``.
    """
    spec = preset(model)
    if params_file is None:
        return spec
    path = Path(params_file)
    data = read_json(path)
    if not isinstance(data, dict):
        raise DataError(path, "expected a JSON object with model spec fields")
    if "learner" in data:
        return ModelSpec.from_dict(data, where=str(path))
    return spec.merged(data, where=str(path))


def spec_label(model: str, params_file: str | Path | None) -> str:
    """How tables name the model of `resolve_spec(model, params_file)`: the preset, the preset
    plus the overrides file, or the file alone when it holds a whole spec."""
    if params_file is None:
        return model
    path = Path(params_file)
    data = read_json(path)
    whole = isinstance(data, dict) and "learner" in data
    return path.stem if whole else f"{model}+{path.name}"


def cv_specs(
    model: str = "default",
    params_file: str | Path | None = None,
    *,
    compare: bool = False,
    models: Sequence[str] | None = None,
    seed: int = 0,
) -> dict[str, ModelSpec]:
    """The named specs `ltr cv` cross-validates: one model (a preset, maybe with a params file),
    or several presets to compare (`models`, default `COMPARE`), all with `seed`."""
    if compare or models:
        if params_file is not None:
            raise LtrError(
                "--params changes one model (--model); not usable with --compare/--models"
            )
        names = list(models) if models else list(COMPARE)
        return {name: preset(name).with_seed(seed) for name in names}
    return {spec_label(model, params_file): resolve_spec(model, params_file).with_seed(seed)}


def labelled_split(dataset: Dataset, split: str, command: str) -> pd.DataFrame:
    """The labels of `split`; a clear error naming `command` when they are withheld."""
    if not dataset.has_labels(split):
        dataset.split_users(split)  # a clear error first if the split does not exist
        raise LtrError(
            f"{dataset.name}: split {split!r} has no labels in these files, so `{command}` "
            "cannot score it (withheld labels are only scored by the challenge)"
        )
    return dataset.split_labels(split)


def in_sample_note(split: str) -> str | None:
    """What to say when a score is computed on the training labels (None otherwise).

    A run file does not say which labels made it, so this cannot be known for sure."""
    if split != TRAIN_SPLIT:
        return None
    return (
        f"note: split {split!r} holds the training labels: if the run comes from a model "
        "trained on them (or BASE's threshold fitted on them), this score is in-sample"
    )


def evaluate_run(run_file: str | Path, dataset: Dataset, split: str) -> Scores:
    """Validate a run file like the challenge for `split`, then score it on its labels."""
    labels = labelled_split(dataset, split, "evaluate")
    run = validate_run(read_run(run_file), dataset.split_users(split), run_file, split=split)
    return score_run(run.loc[labels.index], labels, name=str(run_file))


@dataclass(frozen=True)
class TrainingSet:
    """Features and labels of a labelled split, computed once and shared by every model."""

    dataset: Dataset
    split: str
    config: FeatureConfig
    features: FeatureMatrix
    labels: pd.DataFrame


def training_set(
    dataset: Dataset, split: str = TRAIN_SPLIT, config: FeatureConfig | None = None
) -> TrainingSet:
    """Featurise a labelled split once, for every model cross-validated or trained on it."""
    config = config or FeatureConfig()
    labels = dataset.split_labels(split)
    features = featurize(dataset, split, config)
    unlabelled = features.users.difference(labels.index)
    if len(unlabelled):
        raise LtrError(
            f"{dataset.name}: {len(unlabelled)} user(s) of split {split!r} have no label "
            f"(e.g. {unlabelled[0]!r}); cross-validation and training need every label"
        )
    return TrainingSet(dataset, split, config, features, labels)


def cross_validate_models(
    data: TrainingSet,
    specs: dict[str, ModelSpec],
    *,
    folds: int = 5,
    repeats: int = 3,
    seed: int = 0,
    threads: int = 1,
    progress: Any = None,
) -> list[CVResult]:
    """CV every spec on the same folds; `progress(name)` is called before each model."""
    results = []
    for name, spec in specs.items():
        if progress is not None:
            progress(name)
        results.append(
            cross_validate(
                spec,
                data.features,
                data.labels,
                folds=folds,
                repeats=repeats,
                seed=seed,
                threads=threads,
                name=name,
            )
        )
    return results


def check_cv_folds(data: TrainingSet, folds: int, repeats: int = 1) -> None:
    """Refuse, before any model is fitted, folds whose held-out part would be too small for a
    meaningful Pearson correlation (fewer than `MIN_FOLD_USERS` users)."""
    check_folds(len(data.features.users), folds, repeats, min_fold_users=MIN_FOLD_USERS)


def cv_report(results: Sequence[CVResult], data: TrainingSet) -> dict[str, Any]:
    """The JSON report of `ltr cv`: the data it ran on and every model's fold figures."""
    return {
        "data": str(data.dataset.source) if data.dataset.source else data.dataset.name,
        "fingerprint": data.dataset.fingerprint(),
        "split": data.split,
        "n_users": len(data.features.users),
        "feature_config": data.config.to_dict(),
        "models": [r.to_dict() for r in results],
        # each model against the first: the corrected resampled t-test (ltr.stats)
        "versus_first": {r.name: r.versus(results[0]).to_dict() for r in results[1:]}
        if results
        else {},
    }


def check_model_dir(model_dir: str | Path) -> Path:
    """Refuse, before training, a folder that `save_trained` would refuse after it: one that
    exists and holds no earlier model (a typo must never replace other files)."""
    from ltr.errors import ModelError
    from ltr.models.persistence import MANIFEST

    path = Path(model_dir)
    if path.is_dir() and not (path / MANIFEST).is_file():
        raise ModelError(f"{path}: exists and is not a model directory; not replacing it")
    return path


def train_model(
    data: TrainingSet,
    spec: ModelSpec,
    model_dir: str | Path,
    *,
    cv: dict[str, Any] | None = None,
    threads: int = 1,
) -> TrainedModel:
    """Fit `spec` on every user of the training set and save it to `model_dir`."""
    model = build_model(spec, threads=threads).fit(data.features, data.labels)
    save_trained(
        model, model_dir, dataset=data.dataset, split=data.split, feature_config=data.config, cv=cv
    )
    return load_trained(model_dir, threads=threads)


def write_submission(scores: pd.DataFrame, path: str | Path, dataset: Dataset, split: str) -> Path:
    """Validate like the challenge (same users as the split, four keys, finite) and write."""
    return write_run(scores, Path(path), users=dataset.split_users(split))


# ------------------------------------------------------------------------------ studies
@dataclass(frozen=True)
class StudyChoice:
    """What `ltr train --study` trains: the study's chosen trial when it beat the untuned
    default on fresh folds (or `force_tuned`), else the default.

    Attributes:
        spec: the spec to train.
        name: "study NAME trial N", or "default (study NAME)" when the default is trained.
        score: the chosen trial's search figures.
        rescoring: the chosen trial and the default on fresh folds (`ltr.tuning.rescore`).
        tuned: whether `spec` is the tuned one.
        reason: one line saying which was chosen and why.
        cv: what the trained model's manifest keeps: the fresh-fold figures of `spec`.
    """

    spec: ModelSpec
    name: str
    score: TrialScore
    rescoring: Rescoring
    tuned: bool
    reason: str
    cv: dict[str, Any]


def study_choice(
    data: TrainingSet,
    study: str,
    storage: str | Path | None = None,
    *,
    penalty: float | None = None,
    seed: int | None = None,
    force_tuned: bool = False,
    threads: int = 1,
    progress: Any = None,
) -> StudyChoice:
    """The model a study yields: its chosen trial (best mean - k x std), rebuilt exactly (seed
    included unless `seed` overrides it), if it beat the family's untuned default on the fresh
    folds of its rescoring -- else that default. A study whose chosen trial has no rescoring
    yet (an interrupted `ltr tune`) is rescored first (stored). Refuses data other than the
    study was tuned on."""
    from ltr.tuning.objective import TuningData
    from ltr.tuning.rescore import trial_rescoring
    from ltr.tuning.storage import storage_url
    from ltr.tuning.studies import DEFAULT_PENALTY, chosen_spec, study_cv_record

    url = storage_url(storage)
    tuning_data = TuningData.from_training_set(data)
    penalty = DEFAULT_PENALTY if penalty is None else penalty
    # the study is read once (a PostgreSQL study of hundreds of trials is slow to load)
    _, score, loaded = chosen_spec(study, url, penalty=penalty, data=tuning_data)
    rescoring = trial_rescoring(
        tuning_data, loaded, score.number, threads=threads, progress=progress
    )
    tuned = force_tuned or rescoring.tuned_wins
    chosen = rescoring.tuned_spec if tuned else rescoring.default_spec
    spec = ModelSpec.from_dict(chosen, where=f"study {study!r}")
    spec = spec if seed is None else spec.with_seed(seed)
    fresh = rescoring.protocol.text()
    t, d = rescoring.tuned["mean"], rescoring.default["mean"]
    if rescoring.same_as_default:
        reason = f"study {study}: its chosen trial {score.number} is the untuned default"
    elif rescoring.tuned_wins:
        reason = (
            f"study {study} trial {score.number} beats the default on fresh folds "
            f"({t:.4f} vs {d:.4f}, {fresh}): training the tuned configuration"
        )
    elif force_tuned:
        reason = (
            f"study {study} trial {score.number} does not beat the default on fresh folds "
            f"({t:.4f} vs {d:.4f}, {fresh}); training it anyway (--force-tuned)"
        )
    else:
        reason = (
            f"study {study} trial {score.number} does not beat the default on fresh folds "
            f"({t:.4f} vs {d:.4f}, {fresh}): training the default instead "
            "(--force-tuned trains the tuned one)"
        )
    chosen_trial = tuned or rescoring.same_as_default
    name = f"study {study} trial {score.number}" if chosen_trial else f"default (study {study})"
    record = study_cv_record(loaded, score, rescoring, tuned=tuned, storage=url)
    return StudyChoice(spec, name, score, rescoring, tuned, reason, record)


#: Files every report of `study_report` holds: how an earlier report folder is recognised.
REPORT_FILES = ("index.html", "summary.json")


def check_report_dir(out: str | Path) -> Path:
    """Refuse, before any work, a folder that is neither new, empty, nor an earlier report:
    `study_report` replaces the whole folder."""
    path = Path(out)
    earlier = all((path / name).is_file() for name in REPORT_FILES)
    if path.is_dir() and any(path.iterdir()) and not earlier:
        raise LtrError(
            f"{path}: exists and is not a study report folder (no index.html and "
            "summary.json); not replacing it"
        )
    return path


def study_report(
    name: str,
    out: str | Path,
    *,
    storage: str | Path | None = None,
    penalty: float | None = None,
) -> dict[str, Any]:
    """Write a study's report (figures, summary.json, index.html) as one folder: built next
    to `out` and moved into place only when complete, replacing an earlier report there."""
    import os
    import shutil
    import tempfile

    from ltr.fileio import os_reason, public_mode
    from ltr.tuning.report import write_report
    from ltr.tuning.studies import DEFAULT_PENALTY, load_existing_study

    target = check_report_dir(out)
    study = load_existing_study(name, storage)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    except OSError as error:
        from ltr.errors import OutputError

        raise OutputError(target, f"cannot write ({os_reason(error)})") from None
    try:
        public_mode(staging, directory=True)
        summary = write_report(
            study, staging, penalty=DEFAULT_PENALTY if penalty is None else penalty
        )
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
            os.replace(target, old / "report")
            os.replace(staging, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return summary


# ----------------------------------------------------------------------------- baseline
@dataclass(frozen=True)
class BaselineJob:
    """What `ltr baseline` computed: the threshold and how it was set, the run, its scores."""

    threshold: float
    fitted: bool  # fitted on the training labels (else given)
    grid: pd.DataFrame | None  # Pearson at every grid threshold, when asked
    run: pd.DataFrame
    scores: Scores | None  # None when the split's labels are withheld
    in_sample: bool  # scored on the labels the threshold was fitted on
    written: Path | None


def run_baseline(
    dataset: Dataset,
    split: str,
    *,
    threshold: float | None = None,
    grid: bool = False,
    out: str | Path | None = None,
) -> BaselineJob:
    """BASE on `split`: the threshold given, or fitted on the training labels; scored where
    the split has labels; written (validated like the challenge) to `out` when given."""
    from ltr.baseline import base_scores, fit_base_threshold, threshold_table

    dataset.split_users(split)  # fail early on an unknown split
    fitted = threshold is None
    if threshold is None:
        labelled_split(dataset, TRAIN_SPLIT, "baseline (fitting the threshold)")
        threshold = fit_base_threshold(dataset, TRAIN_SPLIT)
    table = threshold_table(dataset, TRAIN_SPLIT) if grid else None
    run = base_scores(dataset, split, threshold)
    scores = None
    if dataset.has_labels(split):
        labels = dataset.split_labels(split)
        scores = score_run(run.loc[labels.index], labels, name="BASE")
    written = None
    if out is not None:
        written = write_run(run, out, dataset.split_users(split), split=split)
    return BaselineJob(
        threshold=threshold,
        fitted=fitted,
        grid=table,
        run=run,
        scores=scores,
        in_sample=fitted and split == TRAIN_SPLIT and scores is not None,
        written=written,
    )


__all__ = [
    "SUBMISSIONS_DIR",
    "TRAIN_SPLIT",
    "BaselineJob",
    "StudyChoice",
    "TrainingSet",
    "check_cv_folds",
    "check_model_dir",
    "check_report_dir",
    "study_report",
    "cross_validate_models",
    "cv_report",
    "cv_specs",
    "evaluate_run",
    "in_sample_note",
    "labelled_split",
    "run_baseline",
    "study_choice",
    "resolve_spec",
    "spec_label",
    "train_model",
    "training_set",
    "write_submission",
]
