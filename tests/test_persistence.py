"""Saved model directories: exact round trips for every back-end, the checks that refuse a wrong
use (version, modified or missing files, other ratings, other features), and atomic writes."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ltr.fileio as fileio
import ltr.models.persistence as persistence
from ltr import __version__
from ltr.data.dataset import Dataset
from ltr.data.synthetic import generate_synthetic
from ltr.errors import LtrWarning, ModelError
from ltr.features import FeatureConfig, featurize
from ltr.models import PRESETS, ModelSpec, build_model
from ltr.models.interface import ProfileModel
from ltr.models.learners import RidgeLearner
from ltr.models.persistence import (
    MANIFEST,
    TrainedModel,
    load_trained,
    manifest_checksum,
    save_trained,
)

CONFIG = FeatureConfig()


def fast(spec: ModelSpec) -> ModelSpec:
    if spec.members:
        return dataclasses.replace(spec, members=tuple(fast(m) for m in spec.members))
    if spec.learner in ("base", "ridge"):
        return spec
    if spec.learner == "extra-trees":
        return spec.merged({"params": {"n_estimators": 20}})
    return spec.merged({"params": {"num_boost_round": 20}})


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return generate_synthetic(300, seed=3).dataset


def fit(dataset: Dataset, spec: ModelSpec) -> ProfileModel:
    return build_model(spec).fit(featurize(dataset, "train", CONFIG), dataset.split_labels("train"))


def save(model: ProfileModel, directory: Path, dataset: Dataset, **kwargs: object) -> Path:
    return save_trained(
        model, directory, dataset=dataset, split="train", feature_config=CONFIG, **kwargs
    )


@pytest.fixture(scope="module")
def saved(dataset: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small saved ridge model, copied by the tests that damage it."""
    return save(fit(dataset, PRESETS["ridge"]), tmp_path_factory.mktemp("m") / "ridge", dataset)


def copy_of(saved: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(saved, tmp_path / "model"))


def entries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ----------------------------------------------------------------------------- round trips
ROUND_TRIPS = {
    "lgbm-lambdarank": (PRESETS["lgbm-lambdarank"], ".txt"),
    "lgbm-regression-pooled": (PRESETS["lgbm-regression-pooled"], ".txt"),
    "xgb-pairwise": (PRESETS["xgb-pairwise"], ".json"),
    "xgb-regression-pooled": (PRESETS["xgb-regression-pooled"], ".json"),
    "ridge": (PRESETS["ridge"], ".json"),
    "base": (PRESETS["base"], ".json"),
    "default (ensemble)": (PRESETS["default"], (".json", ".txt")),
    "lgbm isotonic": (
        dataclasses.replace(PRESETS["lgbm-regression"], calibration="isotonic"),
        ".txt",
    ),
    "xgb linear": (dataclasses.replace(PRESETS["xgb-ndcg"], calibration="linear"), ".json"),
    "ridge normal": (dataclasses.replace(PRESETS["ridge"], calibration="normal"), ".json"),
}


@pytest.mark.parametrize("name", list(ROUND_TRIPS))
def test_round_trip_predicts_identically(name: str, dataset: Dataset, tmp_path: Path) -> None:
    spec, suffix = ROUND_TRIPS[name]
    model = fit(dataset, fast(spec).with_seed(4))
    val = featurize(dataset, "val", CONFIG)
    before = model.predict(val)
    directory = save(model, tmp_path / "model", dataset, cv={"mean_pearson": 0.5})
    trained = load_trained(directory)
    assert isinstance(trained, TrainedModel) and trained.spec == model.spec
    after = trained.predict(dataset, "val")
    np.testing.assert_array_equal(after.to_numpy(), before.to_numpy())  # bit for bit
    assert after.index.equals(before.index)
    # the native, inspectable files are there, each with its checksum in the manifest
    manifest = json.loads((directory / MANIFEST).read_text())
    assert sorted(manifest["files"]) == [f for f in entries(directory) if f != MANIFEST]
    native = [f for f in manifest["files"] if not f.endswith("state.json")]
    assert native and all(f.endswith(suffix) for f in native if "ensemble" not in f)
    for name_ in native:
        text = (directory / name_).read_text()
        if name_.endswith(".txt"):
            assert text.startswith("tree\nversion=")  # LightGBM's text model
        else:
            json.loads(text)  # XGBoost / ridge / BASE state as plain JSON, never pickle


