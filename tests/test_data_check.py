"""`summarize` and `ltr data check`: numbers checked by hand on tiny folders and on real data."""

from __future__ import annotations

import json
import math
import shutil
import statistics
from pathlib import Path

import numpy as np
import pytest
import typer
from casefiles import DATA
from typer.testing import CliRunner

from ltr.cli import data_commands
from ltr.cli.main import app
from ltr.data import load_dataset
from ltr.data.summary import LABEL_STATS, summarize
from ltr.situations import SITUATIONS

runner = CliRunner()

#: gt_train.json of challenge_ok, per situation (acc, bank, it, wait), users u1, u2, u3.
CHALLENGE_LABELS = {
    "acc": [0.5, -0.4, 0.1],
    "bank": [0.25, -0.6, 0.2],
    "it": [-0.1, 0.2, 0.7],
    "wait": [0.3, -0.1, -0.5],
}


def test_split_counts_of_the_challenge_folder() -> None:
    summary = summarize(load_dataset(DATA / "challenge_ok"))
    assert [s.split for s in summary.splits] == ["train", "val", "test"]
    train, val, test = summary.splits
    # train: u1 has 3 images (1 + 2 + 1 detections), u2 has 2 (3 + 1), u3 has 1 (1)
    assert (train.users, train.images, train.detections) == (3, 6, 9)
    assert (train.images_per_user_min, train.images_per_user_max) == (1, 3)
    assert train.images_per_user_mean == pytest.approx(2.0)
    assert train.detections_per_image_mean == pytest.approx(9 / 6)
    assert train.concepts_detected == 5 and train.labelled_users == 3 and train.labelled
    assert (val.users, val.images, val.detections, val.labelled) == (2, 3, 4, False)
    assert (test.users, test.images, test.detections) == (1, 3, 3)
    # confidences of test: 0.6, 0.3, 0.55
    assert test.confidence_quantiles == pytest.approx(
        tuple(np.quantile([0.6, 0.3, 0.55], [0.1, 0.5, 0.9]))
    )
    assert summary.layout == "challenge" and summary.has_boxes
    assert summary.concepts.rated == 5 and summary.concepts.detected == 5
    assert summary.concepts.detected_unrated == () and summary.concepts.rated_undetected == 0
    assert summary.warnings == ()


def test_label_statistics_and_correlation_match_a_hand_computation() -> None:
    summary = summarize(load_dataset(DATA / "challenge_ok"))
    (labels,) = summary.labels
    assert labels.split == "train" and list(labels.stats.columns) == list(LABEL_STATS)
    for code, values in CHALLENGE_LABELS.items():
        row = labels.stats.loc[code]
        assert row["n"] == 3
        assert row["mean"] == pytest.approx(statistics.mean(values))
        assert row["sd"] == pytest.approx(statistics.stdev(values))
        assert (row["min"], row["max"]) == (min(values), max(values))
    for a in SITUATIONS:
        for b in SITUATIONS:
            expected = statistics.correlation(CHALLENGE_LABELS[a], CHALLENGE_LABELS[b])
            assert labels.correlation.loc[a, b] == pytest.approx(expected)


