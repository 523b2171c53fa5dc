"""Study reports that don't mislead: labelled axes, integer trial ticks, importances only when
they can mean something, no pyplot state, Markdown rendered. Browser checks at the end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from browser import launch, visit
from studyfake import fake_study

from ltr.tuning import report


def _drawn(figure):
    figure.draw_without_rendering()  # computes ticks and layout without a canvas of pyplot's
    return figure.axes[0]


def test_history_speaks_the_toolkits_terms_with_integer_trial_ticks() -> None:
    study = fake_study(5, 2)
    ax = _drawn(report.history_figure(study, 0.5))
    assert ax.get_xlabel() == "trial number" and ax.get_ylabel() == "mean Pearson (CV)"
    ticks = ax.get_xticks()
    assert np.allclose(ticks, np.round(ticks)), ticks
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "complete trial" in labels and any(label.startswith("chosen: trial") for label in labels)
    assert any("pruned" in label for label in labels)
    assert "Objective Value" not in ax.get_ylabel() and "Trial" not in ax.get_xlabel()


def test_intermediate_values_are_running_means_by_fold() -> None:
    ax = _drawn(report.intermediate_figure(fake_study(3, 3), 0.5))
    assert ax.get_xlabel() == "fold (in the order scored)"
    assert ax.get_ylabel() == "running mean Pearson (CV)"
    assert np.allclose(ax.get_xticks(), np.round(ax.get_xticks()))
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["complete trial", "pruned after this fold"]  # not one entry per trial


@pytest.mark.parametrize("n_complete", [1, 5, report.MIN_IMPORTANCE_TRIALS - 1])
def test_no_importances_from_too_few_trials(n_complete: int, tmp_path: Path) -> None:
    study = fake_study(n_complete, 3)
    importances, n_trials, why = report.parameter_importances(study)
    assert importances == {} and n_trials == n_complete
    assert (
        f"{n_complete} complete trial(s)" in why
        and f"at least {report.MIN_IMPORTANCE_TRIALS}" in why
    )
    summary = report.write_report(study, tmp_path)
    assert summary["figures"]["importances.png"] == why
    assert summary["importances"] == {"skipped": why}
    # the file is still there (the report always has its five figures), saying why
    assert (tmp_path / "importances.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"Not drawn: {why}" in (tmp_path / "index.html").read_text()


def test_importances_rank_shared_varying_parameters_top_15() -> None:
    study = fake_study(30, extra_params=20)
    params, n_trials, why = report.importance_parameters(study)
    assert why is None
    # alpha, gbdt and the extras are in all 30 trials, xgb.eta in 20: together 20 trials;
    # lgbm.num_leaves (10 trials, none with xgb.eta) cannot join; calibration never varies
    assert n_trials == 20 and "xgb.eta" in params and "alpha" in params
    assert "lgbm.num_leaves" not in params and "calibration" not in params
    assert "gbdt" not in params  # all 20 sharing trials chose xgb: constant among them
    importances, n, _ = report.parameter_importances(study)
    assert n == 20 and set(importances) == set(params)
    assert list(importances.values()) == sorted(importances.values(), reverse=True)
    assert importances == report.parameter_importances(study)[0]  # seeded: reproducible
    ax = _drawn(report.importance_figure(importances, n))
    assert len(ax.get_yticklabels()) == report.MAX_IMPORTANCES == 15
    assert f"{len(params) - 15} more below" in ax.get_title()
    assert all(text.get_text().strip().endswith("%") for text in ax.texts)


def test_report_html_renders_code_and_writes_every_figure(tmp_path: Path) -> None:
    study = fake_study(12, 4)
    summary = report.write_report(study, tmp_path)
    page = (tmp_path / "index.html").read_text()
    assert "<code>ltr train DIR --study demo --model-dir OUT</code>" in page
    assert "`" not in page  # no Markdown left raw
    for name in report.TITLES:
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f'src="{name}"' in page
    assert summary["figures"]["importances.png"] == "ok"
    assert json.loads((tmp_path / "summary.json").read_text())["importances"]["trials"] == 12


def test_report_leaves_matplotlib_state_alone(tmp_path: Path) -> None:
    """A library call must not switch the caller's backend nor create pyplot figures."""
    code = textwrap.dedent(
        f"""
        import sys, matplotlib
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from studyfake import fake_study
        from ltr.tuning.report import write_report
        write_report(fake_study(12, 2), {str(tmp_path)!r})
        print(matplotlib.get_backend(), "matplotlib.pyplot" in sys.modules)
        """
    )
    env = {**os.environ, "MPLBACKEND": "svg"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["svg", "False"]


# ------------------------------------------------------------------------------ browser
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launch() as running:
        yield running


@pytest.mark.slow
@pytest.mark.parametrize("width", [1280, 375])
def test_report_in_a_browser(browser, tmp_path: Path, width: int) -> None:
    report.write_report(fake_study(12, 4), tmp_path)
    index = tmp_path / "index.html"
    with visit(browser, index, width) as seen:
        assert seen.console_errors() == [] and seen.errors == []
        local = {(tmp_path / name).resolve().as_uri() for name in report.TITLES}
        assert set(seen.requests) == local | {index.resolve().as_uri()}
        loaded = seen.page.eval_on_selector_all(
            "img", "imgs => imgs.map(i => i.complete && i.naturalWidth > 0)"
        )
        assert loaded == [True] * len(report.TITLES)
        assert "`" not in seen.page.inner_text("body")
        assert "ltr train DIR --study demo" in seen.page.inner_text("p code")
        assert seen.screenshot_is_drawn(width)
        assert seen.page.evaluate("document.documentElement.scrollWidth") <= width
