"""benchmarks/member_probes.py: its baseline is the real default, and a candidate identical to a
member changes nothing (so the figures of docs/results.md measure the candidates, not the probe)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from ltr.cv import cross_validate
from ltr.data.synthetic import generate_synthetic
from ltr.models import PRESETS, build_model
from ltr.workflow import training_set

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import member_probes  # noqa: E402

SEED = 3


@pytest.fixture(scope="module")
def dataset():
    return generate_synthetic(300, seed=4).dataset


def _member_itself(index: int):
    spec = PRESETS["default"].with_seed(SEED).members[index]

    def scores(probe):
        model = build_model(spec).fit(probe.features.take(probe.train), probe.labels)
        return (
            model.predict_array(probe.features.take(probe.held)),
            model.predict_array(probe.features.take(probe.train)),
        )

    return scores, index


def test_the_baseline_is_the_default_and_a_member_in_its_own_place_changes_nothing(dataset):
    results = member_probes.probe(
        dataset, {"ridge": _member_itself(0)}, seed=SEED, folds=2, repeats=2
    )
    data = training_set(dataset)
    default = cross_validate(
        PRESETS["default"].with_seed(SEED),
        data.features,
        data.labels,
        folds=2,
        repeats=2,
        seed=SEED,
    )
    ridge = cross_validate(
        PRESETS["default"].with_seed(SEED).members[0],
        data.features,
        data.labels,
        folds=2,
        repeats=2,
        seed=SEED,
    )
    np.testing.assert_allclose(results["default"], default.fold_means, atol=1e-12)
    np.testing.assert_allclose(results["ridge in place"], default.fold_means, atol=1e-12)
    np.testing.assert_allclose(results["ridge alone"], ridge.fold_means, atol=1e-12)
    # a fifth member that duplicates one gives it twice the weight: a different blend
    assert not np.allclose(results["ridge added"], default.fold_means)


def test_every_candidate_runs_and_the_report_holds_each_way(dataset, tmp_path, monkeypatch):
    results = member_probes.probe(dataset, member_probes.CANDIDATES, seed=0, folds=2, repeats=1)
    assert set(results) == {"default"} | {
        f"{name} {way}"
        for name in member_probes.CANDIDATES
        for way in ("alone", "added", "in place")
    }
    for name, scores in results.items():
        assert scores.shape == (2,) and np.isfinite(scores).all(), name
        assert (scores > 0.1).all(), name  # each candidate learns something on synthetic data
    text, rows = member_probes.table(results, folds=2)
    assert text.count("\n") == len(results) + 1
    assert [row["variant"] for row in rows] == list(results)


def test_an_unknown_candidate_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as stop:
        member_probes.main(["--candidates", "knn,nope"])
    assert stop.value.code == 2
    assert "unknown candidate(s) nope" in capsys.readouterr().err


def test_main_writes_the_report(tmp_path, monkeypatch, dataset):
    monkeypatch.setattr(member_probes, "load_dataset", lambda path: dataset)
    out = tmp_path / "probes.json"
    member_probes.main(
        [
            "--data",
            "unused",
            "--candidates",
            "knn",
            "--folds",
            "2",
            "--repeats",
            "1",
            "--out",
            str(out),
        ]
    )
    report = json.loads(out.read_text())
    assert report["benchmark"] == "member_probes"
    assert [row["variant"] for row in report["results"]] == [
        "default",
        "knn alone",
        "knn added",
        "knn in place",
    ]
