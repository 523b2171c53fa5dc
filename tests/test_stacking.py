"""Stacking: learned ensemble weights come from out-of-fold member scores, are non-negative,
recover known answers on constructed data, are deterministic by seed and survive save/load;
the cross-situation level borrows from a correlated situation.

Most tests use stand-in members whose scores are fixed per user (no fitting), so the expected
weights are known; a few use real ridge/XGBoost members on small synthetic data.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.optimize import lsq_linear, minimize
from sklearn.model_selection import KFold

from ltr.data.synthetic import generate_synthetic
from ltr.features import FeatureMatrix, featurize
from ltr.metrics import pearson_columns
from ltr.models import ModelSpec, build_model
from ltr.models.ensemble import EnsembleModel
from ltr.models.interface import ProfileModel
from ltr.models.stacking import nonnegative_weights
from ltr.situations import SITUATIONS

N_USERS = 400


# ----------------------------------------------------------------------- stand-in members
class TableMember(ProfileModel):
    """A member whose score of a user is read from a table: `seen` for users it was fitted
    on, `unseen` for the others (set both equal for a member that does not overfit)."""

    def __init__(self, spec: ModelSpec, *, seen: pd.DataFrame, unseen: pd.DataFrame) -> None:
        super().__init__(spec)
        self.seen, self.unseen = seen, unseen

    def _fit_scores(self, features: FeatureMatrix, y: np.ndarray) -> None:
        self.fitted_ = set(features.users)

    def _predict_scores(self, features: FeatureMatrix) -> np.ndarray:
        rows = [
            (self.seen if user in self.fitted_ else self.unseen).loc[user].to_numpy()
            for user in features.users
        ]
        return np.asarray(rows, dtype=float)

    def _save_state(self, directory: Path, prefix: str) -> list[str]:
        return []

    def _load_state(self, directory: Path, prefix: str) -> None:
        self.fitted_ = set()


def user_features(n: int) -> FeatureMatrix:
    """A one-column feature matrix of `n` users: the stand-ins ignore features."""
    columns = pd.DataFrame(
        {"name": ["n_images"], "family": ["size"], "situation": [None], "concept": [None]}
    )
    users = pd.Index([f"u{i:04d}" for i in range(n)], name="user")
    return FeatureMatrix(users=users, values=sp.csr_matrix(np.ones((n, 1))), columns=columns)


def frame(values: np.ndarray, users: pd.Index) -> pd.DataFrame:
    return pd.DataFrame(values, index=users, columns=list(SITUATIONS))


def stand_in_ensemble(
    tables: list[tuple[pd.DataFrame, pd.DataFrame]], **options: Any
) -> EnsembleModel:
    """A learned ensemble over stand-in members (member i reads tables[i] = (seen, unseen))."""
    members = tuple(ModelSpec("ridge", seed=i) for i in range(len(tables)))
    spec = ModelSpec("ensemble", members=members, params=options, seed=7)

    def build(member: ModelSpec, threads: int = 1) -> ProfileModel:
        seen, unseen = tables[member.seed]
        return TableMember(member, seen=seen, unseen=unseen)

    return EnsembleModel(spec, build_member=build)


@pytest.fixture(scope="module")
def constructed() -> tuple[FeatureMatrix, pd.DataFrame, np.ndarray]:
    """Users, labels, and a clean signal per situation (labels = signal + noise)."""
    rng = np.random.default_rng(0)
    features = user_features(N_USERS)
    signal = rng.normal(size=(N_USERS, 4))
    labels = signal + 0.5 * rng.normal(size=(N_USERS, 4))
    return features, frame(labels, features.users), signal


# ---------------------------------------------------------------------- the weights alone
def test_nonnegative_weights_give_the_pearson_maximising_nonnegative_combination() -> None:
    rng = np.random.default_rng(1)
    target = rng.normal(size=300)
    scores = np.column_stack(
        [
            target + rng.normal(size=300),
            target + 2.0 * rng.normal(size=300),
            -target + rng.normal(size=300),  # anti-correlated: must get weight 0
            rng.normal(size=300),
        ]
    )
    weights = nonnegative_weights(scores, target)
    assert weights.min() >= 0 and weights.sum() == pytest.approx(1.0)
    assert weights[2] == 0

    # independently: maximise the Pearson correlation over the simplex with a generic optimiser
    def negative_pearson(w: np.ndarray) -> float:
        return -float(np.corrcoef(scores @ w, target)[0, 1])

    best = minimize(
        negative_pearson,
        np.full(4, 0.25),
        bounds=[(0, 1)] * 4,
        constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1}],
    )
    assert -negative_pearson(weights) == pytest.approx(-best.fun, abs=1e-6)
    np.testing.assert_allclose(weights, best.x, atol=1e-3)


def test_a_pure_noise_member_gets_about_no_weight() -> None:
    rng = np.random.default_rng(2)
    target = rng.normal(size=5000)
    scores = np.column_stack([target + 0.5 * rng.normal(size=5000), rng.normal(size=5000)])
    weights = nonnegative_weights(scores, target)
    assert weights[1] < 0.05  # its chance correlation with the residual, ~1/sqrt(5000)


def test_two_identical_members_share_what_one_would_get() -> None:
    rng = np.random.default_rng(3)
    target = rng.normal(size=500)
    good = target + 0.5 * rng.normal(size=500)
    noise = rng.normal(size=500)
    alone = nonnegative_weights(np.column_stack([good, noise]), target)
    twice = nonnegative_weights(np.column_stack([good, good, noise]), target)
    assert twice[0] + twice[1] == pytest.approx(alone[0], abs=1e-9)
    assert twice[2] == pytest.approx(alone[1], abs=1e-9)


def test_no_useful_member_falls_back_to_equal_weights() -> None:
    rng = np.random.default_rng(4)
    target = rng.normal(size=100)
    scores = np.column_stack([-target, -2 * target])
    np.testing.assert_array_equal(nonnegative_weights(scores, target), [0.5, 0.5])


# ---------------------------------------------------------------- the ensemble's stacking
def test_weights_are_learned_on_out_of_fold_scores_not_in_sample_ones(constructed) -> None:
    """Member 1 memorises its training users (perfect in sample) and knows nothing about
    others; member 2 is honest. In-sample weighting would pick member 1; stacking must not."""
    features, labels, signal = constructed
    rng = np.random.default_rng(5)
    users = features.users
    memoriser = (frame(labels.to_numpy(), users), frame(rng.normal(size=(N_USERS, 4)), users))
    honest = frame(signal + 0.3 * rng.normal(size=(N_USERS, 4)), users)
    model = stand_in_ensemble([memoriser, (honest, honest)]).fit(features, labels)
    assert model.weights_[:, 0].max() < 0.05
    assert model.weights_[:, 1].min() > 0.95
    assert (model.weights_ >= 0).all()
    np.testing.assert_allclose(model.weights_.sum(axis=1), 1.0)


def test_learned_weights_match_an_independent_out_of_fold_computation(constructed) -> None:
    features, labels, signal = constructed
    rng = np.random.default_rng(6)
    users = features.users
    tables = []
    for noise in (0.5, 1.0, 3.0):
        seen = frame(signal + 0.2 * rng.normal(size=(N_USERS, 4)), users)  # a bit optimistic
        tables.append((seen, frame(signal + noise * rng.normal(size=(N_USERS, 4)), users)))
    model = stand_in_ensemble(tables, inner_folds=4).fit(features, labels)

    # by hand: 4 inner folds seeded by the ensemble's seed, each member scored on its held-out
    # users, standardised, then bounded least squares (a different solver) per situation
    y = labels.to_numpy()
    oof = np.zeros((N_USERS, 4, len(tables)))
    for train, held in KFold(4, shuffle=True, random_state=7).split(y):
        for m, (seen, unseen) in enumerate(tables):
            fitted = set(users[train])
            for i in held:
                oof[i, :, m] = (seen if users[i] in fitted else unseen).iloc[i].to_numpy()
    oof = (oof - oof.mean(axis=0)) / oof.std(axis=0)
    target = (y - y.mean(axis=0)) / y.std(axis=0)
    for j in range(4):
        a = oof[:, j, :] - oof[:, j, :].mean(axis=0)
        expected = lsq_linear(a, target[:, j] - target[:, j].mean(), bounds=(0, np.inf)).x
        np.testing.assert_allclose(model.weights_[j], expected / expected.sum(), atol=1e-6)
    # the noisier a member is out of fold, the less weight it gets
    assert (model.weights_[:, 0] > model.weights_[:, 1]).all()
    assert (model.weights_[:, 1] > model.weights_[:, 2]).all()


def test_shared_weights_are_one_set_and_shrink_pulls_toward_equal(constructed) -> None:
    features, labels, signal = constructed
    rng = np.random.default_rng(8)
    users = features.users
    good = frame(signal + 0.3 * rng.normal(size=(N_USERS, 4)), users)
    poor = frame(signal + 2.0 * rng.normal(size=(N_USERS, 4)), users)
    tables = [(good, good), (poor, poor)]
    shared = stand_in_ensemble(tables, share=True).fit(features, labels)
    assert np.ptp(shared.weights_, axis=0).max() == 0
    free = stand_in_ensemble(tables).fit(features, labels)
    half = stand_in_ensemble(tables, shrink=0.5).fit(features, labels)
    np.testing.assert_allclose(half.weights_, 0.5 * free.weights_ + 0.25)
    equal = stand_in_ensemble(tables, shrink=1.0).fit(features, labels)
    np.testing.assert_allclose(equal.weights_, 0.5)


def test_cross_situation_level_borrows_from_a_correlated_situation() -> None:
    """bank's label is a noisy copy of acc's; the only member predicts acc well and bank
    badly, so the second level should score bank mostly from the acc score."""
    rng = np.random.default_rng(9)
    n = 600
    features = user_features(n)
    acc = rng.normal(size=n)
    y = np.column_stack([acc, acc + 0.3 * rng.normal(size=n), rng.normal(size=(n, 2))])
    scores = np.column_stack(
        [acc + 0.3 * rng.normal(size=n), rng.normal(size=n), y[:, 2] + rng.normal(size=n), y[:, 3]]
    )
    table = frame(scores, features.users)
    train, held = np.arange(400), np.arange(400, n)
    labels = frame(y, features.users)
    plain = stand_in_ensemble([(table, table)]).fit(features.take(train), labels)
    cross = stand_in_ensemble([(table, table)], cross=True).fit(features.take(train), labels)
    before = pearson_columns(plain.predict_array(features.take(held)), y[held])
    after = pearson_columns(cross.predict_array(features.take(held)), y[held])
    assert before[1] < 0.2 and after[1] > 0.8
    assert abs(cross.mix_[0, 1]) > 5 * abs(cross.mix_[1, 1])
    assert after[0] == pytest.approx(before[0], abs=0.02)  # acc keeps its own score


# ------------------------------------------------------------ real members, seeds, files
@pytest.fixture(scope="module")
def synthetic() -> tuple[FeatureMatrix, pd.DataFrame, FeatureMatrix]:
    dataset = generate_synthetic(300, seed=2).dataset
    return featurize(dataset, "train"), dataset.split_labels("train"), featurize(dataset, "val")


def stacked_spec(**options: Any) -> ModelSpec:
    members = (
        ModelSpec("ridge", families=("freq", "base", "posneg")),
        ModelSpec("xgb-regression", params={"num_boost_round": 20}),
    )
    return ModelSpec("ensemble", members=members, params=options).with_seed(3)


def test_stacking_is_deterministic_by_seed(synthetic) -> None:
    train, labels, val = synthetic
    first = build_model(stacked_spec(inner_folds=3)).fit(train, labels)
    again = build_model(stacked_spec(inner_folds=3)).fit(train, labels)
    np.testing.assert_array_equal(first.weights_, again.weights_)
    np.testing.assert_array_equal(first.predict_array(val), again.predict_array(val))
    other = build_model(stacked_spec(inner_folds=3).with_seed(4)).fit(train, labels)
    assert not np.array_equal(first.weights_, other.weights_)


@pytest.mark.parametrize("options", [{}, {"cross": True, "share": True, "shrink": 0.3}])
def test_a_stacked_ensemble_round_trips_through_its_files(
    synthetic, tmp_path: Path, options: dict[str, Any]
) -> None:
    train, labels, val = synthetic
    spec = stacked_spec(inner_folds=3, **options)
    model = build_model(spec).fit(train, labels)
    files = model.save(tmp_path)
    state = json.loads((tmp_path / "ensemble.json").read_text(encoding="utf-8"))
    assert np.asarray(state["weights"]).shape == (4, 2)
    assert (state["mix"] is None) == (not options.get("cross", False))
    loaded = build_model(spec).load(tmp_path)
    np.testing.assert_array_equal(loaded.predict_array(val), model.predict_array(val))
    assert "ensemble.json" in files


def test_a_fixed_weight_model_saved_before_stacking_still_loads(synthetic, tmp_path) -> None:
    """Model directories written before the weights were stored hold centres and scales only:
    they load with the spec's fixed weights and predict as before."""
    train, labels, val = synthetic
    spec = dataclasses.replace(stacked_spec(), weights=(2.0, 1.0))
    model = build_model(spec).fit(train, labels)
    model.save(tmp_path)
    path = tmp_path / "ensemble.json"
    state = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps({"centers": state["centers"], "scales": state["scales"]}))
    loaded = build_model(spec).load(tmp_path)
    np.testing.assert_array_equal(loaded.predict_array(val), model.predict_array(val))


def test_fixed_weights_keep_in_sample_standardisation_and_need_no_inner_fits(
    synthetic, monkeypatch: pytest.MonkeyPatch
) -> None:
    train, labels, _ = synthetic
    spec = dataclasses.replace(stacked_spec(), weights=(2.0, 1.0))
    model = build_model(spec)
    called = []
    monkeypatch.setattr(type(model), "out_of_fold_scores", lambda *a: called.append(1))
    model.fit(train, labels)
    assert not called
    np.testing.assert_allclose(model.weights_, np.tile([2 / 3, 1 / 3], (4, 1)))
    for member, center in zip(model.members_, model.centers_, strict=True):
        np.testing.assert_allclose(center, member.predict_array(train).mean(axis=0))
