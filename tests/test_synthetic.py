"""The embedded synthetic data set: determinism, calibration to the real facts, learnable
structure, the challenge-layout writer and `ltr data synth`."""

from __future__ import annotations

import json
import math
import re
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from ltr.baseline import base_scores
from ltr.cli import synth_commands
from ltr.data.challenge import SPLITS
from ltr.data.challenge_writer import write_challenge_layout
from ltr.data.dataset import Dataset
from ltr.data.synthetic import (
    MIN_USERS,
    N_CONCEPTS,
    SPLIT_SHARES,
    TRUTH_FILE,
    SyntheticData,
    generate_synthetic,
    split_sizes,
    write_synthetic,
)
from ltr.errors import LtrError
from ltr.metrics import pearson_columns, score_run
from ltr.situations import SITUATIONS

FRAMES = ("detections", "images", "users", "labels")
ID = re.compile(r"[a-z0-9]{16}")


@pytest.fixture(scope="module")
def big() -> SyntheticData:
    """A few thousand users: enough for the calibration facts, generated in well under 1 s."""
    return generate_synthetic(4000, seed=0)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SyntheticData]:
    out = tmp_path_factory.mktemp("synthetic") / "set"
    return out, write_synthetic(out, n_users=300, seed=1)


def _read(path: Path) -> object:
    return json.loads(path.read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------- determinism
def test_same_seed_gives_identical_files(tmp_path: Path) -> None:
    write_synthetic(tmp_path / "a", n_users=150, seed=7)
    write_synthetic(tmp_path / "b", n_users=150, seed=7)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
    assert "predictions_train.json" in names
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_different_seed_gives_different_files(tmp_path: Path) -> None:
    write_synthetic(tmp_path / "a", n_users=150, seed=7)
    write_synthetic(tmp_path / "b", n_users=150, seed=8)
    for name in ("class_scores.json", "predictions_train.json", "gt_val.json", TRUTH_FILE):
        assert (tmp_path / "a" / name).read_bytes() != (tmp_path / "b" / name).read_bytes()


def test_same_seed_gives_identical_frames() -> None:
    a, b = generate_synthetic(200, seed=3), generate_synthetic(200, seed=3)
    for name in FRAMES:
        pd.testing.assert_frame_equal(getattr(a.dataset, name), getattr(b.dataset, name))
    pd.testing.assert_frame_equal(a.dataset.ratings, b.dataset.ratings)
    pd.testing.assert_frame_equal(a.clean_labels, b.clean_labels)
    assert a.dataset.fingerprint() == b.dataset.fingerprint()
    assert a.truth_json() == b.truth_json()


def test_default_set_has_a_known_fingerprint() -> None:
    """Recorded before `ltr.data.synthetic` was split into a package: refactoring the generator
    must not change a single generated value (saved models and studies store fingerprints)."""
    assert generate_synthetic(1000, seed=0).dataset.fingerprint() == "428df9a941c32908"


def test_different_seed_gives_different_frames() -> None:
    a, b = generate_synthetic(200, seed=3), generate_synthetic(200, seed=4)
    assert a.dataset.fingerprint() != b.dataset.fingerprint()
    assert not set(a.dataset.users["user"]) & set(b.dataset.users["user"])
    assert not np.array_equal(a.dataset.ratings.to_numpy(), b.dataset.ratings.to_numpy())


@pytest.mark.parametrize("n_users", [9, 0, -5])
def test_too_few_users_is_a_clear_error(n_users: int) -> None:
    with pytest.raises(LtrError, match="at least 10 users"):
        generate_synthetic(n_users)


@pytest.mark.parametrize("seed", [-1, 1.5, "0"])
def test_bad_seed_is_a_clear_error(seed: object) -> None:
    with pytest.raises(LtrError, match="seed"):
        generate_synthetic(20, seed=seed)  # type: ignore[arg-type]


# ------------------------------------------------------------------------ shape and splits
def test_split_shares_are_keyed_by_the_one_list_of_split_names() -> None:
    assert tuple(SPLIT_SHARES) == SPLITS
    assert sum(SPLIT_SHARES.values()) == pytest.approx(1.0)
    assert [split_sizes(n) for n in (10, 1000, 1001)] == [
        [6, 2, 2],
        [600, 200, 200],
        [601, 200, 200],
    ]


def test_splits_users_and_labels(big: SyntheticData) -> None:
    ds = big.dataset
    assert ds.layout == "synthetic"
    assert ds.splits == ("train", "val", "test")
    assert [len(ds.split_users(s)) for s in ds.splits] == [2400, 800, 800]
    assert not ds.users["user"].duplicated().any()  # no user in two splits
    assert ds.users["user"].map(lambda u: bool(ID.fullmatch(u))).all()
    assert ds.images["image"].map(lambda i: bool(ID.fullmatch(i))).all()
    assert not ds.images["image"].duplicated().any()
    # Labels for train and val only, for every user there; test labels are withheld.
    assert ds.has_labels("train") and ds.has_labels("val") and not ds.has_labels("test")
    for split in ("train", "val"):
        assert list(ds.split_labels(split).index) == list(ds.split_users(split))
    assert list(big.withheld_labels["user"]) == list(ds.split_users("test"))
    assert list(big.clean_labels["user"]) == list(ds.users["user"])
    assert np.isfinite(ds.labels[list(SITUATIONS)].to_numpy()).all()
    # Every image has a detection (the challenge files list no other), of a rated concept.
    assert set(ds.images["image"]) == set(ds.detections["image"])
    assert list(ds.ratings.index) == [f"VC{i}" for i in range(N_CONCEPTS)]
    assert ds.unrated_concepts == []
    assert ds.has_boxes


def test_profile_sizes_and_detections_match_the_real_data(big: SyntheticData) -> None:
    ds = big.dataset
    per_user = ds.images.groupby("user").size()
    assert per_user.min() >= 13 and per_user.max() <= 68
    assert per_user.mean() == pytest.approx(35.6, abs=1.0)
    per_image = ds.detections.groupby("image").size()
    share = per_image.value_counts(normalize=True)
    assert share[1] == pytest.approx(0.84, abs=0.015)
    assert share[2] == pytest.approx(0.12, abs=0.015)
    assert share[3] == pytest.approx(0.026, abs=0.008)
    assert per_image.max() <= 8
    assert per_image.mean() == pytest.approx(1.22, abs=0.03)


def test_confidences_and_boxes_match_the_real_data(big: SyntheticData) -> None:
    det = big.dataset.detections
    conf = det["confidence"].to_numpy()
    assert conf.min() >= 0.3 and conf.max() <= 1.0
    quantiles = np.quantile(conf, [0.1, 0.5, 0.9, 0.99])
    np.testing.assert_allclose(quantiles, [0.31, 0.37, 0.51, 0.66], atol=0.02)
    x0, y0, x1, y1 = (det[c].to_numpy() for c in ("x0", "y0", "x1", "y1"))
    assert ((x0 >= 0) & (x0 < x1) & (x1 <= 1) & (y0 >= 0) & (y0 < y1) & (y1 <= 1)).all()


def test_concept_frequencies_are_long_tailed(big: SyntheticData) -> None:
    share = big.dataset.detections["concept"].value_counts(normalize=True)
    assert 0.06 <= share.iloc[0] <= 0.10  # the most frequent concept (real: ~8%)
    assert share.iloc[:10].sum() > 0.25
    assert N_CONCEPTS - 12 <= len(share) < N_CONCEPTS  # a few concepts never occur
    assert (share < 0.0005).sum() >= 40  # a long tail of rare ones


def test_ratings_match_the_real_data(big: SyntheticData) -> None:
    ratings = big.dataset.ratings
    values = ratings.to_numpy()
    assert -3.0 <= values.min() < -2.0 and 1.8 < values.max() <= 3.0
    assert 0.09 <= (values == 0).mean() <= 0.2  # real: 14% exact zeros
    corr = np.corrcoef(values.T)[np.triu_indices(4, 1)]
    assert (corr > 0.4).all()  # correlated across situations (real: 0.58-0.81)


def test_labels_match_the_real_data(big: SyntheticData) -> None:
    labels = big.dataset.labels[list(SITUATIONS)]
    assert labels.mean().abs().max() < 0.05
    assert ((labels.std() > 0.42) & (labels.std() < 0.58)).all()
    corr = labels.corr()
    assert corr.loc["acc", "bank"] == pytest.approx(0.77, abs=0.1)
    assert corr.loc["acc", "it"] == pytest.approx(0.51, abs=0.12)
    assert corr.loc["it", "bank"] == pytest.approx(0.52, abs=0.12)
    for other in ("acc", "bank", "it"):
        assert -0.05 <= corr.loc["wait", other] <= 0.3


# ----------------------------------------------------------------- structure to be learned
def test_noise_ceiling_is_the_correlation_of_clean_and_noisy_labels(big: SyntheticData) -> None:
    clean = big.clean_labels.set_index("user")
    for split in ("train", "val"):
        noisy = big.dataset.split_labels(split)
        ceiling = pearson_columns(clean.loc[noisy.index, list(SITUATIONS)].to_numpy(), noisy)
        assert big.noise_ceiling[split]["mean"] == pytest.approx(ceiling.mean(), abs=1e-9)
        assert 0.72 <= ceiling.mean() <= 0.88
    test = big.withheld_labels.set_index("user")[list(SITUATIONS)]
    ceiling = pearson_columns(clean.loc[test.index, list(SITUATIONS)].to_numpy(), test.to_numpy())
    assert big.noise_ceiling["test"]["mean"] == pytest.approx(ceiling.mean(), abs=1e-9)


def _profile_features(dataset: Dataset, users: pd.Index) -> np.ndarray:
    """Share of images holding each concept, BASE per situation and profile size."""
    det = dataset.detections
    pairs = det.drop_duplicates(["user", "image", "concept"])
    counts = pd.crosstab(pairs["user"], pairs["concept"]).reindex(users, fill_value=0)
    n_images = dataset.images.groupby("user").size().loc[users]
    base = pd.concat([base_scores(dataset, s, 0.3) for s in dataset.splits]).loc[users]
    return np.column_stack([counts.div(n_images, axis=0), base, n_images])


def test_a_learned_model_clearly_beats_base(big: SyntheticData) -> None:
    """The labels hold structure beyond a weighted sum of ratings (saturation, key concepts,
    pairs, themes): a plain ridge regression on profile features finds part of it."""
    ds = big.dataset
    train, val = ds.split_labels("train"), ds.split_labels("val")
    x_train = _profile_features(ds, train.index)
    x_val = _profile_features(ds, val.index)
    mean, sd = x_train.mean(axis=0), x_train.std(axis=0) + 1e-9
    x_train, x_val = (x_train - mean) / sd, (x_val - mean) / sd
    gram = x_train.T @ x_train + 300.0 * np.eye(x_train.shape[1])
    weights = np.linalg.solve(gram, x_train.T @ (train - train.mean()).to_numpy())
    learned = score_run(pd.DataFrame(x_val @ weights, val.index, list(SITUATIONS)), val)
    base = score_run(base_scores(ds, "val", 0.3), val)
    assert 0.2 <= base.official <= 0.45  # like BASE on the real data (0.28 on aware2023)
    assert learned.official >= base.official + 0.1
    assert learned.official < big.noise_ceiling["val"]["mean"]


def test_default_set_is_calibrated_like_the_real_data() -> None:
    """The numbers quoted in the README for the default set (1000 users, seed 0)."""
    data = generate_synthetic()
    base = score_run(base_scores(data.dataset, "val", 0.3), data.dataset.split_labels("val"))
    assert 0.25 <= base.official <= 0.40
    assert 0.75 <= data.noise_ceiling["val"]["mean"] <= 0.85


def test_key_concepts_matter_regardless_of_their_rating(big: SyntheticData) -> None:
    """The first key concept of each situation acts against its rating."""
    ratings = big.dataset.ratings
    for situation, concepts in big.appeal.key_concepts.items():
        concept, weight = next(iter(concepts.items()))
        assert np.sign(weight) == -np.sign(ratings.at[concept, situation])
        assert big.dataset.detections["concept"].eq(concept).mean() > 0.002


# ----------------------------------------------------------------------- written files
def test_written_files_parse_with_plain_json_and_match_the_dataset(
    written: tuple[Path, SyntheticData],
) -> None:
    out, data = written
    ds = data.dataset
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [
            "class_scores.json",
            "predictions_train.json",
            "predictions_val.json",
            "predictions_test.json",
            "gt_train.json",
            "gt_val.json",
            TRUTH_FILE,
        ]
    )
    scores = _read(out / "class_scores.json")
    assert list(scores) == list(ds.ratings.index)
    for concept, entry in scores.items():
        assert list(entry) == ["acc", "it", "bank", "wait"]
        assert all(isinstance(v, str) for v in entry.values())  # numbers as strings
        assert {s: float(v) for s, v in entry.items()} == ds.ratings.loc[concept].to_dict()
    for split in ds.splits:
        predictions = _read(out / f"predictions_{split}.json")
        assert list(predictions) == list(ds.split_users(split))
        det = ds.split_detections(split)
        rows = [
            [user, image, *text.split()]
            for user, images in predictions.items()
            for image, found in images.items()
            for text in found
        ]
        assert len(rows) == len(det)
        parsed = pd.DataFrame(
            rows, columns=["user", "image", "concept", "c", "x0", "y0", "x1", "y1"]
        )
        assert (
            parsed[["user", "image", "concept"]].to_numpy()
            == det[["user", "image", "concept"]].to_numpy()
        ).all()
        for ours, theirs in (("c", "confidence"), ("x0", "x0"), ("y1", "y1")):
            assert (parsed[ours].astype(float).to_numpy() == det[theirs].to_numpy()).all()
    for split in ("train", "val"):
        gt = _read(out / f"gt_{split}.json")
        labels = ds.split_labels(split)
        assert list(gt) == list(labels.index)
        first = next(iter(gt.values()))
        assert list(first) == ["acc", "bank", "it", "wait"]
        assert pd.DataFrame.from_dict(gt, orient="index").equals(labels.rename_axis(None))


