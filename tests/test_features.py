"""The featuriser: hand-computed values, the loop reference, real data, helpers and the CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reference_features import embedding_reference, featurize_reference, image_counts_reference
from typer.testing import CliRunner

from ltr.cli.main import app
from ltr.data.dataset import DETECTION_COLUMNS, Dataset
from ltr.data.loading import load_dataset
from ltr.errors import LtrError
from ltr.features import FAMILIES, FeatureConfig, FeatureMatrix, featurize
from ltr.features import profile as profile_module
from ltr.features.config import concept_vocabulary, feature_columns, parse_families
from ltr.features.embedding import MAX_COMPONENTS, fit_components, image_counts
from ltr.features.io import read_features, write_features
from ltr.features.profile import sorted_within_groups
from ltr.features.vocabulary import Vocabulary
from ltr.situations import SITUATIONS

NAN = float("nan")
TOL = {"rtol": 1e-12, "atol": 1e-12}


# ----------------------------------------------------------------------------- helpers
def make_dataset(
    ratings: dict[str, tuple[float, float, float, float]],
    detections: list[tuple],
    images: list[tuple[str, str, str]],
    users: list[tuple[str, str]],
) -> Dataset:
    """A Dataset from plain tuples: detections are (split, user, image, concept, conf[, box])."""
    rows = [d if len(d) == 9 else (*d, NAN, NAN, NAN, NAN) for d in detections]
    frame = pd.DataFrame(rows, columns=list(DETECTION_COLUMNS))
    frame = frame.astype({c: float for c in ("confidence", "x0", "y0", "x1", "y1")})
    rating_frame = pd.DataFrame.from_dict(ratings, orient="index", columns=list(SITUATIONS))
    rating_frame.index.name = "concept"
    return Dataset(
        ratings=rating_frame.astype(float),
        detections=frame,
        images=pd.DataFrame(images, columns=["split", "user", "image"]),
        users=pd.DataFrame(users, columns=["split", "user"]),
        labels=Dataset.empty_labels(),
    )


def tiny() -> Dataset:
    """Edge cases: u3 has no detection, a repeats in u1/i1, z is unrated, u1 and u2 both have an
    image called i1, u1/i3 has no detection, only one detection has a box (others are NaN)."""
    return make_dataset(
        ratings={
            "a": (1.0, 0.5, 0.0, 2.0),  # largest |rating| of the data set: 2.0 (wait)
            "b": (-0.5, -1.0, 0.25, 0.0),
            "c": (0.3, 0.3, 0.3, 0.3),  # rated, never detected
        },
        detections=[
            ("train", "u1", "i1", "a", 0.9, 0.0, 0.0, 0.5, 0.4),  # area 0.2
            ("train", "u1", "i1", "a", 0.5),
            ("train", "u1", "i1", "b", 0.4),
            ("train", "u1", "i2", "b", 0.8),
            ("train", "u2", "i1", "z", 0.7),
            ("train", "u2", "i4", "a", 0.35),
            ("test", "u4", "i9", "b", 0.6),
        ],
        images=[
            ("train", "u1", "i1"),
            ("train", "u1", "i2"),
            ("train", "u1", "i3"),
            ("train", "u2", "i1"),
            ("train", "u2", "i4"),
            ("train", "u3", "i7"),
            ("test", "u4", "i9"),
        ],
        users=[("train", "u1"), ("train", "u2"), ("train", "u3"), ("test", "u4")],
    )


def value(matrix: FeatureMatrix, user: str, name: str) -> float:
    return float(matrix.to_frame().loc[user, name])


def assert_same(fast: FeatureMatrix, slow: FeatureMatrix) -> None:
    assert list(fast.users) == list(slow.users)
    pd.testing.assert_frame_equal(fast.columns, slow.columns)
    assert np.allclose(fast.dense(), slow.dense(), **TOL)


# ------------------------------------------------------------------ hand-computed values
def test_hand_computed_values_of_a_tiny_profile() -> None:
    m = featurize(tiny(), "train", FeatureConfig(thresholds=(0.0, 0.5)))
    assert list(m.users) == ["u1", "u2", "u3"]
    # u1: images i1 (a .9, a .5, b .4), i2 (b .8), i3 (nothing detected)
    expected = {
        "n_images": 3,
        "n_det_images": 2,
        "n_detections": 4,
        "det_per_image": 2.0,
        "n_concepts": 2,
        "freq:a": 1 / 3,
        "freq:b": 2 / 3,
        "freq:c": 0.0,
        "count:a": 2,
        "maxconf:a": 0.9,
        "meanconf:a": 0.7,
        "meanconf:b": 0.6,
        # acc: a=1, b=-0.5 -> 0.9 + 0.5 - 0.2 - 0.4
        "conf_sum:acc": 0.8,
        "conf_mean:acc": 0.4,
        "pos_sum:acc": 1.4,
        "neg_sum:acc": -0.6,
        "neg_mean:acc": -0.3,
        # BASE: i1 = 1 x max(.9, .5) - 0.5 x .4 = 0.7, i2 = -0.4; at 0.5 b/.4 drops out of i1
        "base@0:acc": 0.15,
        "base@0.5:acc": 0.25,
        # per-image scores (acc): i1 = 1.2, i2 = -0.4
        "img_min:acc": -0.4,
        "img_max:acc": 1.2,
        "img_q50:acc": 0.4,
        "img_q25:acc": 0.0,
        "img_std:acc": 0.8,
        "img_negshare:acc": 0.5,
        # only a/.9 has a box, of area 0.5 x 0.4
        "box_area_mean": 0.2,
        "area_sum:acc": 1.0 * 0.9 * 0.2,
        "area_mean:acc": 0.09,
        # wait: a=2 x (.9 + .5), b=0
        "conf_sum:wait": 2.8,
    }
    for name, want in expected.items():
        assert value(m, "u1", name) == pytest.approx(want, abs=1e-12), name
    # focal rating: K = 1.05 x 2.0; fr(1) = 1 / (1 - 1/2.1), fr(-0.5) = -0.5 / (1 - 0.5/2.1)
    k = 1.05 * 2.0
    focal = (0.9 + 0.5) / (1 - 1 / k) - (0.4 + 0.8) * 0.5 / (1 - 0.5 / k)
    assert value(m, "u1", "focal_sum:acc") == pytest.approx(focal, abs=1e-12)
    gamma2 = featurize(tiny(), "train", FeatureConfig(focal_gamma=2.0, families=("focal",)))
    focal2 = (0.9 + 0.5) / (1 - 1 / k) ** 2 - (0.4 + 0.8) * 0.5 / (1 - 0.5 / k) ** 2
    assert value(gamma2, "u1", "focal_sum:acc") == pytest.approx(focal2, abs=1e-12)


def synthetic(n_users: int, seed: int) -> Dataset:
    generate_synthetic = pytest.importorskip("ltr.data.synthetic").generate_synthetic
    return generate_synthetic(n_users, seed=seed).dataset


def test_quantiles_follow_numpy_on_per_image_scores() -> None:
    dataset = synthetic(300, seed=5)
    m = featurize(dataset, "val", FeatureConfig(quantiles=(0.1, 0.5, 0.9), families=("dist",)))
    det = dataset.split_detections("val")
    rating = det["concept"].map(dataset.ratings["it"]).fillna(0.0)
    per_image = (rating * det["confidence"]).groupby([det["user"], det["image"]]).sum()
    for user in m.users[:25]:
        scores = per_image.loc[user].to_numpy()
        for q in (0.1, 0.5, 0.9):
            assert value(m, user, f"img_q{q * 100:g}:it") == pytest.approx(
                np.quantile(scores, q), abs=1e-12
            )
        assert value(m, user, "img_std:it") == pytest.approx(np.std(scores), abs=1e-12)


# ------------------------------------------------------------------------- edge cases
def test_user_without_detection_keeps_a_row_of_zeros_but_counts_images() -> None:
    m = featurize(tiny(), "train")
    row = m.to_frame().loc["u3"]
    assert row["n_images"] == 1
    assert (row.drop("n_images") == 0).all()


def test_image_ids_are_only_unique_per_user() -> None:
    """u1 and u2 both have an image i1; renaming u2's images must change nothing."""
    shared = featurize(tiny(), "train")
    assert value(shared, "u2", "n_det_images") == 2
    assert value(shared, "u2", "freq:z") == 0.5
    assert value(shared, "u1", "n_det_images") == 2
    renamed = tiny()
    for frame in (renamed.detections, renamed.images):
        frame.loc[frame["user"] == "u2", "image"] = "other-" + frame["image"]
    assert np.array_equal(featurize(renamed, "train").dense(), shared.dense())