def test_manifest_records_what_loading_checks(dataset: Dataset, saved: Path) -> None:
    manifest = json.loads((saved / MANIFEST).read_text())
    assert manifest["format"] == persistence.FORMAT and manifest["ltr_version"] == __version__
    assert manifest["spec"] == PRESETS["ridge"].to_dict()
    assert manifest["feature_config"] == CONFIG.to_dict()
    train = featurize(dataset, "train", CONFIG).select(PRESETS["ridge"].families)
    assert manifest["feature_names"] == list(train.columns["name"])
    assert manifest["data"]["fingerprint"] == dataset.fingerprint()
    assert manifest["data"]["split"] == "train" and manifest["data"]["n_users"] == 180
    assert manifest["checksum"] == manifest_checksum(manifest)


def test_ensemble_files_are_prefixed_per_member(dataset: Dataset, tmp_path: Path) -> None:
    directory = save(fit(dataset, fast(PRESETS["default"])), tmp_path / "model", dataset)
    names = entries(directory)
    assert {"m1-state.json", "m2-state.json", "ensemble.json", "state.json"} <= set(names)
    assert {f"m1-{s}.json" for s in ("acc", "bank", "it", "wait")} <= set(names)


# -------------------------------------------------------------------------------- refusals
def test_loads_a_model_another_ltr_version_wrote_in_the_same_format(
    dataset: Dataset, saved: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = load_trained(saved).predict(dataset, "val")
    monkeypatch.setattr(persistence, "__version__", "9.9.9")
    pd.testing.assert_frame_equal(load_trained(saved).predict(dataset, "val"), expected)


def test_refuses_another_format_naming_the_version_that_wrote_it(
    saved: Path, tmp_path: Path
) -> None:
    directory = copy_of(saved, tmp_path)
    manifest = json.loads((directory / MANIFEST).read_text())
    manifest["format"], manifest["ltr_version"] = 1, "0.0.7"
    (directory / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ModelError) as caught:
        load_trained(directory)
    message = str(caught.value)
    assert "\n" not in message
    assert f"model file format 1 (written by ltr 0.0.7); ltr {__version__} reads format " in message
    assert message.endswith(f"{persistence.FORMAT}: retrain the model")


@pytest.mark.parametrize("victim", ["acc.json", "state.json"])
def test_refuses_a_modified_file(saved: Path, tmp_path: Path, victim: str) -> None:
    directory = copy_of(saved, tmp_path)
    with open(directory / victim, "a") as handle:
        handle.write(" ")
    with pytest.raises(ModelError, match=rf"model file {victim} was modified after training"):
        load_trained(directory)


def test_refuses_a_missing_file(saved: Path, tmp_path: Path) -> None:
    directory = copy_of(saved, tmp_path)
    (directory / "wait.json").unlink()
    with pytest.raises(ModelError, match=r"model file wait.json is missing"):
        load_trained(directory)


@pytest.mark.parametrize(
    ("field", "value"),
    [("calibration", "normal"), ("learner", "lgbm-regression"), ("families", ["freq"])],
)
def test_refuses_an_edited_manifest(saved: Path, tmp_path: Path, field: str, value: object) -> None:
    """An edited spec would load and silently predict something else (or crash a back-end)."""
    directory = copy_of(saved, tmp_path)
    manifest = json.loads((directory / MANIFEST).read_text())
    manifest["spec"][field] = value
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2))
    with pytest.raises(ModelError, match=r"model.json: was modified after training"):
        load_trained(directory)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[]", "not a model manifest"),
        ("{", "cannot read the model manifest"),
        ("[" * 100_000 + "]" * 100_000, "cannot read the model manifest.*nested too deeply"),
        (
            f'{{"format": {persistence.FORMAT}, "ltr_version": "{__version__}"}}',
            "missing spec, feature_config",
        ),
    ],
)
def test_refuses_a_broken_manifest(saved: Path, tmp_path: Path, content: str, message: str) -> None:
    directory = copy_of(saved, tmp_path)
    (directory / MANIFEST).write_text(content)
    with pytest.raises(ModelError, match=message):
        load_trained(directory)


