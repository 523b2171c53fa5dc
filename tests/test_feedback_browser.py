"""Feedback pages in headless Chromium: they render offline, hold the JSON's numbers, sort, print.

Pages are opened from disk (file://) as a person would open them; see tests/browser.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import launch, visit
from pagecheck import COLLECT_JS, HOSTILE_USER, check_page, feedback_model

from ltr.data import Dataset
from ltr.explain import explain_user, population_scores
from ltr.feedback.pages import page_names, write_profile_page, write_split_pages
from ltr.feedback.provenance import provenance
from ltr.fileio import write_json_atomic
from ltr.models.persistence import TrainedModel
from ltr.situations import SITUATIONS

pytestmark = pytest.mark.slow

WIDTHS = (1280, 375)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launch() as running:
        yield running


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainedModel, Dataset, Path]:
    return feedback_model(tmp_path_factory.mktemp("feedback-browser"))


def write_page(model, user: str, folder: Path) -> tuple[Path, dict]:
    """The page and the JSON of one user, as `ltr explain --html --out` writes them."""
    trained, dataset, model_dir = model
    explanation = explain_user(trained, dataset, "test", user)
    data = explanation.to_dict()
    write_json_atomic(folder / "explain.json", data)
    prov = provenance(trained, dataset, "test", model_dir=model_dir)
    population = population_scores(trained, dataset, "test")
    path = write_profile_page(folder / "page.html", explanation, population, prov, top=3)
    return path, data


@pytest.mark.parametrize("width", WIDTHS)
def test_profile_page_renders_offline_with_the_json_numbers(
    browser, model, tmp_path: Path, width: int
) -> None:
    _, dataset, _ = model
    path, data = write_page(model, dataset.split_users("test")[1], tmp_path)
    with visit(browser, path, width) as seen:
        assert seen.console_errors() == [] and seen.errors == []
        assert seen.requests == [path.resolve().as_uri()], "the page asked for something else"
        cards = seen.page.eval_on_selector_all(
            "article.card", "cards => cards.map(c => c.dataset.situation)"
        )
        assert cards == list(SITUATIONS)
        shown = seen.page.evaluate(COLLECT_JS)
        counts = check_page(shown, data, top=3)
        assert counts[("photo", "effect")] >= len(SITUATIONS) and shown["across"]
        # what a person sees: the page is drawn, and nothing is wider than the screen
        assert seen.screenshot_is_drawn(width)
        assert seen.page.evaluate("document.documentElement.scrollWidth") <= width
        visible = seen.page.inner_text("body")
        assert "The same photo, four situations" in visible and "What an effect is" in visible


def test_markup_in_names_stays_text(browser, model, tmp_path: Path) -> None:
    """An unescaped '<img src=x onerror=...>' user id would request 'x' and run a script."""
    path, data = write_page(model, HOSTILE_USER, tmp_path)
    with visit(browser, path, 1280) as seen:
        assert seen.errors == [] and seen.console_errors() == []
        assert seen.requests == [path.resolve().as_uri()]
        assert seen.page.locator("img").count() == 0 and seen.page.locator("script").count() == 0
        assert HOSTILE_USER in seen.page.inner_text("h1")
        check_page(seen.page.evaluate(COLLECT_JS), data, top=3)


def test_profile_page_prints(browser, model, tmp_path: Path) -> None:
    _, dataset, _ = model
    path, _ = write_page(model, dataset.split_users("test")[2], tmp_path)
    with visit(browser, path, 1280) as seen:
        seen.page.emulate_media(media="print")
        assert seen.page.locator("nav.toc").is_hidden()
        assert seen.page.locator("#glance").is_visible()
        pdf = seen.page.pdf(format="A4")
        assert pdf.startswith(b"%PDF") and pdf.count(b"/Type /Page") >= 3


def test_index_sorts_by_each_situation_and_links_every_page(browser, model, tmp_path: Path) -> None:
    trained, dataset, model_dir = model
    users = list(dataset.split_users("test"))[:9]
    index = write_split_pages(
        trained, dataset, "test", tmp_path / "pages", model_dir=model_dir, users=users
    )
    scores = population_scores(trained, dataset, "test").loc[users]
    rows = "Array.from(document.querySelectorAll('#users tbody tr')).map(r => r.dataset.user)"
    with visit(browser, index, 375) as seen:
        page = seen.page
        assert seen.console_errors() == [] and seen.errors == []
        assert seen.requests == [index.resolve().as_uri()]
        assert page.evaluate(rows) == users  # file order until sorted
        for situation in SITUATIONS:
            button = page.locator(f'th[data-situation="{situation}"] button')
            button.click()
            high_first = scores[situation].sort_values(ascending=False, kind="stable")
            assert page.evaluate(rows) == list(high_first.index), situation
            header = f'th[data-situation="{situation}"]'
            assert page.get_attribute(header, "aria-sort") == "descending"
            button.click()
            assert page.evaluate(rows) == list(high_first.index[::-1]), situation
            assert page.get_attribute(header, "aria-sort") == "ascending"
        page.locator('th[data-col="0"] button').click()
        assert page.evaluate(rows) == sorted(users)
        assert seen.screenshot_is_drawn(375)
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        # every link leads to a page that exists; following one opens it without error
        hrefs = page.eval_on_selector_all("#users a", "links => links.map(a => a.href)")
        names = page_names(users)
        folder = index.parent / "users"
        assert set(hrefs) == {(folder / f"{n}.html").resolve().as_uri() for n in names.values()}
        first = sorted(users)[0]  # the user id with markup in it sorts first
        page.locator("#users tbody tr a").first.click()
        page.wait_for_load_state("load")
        assert page.url.endswith(f"users/{names[first]}.html")
        assert first in page.inner_text("h1") and seen.errors == []