def test_unrated_concepts_come_last_with_rating_zero() -> None:
    dataset = tiny()
    assert list(concept_vocabulary(dataset)) == ["a", "b", "c", "z"]
    m = featurize(dataset, "train")
    concept_columns = m.columns.loc[m.columns["family"] == "count", "concept"]
    assert list(concept_columns) == ["a", "b", "c", "z"]
    # u2: z (unrated) at 0.7 and a at 0.35: only a counts in the rating sums
    assert value(m, "u2", "count:z") == 1
    assert value(m, "u2", "conf_sum:acc") == pytest.approx(0.35)
    assert value(m, "u2", "img_min:acc") == 0.0


def test_same_columns_for_every_split_even_with_other_concepts() -> None:
    dataset = tiny()
    train, test = featurize(dataset, "train"), featurize(dataset, "test")
    pd.testing.assert_frame_equal(train.columns, test.columns)
    assert list(test.users) == ["u4"]


def test_area_family_only_with_boxes() -> None:
    with_boxes = featurize(tiny(), "train")
    assert "area" in with_boxes.families
    no_box = tiny()
    no_box.detections[["x0", "y0", "x1", "y1"]] = NAN
    without = featurize(no_box, "train")
    assert "area" not in without.families
    assert "box_area_mean" not in set(without.columns["name"])
    assert featurize(no_box, "test").columns.equals(without.columns)


