"""Writing a data set in the challenge layout and loading it back changes nothing that
`ltr data check` reports: users, images (also those without a detection), detections, ratings,
labels, the fingerprint.

`write_challenge_layout` used to leave out images without a detection (the real challenge
files list none), so profile sizes shrank on a round trip of data that has them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from casefiles import DATA
from typer.testing import CliRunner

from ltr.cli.main import app
from ltr.data import Dataset, load_dataset
from ltr.data.challenge_writer import write_challenge_layout
from ltr.data.summary import summarize
from ltr.data.synthetic import generate_synthetic

runner = CliRunner()


def round_trip(data: Dataset, folder: Path) -> Dataset:
    write_challenge_layout(data, folder)
    return load_dataset(folder)


def comparable(data: Dataset) -> dict[str, Any]:
    """The `ltr data check` numbers, without what names the folder or its layout (the
    warnings name the layout's rating file)."""
    summary = summarize(data).to_dict()
    for key in ("name", "layout", "source", "warnings"):
        summary.pop(key)
    return summary


def check_output(folder: Path) -> list[str]:
    """`ltr data check` output without its first line (which names the folder)."""
    result = runner.invoke(app, ["data", "check", str(folder)])
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()[1:]


def assert_same_data(before: Dataset, after: Dataset) -> None:
    assert comparable(after) == comparable(before)
    assert after.fingerprint() == before.fingerprint()
    for name in ("ratings", "detections", "images", "users", "labels"):
        pd.testing.assert_frame_equal(getattr(after, name), getattr(before, name))


@pytest.fixture
def folder_with_empty_images(tmp_path: Path) -> Path:
    """challenge_ok plus an image without detections (val) and a user without images (test)."""
    folder = tmp_path / "source"
    shutil.copytree(DATA / "challenge_ok", folder)
    for split, change in (("val", ("u4", "u4img3", [])), ("test", ("u7", None, None))):
        path = folder / f"predictions_{split}.json"
        predictions = json.loads(path.read_text())
        user, image, detections = change
        predictions.setdefault(user, {})
        if image is not None:
            predictions[user][image] = detections
        path.write_text(json.dumps(predictions, indent=4))
    return folder


def test_images_without_detections_survive_a_round_trip(
    folder_with_empty_images: Path, tmp_path: Path
) -> None:
    before = load_dataset(folder_with_empty_images)
    val, test = before.split_images("val"), before.split_images("test")
    assert (len(val), len(before.split_detections("val").groupby("image"))) == (4, 3)
    assert "u7" in set(before.split_users("test")) and "u7" not in set(test["user"])
    after = round_trip(before, tmp_path / "written")
    assert_same_data(before, after)
    written = json.loads((tmp_path / "written" / "predictions_val.json").read_text())
    assert written["u4"]["u4img3"] == []
    assert json.loads((tmp_path / "written" / "predictions_test.json").read_text())["u7"] == {}
    assert check_output(tmp_path / "written") == check_output(folder_with_empty_images)


def test_the_synthetic_set_survives_a_round_trip(tmp_path: Path) -> None:
    data = generate_synthetic(200, seed=4).dataset
    after = round_trip(data, tmp_path / "written")
    assert_same_data(data, after)
    again = round_trip(after, tmp_path / "again")  # a loaded folder, written again
    assert_same_data(after, again)
    assert check_output(tmp_path / "again") == check_output(tmp_path / "written")


def test_research_folder_survives_a_round_trip(tmp_path: Path) -> None:
    before = load_dataset(DATA / "research_ok")
    assert_same_data(before, round_trip(before, tmp_path / "written"))


@pytest.mark.parametrize("name", ["aware2023", "lervup2021"])
def test_real_sets_survive_a_round_trip(
    name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    source: Path = request.getfixturevalue(name)
    before = load_dataset(source)
    after = round_trip(before, tmp_path / name)
    assert_same_data(before, after)
    assert [len(after.split_images(s)) for s in after.splits] == [
        len(before.split_images(s)) for s in before.splits
    ]
