"""BASE (the organisers' baseline): definition, threshold search, `ltr baseline`, `evaluate`."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ltr.baseline import (
    DEFAULT_GRID,
    base_scores,
    cross_validate_threshold,
    fit_base_threshold,
    threshold_table,
)
from ltr.cli.main import app
from ltr.data.dataset import Dataset
from ltr.data.loading import load_dataset
from ltr.errors import LtrError
from ltr.metrics import pearson_columns, score_run
from ltr.situations import SITUATIONS
from ltr.submission import read_run

runner = CliRunner()


# --------------------------------------------------------------------------------- helpers
def make_dataset(
    ratings: dict[str, list[float]],
    detections: list[tuple[str, str, str, float]],
    users: list[str],
    labels: dict[str, list[float]] | None = None,
    split: str = "train",
) -> Dataset:
    """An in-memory Dataset of one split; detections are (user, image, concept, confidence)."""
    det = pd.DataFrame(detections, columns=["user", "image", "concept", "confidence"])
    det.insert(0, "split", split)
    for column in ("x0", "y0", "x1", "y1"):
        det[column] = np.nan
    rating_frame = pd.DataFrame.from_dict(ratings, orient="index", columns=list(SITUATIONS))
    rating_frame.index.name = "concept"
    label_rows = [[split, u, *v] for u, v in (labels or {}).items()]
    return Dataset(
        ratings=rating_frame.astype(float),
        detections=det.astype({"confidence": float}),
        images=det[["split", "user", "image"]].drop_duplicates().reset_index(drop=True),
        users=pd.DataFrame({"split": split, "user": users}),
        labels=pd.DataFrame(label_rows, columns=["split", "user", *SITUATIONS])
        if labels
        else Dataset.empty_labels(),
    )


def reference_base(dataset: Dataset, split: str, threshold: float) -> pd.DataFrame:
    """BASE written as literally as the definition reads, one detection at a time."""
    ratings = {c: row.to_numpy() for c, row in dataset.ratings.iterrows()}
    best: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    for row in dataset.split_detections(split).itertuples():
        if row.confidence >= threshold:
            image = best[(row.user, row.image)]
            image[row.concept] = max(image.get(row.concept, 0.0), row.confidence)
    per_user: dict[str, list[np.ndarray]] = defaultdict(list)
    for (user, _), concepts in best.items():
        total = np.zeros(4)
        for concept, confidence in concepts.items():
            total += ratings.get(concept, np.zeros(4)) * confidence
        per_user[user].append(total)
    users = dataset.split_users(split)
    rows = [np.mean(per_user[u], axis=0) if per_user[u] else np.zeros(4) for u in users]
    return pd.DataFrame(rows, index=users, columns=list(SITUATIONS))


def random_dataset(seed: int, n_users: int = 30, n_concepts: int = 12) -> Dataset:
    rng = np.random.default_rng(seed)
    concepts = [f"c{i}" for i in range(n_concepts)]
    ratings = {c: list(rng.normal(size=4).round(2)) for c in concepts[:-2]}  # 2 unrated
    users = [f"u{i}" for i in range(n_users)]
    detections = []
    for user in users[:-1]:  # the last user has no detection at all
        for image in range(rng.integers(1, 6)):
            for _ in range(rng.integers(1, 5)):
                concept = concepts[rng.integers(n_concepts)]
                # image ids repeat across users on purpose: images are (user, image)
                detections.append((user, f"img{image}", concept, float(rng.uniform(0.05, 1.0))))
    labels = {u: list(rng.normal(size=4)) for u in users}
    return make_dataset(ratings, detections, users, labels)


# ------------------------------------------------------------------------------ definition
def test_base_scores_follow_the_definition_on_a_worked_example() -> None:
    ratings = {"A": [1.0, -1.0, 0.5, 2.0], "B": [-2.0, 0.0, 1.0, 1.0], "C": [4.0, 4.0, 4.0, 4.0]}
    detections = [
        # u1 / i1: A twice (max 0.9 counts), B once -> A*0.9 + B*0.4
        ("u1", "i1", "A", 0.9),
        ("u1", "i1", "A", 0.5),
        ("u1", "i1", "B", 0.4),
        # u1 / i2: only a detection under the threshold -> not an active image
        ("u1", "i2", "C", 0.2),
        # u2 / i1: the same image id as u1's, but a different image
        ("u2", "i1", "A", 0.6),
        # u3: nothing above the threshold -> no active image -> 0
        ("u3", "k1", "C", 0.29),
        # u4: an unrated concept counts 0 but keeps its image active
        ("u4", "j1", "Z", 0.8),
        ("u4", "j2", "A", 0.5),
    ]
    dataset = make_dataset(ratings, detections, ["u1", "u2", "u3", "u4", "u5"])
    scores = base_scores(dataset, "train", 0.3)
    a, b = np.array(ratings["A"]), np.array(ratings["B"])
    expected = np.array([a * 0.9 + b * 0.4, a * 0.6, np.zeros(4), (0 + a * 0.5) / 2, np.zeros(4)])
    np.testing.assert_allclose(scores.to_numpy(), expected)
    assert list(scores.index) == ["u1", "u2", "u3", "u4", "u5"]  # every user, in file order
    assert list(scores.columns) == list(SITUATIONS)
    # the threshold is inclusive: at 0.2 u1's second image becomes active and counts C*0.2
    low = base_scores(dataset, "train", 0.2)
    np.testing.assert_allclose(low.loc["u1"], (a * 0.9 + b * 0.4 + 4 * 0.2) / 2)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("threshold", [0.0, 0.35, 0.7, 0.99])
def test_vectorised_base_matches_the_literal_definition(seed: int, threshold: float) -> None:
    dataset = random_dataset(seed)
    got = base_scores(dataset, "train", threshold)
    pd.testing.assert_frame_equal(
        got, reference_base(dataset, "train", threshold), check_names=False, atol=1e-12
    )


def test_base_scores_refuse_bad_thresholds_and_unknown_splits() -> None:
    dataset = random_dataset(0)
    with pytest.raises(LtrError, match="not a finite number"):
        base_scores(dataset, "train", float("nan"))
    with pytest.raises(LtrError, match="no split 'val'"):
        base_scores(dataset, "val", 0.3)


# ---------------------------------------------------------------------------- threshold fit
def noisy_dataset(seed: int = 0, n_users: int = 60) -> Dataset:
    """Labels follow the confident detections; weak ones (conf < 0.42) are pure noise."""
    rng = np.random.default_rng(seed)
    signal = {f"s{i}": list(rng.normal(size=4)) for i in range(6)}
    noise = {f"n{i}": list(rng.normal(scale=3.0, size=4)) for i in range(6)}
    users = [f"u{i}" for i in range(n_users)]
    detections, labels = [], {}
    for user in users:
        total = np.zeros(4)
        for image in range(4):
            concept = f"s{rng.integers(6)}"
            confidence = float(rng.uniform(0.8, 0.95))
            detections.append((user, f"p{image}", concept, confidence))
            detections.append((user, f"p{image}", f"n{rng.integers(6)}", rng.uniform(0.3, 0.42)))
            total += np.array(signal[concept]) * confidence
        labels[user] = list(total / 4 + rng.normal(scale=0.05, size=4))
    return make_dataset({**signal, **noise}, detections, users, labels)


def test_fit_picks_the_lowest_of_the_thresholds_that_drop_exactly_the_noise() -> None:
    dataset = noisy_dataset()
    table = threshold_table(dataset)
    assert list(table.index) == list(DEFAULT_GRID)
    # every grid value in (0.42, 0.8] keeps exactly the signal: identical, best scores
    plateau = table.loc[0.45:0.80, "mean"]
    assert plateau.nunique() == 1 and plateau.iloc[0] > 0.9
    assert table["mean"].max() == pytest.approx(plateau.iloc[0])
    assert table.loc[0.40, "mean"] < plateau.iloc[0] - 0.1  # keeps some noise
    assert fit_base_threshold(dataset) == 0.45  # ties go to the lowest threshold
    # thresholds above every confidence leave all users at 0: undefined, never chosen
    assert table.loc[0.95, "empty_users"] == 60 and np.isnan(table.loc[0.95, "mean"])
    # the table is the Pearson of base_scores at each threshold
    labels = dataset.split_labels("train")
    at = base_scores(dataset, "train", 0.45).loc[labels.index]
    np.testing.assert_allclose(
        table.loc[0.45, list(SITUATIONS)].to_numpy(float),
        pearson_columns(at.to_numpy(), labels.to_numpy()),
    )


def test_fit_with_a_custom_grid_and_when_nothing_is_defined() -> None:
    dataset = noisy_dataset()
    assert fit_base_threshold(dataset, grid=[0.9, 0.1, 0.5]) == 0.5
    with pytest.raises(LtrError, match="no BASE threshold in the grid"):
        fit_base_threshold(dataset, grid=[0.96, 0.99])
    with pytest.raises(LtrError, match="grid is empty"):
        fit_base_threshold(dataset, grid=[])


def test_cross_validation_recovers_the_threshold_in_every_fold() -> None:
    dataset = noisy_dataset()
    folds = cross_validate_threshold(dataset, folds=4, seed=1)
    assert list(folds.columns) == ["threshold", *SITUATIONS, "mean"]
    assert (folds["threshold"] == 0.45).all()
    assert (folds["mean"] > 0.9).all()
    pd.testing.assert_frame_equal(folds, cross_validate_threshold(dataset, folds=4, seed=1))
    with pytest.raises(LtrError, match="cannot make 40 folds"):
        cross_validate_threshold(dataset, folds=40)


# -------------------------------------------------------------------------------- real data
@pytest.fixture(scope="module")
def real_sets() -> dict[str, Dataset]:
    """Real data sets loaded once per module (by folder name)."""
    return {}


def load_real(path: Path, cache: dict[str, Dataset]) -> Dataset:
    if path.name not in cache:
        cache[path.name] = load_dataset(path)
    return cache[path.name]


def test_base_on_lervup2021_train(lervup2021: Path, real_sets) -> None:
    """Published BASE on the withheld test users: .38 .27 .41 .58 (mean .41)."""
    dataset = load_real(lervup2021, real_sets)
    table = threshold_table(dataset)
    threshold = fit_base_threshold(dataset)
    # every detection in these files has confidence >= 0.3: thresholds up to 0.3 are all
    # the same and best; the tie goes to the lowest
    assert threshold == 0.0
    assert table.loc[0.0:0.30, "mean"].nunique() == 1
    assert table["mean"].idxmax() == 0.0
    labels = dataset.split_labels("train")
    scores = score_run(base_scores(dataset, "train", threshold).loc[labels.index], labels)
    assert scores.official == pytest.approx(0.4025, abs=5e-5)  # measured; published test: .41
    reference = reference_base(dataset, "train", 0.5)
    pd.testing.assert_frame_equal(
        base_scores(dataset, "train", 0.5), reference, check_names=False, atol=1e-12
    )
    folds = cross_validate_threshold(dataset, folds=5, seed=0)
    assert (folds["threshold"] == threshold).all()  # stable across folds


def test_base_on_aware2023_train(aware2023: Path, real_sets) -> None:
    dataset = load_real(aware2023, real_sets)
    threshold = fit_base_threshold(dataset)
    assert threshold == 0.0
    labels = dataset.split_labels("train")
    scores = score_run(base_scores(dataset, "train", threshold).loc[labels.index], labels)
    assert scores.official == pytest.approx(0.2835, abs=5e-5)  # measured
    reference = reference_base(dataset, "train", 0.4)
    pd.testing.assert_frame_equal(
        base_scores(dataset, "train", 0.4), reference, check_names=False, atol=1e-12
    )
    assert (cross_validate_threshold(dataset, folds=5, seed=0)["threshold"] == 0.0).all()


# -------------------------------------------------------------------------------------- CLI
def write_challenge_folder(root: Path, seed: int = 0) -> Path:
    """A tiny challenge-layout folder: ratings as strings, train with labels, test without."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    concepts = [f"VC{i}" for i in range(8)]
    scores = {
        c: {s: str(round(float(rng.normal()), 3)) for s in ("acc", "it", "bank", "wait")}
        for c in concepts
    }
    (root / "class_scores.json").write_text(json.dumps(scores))
    for split, n_users in (("train", 14), ("test", 5)):
        predictions = {}
        for u in range(n_users):
            images = {}
            for i in range(int(rng.integers(2, 6))):
                images[f"img{i}"] = [
                    f"{concepts[rng.integers(8)]} {rng.uniform(0.3, 0.9):.4f} 0.1 0.1 0.5 0.5"
                    for _ in range(int(rng.integers(1, 4)))
                ]
            predictions[f"{split}-user-{u}"] = images
        (root / f"predictions_{split}.json").write_text(json.dumps(predictions))
        if split == "train":
            gt = {u: {s: float(rng.normal()) for s in SITUATIONS} for u in predictions}
            (root / "gt_train.json").write_text(json.dumps(gt))
    return root