def test_a_user_of_two_splits_is_refused_for_all_splits() -> None:
    dataset = tiny()
    dataset.users.loc[len(dataset.users)] = ["test", "u1"]
    with pytest.raises(LtrError, match="two splits"):
        featurize(dataset, None)


# ------------------------------------------------------------- reference == vectorised
def test_reference_matches_on_the_tiny_data() -> None:
    dataset = tiny()
    for split in ("train", "test", None):
        assert_same(featurize(dataset, split), featurize_reference(dataset, split))
    config = FeatureConfig(
        thresholds=(0.35, 0.9), quantiles=(0.0, 1 / 3), focal_gamma=0.5, embed_dim=3
    )
    assert_same(featurize(dataset, "train", config), featurize_reference(dataset, "train", config))


@st.composite
def random_datasets(draw: st.DrawFn) -> Dataset:
    """Small data sets with colliding image ids, repeats, unrated concepts, partial boxes."""
    rated = draw(st.sampled_from([["a"], ["a", "b"], ["a", "b", "c"]]))
    rating = st.sampled_from([0.0, 0.5, -0.5, 1.0, -2.5, 2.0, 0.1])
    ratings = {c: tuple(draw(rating) for _ in SITUATIONS) for c in rated}
    conf = st.sampled_from([0.0, 0.3, 0.3, 0.5, 0.65, 0.9, 1.0])
    n_users = draw(st.integers(1, 5))
    users, images, detections = [], [], []
    for u in range(n_users):
        split = draw(st.sampled_from(["train", "test"]))
        users.append((split, f"u{u}"))
        for image in draw(st.sets(st.sampled_from(["i0", "i1", "i2", "i3"]), max_size=4)):
            images.append((split, f"u{u}", image))
            for _ in range(draw(st.integers(0, 4))):
                concept = draw(st.sampled_from([*rated, "zz", "yy"]))
                box = draw(
                    st.sampled_from([(NAN,) * 4, (0.0, 0.0, 1.0, 1.0), (0.1, 0.2, 0.4, 0.3)])
                )
                detections.append((split, f"u{u}", image, concept, draw(conf), *box))
    return make_dataset(ratings, detections, images, users)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dataset=random_datasets(), split=st.sampled_from(["train", "test", None]))