def test_truth_file_holds_clean_labels_and_parameters(written: tuple[Path, SyntheticData]) -> None:
    out, data = written
    truth = _read(out / TRUTH_FILE)
    assert truth["seed"] == 1 and truth["n_users"] == 300
    assert set(truth["noise_ceiling"]) == {"train", "val", "test"}
    assert truth["noise_ceiling"]["val"]["mean"] == data.noise_ceiling["val"]["mean"]
    clean = {(s, u): v for s, users in truth["clean_labels"].items() for u, v in users.items()}
    assert len(clean) == 300
    for row in data.clean_labels.itertuples(index=False):
        assert clean[(row.split, row.user)] == {s: getattr(row, s) for s in SITUATIONS}
    assert set(truth["withheld_labels"]) == {"test"}
    assert set(truth["appeal_model"]["key_concepts"]) == set(SITUATIONS)


def test_round_trip_through_the_loader(written: tuple[Path, SyntheticData]) -> None:
    load_dataset = pytest.importorskip("ltr.data.loading").load_dataset
    out, data = written
    loaded = load_dataset(out)
    assert loaded.layout == "challenge" and loaded.warnings == ()
    for name in FRAMES:
        pd.testing.assert_frame_equal(getattr(loaded, name), getattr(data.dataset, name))
    pd.testing.assert_frame_equal(loaded.ratings, data.dataset.ratings)
    assert loaded.fingerprint() == data.dataset.fingerprint()


