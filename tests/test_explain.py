"""`ltr explain`: photo and concept effects are exactly "score with - score without"."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ltr.cli.main import app
from ltr.data import Dataset, load_dataset
from ltr.data.synthetic import write_synthetic
from ltr.explain import explain_user
from ltr.models import preset
from ltr.models.persistence import TrainedModel
from ltr.situations import SITUATIONS
from ltr.workflow import train_model, training_set

runner = CliRunner()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainedModel, Dataset, Path, Path]:
    root = tmp_path_factory.mktemp("explain")
    write_synthetic(root / "data", n_users=200, seed=3)
    dataset = load_dataset(root / "data")
    model = train_model(training_set(dataset), preset("ridge"), root / "model")
    return model, dataset, root / "data", root / "model"


def without(dataset: Dataset, split: str, user: str, *, image=None, concept=None) -> Dataset:
    """`dataset` with one photo (or every detection of one concept) of `user` removed."""
    det = dataset.detections
    mine = det["user"] == user
    if image is not None:
        drop = mine & (det["image"] == image)
        images = dataset.images[
            ~((dataset.images["user"] == user) & (dataset.images["image"] == image))
        ]
    else:
        drop = mine & (det["concept"] == concept)
        images = dataset.images
    return Dataset(
        ratings=dataset.ratings,
        detections=det[~drop],
        images=images,
        users=dataset.users,
        labels=dataset.labels,
        layout=dataset.layout,
        source=dataset.source,
    )


def test_effects_equal_the_score_lost_without_the_photo_or_concept(trained) -> None:
    model, dataset, _, _ = trained
    user = dataset.split_users("test")[3]
    explanation = explain_user(model, dataset, "test", user)
    full = model.predict(dataset, "test").loc[user]
    np.testing.assert_allclose(explanation.scores.to_numpy(), full.to_numpy(), rtol=1e-12)

    images = dataset.images.loc[dataset.images["user"] == user, "image"].tolist()
    assert list(explanation.photos.index) == images
    for image in images[:3]:
        after = model.predict(without(dataset, "test", user, image=image), "test").loc[user]
        expected = (full - after).to_numpy()
        got = explanation.photos.loc[image, list(SITUATIONS)].to_numpy(dtype=float)
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)

    concept = explanation.concepts.index[0]
    after = model.predict(without(dataset, "test", user, concept=concept), "test").loc[user]
    got = explanation.concepts.loc[concept, list(SITUATIONS)].to_numpy(dtype=float)
    np.testing.assert_allclose(got, (full - after).to_numpy(), rtol=1e-9, atol=1e-12)
    # some photo changes something: a profile is not explained by nothing
    assert np.abs(explanation.photos[list(SITUATIONS)].to_numpy()).max() > 0


def test_percentiles_place_the_user_among_the_others(trained) -> None:
    model, dataset, _, _ = trained
    scores = model.predict(dataset, "test")
    user = scores["acc"].idxmax()
    explanation = explain_user(model, dataset, "test", user)
    assert explanation.percentiles["acc"] == pytest.approx(100.0)
    lowest = scores["acc"].idxmin()
    assert explain_user(model, dataset, "test", lowest).percentiles["acc"] == 0.0


def test_cli_prints_effects_and_writes_json(trained, tmp_path: Path) -> None:
    _, dataset, data_dir, model_dir = trained
    user = dataset.split_users("val")[0]
    out = tmp_path / "explain.json"
    result = runner.invoke(
        app,
        [
            "explain",
            str(model_dir),
            str(data_dir),
            "--split",
            "val",
            "--user",
            user,
            "--situation",
            "wait",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "photos that matter most for wait" in result.output
    written = json.loads(out.read_text())
    assert written["user"] == user and set(written["scores"]) == set(SITUATIONS)
    n_images = int((dataset.images["user"] == user).sum())
    assert len(written["photos"]) == n_images


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--split", "val", "--user", "nobody"], "no user 'nobody' in split 'val'"),
        (["--split", "val", "--user", "x", "--situation", "golf"], "unknown situation 'golf'"),
    ],
)
def test_cli_refuses_unknown_users_and_situations(trained, args, message) -> None:
    _, _, data_dir, model_dir = trained
    result = runner.invoke(app, ["explain", str(model_dir), str(data_dir), *args])
    assert result.exit_code == 1 and message in result.output, result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("calibration", ["none", "normal", "linear", "isotonic"])
def test_explained_scores_equal_the_predicted_ones_for_every_calibration(
    trained, tmp_path: Path, calibration: str
) -> None:
    """`explain` scores the profile in a batch with its what-if variants; the scores it reports
    must be those `predict` writes (a batch-relative calibration once made them differ)."""
    _, dataset, data_dir, _ = trained
    model_dir, run = tmp_path / "model", tmp_path / "run.json"
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"calibration": calibration}))
    args = ["train", str(data_dir), "--model-dir", str(model_dir), "--model", "ridge"]
    assert runner.invoke(app, [*args, "--params", str(params)]).exit_code == 0
    predict = ["predict", str(model_dir), str(data_dir), "--split", "test", "--out", str(run)]
    assert runner.invoke(app, predict).exit_code == 0
    written = json.loads(run.read_text())
    for user in list(dataset.split_users("test"))[:3]:
        out = tmp_path / f"{user}.json"
        args = ["explain", str(model_dir), str(data_dir), "--split", "test", "--user", user]
        assert runner.invoke(app, [*args, "--out", str(out)]).exit_code == 0
        explained = json.loads(out.read_text())["scores"]
        for situation in SITUATIONS:
            assert explained[situation] == pytest.approx(written[user][situation], abs=1e-12)