def test_reference_matches_on_random_small_data(dataset: Dataset, split: str | None) -> None:
    if split is not None and split not in dataset.splits:
        split = None
    assert_same(featurize(dataset, split), featurize_reference(dataset, split))


def test_reference_matches_on_aware2023_train(aware2023: Path) -> None:
    dataset = load_dataset(aware2023)
    assert_same(featurize(dataset, "train"), featurize_reference(dataset, "train"))


def test_reference_matches_on_lervup2021(lervup2021: Path) -> None:
    dataset = load_dataset(lervup2021)
    for split in dataset.splits:
        assert_same(featurize(dataset, split), featurize_reference(dataset, split))


def test_reference_matches_on_synthetic_data() -> None:
    dataset = synthetic(300, seed=3)
    assert_same(featurize(dataset, None), featurize_reference(dataset, None))


# --------------------------------------------------------------------------- real data
def test_real_data_shapes_and_columns(aware2023: Path, lervup2021: Path) -> None:
    aware = load_dataset(aware2023)
    per_split = {s: featurize(aware, s) for s in aware.splits}
    assert {s: m.shape[0] for s, m in per_split.items()} == {"train": 600, "val": 200, "test": 200}
    first = per_split["train"].columns
    assert all(m.columns.equals(first) for m in per_split.values())
    # 236 concepts x 4 per-concept families; boxes -> area family present
    assert (first["concept"].notna()).sum() == 236 * 4
    assert "area" in per_split["train"].families
    lervup = load_dataset(lervup2021)
    train, test = featurize(lervup, "train"), featurize(lervup, "test")
    assert train.columns.equals(test.columns)
    assert "area" not in train.families
    assert {"balloon", "football"} <= set(train.columns["concept"].dropna())


def test_a_users_features_do_not_depend_on_the_other_users() -> None:
    dataset = synthetic(300, seed=2)
    everyone = featurize(dataset, None)
    val = featurize(dataset, "val")
    assert np.array_equal(everyone.reindex(val.users).dense(), val.dense())


# ----------------------------------------------------------------------- matrix helpers
def test_matrix_is_sparse_float64_csr() -> None:
    m = featurize(synthetic(200, seed=1), "train")
    assert isinstance(m.values, sp.csr_matrix) and m.values.dtype == np.float64
    concept_part = m.values[:, m.columns["concept"].notna().to_numpy()]
    assert concept_part.nnz < 0.2 * concept_part.shape[0] * concept_part.shape[1]


def test_select_reindex_frame_and_for_situation() -> None:
    full = featurize(tiny(), "train")
    only = featurize(tiny(), "train", FeatureConfig(families=("base", "size")))
    picked = full.select(["size", "base"])
    assert picked.families == ("size", "base") == only.families
    assert picked.to_frame().equals(only.to_frame())
    assert full.select().shape == full.shape
    nothing = featurize(tiny(), "train", FeatureConfig(families=()))
    assert nothing.shape == (3, 0) and nothing.to_frame().index.tolist() == ["u1", "u2", "u3"]
    with pytest.raises(LtrError, match="unknown feature family 'nope'"):
        full.select(["nope"])

    back = full.reindex(["u3", "u1"])
    assert list(back.users) == ["u3", "u1"]
    assert np.array_equal(back.dense(), full.dense()[[2, 0]])
    with pytest.raises(LtrError, match="'ghost'"):
        full.reindex(["u1", "ghost"])

    frame = full.to_frame()
    assert frame.index.name == "user" and list(frame.columns) == list(full.columns["name"])
    assert np.array_equal(frame.to_numpy(), full.dense())

    acc, wait = full.for_situation("acc"), full.for_situation("wait")
    assert list(acc.columns["name"]) == list(wait.columns["name"])
    assert "base@0.4" in set(acc.columns["name"]) and "freq:a" in set(acc.columns["name"])
    assert np.array_equal(acc.column("conf_sum"), full.column("conf_sum:acc"))
    assert np.array_equal(wait.column("conf_sum"), full.column("conf_sum:wait"))
    assert set(acc.columns["situation"].dropna()) == {"acc"}