def test_write_synthetic_refuses_a_folder_with_other_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(LtrError, match="not empty"):
        write_synthetic(tmp_path, n_users=20)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_write_synthetic_overwrites_an_earlier_synthetic_set(tmp_path: Path) -> None:
    write_synthetic(tmp_path, n_users=40, seed=1)
    write_synthetic(tmp_path, n_users=30, seed=2)
    assert _read(tmp_path / TRUTH_FILE)["seed"] == 2
    assert len(_read(tmp_path / "predictions_train.json")) == 18
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind


# --------------------------------------------------------------------------------- writer
def _tiny_dataset() -> Dataset:
    """Hand-made: odd ids, a user without detections (middle and last), a detection without
    a box, detections of one image not contiguous, a split without labels."""
    det = pd.DataFrame(
        {
            "split": ["a", "a", "a", "a", "b"],
            "user": ['u"1', "ü2", 'u"1', "ü2", "x"],
            "image": ["i\\1", "i2", "i\\1", "i3", "i4"],
            "concept": ["VC1", "VC2", "VC1", "VC3", "VC2"],
            "confidence": [0.5, 0.30000001192092896, 1.0, 0.75, 0.4],
            "x0": [0.0, np.nan, 0.25, 1e-5, 0.1],
            "y0": [0.0, np.nan, 0.5, 0.2, 0.1],
            "x1": [1.0, np.nan, 0.75, 0.3, 0.9],
            "y1": [1.0, np.nan, 1.0, 0.4, 0.9],
        }
    )
    users = pd.DataFrame(
        {"split": ["a", "a", "a", "a", "b"], "user": ['u"1', "idle", "ü2", "last", "x"]}
    )
    images = det[["split", "user", "image"]].drop_duplicates().reset_index(drop=True)
    labels = pd.DataFrame(
        {"split": ["a"] * 4, "user": ['u"1', "idle", "ü2", "last"]}
        | {s: [0.1, -0.2, 1 / 3, 0.0] for s in SITUATIONS}
    )
    ratings = pd.DataFrame(
        [[0.5, -1.0, 0.0, 2 / 3], [0.0, 0.0, 0.0, 0.0], [-2.5, 1.0, 1e-7, 0.25]],
        index=pd.Index(["VC1", "VC2", "VC3"], name="concept"),
        columns=list(SITUATIONS),
    )
    return Dataset(ratings=ratings, detections=det, images=images, users=users, labels=labels)