def test_refuses_a_folder_that_is_not_a_model(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"not a model directory \(no model.json; train one"):
        load_trained(tmp_path)
    with pytest.raises(ModelError, match="not a model directory"):
        load_trained(tmp_path / "nowhere")


def test_refuses_data_with_other_concept_ratings(dataset: Dataset, saved: Path) -> None:
    ratings = dataset.ratings.copy()
    ratings.iloc[5, 2] += 0.5
    other = dataclasses.replace(dataset, ratings=ratings)
    trained = load_trained(saved)
    with pytest.raises(ModelError, match="concept ratings differ from those the model was"):
        trained.predict(other, "val")
    trained.predict(dataset, "val")  # the training data itself is fine


def test_a_concept_the_model_never_saw_is_ignored_with_a_warning(
    dataset: Dataset, saved: Path
) -> None:
    """Same ratings, but the data shows a concept the training data never had: the model has no
    column for it, so its detections are dropped (counted in a warning)."""
    val = dataset.detections["split"] == "val"
    rows = dataset.detections.index[val][:3]
    detections = dataset.detections.copy()
    detections.loc[rows, "concept"] = "never-seen-concept"
    other = dataclasses.replace(dataset, detections=detections)
    without = dataclasses.replace(dataset, detections=detections.drop(index=rows))
    trained = load_trained(saved)
    with pytest.warns(
        LtrWarning,
        match=r"1 concept\(s\) the model was not trained with are "
        r"ignored \(3 detections\): never-seen-concept \(3\)",
    ):
        scores = trained.predict(other, "val")
    pd.testing.assert_frame_equal(scores, trained.predict(without, "val"))