def test_users_without_images_count_as_zero_and_unrated_concepts_are_listed(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "data"
    shutil.copytree(DATA / "research_ok", folder)
    shutil.copytree(DATA / "bad" / "research" / "unrated_concept", folder, dirs_exist_ok=True)
    split = json.loads((folder / "train_test_split_v1.json").read_text())
    split["test"]["u6"] = {}  # a user with no photo at all is still a user of the split
    (folder / "train_test_split_v1.json").write_text(json.dumps(split))
    summary = summarize(load_dataset(folder))
    test = summary.split("test")
    assert (test.users, test.images, test.images_per_user_min) == (3, 3, 0)
    assert test.images_per_user_mean == pytest.approx(1.0)
    assert summary.concepts.detected_unrated == ("balloon", "football")
    assert summary.concepts.rated == 5 and summary.concepts.detected == 7
    assert len(summary.warnings) == 1 and "balloon (2), football (1)" in summary.warnings[0]
    assert not summary.has_boxes and summary.split("train").labelled
    assert [s.split for s in summary.labels] == ["train"]


def test_to_dict_is_plain_json() -> None:
    summary = summarize(load_dataset(DATA / "research_ok"))
    plain = json.loads(json.dumps(summary.to_dict(), allow_nan=False))
    assert plain["layout"] == "research" and plain["fingerprint"] == summary.fingerprint
    assert plain["splits"][0]["users"] == 3 and plain["labels"][0]["split"] == "train"
    assert plain["labels"][0]["stats"]["acc"]["n"] == 3


def test_single_user_split_has_no_sd_and_still_serialises(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    shutil.copytree(DATA / "challenge_ok", folder)
    (folder / "gt_test.json").write_text('{"u6": {"acc": 1, "bank": 2, "it": 3, "wait": 4}}')
    summary = summarize(load_dataset(folder))
    stats = summary.labels[1].stats
    assert summary.labels[1].split == "test" and stats["sd"].isna().all()
    assert (
        json.loads(json.dumps(summary.to_dict(), allow_nan=False))["labels"][1]["stats"]["acc"][
            "sd"
        ]
        is None
    )
    result = runner.invoke(app, ["data", "check", str(folder)])
    assert result.exit_code == 0 and "Labels: test" in result.stdout


# -------------------------------------------------------------------------------- CLI
def test_check_prints_the_summary_of_a_valid_folder() -> None:
    result = runner.invoke(app, ["data", "check", str(DATA / "challenge_ok")])
    assert result.exit_code == 0, result.output
    out = result.stdout
    fingerprint = load_dataset(DATA / "challenge_ok").fingerprint()
    assert f"challenge layout, with boxes, fingerprint {fingerprint}" in out
    splits_row = next(line for line in out.splitlines() if "images/user min/mean/max" in line)
    assert [c.strip() for c in splits_row.split("│")[2:5]] == ["1/2.0/3", "1/1.5/2", "3/3.0/3"]
    labelled = next(line for line in out.splitlines() if "labelled users" in line)
    assert [c.strip() for c in labelled.split("│")[2:5]] == ["3", "none", "none"]
    assert "Labels: train" in out and "Label correlation: train" in out
    assert "warning" not in out and result.stderr == ""


def test_check_shows_warnings_and_exits_zero(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    shutil.copytree(DATA / "challenge_ok", folder)
    shutil.copytree(DATA / "bad" / "challenge" / "unrated_concept", folder, dirs_exist_ok=True)
    result = runner.invoke(app, ["data", "check", str(folder)])
    assert result.exit_code == 0
    assert "detected but unrated: VC7, VC9" in result.stdout
    assert "warning: 2 detected concept(s) have no rating in class_scores.json" in result.stdout
    assert "--strict-ratings makes unrated concepts an error" in result.stdout
    strict = runner.invoke(app, ["data", "check", "--strict-ratings", str(folder)])
    assert strict.exit_code == 1 and strict.stdout == ""
    assert "class_scores.json: concept 'VC7': 2 detected concept(s)" in strict.stderr


def test_check_says_when_there_are_no_labels(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    shutil.copytree(DATA / "research_ok", folder)
    (folder / "gt_usr_exposure_v1.json").unlink()
    result = runner.invoke(app, ["data", "check", str(folder)])
    assert result.exit_code == 0 and "no labels in this folder" in result.stdout
    assert "research layout, no boxes" in result.stdout


def test_data_group_is_exposed_for_other_commands() -> None:
    assert isinstance(data_commands.data_app, typer.Typer)
    listed = runner.invoke(app, ["data", "--help"])
    assert listed.exit_code == 0 and "check" in listed.stdout
    usage = runner.invoke(app, ["data", "check", "--help"])
    assert usage.exit_code == 0 and "--strict-ratings" in usage.stdout
    missing_arg = runner.invoke(app, ["data", "check"])
    assert missing_arg.exit_code == 2  # usage error from Typer, not a crash


# -------------------------------------------------------------------------- real data
def test_check_on_aware2023(aware2023: Path) -> None:
    result = runner.invoke(app, ["data", "check", str(aware2023)])
    assert result.exit_code == 0, result.output
    rows = {
        line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
        for line in result.stdout.splitlines()
        if line.startswith("│")
    }
    assert rows["users"] == ["600", "200", "200"]
    assert rows["images"][0] == "21,365" and rows["detections"][0] == "25,978"
    assert rows["images/user min/mean/max"][0] == "13/35.6/68"
    assert rows["detections/image mean"][0] == "1.22"
    assert rows["concepts detected"][0] == "226"
    assert rows["conf. p10/p50/p90"][0] == "0.31/0.37/0.51"
    assert rows["labelled users"] == ["600", "none", "none"]
    assert "warning" not in result.stdout


def test_summary_of_aware2023_label_correlations(aware2023: Path) -> None:
    summary = summarize(load_dataset(aware2023))
    corr = summary.labels[0].correlation
    expected = {("acc", "bank"): 0.77, ("acc", "it"): 0.51, ("it", "bank"): 0.52}
    for (a, b), value in expected.items():
        assert round(corr.loc[a, b], 2) == value
    assert all(0.07 <= round(corr.loc["wait", c], 2) <= 0.19 for c in ("acc", "bank", "it"))
    stats = summary.labels[0].stats
    assert (stats["n"] == 600).all() and (stats["mean"].abs() < 0.05).all()
    assert all(math.isclose(sd, 0.5, abs_tol=0.1) for sd in stats["sd"])


def test_check_on_lervup2021(lervup2021: Path) -> None:
    result = runner.invoke(app, ["data", "check", str(lervup2021)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "research layout, no boxes" in out
    assert "detected but unrated: balloon, football" in out
    assert (
        "warning: 2 detected concept(s) have no rating in visual_concepts/ (296 of 36,296 "
        "detections): balloon (226), football (70); rating 0 is used for them"
    ) in out
    labelled = next(line for line in out.splitlines() if "labelled users" in line)
    assert [c.strip() for c in labelled.split("│")[2:-1]] == ["400", "none"]
    strict = runner.invoke(app, ["data", "check", str(lervup2021), "--strict-ratings"])
    assert strict.exit_code == 1 and "concept 'balloon'" in strict.stderr
    assert "Traceback" not in strict.output