def test_writer_output_equals_json_dumps_of_the_nested_object(tmp_path: Path) -> None:
    ds = _tiny_dataset()
    paths = write_challenge_layout(ds, tmp_path)
    assert sorted(p.name for p in paths) == [
        "class_scores.json",
        "gt_a.json",
        "predictions_a.json",
        "predictions_b.json",
    ]
    expected_a = {
        'u"1': {"i\\1": ["VC1 0.5 0.0 0.0 1.0 1.0", "VC1 1.0 0.25 0.5 0.75 1.0"]},
        "idle": {},
        "ü2": {"i2": ["VC2 0.30000001192092896"], "i3": ["VC3 0.75 1e-05 0.2 0.3 0.4"]},
        "last": {},
    }
    text = (tmp_path / "predictions_a.json").read_text(encoding="utf-8")
    assert text == json.dumps(expected_a, indent=4)
    assert _read(tmp_path / "predictions_b.json") == {"x": {"i4": ["VC2 0.4 0.1 0.1 0.9 0.9"]}}
    assert _read(tmp_path / "class_scores.json")["VC3"] == {
        "acc": "-2.5",
        "it": "1e-07",
        "bank": "1.0",
        "wait": "0.25",
    }
    gt = _read(tmp_path / "gt_a.json")
    assert gt["ü2"] == dict.fromkeys(["acc", "bank", "it", "wait"], 1 / 3)


