"""Feedback pages without a browser: numbers equal the JSON, escaping, files, determinism.

The same pages are opened in headless Chromium by test_feedback_browser.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pagecheck import (
    HOSTILE_CONCEPT,
    HOSTILE_IMAGE,
    HOSTILE_USER,
    check_page,
    feedback_model,
    read_page,
)

from ltr.data import Dataset
from ltr.explain import explain_user, explain_users, population_scores
from ltr.feedback import numbers as fmt
from ltr.feedback.pages import page_names, write_profile_page, write_split_pages
from ltr.feedback.profile import render_profile
from ltr.feedback.provenance import describe_cv, describe_spec, page_date, provenance
from ltr.models import preset
from ltr.models.persistence import TrainedModel
from ltr.situations import SITUATIONS


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainedModel, Dataset, Path]:
    return feedback_model(tmp_path_factory.mktemp("feedback"))


def profile_page(model, user: str, top: int = 3, date: str | None = "2026-01-02") -> str:
    trained, dataset, model_dir = model
    explanation = explain_user(trained, dataset, "test", user)
    prov = provenance(trained, dataset, "test", model_dir=model_dir, date=date)
    population = population_scores(trained, dataset, "test")
    return render_profile(explanation, population, prov, top=top), explanation.to_dict()


@pytest.mark.parametrize("top", [1, 3])
def test_page_numbers_are_the_json_numbers_by_one_rounding_rule(model, top: int) -> None:
    _, dataset, _ = model
    for user in list(dataset.split_users("test"))[:4]:
        text, data = profile_page(model, user, top)
        seen = check_page(read_page(text), data, top)
        assert seen[("concept", "rating")] > 0 and seen[("photo", "effect_pct")] > 0


def test_data_from_files_is_escaped_everywhere(model) -> None:
    text, data = profile_page(model, HOSTILE_USER, top=50)
    assert data["user"] == HOSTILE_USER
    assert HOSTILE_IMAGE in {r["photo"] for r in data["photos"]}
    assert HOSTILE_CONCEPT in {r["concept"] for r in data["concepts"]}
    for raw in ("<img src=x", "<script>alert", "<b>VC</b>"):
        assert raw not in text
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&amp;u" in text
    assert "&lt;b&gt;VC&lt;/b&gt;&amp;amp;" in text
    # the parser gets the real names back, and the page's numbers still match the JSON
    check_page(read_page(text), data, top=50)
    assert text.count("<script") == 0  # a profile page needs no script at all


def test_pages_are_self_contained(model) -> None:
    _, dataset, _ = model
    text, _ = profile_page(model, dataset.split_users("test")[1])
    assert not re.search(r"\b(?:src|href)\s*=\s*[\"'](?!#)", text), "no external asset or link"
    assert "url(" not in text.replace("url(#", "") and "@import" not in text
    assert "http://" not in text and "https://" not in text
    assert "@media print" in text and 'name="viewport"' in text


def test_provenance_names_model_data_cv_split_and_date(model) -> None:
    trained, dataset, model_dir = model
    text, _ = profile_page(model, dataset.split_users("test")[1], date="2026-01-02")
    fingerprint = trained.manifest["data"]["fingerprint"]
    for expected in (model_dir.name, fingerprint, "mean Pearson 0.5000", "2026-01-02"):
        assert expected in text
    assert f"{dataset.name} test ({len(dataset.split_users('test'))} users)" in text
    assert "ridge (per-situation)" in text


def test_provenance_date_is_injected_or_the_model_save_date(model, monkeypatch) -> None:
    _, _, model_dir = model
    assert page_date(model_dir, "2025-12-24") == ("2025-12-24", "Date")
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "86400")
    assert page_date(model_dir) == ("1970-01-02", "Date")
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    date, label = page_date(model_dir)
    assert label == "Model saved" and re.fullmatch(r"\d{4}-\d\d-\d\d", date)


def test_describe_spec_and_cv() -> None:
    spec = preset("default").to_dict()
    assert describe_spec(spec).startswith("ensemble of ")
    assert describe_cv(None).startswith("none stored")
    cv = {"mean_pearson": 0.51234, "std_pearson": 0.02, "folds": 5, "repeats": 2}
    assert describe_cv(cv) == "mean Pearson 0.5123 ± 0.0200 across folds, 5-fold x 2"


def test_split_pages_index_links_json_and_determinism(model, tmp_path: Path) -> None:
    trained, dataset, model_dir = model
    users = list(dataset.split_users("test"))[:12]
    first = write_split_pages(
        trained, dataset, "test", tmp_path / "a", model_dir=model_dir, users=users, batch_users=5
    )
    write_split_pages(
        trained, dataset, "test", tmp_path / "b", model_dir=model_dir, users=users, batch_users=5
    )
    names = page_names(users)
    index = first.read_text()
    assert index.count("<tr data-user=") == len(users)
    same_batches = explain_users(trained, dataset, "test", users, batch_users=5)
    expected = {e.user: e.to_dict() for e in same_batches}
    for user in users:
        page = tmp_path / "a" / "users" / f"{names[user]}.html"
        data = json.loads(page.with_suffix(".json").read_text())
        assert data == expected[user]  # what `ltr explain --out` writes for this user
        check_page(read_page(page.read_text()), data, top=3)
        assert f'href="users/{names[user]}.html"' in index
        assert 'href="../index.html"' in page.read_text()
    # two identical runs write the same bytes: no timestamp, no unordered iteration
    written = sorted((tmp_path / "a").rglob("*.*"))
    assert len(written) == 2 * len(users) + 1
    for path in written:
        assert path.read_bytes() == (tmp_path / "b" / path.relative_to(tmp_path / "a")).read_bytes()
    # the index sorts by numbers it holds in full precision
    scores = population_scores(trained, dataset, "test")
    for user in users[:3]:
        for s in SITUATIONS:
            assert f'data-situation="{s}" data-v="{fmt.exact(scores.loc[user, s])}"' in index


def test_single_page_file(model, tmp_path: Path) -> None:
    trained, dataset, model_dir = model
    user = dataset.split_users("test")[2]
    explanation = explain_user(trained, dataset, "test", user)
    prov = provenance(trained, dataset, "test", model_dir=model_dir)
    population = population_scores(trained, dataset, "test")
    path = write_profile_page(tmp_path / "p" / "one.html", explanation, population, prov)
    assert path.read_text().startswith("<!doctype html>")
    assert "all profiles" not in path.read_text()  # no index to go back to


def test_page_names_are_safe_unique_and_case_proof() -> None:
    users = ["abc", "ABC", "a/b", "a_b", "../etc", "ü", "", "x" * 300]
    names = page_names(users)
    assert len(set(names.values())) == len(users)
    assert len({n.lower() for n in names.values()}) == len(users)
    for name in names.values():
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,80}", name), name
    assert page_names(["u1zuw2lesw28ea7y"]) == {"u1zuw2lesw28ea7y": "u1zuw2lesw28ea7y"}


@pytest.mark.parametrize(
    ("value", "shown"),
    [(0.1364, "+0.136"), (-0.1366, "\u22120.137"), (-0.0004, "0.000"), (0.0, "0.000")],
)
def test_rounding_rule(value: float, shown: str) -> None:
    assert fmt.score(value) == shown
    assert fmt.effect_word(value) == {"+": "helps", "\u2212": "hurts"}.get(shown[0], "no effect")


def test_percent_points_and_ratings() -> None:
    assert fmt.points(-7.04) == "\u22127.0 pp" and fmt.points(0.04) == "0.0 pp"
    assert fmt.percent(76.95) == "77.0%" and fmt.rating(-0.666) == "\u22120.67"
    assert float(fmt.exact(0.1 + 0.2)) == 0.1 + 0.2