def test_take_rows_and_config_round_trip_through_json() -> None:
    full = featurize(tiny(), "train")
    picked = full.take([2, 0])
    assert list(picked.users) == ["u3", "u1"]
    assert np.array_equal(picked.dense(), full.reindex(["u3", "u1"]).dense())
    config = FeatureConfig(thresholds=(0.2,), focal_gamma=2.0, families=("base", "conf"))
    back = FeatureConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert back == config
    assert FeatureConfig.from_dict(FeatureConfig().to_dict()) == FeatureConfig()
    with pytest.raises(LtrError, match="unknown feature setting"):
        FeatureConfig.from_dict({"gamma": 1.0})


def test_config_is_validated() -> None:
    with pytest.raises(LtrError, match="unknown feature family"):
        FeatureConfig(families=("conf", "bogus"))
    with pytest.raises(LtrError, match="K factor"):
        FeatureConfig(focal_k_factor=1.0)
    with pytest.raises(LtrError, match="thresholds"):
        FeatureConfig(thresholds=(1.5,))
    with pytest.raises(LtrError, match="quantiles"):
        FeatureConfig(quantiles=(0.5, 0.5))
    assert parse_families(" conf, base ,conf") == ("conf", "base")
    assert parse_families("") is None
    assert set(FAMILIES) >= {"freq", "count", "maxconf", "meanconf", "conf", "base", "area"}


@settings(max_examples=80, deadline=None)
@given(
    groups=st.lists(
        st.lists(st.floats(-5, 5, allow_nan=False), min_size=1, max_size=12), max_size=8
    ),
    padded=st.booleans(),
)
def test_sorted_within_groups_sorts_each_group_in_place(
    groups: list[list[float]], padded: bool
) -> None:
    values = np.array([x for g in groups for x in g], dtype=float)
    counts = np.array([len(g) for g in groups], dtype=np.int64)
    expected = np.array([x for g in groups for x in sorted(g)], dtype=float)
    old = profile_module.PADDED_SORT_CELLS_PER_VALUE
    try:  # force either the padded-matrix path or the global-sort fallback
        profile_module.PADDED_SORT_CELLS_PER_VALUE = 10**6 if padded else -(10**6)
        assert np.array_equal(sorted_within_groups(values, counts), expected)
    finally:
        profile_module.PADDED_SORT_CELLS_PER_VALUE = old


# ------------------------------------------------------------------------------- files
def write_tiny_challenge(folder: Path) -> Path:
    """The challenge layout of a 3-user data set (ratings as strings, like the real files)."""
    folder.mkdir(parents=True, exist_ok=True)
    scores = {
        "VC0": {"acc": "1.0", "it": "0.5", "bank": "-0.5", "wait": "2"},
        "VC1": {"acc": "-1.5", "it": "0", "bank": "0.25", "wait": "-0.75"},
    }
    train = {
        "alice": {"p1": ["VC0 0.9 0.1 0.1 0.6 0.5", "VC1 0.4 0 0 1 1"], "p2": ["VC0 0.35 0 0 1 1"]},
        "bob": {"p1": ["VC1 0.77 0.2 0.2 0.4 0.9"]},
    }
    test = {"carol": {"q": ["VC1 0.5 0 0 0.5 0.5", "VC1 0.6 0 0 0.5 0.5"]}}
    for name, obj in (
        ("class_scores.json", scores),
        ("predictions_train.json", train),
        ("predictions_test.json", test),
    ):
        (folder / name).write_text(json.dumps(obj), encoding="utf-8")
    return folder


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_cli_writes_a_file_that_reads_back_equal(tmp_path: Path, suffix: str) -> None:
    data = write_tiny_challenge(tmp_path / "data")
    out = tmp_path / "out" / f"train{suffix}"
    result = CliRunner().invoke(app, ["features", str(data), "--split", "train", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "wrote 2 users x" in result.output
    expected = featurize(load_dataset(data), "train")
    back = read_features(out)
    pd.testing.assert_frame_equal(back, expected.to_frame(), check_exact=True)
    assert list(back.index) == ["alice", "bob"]
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no temporary file left


def test_cli_families_and_thresholds(tmp_path: Path) -> None:
    data = write_tiny_challenge(tmp_path / "data")
    out = tmp_path / "f.csv"
    args = ["features", str(data), "-s", "test", "-o", str(out), "--families", "base,size"]
    result = CliRunner().invoke(app, [*args, "--thresholds", "0.55"])
    assert result.exit_code == 0, result.output
    back = read_features(out)
    assert list(back.columns[:5]) == [
        "n_images",
        "n_det_images",
        "n_detections",
        "det_per_image",
        "n_concepts",
    ]
    assert [c for c in back.columns if c.startswith("base")] == [
        f"base@0.55:{s}" for s in SITUATIONS
    ]
    # carol: one image, VC1 at max(0.5, 0.6) = 0.6 >= 0.55; acc rating -1.5
    assert back.loc["carol", "base@0.55:acc"] == pytest.approx(-1.5 * 0.6)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--out", "features.xlsx"], "unknown feature file extension '.xlsx'"),
        (["--out", "f.csv", "--families", "conf,nope"], "unknown feature family 'nope'"),
        (["--out", "f.csv", "--split", "val"], "no split 'val'"),
        (["--out", "f.csv", "--thresholds", "0.5,x"], "--thresholds"),
    ],
)
def test_cli_errors_are_one_clear_line(tmp_path: Path, extra: list[str], message: str) -> None:
    data = write_tiny_challenge(tmp_path / "data")
    args = ["features", str(data), "--split", "train", *extra]
    if "--out" in extra:
        i = args.index("--out") + 1
        args[i] = str(tmp_path / args[i])
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
    assert not list(tmp_path.glob("f.*")) and not list(tmp_path.glob("features.*"))