def test_writer_rejects_values_it_cannot_write(tmp_path: Path) -> None:
    ds = _tiny_dataset()
    ds.detections.loc[0, "y1"] = np.nan  # three corners of four
    with pytest.raises(LtrError, match="partly"):
        write_challenge_layout(ds, tmp_path)
    ds = _tiny_dataset()
    ds.labels.loc[1, "it"] = np.inf
    with pytest.raises(LtrError, match="'idle'"):
        write_challenge_layout(ds, tmp_path / "labels")
    ds = _tiny_dataset()
    ds.ratings.loc["VC2", "bank"] = np.nan
    with pytest.raises(LtrError, match="VC2"):
        write_challenge_layout(ds, tmp_path / "ratings")
    ds = _tiny_dataset()
    ds.detections.loc[4, "concept"] = "hot dog"  # research concept names may hold a space
    with pytest.raises(LtrError, match=r"image 'i4': concept 'hot dog' is empty or holds white"):
        write_challenge_layout(ds, tmp_path / "concept")
    assert not (tmp_path / "concept" / "predictions_b.json").exists()


# ------------------------------------------------------------------------------------ CLI
def _app() -> typer.Typer:
    """The real `ltr` app once `ltr data` registers `synth`, a stand-in group until then."""
    from ltr.cli.main import app

    runner = CliRunner()
    if runner.invoke(app, ["data", "synth", "--help"]).exit_code == 0:
        return app
    standalone, data = typer.Typer(), typer.Typer()
    synth_commands.register(data)
    standalone.add_typer(data, name="data")
    return standalone


