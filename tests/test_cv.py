"""Repeated K-fold cross-validation: determinism, identical folds for every model, fold counts,
the per-fold callback, and a learned model beating BASE for real on synthetic data."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import ltr.cv
from ltr.cv import CVResult, cross_validate, fold_indices
from ltr.data.synthetic import generate_synthetic
from ltr.errors import LtrError
from ltr.features import FeatureMatrix, featurize
from ltr.features.matrix import COLUMN_FIELDS
from ltr.metrics import pearson_columns
from ltr.models import PRESETS, ModelSpec, build_model
from ltr.situations import SITUATIONS

FOLDS, REPEATS = 3, 2


@dataclasses.dataclass(frozen=True)
class Data:
    features: FeatureMatrix
    labels: pd.DataFrame


@pytest.fixture(scope="module")
def data() -> Data:
    dataset = generate_synthetic(400, seed=2).dataset
    return Data(featurize(dataset, "train"), dataset.split_labels("train"))


def fast(name: str) -> ModelSpec:
    spec = PRESETS[name]
    return spec if name in ("base", "ridge") else spec.merged({"params": {"num_boost_round": 25}})


def run(data: Data, spec: ModelSpec, **options: object) -> CVResult:
    options = {"folds": FOLDS, "repeats": REPEATS, "seed": 0, **options}
    return cross_validate(spec, data.features, data.labels, **options)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------- folds
def test_folds_are_k_times_r_and_each_repeat_partitions_the_users() -> None:
    n = 50
    folds = list(fold_indices(n, folds=5, repeats=3, seed=0))
    assert len(folds) == 15
    for r in range(3):
        held = np.concatenate([h for _, h in folds[5 * r : 5 * r + 5]])
        assert sorted(held) == list(range(n))  # every user held out exactly once per repeat
        for train, held_out in folds[5 * r : 5 * r + 5]:
            assert set(train).isdisjoint(held_out) and len(train) + len(held_out) == n
            assert len(held_out) == 10


def test_folds_depend_on_the_seed_only() -> None:
    def listing(seed: int) -> list[list[int]]:
        return [sorted(h) for _, h in fold_indices(40, 4, 2, seed)]

    assert listing(3) == listing(3)
    assert listing(3) != listing(4)
    repeats = listing(3)
    assert repeats[:4] != repeats[4:]  # a repeat is a new shuffle, not the same folds again


@pytest.mark.parametrize(("n", "folds", "repeats"), [(10, 6, 1), (240, 1, 1), (4, 3, 1)])
def test_impossible_fold_counts_are_refused_clearly(n: int, folds: int, repeats: int) -> None:
    with pytest.raises(LtrError, match=rf"cannot make {folds} folds of {n} users \(need 2 <="):
        list(fold_indices(n, folds, repeats))


def test_cross_validate_refuses_too_many_folds_before_fitting(data: Data) -> None:
    with pytest.raises(LtrError, match=r"cannot make 200 folds of 240 users"):
        run(data, PRESETS["ridge"], folds=200)
    with pytest.raises(LtrError, match="repeats must be an integer >= 1"):
        run(data, PRESETS["ridge"], repeats=0)


# ------------------------------------------------------------------------------- results
def test_result_shapes_and_the_official_statistic(data: Data) -> None:
    result = run(data, PRESETS["ridge"], name="ridge")
    assert result.fold_pearson.shape == (FOLDS * REPEATS, len(SITUATIONS))
    assert result.oof.shape == (REPEATS, len(data.features.users), len(SITUATIONS))
    assert result.mean == pytest.approx(result.fold_pearson.mean())
    assert result.std == pytest.approx(result.fold_pearson.mean(axis=1).std(ddof=1))
    assert list(result.per_situation.index) == list(SITUATIONS)
    # every fold's figure is the Pearson of the held-out users' out-of-fold scores
    y = data.labels.loc[data.features.users].to_numpy()
    for step, (_, held) in enumerate(fold_indices(len(y), FOLDS, REPEATS, 0)):
        expected = pearson_columns(result.oof[step // FOLDS, held], y[held])
        np.testing.assert_allclose(result.fold_pearson[step], expected, atol=1e-12)
    report = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert report["name"] == "ridge" and report["folds"] == FOLDS and report["repeats"] == REPEATS
    assert report["mean_pearson"] == pytest.approx(result.mean)
    assert len(report["fold_pearson"]) == FOLDS * REPEATS
    assert report["spec"] == PRESETS["ridge"].to_dict()


def test_same_seed_same_numbers_other_seed_other_numbers(data: Data) -> None:
    spec = fast("xgb-regression")
    first, again, other = run(data, spec), run(data, spec), run(data, spec, seed=1)
    np.testing.assert_array_equal(first.fold_pearson, again.fold_pearson)
    np.testing.assert_array_equal(first.oof, again.oof)
    assert not np.allclose(first.fold_pearson, other.fold_pearson)


def test_every_model_sees_the_same_folds(data: Data, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, list[tuple[str, ...]]] = {}
    build = ltr.cv.build_model

    def spying_build(spec: ModelSpec, **kwargs: object):  # type: ignore[no-untyped-def]
        model = build(spec, **kwargs)
        fit = model.fit

        def spying_fit(features: FeatureMatrix, labels: pd.DataFrame):  # type: ignore[no-untyped-def]
            seen.setdefault(spec.learner, []).append(tuple(features.users))
            return fit(features, labels)

        model.fit = spying_fit  # type: ignore[method-assign]
        return model

    monkeypatch.setattr(ltr.cv, "build_model", spying_build)
    for name in ("base", "ridge", "lgbm-regression-pooled"):
        run(data, fast(name))
    assert seen["base"] == seen["ridge"] == seen["lgbm-regression"]
    assert len(seen["base"]) == FOLDS * REPEATS and len(set(seen["base"])) == FOLDS * REPEATS


def test_on_fold_is_called_after_every_fold_and_can_stop_the_run(data: Data) -> None:
    calls: list[tuple[int, np.ndarray]] = []
    result = run(data, PRESETS["ridge"], on_fold=lambda step, s: calls.append((step, s.copy())))
    assert [step for step, _ in calls] == list(range(FOLDS * REPEATS))
    for step, scores in calls:
        assert scores.shape == (step + 1, len(SITUATIONS))
    np.testing.assert_array_equal(calls[-1][1], result.fold_pearson)

    class Stop(Exception):
        pass

    def stop_after_two(step: int, scores: np.ndarray) -> None:
        calls.append((step, scores))
        if step == 1:
            raise Stop  # what Optuna's pruning does

    calls.clear()
    with pytest.raises(Stop):
        run(data, PRESETS["ridge"], on_fold=stop_after_two)
    assert [step for step, _ in calls] == [0, 1]


def test_a_constant_model_scores_zero_not_nan(data: Data) -> None:
    """A fold where a model predicts one value has no Pearson: it counts as 0, not NaN."""
    users = data.features.users
    columns = pd.DataFrame([["zero", "size", None, None]], columns=list(COLUMN_FIELDS))
    blank = FeatureMatrix(users, sp.csr_matrix((len(users), 1)), columns)
    seen: list[np.ndarray] = []
    result = cross_validate(
        ModelSpec("ridge"),
        blank,
        data.labels,
        folds=FOLDS,
        repeats=1,
        on_fold=lambda _, s: seen.append(s),
    )
    assert np.isnan(seen[-1]).all()  # the callback sees the raw, undefined figures
    np.testing.assert_array_equal(result.fold_pearson, np.zeros((FOLDS, len(SITUATIONS))))
    assert result.mean == 0.0


# ------------------------------------------------------------------ the model has signal
def test_learned_model_beats_base_in_cross_validation(data: Data) -> None:
    """Real signal: the synthetic labels depend on concepts in ways BASE's rating sum misses."""
    base, ridge, xgb = (run(data, fast(n)) for n in ("base", "ridge", "xgb-regression"))
    assert ridge.mean > base.mean + 0.1 and xgb.mean > base.mean + 0.05
    # better on most folds, not only on average
    assert (ridge.fold_means > base.fold_means).mean() >= 0.8
    # and the signal is real: the same model on shuffled labels has none
    rng = np.random.default_rng(0)
    shuffled = pd.DataFrame(
        rng.permutation(data.labels.to_numpy()), index=data.labels.index, columns=list(SITUATIONS)
    )
    noise = cross_validate(fast("ridge"), data.features, shuffled, folds=FOLDS, repeats=1)
    assert abs(noise.mean) < 0.1 < ridge.mean - 0.2


def test_oof_scores_are_out_of_fold(data: Data) -> None:
    """Each user's OOF score comes from a model that never saw that user's label."""
    result = run(data, PRESETS["ridge"], repeats=1)
    model = build_model(PRESETS["ridge"]).fit(data.features, data.labels)
    in_sample = model.predict_array(data.features)
    y = data.labels.loc[data.features.users].to_numpy()
    # a 1000-column ridge fits its own training users far better than held-out ones
    assert pearson_columns(in_sample, y).mean() > pearson_columns(result.oof[0], y).mean() + 0.2