def test_write_features_refuses_an_unknown_extension(tmp_path: Path) -> None:
    with pytest.raises(LtrError, match="unknown feature file extension"):
        write_features(featurize(tiny(), "train"), tmp_path / "f.json")
    assert not any(tmp_path.iterdir())


def test_real_data_round_trip_through_parquet(aware2023: Path, tmp_path: Path) -> None:
    m = featurize(load_dataset(aware2023), "test")
    write_features(m, tmp_path / "test.parquet")
    back = read_features(tmp_path / "test.parquet")
    pd.testing.assert_frame_equal(back, m.to_frame(), check_exact=True)
    assert not math.isnan(back.to_numpy().sum())


# --------------------------------------------------------------------- the embed family
def test_embed_is_the_projection_of_log_image_counts_on_the_stored_components() -> None:
    dataset = tiny()
    components = Vocabulary.from_dataset(dataset).embedding
    assert components is not None and components.shape == (MAX_COMPONENTS, 4)  # a, b, c, z
    m = featurize(dataset, "train", FeatureConfig(embed_dim=3, families=("embed",)))
    assert list(m.columns["name"]) == ["embed1", "embed2", "embed3"]
    # u1 shows a in 1 image (i1), b in 2 (i1, i2); u2 shows a and z once; u3 nothing
    for user, shown in {"u1": (1, 2, 0, 0), "u2": (1, 0, 0, 1), "u3": (0, 0, 0, 0)}.items():
        want = np.log1p(np.array(shown, dtype=float)) @ components[:3].T
        assert np.allclose(m.to_frame().loc[user].to_numpy(), want, **TOL), user


