"""A trained model keeps its concept vocabulary: data with other concepts gets its columns.

Hand-made folders: one where an unrated concept appears only in the training split (a folder
holding only the scored splits lacks it), and one where a concept nobody has seen appears only
in the scored split. Before the vocabulary was stored, both broke with "N vs M columns".
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from ltr.cli.main import app
from ltr.data import load_dataset
from ltr.data.synthetic import write_synthetic
from ltr.errors import LtrWarning, ModelError
from ltr.explain import explain_user
from ltr.features import Vocabulary, featurize
from ltr.models.persistence import load_trained
from ltr.submission import read_run

runner = CliRunner()
UNRATED = "VC_unrated_in_train"
NEW = "VC_never_seen"


def run(*args: object) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result.output


def add_detections(folder: Path, split: str, concept: str, users: int) -> dict[str, int]:
    """Add one detection of `concept` to the first image of the first `users` users of `split`
    (images that already show something); returns detections added per user."""
    path = folder / f"predictions_{split}.json"
    raw = json.loads(path.read_text())
    added = {}
    for user in [u for u, images in raw.items() if images][:users]:
        first = next(iter(raw[user]))
        raw[user][first].append(f"{concept} 0.5 0.1 0.1 0.4 0.4")
        added[user] = 1
    path.write_text(json.dumps(raw))
    return added


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("vocabulary")
    train = root / "train-folder"
    write_synthetic(train, n_users=150, seed=11)
    add_detections(train, "train", UNRATED, users=30)  # an unrated concept, train split only
    model = root / "model"
    run("train", train, "--model-dir", model, "--model", "ridge")

    scored_only = root / "scored-only"  # the same data without the training split
    shutil.copytree(train, scored_only)
    for name in ("predictions_train.json", "gt_train.json", "gt_val.json"):
        (scored_only / name).unlink(missing_ok=True)

    with_new = root / "with-new"  # a concept nobody has seen, in the scored split only
    shutil.copytree(scored_only, with_new)
    add_detections(with_new, "test", NEW, users=2)
    return {"train": train, "model": model, "scored_only": scored_only, "with_new": with_new}


def test_the_model_stores_its_vocabulary_and_ratings(folders: dict[str, Path]) -> None:
    trained = load_trained(folders["model"])
    dataset = load_dataset(folders["train"])
    assert list(trained.vocabulary.concepts) == [*dataset.ratings.index, UNRATED]
    assert not trained.vocabulary.rated[-1] and trained.vocabulary.rated[:-1].all()
    assert (trained.vocabulary.ratings[-1] == 0).all()
    assert trained.vocabulary.has_boxes
    assert Vocabulary.from_dict(trained.vocabulary.to_dict()).to_dict() == (
        trained.vocabulary.to_dict()
    )


def test_a_folder_without_the_unrated_training_concept_is_scored_the_same(
    folders: dict[str, Path], tmp_path: Path
) -> None:
    scored_only = load_dataset(folders["scored_only"])
    assert UNRATED not in set(scored_only.detections["concept"])  # its own vocabulary lacks it
    for split in ("val", "test"):
        here, there = tmp_path / f"here-{split}.json", tmp_path / f"there-{split}.json"
        run("predict", folders["model"], folders["train"], "--split", split, "--out", here)
        run("predict", folders["model"], folders["scored_only"], "--split", split, "--out", there)
        pd.testing.assert_frame_equal(read_run(there), read_run(here))


def test_a_concept_never_seen_is_ignored_with_a_warning_and_counts(
    folders: dict[str, Path], tmp_path: Path
) -> None:
    trained = load_trained(folders["model"])
    with_new = load_dataset(folders["with_new"])
    with pytest.warns(LtrWarning) as caught:
        scores = trained.predict(with_new, "test")
    (message,) = [str(w.message) for w in caught if NEW in str(w.message)]
    assert "1 concept(s) the model was not trained with are ignored (2 detections)" in message
    assert f"{NEW} (2)" in message
    baseline = trained.predict(load_dataset(folders["scored_only"]), "test")
    pd.testing.assert_frame_equal(scores, baseline)  # ignored: as if they were not there

    out = tmp_path / "run.json"
    run("predict", folders["model"], folders["with_new"], "--split", "test", "--out", out)
    pd.testing.assert_frame_equal(read_run(out), baseline.rename_axis(read_run(out).index.name))


def only_other_concepts(folders: dict[str, Path], tmp_path: Path) -> Path:
    """The scored-only folder with every detection renamed to a concept the model never saw
    (as data from another data set look to it), except the users of split val."""
    other = tmp_path / "other-data-set"
    shutil.copytree(folders["scored_only"], other)
    path = other / "predictions_test.json"
    raw = json.loads(path.read_text())
    for images in raw.values():
        for detections in images.values():
            detections[:] = [f"OTHER_{line}" for line in detections]
    path.write_text(json.dumps(raw))
    return other


def test_data_sharing_no_concept_with_the_model_is_refused(
    folders: dict[str, Path], tmp_path: Path
) -> None:
    other = only_other_concepts(folders, tmp_path)
    dataset = load_dataset(other)
    count = int((dataset.detections["user"].isin(dataset.split_users("test"))).sum())
    trained = load_trained(folders["model"])
    with pytest.raises(ModelError) as caught:
        trained.predict(dataset, "test")
    message = str(caught.value)
    assert message.startswith(
        f"{dataset.name} test: none of its {count} detections is of a concept the model was "
        "trained with"
    ), message
    assert "trained on another data set" in message and "\n" not in message
    trained.predict(dataset, "val")  # untouched split: its concepts are the model's

    out = tmp_path / "run.json"
    result = runner.invoke(
        app, ["predict", str(folders["model"]), str(other), "--split", "test", "--out", str(out)]
    )
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert result.exit_code == 1 and errors == [f"error: {message}"], result.output
    assert "Traceback" not in result.output and not out.exists()


def test_explain_works_on_a_folder_with_other_concepts(folders: dict[str, Path]) -> None:
    trained = load_trained(folders["model"])
    with_new = load_dataset(folders["with_new"])
    user = next(u for u in with_new.split_users("test") if u in set(with_new.detections["user"]))
    with pytest.warns(LtrWarning, match=NEW):
        explanation = explain_user(trained, with_new, "test", user)
        scores = trained.predict(with_new, "test").loc[user]
    pd.testing.assert_series_equal(explanation.scores, scores, check_names=False)
    assert NEW in set(explanation.concepts.index)  # shown, with no effect: the model ignores it
    assert (explanation.concepts.loc[NEW, ["acc", "bank", "it", "wait"]].abs() < 1e-12).all()


def test_the_training_features_are_those_of_the_stored_vocabulary(
    folders: dict[str, Path],
) -> None:
    """Featurising the training folder with the stored vocabulary changes nothing."""
    trained = load_trained(folders["model"])
    dataset = load_dataset(folders["train"])
    own = featurize(dataset, "train", trained.feature_config)
    stored = featurize(dataset, "train", trained.feature_config, trained.vocabulary)
    assert list(own.columns["name"]) == list(stored.columns["name"])
    assert (own.values != stored.values).nnz == 0
