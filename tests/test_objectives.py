"""The Pearson objective (`ltr.models.objectives`) and its two learners.

The maths is checked against finite differences of the loss itself (gradient) and of the
gradient (the exact Hessian, which the diagonal must bound); the learners on small synthetic
data (few rounds) against the regression learner under the same settings.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ltr.cv import cross_validate
from ltr.data.synthetic import generate_synthetic
from ltr.errors import LtrError
from ltr.features import FeatureMatrix, featurize
from ltr.metrics import pearson_columns
from ltr.models import COMPARE, PRESETS, ModelSpec, build_model
from ltr.models.learners import LEARNERS, LightGBMPearson, XGBoostPearson
from ltr.models.objectives import (
    HESSIAN_BOUND,
    PearsonObjective,
    pearson_gradients,
    pearson_loss,
    query_codes,
)

SIZES = (2, 3, 7, 20, 51)


def random_queries(seed: int, sizes: tuple[int, ...] = SIZES) -> tuple[np.ndarray, ...]:
    """(scores, labels, query ids) of queries with the given sizes, ids shuffled."""
    rng = np.random.default_rng(seed)
    query = rng.permutation(np.repeat(np.arange(len(sizes)) * 3 + 5, sizes))  # unsorted ids
    n = len(query)
    labels = rng.normal(size=n) * rng.uniform(0.1, 5) + rng.normal() * 3
    scores = 0.5 * labels + rng.normal(size=n) * rng.uniform(0.01, 3)
    return scores, labels, query


def numeric_gradient(scores: np.ndarray, labels: np.ndarray, query: np.ndarray, eps: float):
    step = 1e-6
    grad = np.empty_like(scores)
    for i in range(len(scores)):
        up, down = scores.copy(), scores.copy()
        up[i] += step
        down[i] -= step
        grad[i] = pearson_loss(up, labels, query, eps) - pearson_loss(down, labels, query, eps)
        grad[i] /= 2 * step
    return grad


# ------------------------------------------------------------------------------- gradient
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("eps", [1.0, 0.05])
def test_gradient_matches_central_differences_of_the_loss(seed: int, eps: float) -> None:
    scores, labels, query = random_queries(seed)
    grad, _ = pearson_gradients(scores, labels, query, eps)
    np.testing.assert_allclose(grad, numeric_gradient(scores, labels, query, eps), atol=2e-6)


def test_gradient_at_the_start_is_regression_on_standardised_labels() -> None:
    """All scores equal: g = -z / sqrt(eps), h the same for every item of a query."""
    _, labels, query = random_queries(7)
    for eps in (1.0, 0.25):
        grad, hess = pearson_gradients(np.full(len(labels), 0.3), labels, query, eps)
        for q in np.unique(query):
            y = labels[query == q]
            z = (y - y.mean()) / y.std()
            np.testing.assert_allclose(grad[query == q], -z / np.sqrt(eps), atol=1e-12)
        np.testing.assert_allclose(hess, HESSIAN_BOUND / eps)
    grad, _ = pearson_gradients(np.zeros(len(labels)), labels, query, 1.0)
    np.testing.assert_allclose(
        pearson_loss(np.zeros(len(labels)), labels, query), len(labels)
    )  # r = 0 for every query


def test_loss_is_n_times_one_minus_pearson_when_the_scores_spread() -> None:
    scores, labels, query = random_queries(3)
    scores = scores * 1e4  # spread >> sqrt(eps): r is the plain Pearson correlation
    expected = sum(
        (query == q).sum() * (1 - np.corrcoef(scores[query == q], labels[query == q])[0, 1])
        for q in np.unique(query)
    )
    assert pearson_loss(scores, labels, query) == pytest.approx(expected, rel=1e-6)


# -------------------------------------------------------------------------------- Hessian
def exact_hessian(scores: np.ndarray, labels: np.ndarray, query: np.ndarray, eps: float):
    """Central differences of the analytic gradient: the full n x n Hessian."""
    step = 1e-6
    columns = []
    for i in range(len(scores)):
        up, down = scores.copy(), scores.copy()
        up[i] += step
        down[i] -= step
        g_up, _ = pearson_gradients(up, labels, query, eps)
        g_down, _ = pearson_gradients(down, labels, query, eps)
        columns.append((g_up - g_down) / (2 * step))
    hessian = np.column_stack(columns)
    return (hessian + hessian.T) / 2


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("eps", [1.0, 0.05])
def test_hessian_is_positive_finite_and_bounds_the_exact_curvature(seed: int, eps: float) -> None:
    scores, labels, query = random_queries(seed, sizes=(3, 9, 24))
    _, hess = pearson_gradients(scores, labels, query, eps)
    assert np.isfinite(hess).all() and (hess > 0).all()
    exact = exact_hessian(scores, labels, query, eps)
    for q in np.unique(query):  # one block per query, h constant within it
        rows = np.flatnonzero(query == q)
        (h,) = np.unique(hess[rows])
        block = exact[np.ix_(rows, rows)]
        assert np.linalg.eigvalsh(h * np.eye(len(rows)) - block).min() >= -1e-6
    # queries do not interact: the Hessian is block-diagonal
    assert np.abs(exact[query[:, None] != query[None, :]]).max() < 1e-6


def test_hessian_bound_is_tight() -> None:
    """2/sqrt(3) is reached (scores spread >> eps, r = 1/sqrt(3)): no slack to remove."""
    rng = np.random.default_rng(0)
    n = 40
    u = rng.normal(size=n)
    u -= u.mean()
    w = rng.normal(size=n)
    w -= w.mean() + u * (w @ u) / (u @ u)
    r = 1 / np.sqrt(3)
    labels = r * u / u.std() + np.sqrt(1 - r * r) * w / w.std()
    scores = 1e3 * u
    query = np.zeros(n, dtype=int)
    _, hess = pearson_gradients(scores, labels, query, 1.0)
    top = np.linalg.eigvalsh(exact_hessian(scores, labels, query, 1.0)).max()
    assert top == pytest.approx(hess[0], rel=1e-3)


# ----------------------------------------------------------------------------- invariances
def test_gradient_and_hessian_ignore_the_scale_and_offset_of_each_querys_labels() -> None:
    scores, labels, query = random_queries(11)
    grad, hess = pearson_gradients(scores, labels, query)
    rng = np.random.default_rng(1)
    codes, counts = query_codes(query)
    scale = rng.uniform(0.01, 100, size=len(counts))[codes]
    shift = rng.normal(scale=50, size=len(counts))[codes]
    other_grad, other_hess = pearson_gradients(scores, scale * labels + shift, query)
    np.testing.assert_allclose(other_grad, grad, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(other_hess, hess, rtol=1e-12)
    # and the scores' offset, per query, does not matter either
    moved, _ = pearson_gradients(scores + shift, labels, query)
    np.testing.assert_allclose(moved, grad, rtol=1e-9, atol=1e-12)


def test_queries_are_independent() -> None:
    scores, labels, query = random_queries(5)
    grad, hess = pearson_gradients(scores, labels, query)
    changed = labels.copy()
    target = query == query[0]
    changed[target] = np.random.default_rng(2).normal(size=target.sum())
    new_grad, new_hess = pearson_gradients(scores, changed, query)
    np.testing.assert_array_equal(new_grad[~target], grad[~target])
    np.testing.assert_array_equal(new_hess[~target], hess[~target])
    assert not np.allclose(new_grad[target], grad[target])


def test_query_ids_need_not_be_sorted() -> None:
    scores, labels, query = random_queries(8)
    order = np.argsort(query, kind="stable")
    grad, hess = pearson_gradients(scores, labels, query)
    sorted_grad, sorted_hess = pearson_gradients(scores[order], labels[order], query[order])
    np.testing.assert_allclose(sorted_grad, grad[order], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(sorted_hess, hess[order], rtol=1e-12)


def test_constant_labels_give_no_gradient() -> None:
    scores, labels, query = random_queries(4)
    flat = labels.copy()
    flat[query == query[0]] = 0.1  # 0.1 is not exact in binary: the mean is off by an ulp
    grad, hess = pearson_gradients(scores, flat, query)
    assert (grad[query == query[0]] == 0).all()
    assert np.isfinite(hess).all() and (hess > 0).all()


def test_bad_eps_is_refused() -> None:
    scores, labels, query = random_queries(0)
    for eps in (0.0, -1.0, float("nan")):
        with pytest.raises(LtrError, match="pearson_eps must be a finite number > 0"):
            pearson_gradients(scores, labels, query, eps)


def test_objective_callbacks_give_the_gradients_of_their_labels_and_queries() -> None:
    scores, labels, query = random_queries(6)
    objective = PearsonObjective(labels, query, eps=0.5)
    expected = pearson_gradients(scores, labels, query, 0.5)
    for callback in (objective.lightgbm, objective.xgboost):
        for got, want in zip(callback(scores, None), expected, strict=True):
            np.testing.assert_array_equal(got, want)


# -------------------------------------------------------------------------------- learners
ROUNDS = {"num_boost_round": 60}
FAST = {
    "lgbm": {**ROUNDS, "learning_rate": 0.1},
    "xgb": {**ROUNDS, "eta": 0.1},
}


@pytest.fixture(scope="module")
def synthetic() -> tuple[FeatureMatrix, pd.DataFrame, FeatureMatrix, np.ndarray]:
    dataset = generate_synthetic(300, seed=2).dataset
    train, val = featurize(dataset, "train"), featurize(dataset, "val")
    val_labels = dataset.split_labels("val").loc[val.users].to_numpy()
    return train, dataset.split_labels("train"), val, val_labels


def fast(name: str, **fields: object) -> ModelSpec:
    params = FAST[name.split("-")[0]]
    return dataclasses.replace(PRESETS[name].merged({"params": params}), **fields)


def test_the_learners_are_registered_with_presets_and_compared() -> None:
    assert LEARNERS["lgbm-pearson"] is LightGBMPearson
    assert LEARNERS["xgb-pearson"] is XGBoostPearson
    for key in ("lgbm-pearson", "xgb-pearson"):
        assert LEARNERS[key].uses_queries and not LEARNERS[key].needs_grades
        assert PRESETS[key].formulation == "per-situation"
        assert PRESETS[f"{key}-pooled"].formulation == "pooled"
        assert key in COMPARE


@pytest.mark.parametrize("name", ["lgbm-pearson", "xgb-pearson", "lgbm-pearson-pooled"])
def test_learner_trains_and_round_trips_exactly(name: str, synthetic, tmp_path: Path) -> None:
    train, labels, val, val_labels = synthetic
    model = build_model(fast(name)).fit(train, labels)
    before = model.predict_array(val)
    assert np.isfinite(before).all() and (before.std(axis=0) > 1e-6).all()
    assert pearson_columns(before, val_labels).mean() > 0.2
    files = model.save(tmp_path)
    suffix = LEARNERS[PRESETS[name].learner].suffix
    assert all(f.endswith(suffix) for f in files if f != "state.json")
    loaded = build_model(fast(name)).load(tmp_path)
    np.testing.assert_array_equal(loaded.predict_array(val), before)


@pytest.mark.parametrize("name", ["lgbm-pearson", "xgb-pearson"])
def test_learner_is_deterministic_by_seed(name: str, synthetic) -> None:
    """Same seed, same model; another seed draws other bagging samples."""
    train, labels, val, _ = synthetic
    spec = fast(name)
    first = build_model(spec).fit(train, labels).predict_array(val)
    again = build_model(spec).fit(train, labels).predict_array(val)
    other = build_model(spec.with_seed(3)).fit(train, labels).predict_array(val)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("learner", ["lgbm-pearson", "xgb-pearson"])
def test_unknown_objective_parameters_are_refused(learner: str) -> None:
    """Refused when the spec is made, before any training, with the closest known name."""
    with pytest.raises(
        LtrError,
        match=rf"unknown parameter 'pearson_epsilon' for {learner}; did you mean "
        r"'pearson_eps'\?",
    ):
        fast(learner).merged({"params": {"pearson_epsilon": 1.0}})
    fast(learner).merged({"params": {"pearson_eps": 2.0}})  # the known one passes


def test_training_raises_the_in_sample_correlation(synthetic) -> None:
    """The learner follows its objective: more rounds, a higher training-set Pearson."""
    train, labels, _, _ = synthetic
    y = labels.loc[train.users].to_numpy()
    fits = [
        build_model(fast("xgb-pearson").merged({"params": {"num_boost_round": rounds}}))
        .fit(train, labels)
        .predict_array(train)
        for rounds in (5, 60)
    ]
    few, many = (pearson_columns(scores, y) for scores in fits)
    assert (many > few).all()


@pytest.mark.parametrize(
    ("pearson", "regression"),
    [("lgbm-pearson", "lgbm-regression"), ("xgb-pearson", "xgb-regression")],
)
def test_cv_pearson_is_close_to_regression(pearson: str, regression: str, synthetic) -> None:
    """Same trees and rounds, same folds: the correlation objective is no worse than squared
    error by more than fold noise (on the real data it is level or better, see README)."""
    train, labels, _, _ = synthetic
    results = [
        cross_validate(fast(name), train, labels, folds=3, repeats=1)
        for name in (pearson, regression)
    ]
    ours, theirs = results
    assert ours.mean > 0.25
    assert ours.mean > theirs.mean - 0.03