def test_embedding_components_of_a_hand_made_matrix() -> None:
    """Two concepts that never share a profile: the components are the unit vectors, the
    more frequent concept first; the remaining components (zero singular values) are zero."""
    counts = sp.csr_matrix(np.array([[3.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
    components = fit_components(counts, n_components=3)
    assert np.array_equal(components, [[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    assert not fit_components(sp.csr_matrix((0, 2)), n_components=2).any()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dataset=random_datasets())
def test_image_counts_match_the_loop(dataset: Dataset) -> None:
    concepts = concept_vocabulary(dataset)
    fast = image_counts(dataset.detections, concepts).toarray()
    slow = image_counts_reference(dataset)
    expected = np.array([[by_c.get(c, 0) for c in concepts] for by_c in slow.values()])
    # rows are users in first-appearance order, as the loop's dict
    assert np.array_equal(fast, expected.reshape(fast.shape))


def assert_components_match_svd(dataset: Dataset) -> None:
    """The Gram-matrix fit equals numpy's SVD for every component whose singular value is
    well apart from its neighbours (a repeated one has no unique direction)."""
    fitted = Vocabulary.from_dataset(dataset).embedding
    k = min(MAX_COMPONENTS, len(concept_vocabulary(dataset)))
    expected, values = embedding_reference(dataset, k + 1)
    gaps = np.abs(np.diff(values))
    checked = 0
    for j in range(k):
        apart = gaps[j] > 1e-3 * values[0] and (j == 0 or gaps[j - 1] > 1e-3 * values[0])
        if apart:
            assert np.allclose(fitted[j], expected[j], rtol=0, atol=1e-8), j
            checked += 1
    assert checked >= k // 2


def test_embedding_fit_matches_numpy_svd_on_synthetic_data() -> None:
    assert_components_match_svd(synthetic(300, seed=4))


def test_embedding_fit_matches_numpy_svd_on_real_data(aware2023: Path, lervup2021: Path) -> None:
    for folder in (aware2023, lervup2021):
        assert_components_match_svd(load_dataset(folder))


def test_embedding_is_fitted_on_every_split_and_stored_not_refitted() -> None:
    """Components come from all splits' detections (no labels), so every split is projected
    on the same ones; another data set featurised with a stored vocabulary is projected on
    the stored components, never on its own."""
    dataset = synthetic(300, seed=6)
    vocabulary = Vocabulary.from_dataset(dataset)
    everyone = image_counts(dataset.detections, vocabulary.concepts)
    assert np.array_equal(vocabulary.embedding, fit_components(everyone))
    train_only = image_counts(dataset.split_detections("train"), vocabulary.concepts)
    assert not np.allclose(fit_components(train_only), vocabulary.embedding)

    other = synthetic(200, seed=7)
    config = FeatureConfig(families=("embed",))
    stored = featurize(other, "val", config, Vocabulary.from_dict(vocabulary.to_dict()))
    own = featurize(other, "val", config)
    counts = image_counts(other.split_detections("val"), vocabulary.concepts)
    assert counts.shape[0] == len(stored.users)  # every val user has a detection here
    want = np.log1p(counts.toarray()) @ vocabulary.embedding[:16].T
    order = pd.unique(other.split_detections("val")["user"])
    assert np.allclose(stored.reindex(order).dense(), want, **TOL)
    assert not np.allclose(own.dense(), stored.dense())


def test_a_vocabulary_without_embedding_skips_the_family() -> None:
    """Models saved before the family existed stored no components: they still featurise."""
    dataset = tiny()
    saved = Vocabulary.from_dataset(dataset).to_dict()
    assert len(saved["embedding"]) == MAX_COMPONENTS
    old = {key: value for key, value in saved.items() if key != "embedding"}
    vocabulary = Vocabulary.from_dict(old)
    assert vocabulary.embedding is None
    m = featurize(dataset, "train", FeatureConfig(), vocabulary)
    assert "embed" not in m.families and "embed" in featurize(dataset, "train").families
    assert m.columns.equals(
        feature_columns(vocabulary.concepts, True, FeatureConfig(), has_embedding=False)
    )
    back = Vocabulary.from_dict(saved)
    assert np.array_equal(back.embedding, Vocabulary.from_dataset(dataset).embedding)
    with pytest.raises(LtrError, match="not a concept vocabulary"):
        Vocabulary.from_dict({**saved, "embedding": [[0.0] * 4]})


def test_embed_dim_is_validated_and_round_trips() -> None:
    for bad in (0, MAX_COMPONENTS + 1, 2.5, True):
        with pytest.raises(LtrError, match="embedding dimension"):
            FeatureConfig(embed_dim=bad)  # type: ignore[arg-type]
    config = FeatureConfig(embed_dim=4, families=("embed",))
    assert FeatureConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    old = {k: v for k, v in FeatureConfig().to_dict().items() if k != "embed_dim"}
    assert FeatureConfig.from_dict(old) == FeatureConfig()  # configs saved before the family
    assert featurize(tiny(), "train", config).shape == (3, 4)