def table_rows(output: str) -> dict[str, list[str]]:
    """Rows of the printed score table: statistic -> the five numbers."""
    rows = {}
    for line in output.splitlines():
        match = re.match(r"\W*(pearson|spearman|kendall)\b.*?((?:\s*\W\s*-?\d\.\d{4}){5})", line)
        if match:
            rows[match.group(1)] = re.findall(r"-?\d\.\d{4}", match.group(2))
    return rows


def test_cli_baseline_then_evaluate_on_a_generated_folder(tmp_path: Path) -> None:
    data = write_challenge_folder(tmp_path / "data")
    run_file = tmp_path / "runs" / "base_train.json"
    result = runner.invoke(app, ["baseline", str(data), "--split", "train", "--out", str(run_file)])
    assert result.exit_code == 0, result.output
    dataset = load_dataset(data)
    threshold = fit_base_threshold(dataset)
    assert f"BASE threshold {threshold!r}: fitted on split 'train'" in result.output
    assert "in-sample" in result.output
    assert f"wrote {run_file} (14 users)" in result.output
    printed = table_rows(result.output)
    assert set(printed) == {"pearson", "spearman", "kendall"}
    # the printed numbers are the library's
    labels = dataset.split_labels("train")
    run = base_scores(dataset, "train", threshold)
    expected = score_run(run.loc[labels.index], labels).table()
    for statistic, values in printed.items():
        assert values == [f"{v:.4f}" for v in expected.loc[statistic]]
    # the written run is the BASE run, and evaluating it prints the same table
    pd.testing.assert_frame_equal(read_run(run_file), run, check_names=False)
    evaluated = runner.invoke(
        app, ["evaluate", str(run_file), "--data", str(data), "--split", "train"]
    )
    assert evaluated.exit_code == 0, evaluated.output
    assert table_rows(evaluated.output) == printed


