"""`explain_users`: a whole split's what-if effects in a few model calls, as explain_user gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ltr.data import Dataset, load_dataset
from ltr.data.synthetic import write_synthetic
from ltr.errors import LtrError
from ltr.explain import Explanation, explain_user, explain_users, population_scores
from ltr.models import preset
from ltr.models.persistence import TrainedModel
from ltr.workflow import train_model, training_set


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainedModel, Dataset]:
    root = tmp_path_factory.mktemp("explain_users")
    write_synthetic(root / "data", n_users=150, seed=5)
    dataset = load_dataset(root / "data")
    return train_model(training_set(dataset), preset("ridge"), root / "model"), dataset


def assert_same(a: Explanation, b: Explanation) -> None:
    assert (a.user, a.split) == (b.user, b.split)
    pd.testing.assert_series_equal(a.scores, b.scores, check_exact=False, rtol=1e-12, atol=1e-12)
    pd.testing.assert_series_equal(a.percentiles, b.percentiles, check_exact=False, atol=1e-9)
    pd.testing.assert_frame_equal(a.photos, b.photos, check_exact=False, rtol=1e-9, atol=1e-12)
    pd.testing.assert_frame_equal(a.concepts, b.concepts, check_exact=False, rtol=1e-9, atol=1e-12)


def test_every_user_of_a_split_equals_explain_user_alone(trained) -> None:
    model, dataset = trained
    users = list(dataset.split_users("test"))
    # batches of 7 users: several model calls, the last one short
    batched = list(explain_users(model, dataset, "test", batch_users=7))
    assert [e.user for e in batched] == users
    for explanation in batched:
        assert_same(explanation, explain_user(model, dataset, "test", explanation.user))


def test_a_split_costs_one_call_per_batch_not_per_user(trained, monkeypatch) -> None:
    model, dataset = trained
    calls = []
    original = TrainedModel.predict

    def counting(self: TrainedModel, data: Dataset, split: str) -> pd.DataFrame:
        calls.append(len(data.split_users(split)))
        return original(self, data, split)

    monkeypatch.setattr(TrainedModel, "predict", counting)
    users = list(dataset.split_users("test"))
    assert len(list(explain_users(model, dataset, "test", batch_users=16))) == len(users)
    # the split's own scores, then one call per 16 users holding all their variants
    assert len(calls) == 1 + -(-len(users) // 16)
    assert calls[0] == len(users) and sum(calls[1:]) > 20 * len(users)


def test_percentiles_rank_among_the_other_users(trained) -> None:
    model, dataset = trained
    population = population_scores(model, dataset, "test")
    users = list(population.index)
    for explanation in explain_users(model, dataset, "test", users[:5], population=population):
        others = population.drop(index=explanation.user)
        for situation in population.columns:
            below = (others[situation] < explanation.scores[situation]).mean() * 100
            assert explanation.percentiles[situation] == pytest.approx(below)


def _edited(dataset: Dataset, user: str, other: str) -> Dataset:
    """`user` loses every detection (photos stay); `other` gets a photo with no detection."""
    det = dataset.detections[dataset.detections["user"] != user]
    extra = pd.DataFrame({"split": ["test"], "user": [other], "image": ["empty-photo"]})
    return Dataset(
        ratings=dataset.ratings,
        detections=det.reset_index(drop=True),
        images=pd.concat([dataset.images, extra], ignore_index=True),
        users=dataset.users,
        labels=dataset.labels,
        layout=dataset.layout,
        source=dataset.source,
    )


def test_profiles_without_detections_and_photos_without_concepts(trained) -> None:
    model, dataset = trained
    user, other = list(dataset.split_users("test"))[:2]
    edited = _edited(dataset, user, other)
    got = {e.user: e for e in explain_users(model, edited, "test", [user, other])}
    assert got[user].concepts.empty and len(got[user].photos) > 0
    assert (got[user].photos["concepts"] == "").all()
    assert got[other].photos.loc["empty-photo", "concepts"] == ""
    for name in (user, other):
        assert_same(got[name], explain_user(model, edited, "test", name))
    # a photo without detections still counts: the profile is one photo larger
    assert np.abs(got[other].photos.loc["empty-photo", ["acc", "bank", "it", "wait"]]).max() > 0


def test_unknown_users_are_refused(trained) -> None:
    model, dataset = trained
    with pytest.raises(LtrError, match="no user 'nobody' in split 'test'"):
        list(explain_users(model, dataset, "test", ["nobody"]))


def test_results_stream_in_the_order_asked(trained) -> None:
    model, dataset = trained
    users = list(dataset.split_users("val"))[::-1][:9]
    assert [e.user for e in explain_users(model, dataset, "val", users, batch_users=4)] == users