def test_cli_writes_a_synthetic_folder(tmp_path: Path) -> None:
    out = tmp_path / "synth"
    result = CliRunner().invoke(_app(), ["data", "synth", str(out), "--users", "50", "--seed", "4"])
    assert result.exit_code == 0, result.output
    assert "train" in result.output and "30" in result.output and "withheld" in result.output
    assert _read(out / TRUTH_FILE)["seed"] == 4
    assert len(_read(out / "predictions_val.json")) == 10
    assert not (out / "gt_test.json").exists()


def test_cli_refuses_a_non_empty_non_synthetic_folder(tmp_path: Path) -> None:
    (tmp_path / "class_scores.json").write_text("{}")
    result = CliRunner().invoke(_app(), ["data", "synth", str(tmp_path), "--users", "20"])
    assert result.exit_code == 1
    assert "not empty" in result.output and "Traceback" not in result.output
    assert [p.name for p in tmp_path.iterdir()] == ["class_scores.json"]
    assert (tmp_path / "class_scores.json").read_text() == "{}"


def test_cli_rejects_a_file_as_folder_and_too_few_users(tmp_path: Path) -> None:
    target = tmp_path / "file.json"
    target.write_text("x")
    result = CliRunner().invoke(_app(), ["data", "synth", str(target), "--users", "20"])
    assert result.exit_code == 1 and "not a folder" in result.output
    result = CliRunner().invoke(_app(), ["data", "synth", str(tmp_path / "n"), "--users", "3"])
    assert result.exit_code == 2
    assert not (tmp_path / "n").exists()


def _python_calls(call: Callable[[], object]) -> int:
    """How many Python-level function calls `call` makes (C functions are not counted)."""
    calls = 0

    def count(frame: object, event: str, arg: object) -> None:
        nonlocal calls
        calls += event == "call"

    sys.setprofile(count)
    try:
        call()
    finally:
        sys.setprofile(None)
    return calls


def test_generation_is_vectorised() -> None:
    """No Python loop over users, images or detections: 30 times more users make the same
    number of Python function calls (timings are measured in benchmarks/synthetic_generation.py,
    never in tests)."""
    generate_synthetic(MIN_USERS, seed=2)  # imports and caches out of the way
    small = _python_calls(lambda: generate_synthetic(100, seed=2))
    large = _python_calls(lambda: generate_synthetic(3000, seed=2))
    assert large <= small + 20, (small, large)
    data = generate_synthetic(3000, seed=2)
    assert len(data.dataset.detections) > 120_000
    assert math.isfinite(data.noise_ceiling["test"]["mean"])