def test_cli_baseline_on_a_split_without_labels_with_a_given_threshold(tmp_path: Path) -> None:
    data = write_challenge_folder(tmp_path / "data", seed=1)
    run_file = tmp_path / "test.csv"
    result = runner.invoke(
        app,
        ["baseline", str(data), "-s", "test", "--threshold", "0.5", "-o", str(run_file)],
    )
    assert result.exit_code == 0, result.output
    assert "BASE threshold 0.5 (given)" in result.output
    assert "no labels here" in result.output
    dataset = load_dataset(data)
    expected = base_scores(dataset, "test", 0.5)
    got = read_run(run_file)
    assert list(got.index) == list(dataset.split_users("test"))
    np.testing.assert_array_equal(got.to_numpy(), expected.to_numpy())  # full precision
    # evaluating a split without labels is a clear error
    evaluated = runner.invoke(app, ["evaluate", str(run_file), "-d", str(data), "-s", "test"])
    assert evaluated.exit_code == 1
    assert "split 'test' has no labels" in evaluated.output
    assert "Traceback" not in evaluated.output


def test_cli_baseline_errors_are_one_line(tmp_path: Path) -> None:
    data = write_challenge_folder(tmp_path / "data")
    bad_out = tmp_path / "run.txt"
    result = runner.invoke(app, ["baseline", str(data), "-s", "train", "-o", str(bad_out)])
    assert result.exit_code == 1
    assert "unknown run file extension '.txt'" in result.output
    assert not bad_out.exists()
    result = runner.invoke(app, ["baseline", str(data), "-s", "val"])
    assert result.exit_code == 1 and "no split 'val'" in result.output
    (data / "gt_train.json").unlink()
    result = runner.invoke(app, ["baseline", str(data), "-s", "test"])
    assert result.exit_code == 1 and "split 'train' has no labels" in result.output
    assert "Traceback" not in result.output


