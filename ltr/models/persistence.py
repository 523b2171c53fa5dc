"""Model directories: native model files plus everything needed to refuse a wrong use.

    MODEL_DIR/
      model.json           spec, feature config, concept vocabulary with its ratings, feature
                           schema, data fingerprints, CV figures, the format number and the
                           version that wrote it, a checksum of every file below and of itself
      state.json, *.txt, *.json   the model's own files (LightGBM text, XGBoost JSON, ...)

A directory is written to a temporary sibling and swapped into place atomically, so a reader
never sees a half-written model nor a moment without one. `load_trained` checks the format
number, the files' checksums (model.json's own included: an edited spec would silently change
the predictions) and, against the data it is asked to score, the concept ratings. Data with
other concepts is scored against the stored vocabulary (`ltr.features.Vocabulary`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ltr import __version__
from ltr.data import Dataset
from ltr.data.jsonfile import read_json
from ltr.errors import DataError, LtrError, ModelError
from ltr.features import FeatureConfig, FeatureMatrix, Vocabulary, feature_columns, featurize
from ltr.fileio import atomic_directory, write_json_atomic
from ltr.models.interface import ProfileModel
from ltr.models.registry import build_model
from ltr.models.spec import ModelSpec

MANIFEST = "model.json"
#: The model file format: bumped only when a model directory changes meaning; a model of
#: another format is refused, whatever the ltr versions (3: the concept vocabulary is stored).
FORMAT = 3
#: Fields every manifest has (besides format, ltr_version and checksum).
MANIFEST_FIELDS = ("spec", "feature_config", "vocabulary", "feature_names", "data", "cv", "files")


def ratings_fingerprint(dataset: Dataset) -> str:
    """A hash of the concept ratings: features mean something else under other ratings."""
    hashed = pd.util.hash_pandas_object(dataset.ratings.reset_index(), index=False)
    return hashlib.sha256(hashed.to_numpy().tobytes()).hexdigest()[:16]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest_checksum(manifest: dict[str, Any]) -> str:
    """sha256 of the manifest's canonical JSON, its own ``checksum`` field left out."""
    content = {key: value for key, value in manifest.items() if key != "checksum"}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class TrainedModel:
    """A fitted model with the facts recorded next to it."""

    model: ProfileModel
    feature_config: FeatureConfig
    vocabulary: Vocabulary
    manifest: dict[str, Any]

    @property
    def spec(self) -> ModelSpec:
        return self.model.spec

    def features(self, dataset: Dataset, split: str | None) -> FeatureMatrix:
        """Featurise `split` exactly as the training data was: the model's vocabulary, ratings
        and feature config (concepts it never saw are ignored, with a warning)."""
        self.vocabulary.check_ratings(dataset)
        return featurize(dataset, split, self.feature_config, self.vocabulary)

    def predict(self, dataset: Dataset, split: str) -> pd.DataFrame:
        return self.model.predict(self.features(dataset, split))


def model_feature_names(
    model: ProfileModel, vocabulary: Vocabulary, feature_config: FeatureConfig
) -> list[str]:
    """The feature names `model` sees when features come from `vocabulary` and the config."""
    columns = feature_columns(vocabulary.concepts, vocabulary.has_boxes, feature_config)
    empty = FeatureMatrix(
        users=pd.Index([], name="user", dtype=object),
        values=sp.csr_matrix((0, len(columns)), dtype=np.float64),
        columns=columns,
    )
    return list(model.select(empty).columns["name"])


