"""The library behind `ltr cv / train / predict / quickstart`: what a notebook user calls too."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ltr.cv import CVResult, cross_validate
from ltr.data import Dataset
from ltr.data.jsonfile import read_json
from ltr.errors import DataError, LtrError
from ltr.features import FeatureConfig, FeatureMatrix, featurize
from ltr.models import ModelSpec, build_model, preset
from ltr.models.persistence import TrainedModel, load_trained, save_trained
from ltr.submission import write_run

#: Default location of run files.
SUBMISSIONS_DIR = Path("submissions")


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


@dataclass(frozen=True)
class TrainingSet:
    """Features and labels of a labelled split, computed once and shared by every model."""

    dataset: Dataset
    split: str
    config: FeatureConfig
    features: FeatureMatrix
    labels: pd.DataFrame


def training_set(
    dataset: Dataset, split: str = "train", config: FeatureConfig | None = None
) -> TrainingSet:
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


def cv_report(results: Sequence[CVResult], data: TrainingSet) -> dict[str, Any]:
    return {
        "data": str(data.dataset.source) if data.dataset.source else data.dataset.name,
        "fingerprint": data.dataset.fingerprint(),
        "split": data.split,
        "n_users": len(data.features.users),
        "feature_config": data.config.to_dict(),
        "models": [r.to_dict() for r in results],
    }


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


__all__ = [
    "SUBMISSIONS_DIR",
    "TrainingSet",
    "cross_validate_models",
    "cv_report",
    "resolve_spec",
    "spec_label",
    "train_model",
    "training_set",
    "write_submission",
]
