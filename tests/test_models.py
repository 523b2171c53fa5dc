"""Models: every preset end to end, the two formulations, sub-queries, relevance grades,
calibration, ensembles, BASE as a model, and the ModelSpec data form (incl. `--params` files).

Synthetic data (a few hundred users, a few boosting rounds) keeps the whole module fast.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
from conftest import BACKEND_REFUSALS
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm
from sklearn.model_selection import KFold

from ltr.baseline import base_scores, fit_base_threshold
from ltr.data.dataset import Dataset
from ltr.data.synthetic import generate_synthetic
from ltr.errors import DataError, LtrError, ModelError
from ltr.features import FeatureConfig, FeatureMatrix, featurize
from ltr.metrics import pearson_columns
from ltr.models import PRESETS, ModelSpec, build_model, preset
from ltr.models.calibration import Calibrator
from ltr.models.formulation import PerSituationModel, PooledModel, concept_blocks, pooled_rows
from ltr.models.interface import CALIBRATION_FOLDS
from ltr.models.learners import (
    LEARNERS,
    LightGBMLambdaRank,
    LightGBMRegression,
    RidgeLearner,
    XGBoostPairwise,
    relevance_grades,
)
from ltr.situations import SITUATIONS
from ltr.workflow import resolve_spec

FAST_ROUNDS = 25
EMPTY_PER_SPLIT = 2


def fast(spec: ModelSpec) -> ModelSpec:
    """The same model with few boosting rounds (members of an ensemble too)."""
    if spec.members:
        return dataclasses.replace(spec, members=tuple(fast(m) for m in spec.members))
    if spec.learner in ("base", "ridge"):
        return spec
    if spec.learner == "extra-trees":
        return spec.merged({"params": {"n_estimators": FAST_ROUNDS}})
    return spec.merged({"params": {"num_boost_round": FAST_ROUNDS}})


def drop_detections(dataset: Dataset, users: list[str]) -> Dataset:
    """`dataset` where `users` have no image and no detection (still users of their split)."""
    return dataclasses.replace(
        dataset,
        detections=dataset.detections[~dataset.detections["user"].isin(users)],
        images=dataset.images[~dataset.images["user"].isin(users)],
    )


@dataclasses.dataclass(frozen=True)
class Data:
    dataset: Dataset
    train: FeatureMatrix
    labels: pd.DataFrame
    val: FeatureMatrix
    val_labels: np.ndarray  # in the row order of `val`
    empty: list[str]  # users without any detection (train and val)


@pytest.fixture(scope="module")
def data() -> Data:
    dataset = generate_synthetic(400, seed=1).dataset
    empty = [u for s in ("train", "val") for u in dataset.split_users(s)[:EMPTY_PER_SPLIT]]
    dataset = drop_detections(dataset, empty)
    train, val = featurize(dataset, "train"), featurize(dataset, "val")
    val_labels = dataset.split_labels("val").loc[val.users].to_numpy()
    return Data(dataset, train, dataset.split_labels("train"), val, val_labels, empty)


def val_pearson(scores: np.ndarray, data: Data) -> np.ndarray:
    return pearson_columns(scores, data.val_labels)


# ------------------------------------------------------------------------------ presets
@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_fits_and_scores_every_user(name: str, data: Data) -> None:
    model = build_model(fast(preset(name))).fit(data.train, data.labels)
    scores = model.predict(data.val)
    assert list(scores.columns) == list(SITUATIONS)
    assert scores.index.equals(data.val.users)  # every user of the split, in its order
    values = scores.to_numpy()
    assert values.dtype == np.float64 and np.isfinite(values).all()
    # users without a single detection are scored, and alike (their features are all zero)
    empty = scores.loc[[u for u in data.empty if u in scores.index]].to_numpy()
    assert len(empty) == EMPTY_PER_SPLIT and np.array_equal(empty[0], empty[1])
    # not a constant: a ranking objective whose trees never split would predict one
    assert (values.std(axis=0) > 1e-6).all()
    # and it learned something real (a broken or random model sits near 0)
    assert val_pearson(values, data).mean() > 0.15


def test_presets_cover_every_back_end_and_both_formulations() -> None:
    learned = {(s.learner, s.formulation) for s in PRESETS.values() if s.learner in LEARNERS}
    assert learned == {(k, f) for k in LEARNERS for f in ("per-situation", "pooled")}
    assert PRESETS["base"].learner == "base"
    default = PRESETS["default"]
    assert default.learner == "ensemble" and len(default.members) >= 2


def test_unknown_preset_is_refused_with_the_known_names() -> None:
    with pytest.raises(LtrError, match=r"unknown model 'ridgee' \(known: base, .*default"):
        preset("ridgee")


# ------------------------------------------------------------------------- formulations
class Recording:
    """Mixin for a learner that keeps what every `fit` call received."""

    calls: ClassVar[list[dict[str, np.ndarray]]] = []

    def fit(self, X, y, query_ids, blocks=None):  # type: ignore[no-untyped-def]
        type(self).calls.append(
            {"X": X.copy(), "y": np.array(y, copy=True), "query": np.array(query_ids, copy=True)}
        )
        return super().fit(X, y, query_ids, blocks)  # type: ignore[misc]


def recording(monkeypatch: pytest.MonkeyPatch, base: type) -> type:
    cls = type(f"Recording{base.__name__}", (Recording, base), {"calls": []})
    monkeypatch.setitem(LEARNERS, base.key, cls)
    return cls


def test_per_situation_model_fits_one_learner_per_situation_on_its_labels(
    data: Data, monkeypatch: pytest.MonkeyPatch
) -> None:
    regression = recording(monkeypatch, LightGBMRegression)
    model = build_model(fast(PRESETS["lgbm-regression"])).fit(data.train, data.labels)
    assert isinstance(model, PerSituationModel) and len(model.learners_) == len(SITUATIONS)
    y = data.labels.loc[data.train.users].to_numpy()
    assert len(regression.calls) == len(SITUATIONS)
    for j, call in enumerate(regression.calls):
        assert call["X"].shape == (len(data.train.users), len(model.feature_names_))
        np.testing.assert_array_equal(call["y"], y[:, j])  # continuous labels for regression
        assert (call["query"] == 0).all()  # the situation's training users form one query
    # each situation's model sees every situation's rating features
    assert {c.rsplit(":", 1)[-1] for c in model.feature_names_ if ":" in c} >= set(SITUATIONS)


def test_ridge_fits_the_four_situations_at_once_as_it_would_one_by_one(data: Data) -> None:
    model = build_model(PRESETS["ridge"]).fit(data.train, data.labels)
    X = data.train.select(PRESETS["ridge"].families)
    y = data.labels.loc[data.train.users].to_numpy()
    blocks = concept_blocks(X)
    for j, shared in enumerate(model.learners_):
        alone = RidgeLearner(PRESETS["ridge"].params).fit(
            X.dense(), y[:, j], np.zeros(len(y), dtype=np.int64), blocks
        )
        assert shared.alpha_ == alone.alpha_
        np.testing.assert_allclose(shared.coef_, alone.coef_, rtol=1e-8, atol=1e-12)
        assert shared.intercept_ == pytest.approx(alone.intercept_, rel=1e-10)
    # the penalty is chosen per situation, not once for all
    assert len({learner.alpha_ for learner in model.learners_}) > 1


def test_pooled_rows_stack_each_situation_view_with_an_indicator(data: Data) -> None:
    rows = pooled_rows(data.train)
    n = len(data.train.users)
    view = data.train.for_situation("acc")
    assert rows.shape == (len(SITUATIONS) * n, view.shape[1] + len(SITUATIONS))
    indicator = rows[:, -len(SITUATIONS) :]
    np.testing.assert_array_equal(indicator, np.repeat(np.eye(len(SITUATIONS)), n, axis=0))
    shared = list(view.columns["name"]).index("conf_sum")  # situation-conditioned column
    for j, situation in enumerate(SITUATIONS):
        np.testing.assert_array_equal(
            rows[j * n : (j + 1) * n, shared], data.train.column(f"conf_sum:{situation}")
        )


def test_pooled_model_is_one_learner_over_user_situation_rows_queried_by_situation(
    data: Data, monkeypatch: pytest.MonkeyPatch
) -> None:
    pairwise = recording(monkeypatch, XGBoostPairwise)
    model = build_model(fast(PRESETS["xgb-pairwise-pooled"])).fit(data.train, data.labels)
    assert isinstance(model, PooledModel)
    (call,) = pairwise.calls
    n = len(data.train.users)
    np.testing.assert_array_equal(call["query"], np.repeat(np.arange(len(SITUATIONS)), n))
    y = data.labels.loc[data.train.users].to_numpy()
    # continuous targets, standardised per situation so each situation weighs the same
    target = call["y"].reshape(len(SITUATIONS), n).T
    np.testing.assert_allclose(target, (y - y.mean(axis=0)) / y.std(axis=0))
    assert model.predict_array(data.val).shape == (len(data.val.users), len(SITUATIONS))


def test_sub_queries_split_the_users_at_random_by_seed(
    data: Data, monkeypatch: pytest.MonkeyPatch
) -> None:
    ranker = recording(monkeypatch, LightGBMLambdaRank)
    n = len(data.train.users)

    def fit(seed: int, subqueries: int) -> list[dict[str, np.ndarray]]:
        ranker.calls.clear()
        spec = dataclasses.replace(fast(PRESETS["lgbm-lambdarank"]), subqueries=subqueries)
        build_model(spec.with_seed(seed)).fit(data.train, data.labels)
        return list(ranker.calls)

    first, again, other = fit(0, 3), fit(0, 3), fit(1, 3)
    for call in first:
        query = call["query"]
        assert (np.diff(query) >= 0).all()  # rows sorted by query, as the back-ends need
        assert sorted(np.bincount(query)) == [n // 3] * 3
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a["X"], b["X"])
    assert any(not np.array_equal(a["X"], b["X"]) for a, b in zip(first, other, strict=True))
    (single, *_) = fit(0, 1)
    assert (single["query"] == 0).all()


def test_sub_queries_do_not_touch_regression(data: Data, monkeypatch: pytest.MonkeyPatch) -> None:
    ridge = recording(monkeypatch, RidgeLearner)
    spec = dataclasses.replace(PRESETS["ridge"], subqueries=4)
    build_model(spec).fit(data.train, data.labels)
    y = data.labels.loc[data.train.users].to_numpy()
    for j, call in enumerate(ridge.calls):
        assert (call["query"] == 0).all()
        np.testing.assert_array_equal(call["y"], y[:, j])


# --------------------------------------------------------------------------------- grades
def test_ndcg_learners_get_quantile_grades_and_pairwise_keeps_the_labels(
    data: Data, monkeypatch: pytest.MonkeyPatch
) -> None:
    ranker = recording(monkeypatch, LightGBMLambdaRank)
    pairwise = recording(monkeypatch, XGBoostPairwise)
    y = data.labels.loc[data.train.users].to_numpy()
    spec = dataclasses.replace(fast(PRESETS["lgbm-lambdarank"]), n_grades=5)
    build_model(spec).fit(data.train, data.labels)
    build_model(fast(PRESETS["xgb-pairwise"])).fit(data.train, data.labels)
    for j in range(len(SITUATIONS)):
        grades = ranker.calls[j]["y"]
        np.testing.assert_array_equal(grades, relevance_grades(y[:, j], 5))
        assert set(np.unique(grades)) == set(range(5))
        np.testing.assert_array_equal(pairwise.calls[j]["y"], y[:, j])


def test_relevance_grades_by_hand() -> None:
    labels = np.array([0.3, -1.0, 2.0, 0.3, 0.3, 5.0, -2.0, 1.0])
    grades = relevance_grades(labels, 4)
    # sorted -2, -1, .3, .3, .3, 1, 2, 5: quartile edges at positions 1.75, 3.5 and 5.25
    np.testing.assert_allclose(np.quantile(labels, [0.25, 0.5, 0.75]), [-0.025, 0.3, 1.25])
    # ties (the three 0.3) share one grade; an edge value goes to the upper bin
    np.testing.assert_array_equal(grades, [2, 0, 3, 2, 2, 3, 0, 2])
    np.testing.assert_array_equal(relevance_grades(np.arange(12.0), 3), np.repeat([0, 1, 2], 4))


@settings(max_examples=200, deadline=None)
@given(
    labels=st.lists(
        st.floats(-3, 3, allow_nan=False).map(lambda v: round(v, 2)), min_size=2, max_size=200
    ),
    n_grades=st.integers(2, 31),
)
def test_relevance_grades_properties(labels: list[float], n_grades: int) -> None:
    y = np.array(labels)
    grades = relevance_grades(y, n_grades)
    assert grades.dtype == np.int32
    assert grades.min() >= 0 and grades.max() < n_grades
    order = np.argsort(y, kind="stable")
    assert (np.diff(grades[order]) >= 0).all()  # monotone in the label
    for value in np.unique(y):  # ties stay in one bin
        assert len(np.unique(grades[y == value])) == 1
    if len(np.unique(y)) == len(y) and len(y) >= n_grades:  # distinct labels: balanced bins
        counts = np.bincount(grades, minlength=n_grades)
        assert counts.max() - counts.min() <= 2
        assert counts.min() >= len(y) // n_grades - 1


# ----------------------------------------------------------------------------- calibration
def calibrated(data: Data, learner: str, calibration: str) -> tuple[np.ndarray, np.ndarray]:
    """(raw, calibrated) val scores of the same model without and with `calibration`."""
    spec = fast(PRESETS[learner])
    raw = build_model(spec).fit(data.train, data.labels).predict_array(data.val)
    model = build_model(dataclasses.replace(spec, calibration=calibration))
    return raw, model.fit(data.train, data.labels).predict_array(data.val)


def test_normal_calibration_maps_scores_through_the_training_ranks(data: Data) -> None:
    raw, scores = calibrated(data, "ridge", "normal")
    model = build_model(dataclasses.replace(PRESETS["ridge"], calibration="normal"))
    model.fit(data.train, data.labels)
    for j, (grid, values) in enumerate(model.calibrator_.maps_):
        # the map: out-of-fold training score -> normal quantile of its mid-rank share
        assert (np.diff(grid) > 0).all() and (np.diff(values) > 0).all()
        n = len(data.train.users)
        assert values[0] >= norm.ppf(0.5 / n) - 1e-12 and values[-1] <= -norm.ppf(0.5 / n) + 1e-12
        order = np.argsort(raw[:, j], kind="stable")
        assert (np.diff(scores[order, j]) >= -1e-12).all()  # monotone in the raw score
    assert np.abs(scores.mean(axis=0)).max() < 0.3


@pytest.mark.parametrize("calibration", ["none", "normal", "linear", "isotonic"])
def test_a_users_score_does_not_depend_on_who_else_is_scored(data: Data, calibration: str) -> None:
    spec = dataclasses.replace(fast(PRESETS["xgb-regression"]), calibration=calibration)
    model = build_model(spec).fit(data.train, data.labels)
    together = model.predict_array(data.val)
    alone = np.vstack([model.predict_array(data.val.take([i])) for i in range(5)])
    np.testing.assert_allclose(alone, together[:5], rtol=0, atol=1e-12)
    reversed_rows = np.arange(len(data.val.users))[::-1]
    np.testing.assert_allclose(
        model.predict_array(data.val.take(reversed_rows)), together[reversed_rows], atol=1e-12
    )


@pytest.mark.parametrize("learner", ["ridge", "xgb-regression"])
def test_linear_calibration_keeps_the_pearson_and_moves_to_the_label_scale(
    data: Data, learner: str
) -> None:
    raw, scores = calibrated(data, learner, "linear")
    np.testing.assert_allclose(val_pearson(scores, data), val_pearson(raw, data), atol=1e-10)
    for j in range(len(SITUATIONS)):  # an increasing affine map of the raw scores
        line = np.polyfit(raw[:, j], scores[:, j], 1)
        assert line[0] > 0
        np.testing.assert_allclose(scores[:, j], np.polyval(line, raw[:, j]), atol=1e-10)
    assert not np.allclose(raw, scores)


def test_isotonic_calibration_is_a_monotone_map_into_the_label_range(data: Data) -> None:
    raw, scores = calibrated(data, "xgb-regression", "isotonic")
    y = data.labels.to_numpy()
    for j in range(len(SITUATIONS)):
        order = np.argsort(raw[:, j], kind="stable")
        assert (np.diff(scores[order, j]) >= -1e-12).all()
        low, high = y[:, j].min() - 1e-12, y[:, j].max() + 1e-12
        assert low <= scores[:, j].min() <= scores[:, j].max() <= high
    assert not np.allclose(raw, scores)


@pytest.mark.parametrize("method", ["normal", "linear", "isotonic"])
def test_fitted_calibrations_are_fitted_on_out_of_fold_scores(data: Data, method: str) -> None:
    spec = fast(PRESETS["xgb-regression"])
    model = build_model(dataclasses.replace(spec, calibration=method)).fit(data.train, data.labels)
    y = data.labels.loc[data.train.users].to_numpy()
    oof = np.zeros_like(y)
    folds = KFold(CALIBRATION_FOLDS, shuffle=True, random_state=spec.seed)
    for inner, held in folds.split(y):
        fold = build_model(spec).fit(data.train.take(inner), data.labels)
        oof[held] = fold.predict_array(data.train.take(held))
    expected = Calibrator(method).fit(oof, y)
    fitted = build_model(spec).fit(data.train, data.labels).predict_array(data.train)
    in_sample = Calibrator(method).fit(fitted, y)
    maps = zip(model.calibrator_.maps_, expected.maps_, in_sample.maps_, strict=True)
    for (grid, values), (want_grid, want_values), (naive_grid, _) in maps:
        np.testing.assert_allclose(grid, want_grid)
        np.testing.assert_allclose(values, want_values)
        assert grid.shape != naive_grid.shape or not np.allclose(grid, naive_grid)


def test_calibrator_refuses_an_unfitted_method() -> None:
    with pytest.raises(LtrError, match="calibration 'none' is not fitted"):
        Calibrator("none")


# --------------------------------------------------------------------------------- ensemble
def test_equal_weights_give_every_member_the_same_pull_whatever_its_scale(data: Data) -> None:
    """What standardising members means, seen from outside: on the training users, an
    equal-weight ensemble correlates equally with each member (however different their
    score scales), and a larger weight pulls the ensemble toward that member."""
    members = (PRESETS["ridge"], fast(PRESETS["xgb-regression"]))
    fitted = [
        build_model(m).fit(data.train, data.labels).predict_array(data.train) for m in members
    ]
    ratio = fitted[0].std(axis=0) / fitted[1].std(axis=0)
    assert np.all((ratio > 1.2) | (ratio < 1 / 1.2)), "the members' scales differ"

    def pull(weights: tuple[float, float]) -> np.ndarray:
        spec = ModelSpec("ensemble", members=members, weights=weights)
        scores = build_model(spec).fit(data.train, data.labels).predict_array(data.train)
        return np.array([pearson_columns(scores, f) for f in fitted])  # member x situation

    equal = pull((1.0, 1.0))
    np.testing.assert_allclose(equal[0], equal[1], atol=1e-9)
    toward_first = pull((2.0, 1.0))
    assert np.all(toward_first[0] > toward_first[1])
    assert np.all(toward_first[0] > equal[0])


def test_ensemble_weights_matter(data: Data) -> None:
    members = (PRESETS["ridge"], fast(PRESETS["xgb-regression"]))
    only_first = build_model(ModelSpec("ensemble", members=members, weights=(1.0, 0.0)))
    only_first.fit(data.train, data.labels)
    ridge = build_model(members[0]).fit(data.train, data.labels).predict_array(data.val)
    scores = only_first.predict_array(data.val)
    np.testing.assert_allclose(pearson_columns(scores, ridge), 1.0, atol=1e-12)
    equal = build_model(ModelSpec("ensemble", members=members)).fit(data.train, data.labels)
    assert not np.allclose(equal.predict_array(data.val), scores)


# ------------------------------------------------------------------------------------ BASE
def test_base_model_picks_the_threshold_fit_base_threshold_picks(data: Data) -> None:
    grid = (0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6)
    dataset = data.dataset
    # labels that BASE at 0.5 explains best, so the right answer is not simply the lowest
    truth = base_scores(dataset, "train", 0.5)
    noise = np.random.default_rng(0).normal(scale=truth.std().to_numpy() * 0.3, size=truth.shape)
    labels = pd.DataFrame(truth.to_numpy() + noise, columns=list(SITUATIONS))
    labels.insert(0, "user", truth.index.to_numpy())
    labels.insert(0, "split", "train")
    dataset = dataclasses.replace(dataset, labels=labels)
    config = FeatureConfig(thresholds=grid)
    train = featurize(dataset, "train", config)
    model = build_model(PRESETS["base"]).fit(train, dataset.split_labels("train"))
    assert model.threshold_ == fit_base_threshold(dataset, "train", grid) == 0.5
    scores = model.predict(featurize(dataset, "val", config))
    pd.testing.assert_frame_equal(scores, base_scores(dataset, "val", 0.5), check_names=False)


def test_base_model_on_the_default_thresholds(data: Data) -> None:
    model = build_model(PRESETS["base"]).fit(data.train, data.labels)
    assert model.threshold_ == fit_base_threshold(data.dataset, "train", (0.0, 0.4))
    expected = base_scores(data.dataset, "val", model.threshold_)
    np.testing.assert_allclose(model.predict_array(data.val), expected.to_numpy())


def test_base_model_needs_the_base_family(data: Data) -> None:
    spec = dataclasses.replace(PRESETS["base"], families=("conf",))
    with pytest.raises(LtrError, match="BASE needs the 'base' feature family"):
        build_model(spec).fit(data.train, data.labels)


# ---------------------------------------------------------------------- predict safeguards
def test_predict_refuses_other_features_and_an_untrained_model(data: Data) -> None:
    model = build_model(PRESETS["ridge"])
    with pytest.raises(LtrError, match="not trained yet"):
        model.predict(data.val)
    model.fit(data.train, data.labels)
    fewer = featurize(data.dataset, "val", FeatureConfig(thresholds=(0.0,)))
    with pytest.raises(LtrError, match=r"features differ .* first difference: column \d+"):
        model.predict(fewer)


def test_fit_refuses_users_without_labels(data: Data) -> None:
    with pytest.raises(LtrError, match=r"80 user\(s\) have features but no labels"):
        build_model(PRESETS["ridge"]).fit(data.val, data.labels)


# ------------------------------------------------------------------------------ ModelSpec
@pytest.mark.parametrize("name", list(PRESETS))
def test_spec_round_trips_through_json(name: str) -> None:
    spec = PRESETS[name].with_seed(7)
    text = json.dumps(spec.to_dict(), allow_nan=False)
    assert ModelSpec.from_dict(json.loads(text)) == spec


def test_with_seed_seeds_the_members_apart() -> None:
    spec = PRESETS["default"].with_seed(5)
    assert spec.seed == 5 and [m.seed for m in spec.members] == [5, 6, 7, 8]


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_are_seeded_as_the_commands_seed_them(name: str) -> None:
    """`ltr cv/train --seed 0` and `preset(name)` from Python must be the same model."""
    assert preset(name) == preset(name).with_seed(0)


def test_merged_overrides_fields_and_merges_params() -> None:
    base = PRESETS["lgbm-regression"]
    once = base.merged({"params": {"num_leaves": 15}, "calibration": "normal"})
    twice = once.merged({"params": {"learning_rate": 0.1}, "n_grades": 8})
    assert dict(twice.params) == {"num_leaves": 15, "learning_rate": 0.1}
    assert (twice.calibration, twice.n_grades, twice.families) == ("normal", 8, base.families)
    assert base.params == {} and base.calibration == "none"  # the preset is untouched
    ensemble = PRESETS["ridge-xgb"].merged({"calibration": "isotonic", "weights": [1, 1]})
    assert ensemble.calibration == "isotonic" and ensemble.weights == (1.0, 1.0)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"learner": "ridge", "alpah": 1}, r"unknown field\(s\) alpah \(known: calibration, "),
        ({"formulation": "pooled"}, "missing field 'learner'"),
        ({"learner": "svm"}, r"unknown learner 'svm' \(known: base, ensemble, lgbm-lambdarank"),
        ({"learner": "ridge", "formulation": "joint"}, r"unknown formulation 'joint' \(choose"),
        ({"learner": "ridge", "calibration": "sigmoid"}, r"unknown calibration 'sigmoid' \("),
        ({"learner": "ridge", "families": ["freq", "colour"]}, "unknown feature family 'colour'"),
        ({"learner": "ridge", "families": "freq"}, "families must be a list, not 'freq'"),
        ({"learner": "ridge", "params": [1]}, "params must be an object"),
        ({"learner": "xgb-ndcg", "n_grades": 32}, "n_grades must be an integer from 2 to 31"),
        ({"learner": "ridge", "n_grades": "8"}, "n_grades must be an integer"),
        ({"learner": "ridge", "subqueries": 0}, "subqueries must be an integer >= 1"),
        ({"learner": "ridge", "seed": -1}, "seed must be an integer >= 0"),
        ({"learner": "ensemble"}, "an ensemble needs at least one member"),
        ({"learner": "ridge", "members": [{"learner": "ridge"}]}, "only an ensemble has members"),
        (
            {"learner": "ensemble", "members": [{"learner": "ridge"}], "params": {"eta": 1}},
            r"unknown ensemble option\(s\) eta \(known: inner_folds",
        ),
        (
            {
                "learner": "ensemble",
                "members": [{"learner": "ridge"}],
                "weights": [1],
                "params": {"shrink": 0.5},
            },
            "an ensemble with fixed weights has no params of its own",
        ),
        (
            {"learner": "ensemble", "members": [{"learner": "ridge"}], "params": {"shrink": 2}},
            "shrink must be a number from 0 to 1, not 2",
        ),
        (
            {
                "learner": "ensemble",
                "members": [{"learner": "ridge"}],
                "params": {"inner_folds": 1},
            },
            "inner_folds must be an integer >= 2, not 1",
        ),
        (
            {"learner": "ensemble", "members": [{"learner": "ridge"}], "params": {"cross": 1}},
            "cross must be true or false, not 1",
        ),
        (
            {"learner": "ensemble", "members": [{"learner": "ridge"}], "weights": [1, 2]},
            "one weight per member",
        ),
        (
            {"learner": "ensemble", "members": [{"learner": "ridge"}] * 2, "weights": [1, -1]},
            r"weights must be finite, >= 0 and not all 0, got \[1.0, -1.0\]",
        ),
        (
            {"learner": "ensemble", "members": [{"learner": "ridge", "calibration": "x"}]},
            "spec.json, member 1: unknown calibration 'x'",
        ),
        ([1, 2], "expected an object of spec fields"),
    ],
)
def test_bad_specs_are_refused_naming_the_problem(raw: object, message: str) -> None:
    with pytest.raises(LtrError, match=message) as error:
        ModelSpec.from_dict(raw, where="spec.json")  # type: ignore[arg-type]
    assert str(error.value).startswith("spec.json")


def test_params_file_overrides_a_preset_or_holds_a_whole_spec(tmp_path: Path) -> None:
    overrides = tmp_path / "over.json"
    overrides.write_text('{"params": {"num_leaves": 15}, "calibration": "linear"}')
    spec = resolve_spec("lgbm-regression", overrides)
    assert spec.params == {"num_leaves": 15} and spec.calibration == "linear"
    assert spec.families == PRESETS["lgbm-regression"].families
    whole = tmp_path / "whole.json"
    whole.write_text(json.dumps({"learner": "ridge", "params": {"alpha": 3.0}}))
    assert resolve_spec("default", whole) == ModelSpec("ridge", params={"alpha": 3.0})
    assert resolve_spec("ridge") == PRESETS["ridge"]


def test_params_file_errors_name_the_file_line_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "calibration": "normal",\n}\n')
    with pytest.raises(DataError, match=rf"^{bad}:3:1: invalid JSON: .*trailing comma"):
        resolve_spec("ridge", bad)
    listing = tmp_path / "list.json"
    listing.write_text("[1, 2]")
    with pytest.raises(DataError, match="expected a JSON object with model spec fields"):
        resolve_spec("ridge", listing)
    typo = tmp_path / "typo.json"
    typo.write_text('{"calibraton": "normal"}')
    with pytest.raises(LtrError, match=rf"^{typo}: unknown field\(s\) calibraton"):
        resolve_spec("ridge", typo)
    with pytest.raises(DataError, match="file not found"):
        resolve_spec("ridge", tmp_path / "missing.json")


# --------------------------------------------------------------------------- immutability
def test_specs_are_deeply_immutable_and_presets_cannot_be_changed_by_a_caller() -> None:
    spec = preset("xgb-regression")
    with pytest.raises(TypeError):
        spec.params["eta"] = 0.9  # type: ignore[index]
    with pytest.raises(TypeError):
        PRESETS["default"] = spec  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.seed = 3  # type: ignore[misc]
    assert "eta" not in preset("xgb-regression").params
    assert preset("xgb-regression") == PRESETS["xgb-regression"]
    nested = ModelSpec("lgbm-lambdarank", params={"label_gain": [0, 1, 3]})
    assert nested.params["label_gain"] == (0, 1, 3)
    assert nested.to_dict()["params"] == {"label_gain": [0, 1, 3]}
    assert ModelSpec.from_dict(nested.to_dict()) == nested
    assert hash(nested) == hash(ModelSpec.from_dict(nested.to_dict()))


def test_a_back_end_gets_its_own_plain_copy_of_the_parameters() -> None:
    spec = ModelSpec("lgbm-lambdarank", params={"label_gain": [0, 1, 3], "num_leaves": 3})
    learner = LEARNERS[spec.learner](spec.params)
    assert learner.params == {"label_gain": [0, 1, 3], "num_leaves": 3}
    learner.params["label_gain"].append(7)
    assert spec.params["label_gain"] == (0, 1, 3)


# ------------------------------------------------------------------- parameter name checks
@pytest.mark.parametrize(
    ("learner", "params", "suggestion"),
    [
        ("lgbm-regression", {"num_leavs": 3}, "num_leaves"),
        ("lgbm-lambdarank", {"lambdarank_truncaton_level": 3}, "lambdarank_truncation_level"),
        ("xgb-regression", {"max_depht": 3}, "max_depth"),
        ("xgb-pairwise", {"lambdarank_pair_methd": "mean"}, "lambdarank_pair_method"),
        ("xgb-ndcg", {"colsample_bytre": 0.5}, "colsample_bytree"),
        ("ridge", {"alpah": 3}, "alpha"),
    ],
)
def test_a_misspelt_parameter_is_refused_with_a_suggestion(
    learner: str, params: dict, suggestion: str
) -> None:
    (name,) = params
    with pytest.raises(
        LtrError,
        match=rf"unknown parameter '{name}' for {learner}; did you mean "
        rf"'{suggestion}'\?",
    ):
        ModelSpec(learner, params=params)


def test_every_back_end_checks_parameter_names() -> None:
    for key in LEARNERS:
        with pytest.raises(LtrError, match=rf"unknown parameter 'no_such_param' for {key}"):
            ModelSpec(key, params={"no_such_param": 1})
        ModelSpec(key, params={})  # and accepts no parameters


def test_known_names_and_aliases_pass() -> None:
    ModelSpec("lgbm-regression", params={"num_leaves": 3, "min_child_samples": 5, "eta": 0.1})
    ModelSpec("xgb-regression", params={"max_depth": 2, "learning_rate": 0.1, "num_boost_round": 5})
    ModelSpec("xgb-pairwise", params={"lambdarank_pair_method": "topk"})
    ModelSpec("ridge", params={"alpha": 3.0, "block_scale": False})


def test_xgboost_training_emits_no_raw_warnings(data: Data) -> None:
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for key in ("xgb-regression", "xgb-pairwise", "xgb-ndcg"):
            build_model(fast(PRESETS[key])).fit(data.train, data.labels)
    assert [str(w.message) for w in caught if "xgboost" in str(w.filename)] == []


# ------------------------------------------------------------------------------ extra trees
def test_extra_trees_is_one_multi_output_forest_scored_like_scikit_learn(data: Data) -> None:
    from sklearn.ensemble import ExtraTreesRegressor

    spec = ModelSpec("extra-trees", params={"n_estimators": 15}, families=("freq", "base"), seed=3)
    model = build_model(spec).fit(data.train, data.labels)
    X = data.train.select(spec.families).dense()
    y = data.labels.loc[data.train.users, list(SITUATIONS)].to_numpy()
    center, spread = y.mean(axis=0), y.std(axis=0)
    forest = ExtraTreesRegressor(15, max_features=0.3, min_samples_leaf=5, random_state=3)
    forest.fit(X, (y - center) / spread)
    expected = forest.predict(data.val.select(spec.families).dense()) * spread + center
    np.testing.assert_allclose(model.predict_array(data.val), expected, rtol=0, atol=1e-12)
    # one forest: the four situations share every split
    first, second = model.learners_[0], model.learners_[3]
    np.testing.assert_array_equal(first.threshold_, second.threshold_)
    assert not np.array_equal(first.value_, second.value_)
    # ... so one traversal serves the four: the same scores as four separate ones
    assert first.structure_ == second.structure_
    X_val = data.val.select(spec.families).dense()
    one_by_one = np.column_stack([learner.predict(X_val) for learner in model.learners_])
    np.testing.assert_array_equal(type(first).predict_targets(model.learners_, X_val), one_by_one)


def test_extra_trees_can_grow_one_forest_per_situation(data: Data) -> None:
    params = {"n_estimators": 5, "multi_output": False}
    model = build_model(ModelSpec("extra-trees", params=params, seed=1)).fit(
        data.train, data.labels
    )
    first, second = model.learners_[0], model.learners_[1]
    assert not np.array_equal(first.threshold_, second.threshold_)
    assert first.structure_ != second.structure_  # four traversals, each its own forest
    assert val_pearson(model.predict_array(data.val), data).mean() > 0.1


def test_extra_trees_checks_its_parameter_names_against_scikit_learn() -> None:
    ModelSpec("extra-trees", params={"n_estimators": 5, "max_depth": 3, "multi_output": False})
    with pytest.raises(
        LtrError, match="'min_sample_leaf' for extra-trees; did you mean 'min_samples_leaf'"
    ):
        ModelSpec("extra-trees", params={"min_sample_leaf": 3})
    with pytest.raises(LtrError, match="unknown parameter 'random_state' for extra-trees"):
        ModelSpec("extra-trees", params={"random_state": 3})  # the spec's seed sets it


# ------------------------------------------------------------------ parameter value checks
@pytest.mark.parametrize(
    ("learner", "params", "message"),
    [
        ("ridge", {"alpha": -1}, "alpha must be 'auto' or a number > 0, not -1"),
        ("ridge", {"alpha": 0}, "alpha must be 'auto' or a number > 0, not 0"),
        ("ridge", {"alpha": "x"}, "alpha must be 'auto' or a number > 0, not 'x'"),
        ("ridge", {"alpha": True}, "alpha must be 'auto' or a number > 0, not True"),
        ("ridge", {"block_scale": "yes"}, "block_scale must be true or false, not 'yes'"),
        ("extra-trees", {"multi_output": 1}, "multi_output must be true or false, not 1"),
        ("lgbm-regression", {"num_boost_round": 0}, "num_boost_round must be an integer >= 1"),
        ("lgbm-regression", {"n_estimators": -5}, "n_estimators must be an integer >= 1, not -5"),
        ("lgbm-regression", {"num_boost_round": "abc"}, "an integer >= 1, not 'abc'"),
        ("xgb-regression", {"num_boost_round": 2.5}, "an integer >= 1, not 2.5"),
        (
            "lgbm-regression",
            {"num_boost_round": 5, "n_estimators": 9},
            "num_boost_round, n_estimators name the same parameter: give it once",
        ),
        ("lgbm-pearson", {"pearson_eps": 0}, "pearson_eps must be a finite number > 0, not 0"),
        ("xgb-pearson", {"pearson_eps": -1}, "pearson_eps must be a finite number > 0, not -1"),
        (
            "lgbm-regression",
            {"num_leaves": {"a": 1}},
            "num_leaves must be a number, a string, true/false or a list of them",
        ),
    ],
)
def test_values_ltr_reads_itself_are_checked_with_the_spec(
    learner: str, params: dict, message: str
) -> None:
    with pytest.raises(LtrError, match=rf"^{learner}: .*{message}"):
        ModelSpec(learner, params=params)


def test_a_spec_needs_at_least_one_family() -> None:
    with pytest.raises(LtrError, match=r"^p.json: families must name at least one family"):
        PRESETS["ridge"].merged({"families": []}, where="p.json")


@pytest.mark.parametrize(
    ("learner", "params", "message"),
    [
        (
            "xgb-regression",
            {"objective": "nosuch"},
            "xgb-regression: parameter 'objective' cannot be set: its objective is fixed "
            "(reg:squarederror); for another objective choose another learner: xgb-pairwise "
            "(rank:pairwise), xgb-ndcg (rank:ndcg), xgb-pearson (Pearson)",
        ),
        (
            "xgb-regression",
            {"objective": "rank:ndcg"},
            "its objective is fixed (reg:squarederror); use the learner xgb-ndcg for rank:ndcg",
        ),
        (
            "lgbm-regression",
            {"application": "lambdarank"},
            "lgbm-regression: parameter 'application' cannot be set: its objective is fixed "
            "(regression); use the learner lgbm-lambdarank for lambdarank",
        ),
        ("xgb-pairwise", {"seed": 3}, "ltr sets it from the spec's seed"),
        ("lgbm-pearson", {"random_state": 3}, "ltr sets it from the spec's seed"),
        ("lgbm-regression", {"n_jobs": 3}, "ltr sets it from --threads"),
        ("xgb-ndcg", {"nthread": 3}, "ltr sets it from --threads"),
        ("xgb-regression", {"tree_method": "exact"}, "ltr sets it itself"),
        ("lgbm-lambdarank", {"verbose": 1}, "ltr sets it itself"),
    ],
)
def test_parameters_ltr_sets_itself_are_refused_not_silently_replaced(
    learner: str, params: dict, message: str
) -> None:
    with pytest.raises(LtrError, match=re.escape(message)):
        ModelSpec(learner, params=params)


def test_every_boosting_learner_refuses_an_objective_and_names_the_alternatives() -> None:
    boosting = [key for key in LEARNERS if key.startswith(("lgbm-", "xgb-"))]
    for key in boosting:
        with pytest.raises(LtrError, match="its objective is fixed") as error:
            ModelSpec(key, params={"objective": "huber"})
        others = [k for k in boosting if k != key and k[:4] == key[:4]]
        assert all(other in str(error.value) for other in others), str(error.value)
    for key in ("ridge", "extra-trees"):  # no objective parameter at all
        with pytest.raises(LtrError, match=f"unknown parameter 'objective' for {key}"):
            ModelSpec(key, params={"objective": "huber"})


@pytest.mark.parametrize(
    ("learner", "params", "message"),
    [
        *BACKEND_REFUSALS,
        (
            "lgbm-pearson",
            {"num_leaves": "abc"},
            "lgbm-pearson: LightGBM refused parameter 'num_leaves' = 'abc': Parameter num_leaves "
            'should be of type int, got "abc"',
        ),
        (
            "extra-trees",
            {"n_estimators": 0},
            "extra-trees: scikit-learn refused parameter 'n_estimators' = 0: The 'n_estimators' "
            "parameter of ExtraTreesRegressor must be an int in the range [1, inf). Got 0 instead.",
        ),
        (
            "xgb-pairwise",
            {"eta": "x"},
            "xgb-pairwise: XGBoost refused parameter 'learning_rate': Invalid Parameter format "
            "for learning_rate expect float but value='x'",
        ),
    ],
)
def test_a_value_the_back_end_refuses_is_one_model_error_line(
    learner: str, params: dict, message: str, data: Data, capfd: pytest.CaptureFixture[str]
) -> None:
    spec = fast(ModelSpec(learner, families=("freq", "base"))).merged({"params": params})
    for candidate in (spec, ModelSpec("ensemble", members=(PRESETS["base"], spec))):
        with pytest.raises(ModelError) as error:
            build_model(candidate).fit(data.train, data.labels)
        assert str(error.value) == message  # one line: no source path, no second line
    captured = capfd.readouterr()
    assert "[LightGBM]" not in captured.out + captured.err


def test_families_that_give_no_column_are_refused(data: Data) -> None:
    without_boxes = data.train.select([f for f in data.train.families if f != "area"])
    with pytest.raises(ModelError, match=r"^ridge: the feature families area give no column"):
        build_model(ModelSpec("ridge", families=("area",))).fit(without_boxes, data.labels)