def test_cli_grid_table_marks_the_chosen_threshold(tmp_path: Path) -> None:
    data = write_challenge_folder(tmp_path / "data")
    result = runner.invoke(app, ["baseline", str(data), "-s", "train", "--show-grid"])
    assert result.exit_code == 0, result.output
    chosen = fit_base_threshold(load_dataset(data))
    assert f"{chosen:.2f} *" in result.output
    assert len(re.findall(r"^\W*0\.\d\d( \*)?\s*\W", result.output, flags=re.M)) == len(
        DEFAULT_GRID
    )


@pytest.mark.parametrize(
    ("name", "mean"), [("aware2023", "0.2835"), ("lervup2021", "0.4025")], ids=str
)
def test_cli_baseline_and_evaluate_on_real_data(
    name: str, mean: str, request, tmp_path: Path
) -> None:
    data = request.getfixturevalue(name)
    run_file = tmp_path / f"base_{name}.csv"
    result = runner.invoke(app, ["baseline", str(data), "-s", "train", "-o", str(run_file)])
    assert result.exit_code == 0, result.output
    printed = table_rows(result.output)
    assert printed["pearson"][-1] == mean
    evaluated = runner.invoke(app, ["evaluate", str(run_file), "-d", str(data), "-s", "train"])
    assert evaluated.exit_code == 0, evaluated.output
    assert table_rows(evaluated.output) == printed