def test_load_turns_back_end_failures_into_model_errors(
    saved: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = copy_of(saved, tmp_path)

    def broken(self: RidgeLearner, path: Path) -> RidgeLearner:
        raise ValueError("unreadable")

    monkeypatch.setattr(RidgeLearner, "load", broken)
    with pytest.raises(ModelError, match=r"cannot load the model \(ValueError: unreadable\)"):
        load_trained(directory)


# ------------------------------------------------------------------------- atomic writes
def failing_save(monkeypatch: pytest.MonkeyPatch) -> None:
    """The third ridge file fails half-way (a full disk, say)."""
    original = RidgeLearner.save
    count = {"n": 0}

    def save_(self: RidgeLearner, path: Path) -> None:
        count["n"] += 1
        if count["n"] == 3:
            path.write_text('{"coef": [1, 2')
            raise OSError(28, "No space left on device")
        original(self, path)

    monkeypatch.setattr(RidgeLearner, "save", save_)


def test_a_failed_save_leaves_nothing_behind(
    dataset: Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = fit(dataset, PRESETS["ridge"])
    failing_save(monkeypatch)
    with pytest.raises(OSError, match="No space left"):
        save(model, tmp_path / "model", dataset)
    assert entries(tmp_path) == []  # no model dir, no temporary sibling


def test_a_failed_save_keeps_the_previous_model(
    dataset: Dataset, saved: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = copy_of(saved, tmp_path)
    before = {name: (directory / name).read_bytes() for name in entries(directory)}
    model = fit(dataset, dataclasses.replace(PRESETS["ridge"], calibration="normal"))
    failing_save(monkeypatch)
    with pytest.raises(OSError):
        save(model, directory, dataset)
    assert {name: (directory / name).read_bytes() for name in entries(directory)} == before
    assert entries(tmp_path) == ["model"]
    load_trained(directory)


def test_the_swap_is_one_atomic_exchange(
    dataset: Dataset, saved: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replacing a model exchanges the two folders in one step: at no moment is there no model
    at the path (checked at the one point a non-atomic swap would show it)."""
    directory = copy_of(saved, tmp_path)
    exchange = fileio._rename_exchange
    seen = []

    def watched(a: Path, b: Path) -> bool:
        swapped = exchange(a, b)
        seen.append((swapped, (b / MANIFEST).is_file()))
        return swapped

    replace = os.replace

    def no_fallback(src: os.PathLike, dst: os.PathLike) -> None:
        assert Path(dst) != directory and Path(src) != directory, "not atomic"
        replace(src, dst)

    monkeypatch.setattr(fileio, "_rename_exchange", watched)
    monkeypatch.setattr(fileio.os, "replace", no_fallback)
    save(fit(dataset, PRESETS["base"]), directory, dataset)
    assert seen == [(True, True)]
    assert load_trained(directory).spec == PRESETS["base"]
    assert entries(tmp_path) == ["model"]


def test_without_an_atomic_exchange_a_failed_swap_puts_the_previous_model_back(
    dataset: Dataset, saved: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = copy_of(saved, tmp_path)
    before = {name: (directory / name).read_bytes() for name in entries(directory)}
    replace = os.replace

    def flaky_replace(src: os.PathLike, dst: os.PathLike) -> None:
        if Path(dst) == directory and not str(src).endswith("-old"):
            raise OSError(5, "I/O error")  # moving the new model into place fails
        replace(src, dst)

    monkeypatch.setattr(fileio, "_rename_exchange", lambda a, b: False)
    monkeypatch.setattr(fileio.os, "replace", flaky_replace)
    with pytest.raises(OSError, match="I/O error"):
        save(fit(dataset, PRESETS["base"]), directory, dataset)
    assert {name: (directory / name).read_bytes() for name in entries(directory)} == before
    assert entries(tmp_path) == ["model"]


def test_the_next_save_removes_what_a_crashed_save_left_and_says_so(
    dataset: Dataset, saved: Path, tmp_path: Path
) -> None:
    directory = copy_of(saved, tmp_path)
    dead = tmp_path / ".model.ltr-tmp-999999999-dead"  # no such process
    live = tmp_path / f".model.ltr-tmp-{os.getpid()}-live"  # a save still running
    for leftover in (dead, live):
        leftover.mkdir()
        (leftover / "state.json").write_text("{}")
    with pytest.warns(LtrWarning, match=r"removed what an interrupted write of .*model left"):
        save(fit(dataset, PRESETS["base"]), directory, dataset)
    assert not dead.exists() and live.exists()
    assert sorted(entries(tmp_path)) == sorted(["model", live.name])


def test_a_model_dir_replaces_a_model_dir_but_nothing_else(
    dataset: Dataset, saved: Path, tmp_path: Path
) -> None:
    directory = copy_of(saved, tmp_path)
    save(fit(dataset, PRESETS["base"]), directory, dataset)
    assert load_trained(directory).spec == PRESETS["base"]
    assert entries(tmp_path) == ["model"] and "acc.json" not in entries(directory)
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("keep me")
    with pytest.raises(ModelError, match="exists and is not a model directory; not replacing"):
        save(fit(dataset, PRESETS["base"]), notes, dataset)
    assert entries(notes) == ["todo.txt"] and (notes / "todo.txt").read_text() == "keep me"
    assert entries(tmp_path) == ["model", "notes"]
