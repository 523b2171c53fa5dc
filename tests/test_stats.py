"""The corrected resampled t-test: checked against scipy's one-sample t-test and by properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from ltr.errors import LtrError
from ltr.stats import corrected_t_test

scores = st.lists(st.floats(min_value=-1, max_value=1, allow_nan=False), min_size=4, max_size=30)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(scores, st.integers(min_value=2, max_value=10), st.data())
def test_it_is_the_one_sample_t_test_with_the_nadeau_bengio_variance(
    a: list[float], folds: int, data: st.DataObject
) -> None:
    b = data.draw(st.lists(st.floats(-1, 1, allow_nan=False), min_size=len(a), max_size=len(a)))
    result = corrected_t_test(np.array(a), np.array(b), folds=folds)
    diff = np.array(a) - np.array(b)
    n = len(diff)
    assert result.folds == n and result.mean == pytest.approx(diff.mean(), abs=1e-12)
    if np.ptp(diff) < 1e-9:
        return  # no spread: covered by the next test
    plain = stats.ttest_1samp(diff, 0.0)
    shrink = math.sqrt((1 / n) / (1 / n + 1 / (folds - 1)))  # corrected / plain variance
    assert result.t == pytest.approx(plain.statistic * shrink, rel=1e-9, abs=1e-12)
    assert result.p_value >= plain.pvalue - 1e-12  # the correction only ever widens
    assert result.low <= result.mean <= result.high
    swapped = corrected_t_test(np.array(b), np.array(a), folds=folds)
    assert swapped.mean == pytest.approx(-result.mean) and swapped.p_value == pytest.approx(
        result.p_value
    )
    assert swapped.low == pytest.approx(-result.high) and swapped.high == pytest.approx(-result.low)


def test_a_model_against_itself_and_a_constant_gain() -> None:
    a = np.array([0.5, 0.4, 0.6, 0.55])
    same = corrected_t_test(a, a, folds=2)
    assert same.mean == 0 and math.isnan(same.p_value) and same.low == same.high == 0
    shifted = corrected_t_test(a + 0.01, a, folds=2)
    assert shifted.mean == pytest.approx(0.01) and shifted.p_value == 0.0


def test_interval_matches_the_t_quantile_by_hand() -> None:
    """15 folds of 5-fold CV with known differences: the interval by hand."""
    diff = np.array([0.01, 0.02, -0.01, 0.03, 0.0] * 3)
    result = corrected_t_test(diff, np.zeros(15), folds=5, level=0.9)
    se = math.sqrt(diff.var(ddof=1) * (1 / 15 + 1 / 4))
    half = stats.t.ppf(0.95, 14) * se
    assert (result.low, result.high) == pytest.approx((diff.mean() - half, diff.mean() + half))


@pytest.mark.parametrize(
    ("a", "b", "folds", "message"),
    [
        ([0.1, 0.2], [0.1], 5, "not the same folds"),
        ([0.1, 0.2], [0.1, 0.3], 1, "K >= 2"),
        ([0.1], [0.2], 5, "at least 2"),
    ],
)
def test_bad_comparisons_are_refused(a: list, b: list, folds: int, message: str) -> None:
    with pytest.raises(LtrError, match=message):
        corrected_t_test(np.array(a), np.array(b), folds=folds)


def test_cv_results_compare_on_the_same_folds_only() -> None:
    from ltr.cv import cross_validate
    from ltr.data.synthetic import generate_synthetic
    from ltr.features import featurize
    from ltr.models import preset

    dataset = generate_synthetic(300, seed=2).dataset
    features, labels = featurize(dataset, "train"), dataset.split_labels("train")
    ridge = cross_validate(preset("ridge"), features, labels, folds=3, repeats=2, name="ridge")
    base = cross_validate(preset("base"), features, labels, folds=3, repeats=2, name="base")
    result = ridge.versus(base)
    assert result.folds == 6
    assert result.mean == pytest.approx(ridge.mean - base.mean)
    assert result.mean > 0 and result.low > 0 and result.p_value < 0.05  # ridge >> BASE here
    other = cross_validate(preset("base"), features, labels, folds=3, repeats=2, seed=1)
    with pytest.raises(LtrError, match="not cross-validated on the same folds"):
        ridge.versus(other)


def test_cv_compare_prints_and_reports_the_corrected_test_against_the_first_model(
    tmp_path,
) -> None:
    import json

    from rich.console import Console
    from typer.testing import CliRunner

    from ltr.cli.main import app
    from ltr.cv import cross_validate
    from ltr.data import load_dataset
    from ltr.data.synthetic import write_synthetic
    from ltr.features import featurize
    from ltr.models import preset
    from ltr.tables import versus_table

    write_synthetic(tmp_path / "data", n_users=300, seed=4)
    report = tmp_path / "cv.json"
    args = ["cv", str(tmp_path / "data"), "--models", "base,ridge", "-k", "3", "-r", "2"]
    result = CliRunner().invoke(app, [*args, "--report", str(report)])
    assert result.exit_code == 0, result.output
    dataset = load_dataset(tmp_path / "data")
    features, labels = featurize(dataset, "train"), dataset.split_labels("train")
    base = cross_validate(preset("base"), features, labels, folds=3, repeats=2, name="base")
    ridge = cross_validate(preset("ridge"), features, labels, folds=3, repeats=2, name="ridge")
    expected = ridge.versus(base)
    assert json.loads(report.read_text())["versus_first"]["ridge"] == pytest.approx(
        expected.to_dict()
    )
    text = " ".join(result.output.replace("│", " ").split())  # cells, without the box
    assert "vs base (corrected resampled t-test, 95% interval)" in text
    assert f"{expected.mean:+.4f} {expected.low:+.4f} .. {expected.high:+.4f}" in text
    console = Console(width=80, record=True)
    console.print(versus_table([base, ridge]))
    assert max(len(line) for line in console.export_text().splitlines()) <= 80
