"""The official metric (per-situation Pearson as scipy computes it, and its mean)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import stats

from ltr.errors import LtrError
from ltr.metrics import STATISTICS, pearson_columns, score_run
from ltr.situations import SITUATIONS


def frame(values: np.ndarray, users: list[str]) -> pd.DataFrame:
    return pd.DataFrame(values, index=pd.Index(users, name="user"), columns=list(SITUATIONS))


@pytest.fixture
def run_and_labels() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(7)
    users = [f"u{i}" for i in range(50)]
    truth = rng.normal(size=(50, 4))
    pred = truth * np.array([1.0, 0.5, 0.0, -1.0]) + rng.normal(size=(50, 4))
    return frame(pred, users), frame(truth, users)


def scipy_pearson(x: np.ndarray, y: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant / near-constant input warnings
        return float(stats.pearsonr(x, y).statistic)


# ------------------------------------------------------------------------------- score_run
def test_score_run_is_scipy_per_situation_and_the_mean_is_official(run_and_labels) -> None:
    pred, truth = run_and_labels
    scores = score_run(pred, truth)
    for situation in SITUATIONS:
        x, y = pred[situation].to_numpy(), truth[situation].to_numpy()
        # scipy's on the scaled, centred values: the same to the last bit or two
        assert scores.pearson[situation] == pytest.approx(
            stats.pearsonr(x, y).statistic, rel=0, abs=1e-15
        )
        assert scores.spearman[situation] == stats.spearmanr(x, y).statistic
        assert scores.kendall[situation] == stats.kendalltau(x, y).statistic
    assert scores.official == pytest.approx(np.mean([scores.pearson[s] for s in SITUATIONS]))
    assert scores.n_users == 50
    # the fixture's signal: strong in acc, none in it, negative in wait
    assert scores.pearson["acc"] > 0.5 and scores.pearson["wait"] < -0.5
    table = scores.table()
    assert list(table.index) == list(STATISTICS)
    assert list(table.columns) == [*SITUATIONS, "mean"]
    assert table.loc["pearson", "mean"] == pytest.approx(scores.official)


def test_score_run_aligns_users_by_id_not_position(run_and_labels) -> None:
    pred, truth = run_and_labels
    shuffled = pred.sample(frac=1.0, random_state=3)
    assert not shuffled.index.equals(pred.index)
    assert score_run(shuffled, truth).table().equals(score_run(pred, truth).table())


def test_score_run_names_missing_and_extra_users(run_and_labels) -> None:
    pred, truth = run_and_labels
    broken = pred.drop(index=["u3", "u4", "u5", "u6"])
    broken.loc["stranger"] = 0.5
    with pytest.raises(LtrError) as error:
        score_run(broken, truth, name="my_run.json")
    message = str(error.value)
    assert "4 labelled user(s) missing from my_run.json" in message
    assert "'u3', 'u4', 'u5', ..." in message
    assert "1 user(s) in my_run.json without a label: 'stranger'" in message


@pytest.mark.parametrize("which", ["prediction", "labels"])
def test_score_run_refuses_a_constant_column(run_and_labels, which: str) -> None:
    pred, truth = run_and_labels
    target = pred if which == "prediction" else truth
    target["bank"] = 0.25
    with pytest.raises(LtrError, match=r"constant in situation 'bank' \(0\.25 for all 50 users\)"):
        score_run(pred, truth)


def test_score_run_refuses_non_finite_duplicates_and_missing_columns(run_and_labels) -> None:
    pred, truth = run_and_labels
    with_nan = pred.copy()
    with_nan.loc["u7", "it"] = np.nan
    with pytest.raises(LtrError, match=r"user 'u7', situation 'it': nan is not a finite number"):
        score_run(with_nan, truth)
    with pytest.raises(LtrError, match=r"more than once: 'u0'"):
        score_run(pd.concat([pred, pred.iloc[:1]]), truth)
    with pytest.raises(LtrError, match=r"lacks situation column\(s\) wait"):
        score_run(pred.drop(columns="wait"), truth)
    with pytest.raises(LtrError, match=r"holds .* values, not numbers"):
        score_run(pred.astype({"acc": str}), truth)


def test_score_run_needs_two_users(run_and_labels) -> None:
    pred, truth = run_and_labels
    with pytest.raises(LtrError, match="at least 2 users"):
        score_run(pred.iloc[:1], truth.iloc[:1])


# -------------------------------------------------------------------------- pearson_columns
finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, allow_subnormal=False)


@st.composite
def paired_columns(draw, min_users: int = 3) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(min_users, 30))
    k = draw(st.integers(1, 4))
    x = draw(arrays(np.float64, (n, k), elements=finite))
    y = draw(arrays(np.float64, (n, k), elements=finite))
    return x, y


@settings(max_examples=200, deadline=None)
@given(paired_columns(min_users=2))
def test_pearson_columns_agrees_with_scipy(pair) -> None:
    x, y = pair
    got = pearson_columns(x, y)
    expected = np.array([scipy_pearson(x[:, j], y[:, j]) for j in range(x.shape[1])])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9, equal_nan=True)


def well_spread(x: np.ndarray) -> bool:
    """Columns whose spread is not lost in rounding, so affine maps keep the correlation."""
    return bool(np.all(np.ptp(x, axis=0) > 1e-3 * (1.0 + np.abs(x).max(axis=0))))


@settings(max_examples=200, deadline=None)
@given(
    paired_columns(),
    st.floats(1e-2, 1e2, allow_subnormal=False),
    st.floats(-1e3, 1e3, allow_subnormal=False),
)
def test_pearson_is_invariant_to_positive_affine_maps(pair, scale: float, shift: float) -> None:
    x, y = pair
    assume(well_spread(x) and well_spread(y))
    np.testing.assert_allclose(
        pearson_columns(scale * x + shift, y), pearson_columns(x, y), atol=1e-7
    )


@settings(max_examples=200, deadline=None)
@given(paired_columns())
def test_pearson_flips_sign_under_negation_and_is_symmetric(pair) -> None:
    x, y = pair
    r = pearson_columns(x, y)
    np.testing.assert_allclose(pearson_columns(-x, y), -r, atol=1e-12, equal_nan=True)
    np.testing.assert_allclose(pearson_columns(y, x), r, atol=1e-12, equal_nan=True)
    assert np.all(np.isnan(r) | (np.abs(r) <= 1.0))


def test_pearson_columns_batches_folds_along_an_axis() -> None:
    rng = np.random.default_rng(0)
    pred = rng.normal(size=(6, 40, 4))  # 6 folds (or thresholds) x 40 users x 4 situations
    truth = rng.normal(size=(40, 4))
    got = pearson_columns(pred, truth[None], axis=1)
    assert got.shape == (6, 4)
    for fold in range(6):
        for j in range(4):
            assert got[fold, j] == pytest.approx(scipy_pearson(pred[fold, :, j], truth[:, j]))


def test_pearson_columns_constant_gives_nan_and_two_points_give_exact_sign() -> None:
    x = np.array([[1.0, 2.0], [1.0, 3.0], [1.0, 5.0]])
    y = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 0.0]])
    r = pearson_columns(x, y)
    assert np.isnan(r[0]) and r[1] == pytest.approx(scipy_pearson(x[:, 1], y[:, 1]))
    assert pearson_columns(np.array([1.0, 2.0]), np.array([5.0, 3.0])) == -1.0
    with pytest.raises(ValueError, match="at least two"):
        pearson_columns(np.array([1.0]), np.array([2.0]))


# ------------------------------------------------------------------ huge (finite) values
def huge_runs(n: int = 30) -> dict[str, np.ndarray]:
    """Finite runs whose sums or norms overflow: near 1e308 with a tiny spread, and ±1e308."""
    i = np.arange(n)
    return {"offset": 1e308 - i * 1e292, "alternating": np.where(i % 2 == 0, 1e308, -1e308)}


def exact_pearson(x: np.ndarray, y: np.ndarray) -> float:
    """The correlation of the floats `x` as they are: shifted by their largest value first
    (exact for values within a factor of 2 of it), or scaled by 2**-1024 (exact), then scipy's."""
    shifted = x - x.max() if np.all(x > 0) else np.ldexp(x, -1024)
    return scipy_pearson(shifted, y)


