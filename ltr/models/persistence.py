"""Model directories: native model files plus everything needed to refuse a wrong use.

    MODEL_DIR/
      model.json           spec, feature config + schema, data fingerprints, CV figures,
                           package version, a checksum of every file below and of itself
      state.json, *.txt, *.json   the model's own files (LightGBM text, XGBoost JSON, ...)

A directory is written to a temporary sibling and renamed into place, so a crash never leaves a
half-written model behind. `load_trained` checks the format, the package version, the files'
checksums (model.json's own included: an edited spec would silently change the predictions)
and, against the data it is asked to score, the concept ratings and feature schema.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ltr import __version__
from ltr.data import Dataset
from ltr.errors import ModelError
from ltr.features import FeatureConfig, FeatureMatrix, featurize
from ltr.fileio import public_mode, write_json_atomic
from ltr.models.interface import ProfileModel
from ltr.models.registry import build_model
from ltr.models.spec import ModelSpec

MANIFEST = "model.json"
#: 2: model.json holds a checksum of its own content.
FORMAT = 2
#: Fields every manifest has (besides format, ltr_version and checksum).
MANIFEST_FIELDS = ("spec", "feature_config", "feature_names", "data", "cv", "files")


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
    manifest: dict[str, Any]

    @property
    def spec(self) -> ModelSpec:
        return self.model.spec

    def features(self, dataset: Dataset, split: str) -> FeatureMatrix:
        """Featurise `split` exactly as the training data was, after checking compatibility."""
        check_compatible(self.manifest, dataset)
        return featurize(dataset, split, self.feature_config)

    def predict(self, dataset: Dataset, split: str) -> pd.DataFrame:
        return self.model.predict(self.features(dataset, split))


def save_trained(
    model: ProfileModel,
    directory: str | Path,
    *,
    dataset: Dataset,
    split: str,
    feature_config: FeatureConfig,
    cv: dict[str, Any] | None = None,
) -> Path:
    """Write `model` (trained on `split` of `dataset`) to `directory`, atomically."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    public_mode(tmp, directory=True)
    try:
        files = model.save(tmp)
        manifest = {
            "format": FORMAT,
            "ltr_version": __version__,
            "spec": model.spec.to_dict(),
            "feature_config": feature_config.to_dict(),
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
        if directory.exists():
            if not (directory / MANIFEST).is_file():
                raise ModelError(
                    f"{directory}: exists and is not a model directory; not replacing it"
                )
            old = Path(tempfile.mkdtemp(prefix=f".{directory.name}.old.", dir=directory.parent))
            os.replace(directory, old / "model")
            try:
                os.replace(tmp, directory)
            except OSError:
                os.replace(old / "model", directory)  # put the previous model back
                old.rmdir()
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, directory)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
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
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ModelError(f"{path}: cannot read the model manifest ({error})") from None
    if not isinstance(manifest, dict):
        raise ModelError(f"{path}: not a model manifest (expected a JSON object)")
    if manifest.get("format") != FORMAT:
        raise ModelError(
            f"{path}: model format {manifest.get('format')!r}, this ltr reads {FORMAT}"
        )
    if manifest.get("ltr_version") != __version__:
        raise ModelError(
            f"{path}: trained with ltr {manifest.get('ltr_version')}, this is ltr {__version__}; "
            "retrain the model with this version"
        )
    missing = [key for key in MANIFEST_FIELDS if key not in manifest]
    if missing or manifest.get("checksum") != manifest_checksum(manifest):
        raise ModelError(
            f"{path}: was modified after training (its checksum does not match"
            f"{'; missing ' + ', '.join(missing) if missing else ''}); retrain the model"
        )
    return manifest


def check_compatible(manifest: dict[str, Any], dataset: Dataset) -> None:
    """Refuse data whose concept ratings differ from the training data's."""
    expected = manifest["data"]["ratings_fingerprint"]
    if ratings_fingerprint(dataset) != expected:
        raise ModelError(
            f"{dataset.name}: its concept ratings differ from those of the data the model was "
            f"trained on ({manifest['data'].get('source')}); features would not mean the same"
        )


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
    except ModelError:
        raise
    except Exception as error:  # the back-ends raise their own types; all mean "unusable"
        raise ModelError(
            f"{directory}: cannot load the model ({type(error).__name__}: {error})"
        ) from None
    if model.feature_names_ != manifest["feature_names"]:
        raise ModelError(f"{directory}: feature schema of the model and its manifest differ")
    return TrainedModel(model=model, feature_config=config, manifest=manifest)