def save_trained(
    model: ProfileModel,
    directory: str | Path,
    *,
    dataset: Dataset,
    split: str,
    feature_config: FeatureConfig,
    cv: dict[str, Any] | None = None,
    vocabulary: Vocabulary | None = None,
) -> Path:
    """Write `model` (trained on `split` of `dataset`) to `directory`, atomically.

    `vocabulary` is the one the training features were built with (default: the data set's
    own, as `featurize` uses by default).
    """
    directory = Path(directory)
    vocabulary = vocabulary or Vocabulary.from_dataset(dataset)
    if model_feature_names(model, vocabulary, feature_config) != model.feature_names_:
        raise ValueError("the model was trained on features other than the vocabulary gives")
    if directory.exists() and not (directory / MANIFEST).is_file():
        raise ModelError(f"{directory}: exists and is not a model directory; not replacing it")
    with atomic_directory(directory) as tmp:
        files = model.save(tmp)
        manifest = {
            "format": FORMAT,
            "ltr_version": __version__,
            "spec": model.spec.to_dict(),
            "feature_config": feature_config.to_dict(),
            "vocabulary": vocabulary.to_dict(),
            "feature_names": model.feature_names_,
            "data": {
                "source": str(dataset.source) if dataset.source else None,
                "layout": dataset.layout,
                "split": split,
                "n_users": len(dataset.split_users(split)),
                "fingerprint": dataset.fingerprint(),
                "ratings_fingerprint": ratings_fingerprint(dataset),
            },
            "cv": cv,
            "files": {name: _sha256(tmp / name) for name in sorted(files)},
        }
        manifest["checksum"] = manifest_checksum(manifest)
        write_json_atomic(tmp / MANIFEST, manifest)
    return directory


def read_manifest(directory: str | Path) -> dict[str, Any]:
    directory = Path(directory)
    path = directory / MANIFEST
    if not path.is_file():
        raise ModelError(
            f"{directory}: not a model directory (no {MANIFEST}; train one with "
            "`ltr train DIR --model-dir OUT`)"
        )
    try:
        manifest = read_json(path)
    except DataError as error:
        where = "" if error.line is None else f" at line {error.line}, column {error.column}"
        raise ModelError(
            f"{path}: cannot read the model manifest ({error.problem}{where})"
        ) from None
    if not isinstance(manifest, dict):
        raise ModelError(f"{path}: not a model manifest (expected a JSON object)")
    if manifest.get("format") != FORMAT:
        raise ModelError(
            f"{path}: model file format {manifest.get('format')!r} (written by ltr "
            f"{manifest.get('ltr_version', 'unknown')}); ltr {__version__} reads format "
            f"{FORMAT}: retrain the model"
        )
    missing = [key for key in MANIFEST_FIELDS if key not in manifest]
    if missing or manifest.get("checksum") != manifest_checksum(manifest):
        raise ModelError(
            f"{path}: was modified after training (its checksum does not match"
            f"{'; missing ' + ', '.join(missing) if missing else ''}); retrain the model"
        )
    return manifest


def load_trained(directory: str | Path, *, threads: int = 1) -> TrainedModel:
    """Load a model directory written by `save_trained`, verifying every file."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    for name, digest in manifest["files"].items():
        path = directory / name
        if not path.is_file():
            raise ModelError(f"{directory}: model file {name} is missing")
        if _sha256(path) != digest:
            raise ModelError(f"{directory}: model file {name} was modified after training")
    try:
        spec = ModelSpec.from_dict(manifest["spec"], where=f"{directory / MANIFEST}")
        model = build_model(spec, threads=threads).load(directory)
        config = FeatureConfig.from_dict(manifest["feature_config"])
        vocabulary = Vocabulary.from_dict(manifest["vocabulary"])
    except ModelError:
        raise
    except LtrError as error:
        raise ModelError(f"{directory / MANIFEST}: {error}") from None
    except Exception as error:  # the back-ends raise their own types; all mean "unusable"
        raise ModelError(
            f"{directory}: cannot load the model ({type(error).__name__}: {error})"
        ) from None
    names = model_feature_names(model, vocabulary, config)
    if not model.feature_names_ == manifest["feature_names"] == names:
        raise ModelError(f"{directory}: feature schema of the model and its manifest differ")
    return TrainedModel(
        model=model, feature_config=config, vocabulary=vocabulary, manifest=manifest
    )