@pytest.mark.parametrize("kind", ["offset", "alternating"])
def test_huge_finite_runs_get_their_true_pearson(kind: str) -> None:
    rng = np.random.default_rng(3)
    users = [f"u{i}" for i in range(30)]
    truth = rng.normal(size=(30, 4))
    pred = truth + rng.normal(size=(30, 4))
    pred[:, 0] = huge_runs()[kind]
    expected = exact_pearson(pred[:, 0], truth[:, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow or near-constant warnings either
        scores = score_run(frame(pred, users), frame(truth, users))
        columns = pearson_columns(pred, truth)
    assert scores.pearson["acc"] == pytest.approx(expected, abs=1e-12)
    assert columns[0] == pytest.approx(expected, abs=1e-12)
    assert scores.official == pytest.approx(scores.pearson.to_numpy().mean(), abs=1e-15)


def test_the_mean_of_a_nan_situation_is_nan_not_the_mean_of_the_others() -> None:
    from ltr.metrics import Scores

    nan = pd.Series([0.5, np.nan, 0.5, 0.5], index=list(SITUATIONS))
    assert np.isnan(Scores(nan, nan, nan, n_users=3).official)


huge_scale = st.floats(1e290, 1e305) | st.floats(1e-300, 1e-250)
moderate = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, allow_subnormal=False)


@st.composite
def moderate_situations(draw, min_users: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """A run and labels (users x 4) of moderate values, each column well spread."""
    n = draw(st.integers(min_users, 30))
    # every element drawn (no fill value), so that columns are rarely near constant
    x = draw(arrays(np.float64, (n, 4), elements=moderate, fill=st.nothing()))
    y = draw(arrays(np.float64, (n, 4), elements=moderate, fill=st.nothing()))
    assume(well_spread(x) and well_spread(y))
    return x, y


def official(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    users = [f"u{i}" for i in range(len(x))]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow or near-constant warnings either
        return score_run(frame(x, users), frame(y, users)).pearson.to_numpy()


@settings(max_examples=200, deadline=None)
@given(moderate_situations(), huge_scale, st.sampled_from([1.0, -1.0]))
def test_pearson_is_invariant_to_huge_and_tiny_scales(pair, scale: float, sign: float) -> None:
    x, y = pair
    scaled = sign * scale * x
    assume(np.all(np.isfinite(scaled)) and np.all((scaled != 0) == (x != 0)))
    r = pearson_columns(x, y)
    np.testing.assert_allclose(pearson_columns(scaled, y), sign * r, rtol=0, atol=1e-9)
    np.testing.assert_allclose(pearson_columns(scale * y, y), np.ones(4), rtol=0, atol=1e-12)
    np.testing.assert_allclose(official(scaled, y), sign * official(x, y), rtol=0, atol=1e-9)
    np.testing.assert_allclose(official(scaled, scale * y), sign * r, rtol=0, atol=1e-9)


@settings(max_examples=200, deadline=None)
@given(moderate_situations(min_users=3))
def test_score_run_matches_scipy_on_moderate_values(pair) -> None:
    x, y = pair
    expected = [scipy_pearson(x[:, j], y[:, j]) for j in range(4)]
    np.testing.assert_allclose(official(x, y), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(pearson_columns(x, y), expected, rtol=0, atol=1e-12)
