"""`ltr explain --html FILE` and `--html-dir DIR`: the pages the command writes, and their numbers
against the JSON `--out` writes in the same run (parsed here, and in Chromium)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import launch, visit
from pagecheck import COLLECT_JS, check_page, read_page
from typer.testing import CliRunner

from ltr.cli.main import app
from ltr.data import Dataset, load_dataset
from ltr.data.synthetic import write_synthetic
from ltr.feedback.pages import page_names
from ltr.models import preset
from ltr.workflow import train_model, training_set

runner = CliRunner()


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Dataset, Path, Path]:
    root = tmp_path_factory.mktemp("explain-html")
    write_synthetic(root / "data", n_users=150, seed=7)
    dataset = load_dataset(root / "data")
    train_model(training_set(dataset), preset("ridge"), root / "model")
    return dataset, root / "data", root / "model"


def explain(setup, *args: object) -> Any:
    _, data_dir, model_dir = setup
    return runner.invoke(app, ["explain", str(model_dir), str(data_dir), *map(str, args)])


@pytest.mark.parametrize("top", [2, 4])
def test_html_page_holds_the_numbers_of_the_json_of_the_same_run(
    setup, tmp_path: Path, top: int
) -> None:
    dataset = setup[0]
    user = dataset.split_users("val")[3]
    page, out = tmp_path / "profile.html", tmp_path / "profile.json"
    args = ["--split", "val", "--user", user, "--top", top, "--out", out, "--html", page]
    result = explain(setup, *args)
    assert result.exit_code == 0, result.output
    assert f"wrote {page}" in result.output and f"wrote {out}" in result.output
    assert "photos that matter most" in result.output  # the terminal tables are still there
    check_page(read_page(page.read_text()), json.loads(out.read_text()), top)


def test_html_dir_writes_every_user_of_the_split_without_user(setup, tmp_path: Path) -> None:
    dataset = setup[0]
    result = explain(setup, "--split", "val", "--html-dir", tmp_path / "pages")
    assert result.exit_code == 0, result.output
    index = tmp_path / "pages" / "index.html"
    assert f"wrote {index}" in result.output
    users = list(dataset.split_users("val"))
    assert index.read_text().count("<tr data-user=") == len(users)
    names = page_names(users)
    for user in users:
        page = tmp_path / "pages" / "users" / f"{names[user]}.html"
        data = json.loads(page.with_suffix(".json").read_text())
        check_page(read_page(page.read_text()), data, top=3)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--split", "val"], "missing option --user (or --html-dir"),
        (["--split", "val", "--html", "x.html", "--html-dir", "d"], "give --user"),
        (["--split", "val", "--user", "nobody", "--html", "x.html"], "no user 'nobody'"),
    ],
)
def test_refusals_are_one_line(setup, args: list[str], message: str) -> None:
    result = explain(setup, *args)
    assert result.exit_code == 1 and message in result.output, result.output
    assert "Traceback" not in result.output


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launch() as running:
        yield running


@pytest.mark.slow
def test_html_page_in_a_browser_equals_the_json(setup, browser, tmp_path: Path) -> None:
    dataset = setup[0]
    user = dataset.split_users("test")[0]
    page, out = tmp_path / "p.html", tmp_path / "p.json"
    args = ["--split", "test", "--user", user, "--out", out, "--html", page]
    assert explain(setup, *args).exit_code == 0
    for width in (1280, 375):
        with visit(browser, page, width) as seen:
            assert seen.console_errors() == [] and seen.errors == []
            assert seen.requests == [page.resolve().as_uri()]
            check_page(seen.page.evaluate(COLLECT_JS), json.loads(out.read_text()), top=3)
            assert seen.screenshot_is_drawn(width)


def test_html_dir_is_replaced_only_with_force_and_never_left_half_written(
    setup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ltr.feedback.pages as pages

    out = tmp_path / "pages"
    assert explain(setup, "--split", "val", "--html-dir", out).exit_code == 0
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    again = explain(setup, "--split", "val", "--html-dir", out)
    assert again.exit_code == 1 and "exists; pass --force to replace it" in again.output
    calls = {"n": 0}
    render = pages.render_profile

    def failing(*args: Any, **kwargs: Any) -> str:
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError(28, "No space left on device")
        return render(*args, **kwargs)

    monkeypatch.setattr(pages, "render_profile", failing)
    broken = explain(setup, "--split", "val", "--html-dir", out, "--force")
    assert broken.exit_code == 1 and "No space left on device" in broken.output
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before  # the old pages, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pages"]  # no temporary folder left
    monkeypatch.setattr(pages, "render_profile", render)
    assert explain(setup, "--split", "val", "--html-dir", out, "--force").exit_code == 0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["aware2023", "lervup2021"])
def test_html_dir_on_the_real_data_sets(name: str, request, tmp_path: Path) -> None:
    """Both real layouts (hashed concept ids in aware2023, real names in lervup2021): a page
    per test user plus the index, each page holding its JSON's numbers."""
    data_dir: Path = request.getfixturevalue(name)
    model = tmp_path / "model"
    trained = runner.invoke(app, ["train", str(data_dir), "-m", "ridge", "--model-dir", str(model)])
    assert trained.exit_code == 0, trained.output
    pages = tmp_path / "pages"
    args = ["explain", str(model), str(data_dir), "--split", "test", "--html-dir", str(pages)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    users = list(load_dataset(data_dir).split_users("test"))
    assert (pages / "index.html").read_text().count("<tr data-user=") == len(users)
    names = page_names(users)
    for user in users[:: max(1, len(users) // 10)]:
        page = pages / "users" / f"{names[user]}.html"
        check_page(
            read_page(page.read_text()), json.loads(page.with_suffix(".json").read_text()), 3
        )
