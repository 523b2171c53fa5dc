"""Feedback page tests' helpers: data with markup in its names, and reading a page back (its
numbers and rows) to compare it with the JSON.

The same checks run on pages parsed here (no browser) and on the DOM of a real browser
(`tests/browser.py` collects the same records with JavaScript).
"""

from __future__ import annotations

from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pandas as pd

from ltr.data import Dataset, load_dataset
from ltr.data.synthetic import write_synthetic
from ltr.feedback import numbers as fmt
from ltr.models import preset
from ltr.models.persistence import TrainedModel
from ltr.situations import SITUATIONS
from ltr.workflow import train_model, training_set

#: JavaScript that returns what `PageReader` returns, from a live DOM.
COLLECT_JS = """() => ({
  numbers: Array.from(document.querySelectorAll("[data-field]")).map(e => ({
    kind: e.dataset.kind, name: e.dataset.name ?? null, situation: e.dataset.situation,
    field: e.dataset.field, value: e.dataset.value, text: e.textContent})),
  rows: Array.from(document.querySelectorAll("li.bar-row")).map(e => ({
    kind: e.dataset.kind, situation: e.dataset.situation, name: e.dataset.name})),
  across: Array.from(document.querySelectorAll("table.across tbody tr")).map(e => e.dataset.name),
})"""


class PageReader(HTMLParser):
    """Collects the ``data-field`` numbers (attributes and shown text) and the bar rows."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.numbers: list[dict[str, Any]] = []
        self.rows: list[dict[str, Any]] = []
        self.across: list[str] = []
        self._open: dict[str, Any] | None = None
        self._in_across = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table" and "across" in (a.get("class") or "").split():
            self._in_across = True
        if tag == "tr" and self._in_across and "data-name" in a:
            self.across.append(a["data-name"] or "")
        if tag == "li" and "bar-row" in (a.get("class") or "").split():
            self.rows.append(
                {"kind": a["data-kind"], "situation": a["data-situation"], "name": a["data-name"]}
            )
        if "data-field" in a:
            self._open = {
                "kind": a.get("data-kind"),
                "name": a.get("data-name"),
                "situation": a.get("data-situation"),
                "field": a["data-field"],
                "value": a["data-value"],
                "text": "",
            }

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._in_across = False
        if tag == "span" and self._open is not None:
            self.numbers.append(self._open)
            self._open = None

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._open["text"] += data


def read_page(text: str) -> dict[str, Any]:
    reader = PageReader()
    reader.feed(text)
    return {"numbers": reader.numbers, "rows": reader.rows, "across": reader.across}


def check_numbers(numbers: list[dict[str, Any]], data: dict[str, Any]) -> Counter:
    """Every shown number is the JSON's value (exactly, in ``data-value``) shown by the page's
    rounding rule; returns how many numbers of each (kind, field) the page holds."""
    photos = {r["photo"]: r for r in data["photos"]}
    concepts = {r["concept"]: r for r in data["concepts"]}
    seen: Counter = Counter()
    for n in numbers:
        s, field = n["situation"], n["field"]
        if n["kind"] == "profile":
            source = data["scores"] if field == "score" else data["percentiles"]
            expected, shown = source[s], (fmt.score if field == "score" else fmt.percent)
        else:
            record = (photos if n["kind"] == "photo" else concepts)[n["name"]]
            key = {"effect": s, "effect_pct": f"{s}_pct", "rating": f"rating_{s}"}[field]
            expected = record[key]
            shown = {"effect": fmt.score, "effect_pct": fmt.points, "rating": fmt.rating}[field]
        assert float(n["value"]) == expected, n
        assert n["text"] == shown(expected), n
        seen[(n["kind"], field)] += 1
    return seen


def expected_rows(data: dict[str, Any], kind: str, top: int) -> dict[str, list[str]]:
    """Per situation, the `top` items that help most then the `top` that hurt most, by the JSON."""
    records = data["photos"] if kind == "photo" else data["concepts"]
    out = {}
    for s in SITUATIONS:
        ordered = sorted(records, key=lambda r: (-r[s], str(r[kind])))
        helps = [r[kind] for r in ordered if fmt.sign(r[s], fmt.SCORE_DECIMALS) > 0][:top]
        hurts = [r[kind] for r in ordered if fmt.sign(r[s], fmt.SCORE_DECIMALS) < 0]
        out[s] = helps + hurts[max(len(hurts) - top, 0) :]
    return out


def check_page(page: dict[str, Any], data: dict[str, Any], top: int) -> Counter:
    """The page's numbers equal the JSON's and it shows the right photos and concepts."""
    seen = check_numbers(page["numbers"], data)
    assert seen[("profile", "score")] == seen[("profile", "percentile")] == len(SITUATIONS)
    for kind in ("photo", "concept"):
        want = expected_rows(data, kind, top)
        for s in SITUATIONS:
            got = [r["name"] for r in page["rows"] if r["kind"] == kind and r["situation"] == s]
            assert got == want[s], (kind, s)
    return seen


# ------------------------------------------------------------------------- test data
#: User id, photo id and concept name that would break a page that did not escape them.
HOSTILE_USER = '<img src=x onerror="alert(1)">&u'
HOSTILE_IMAGE = "photo\"'><script>alert(2)</script>"
HOSTILE_CONCEPT = "<b>VC</b>&amp;"


def hostile(dataset: Dataset) -> Dataset:
    """`dataset` with one test user, one of its photos and one concept renamed to markup."""
    user = dataset.split_users("test")[0]
    image = dataset.images.loc[dataset.images["user"] == user, "image"].iloc[0]
    concept = dataset.detections.loc[dataset.detections["image"] == image, "concept"].iloc[0]

    def rename(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.copy()
        if "concept" in frame.columns:
            frame["concept"] = frame["concept"].replace({concept: HOSTILE_CONCEPT})
        if "image" in frame.columns:
            frame["image"] = frame["image"].replace({image: HOSTILE_IMAGE})
        frame["user"] = frame["user"].replace({user: HOSTILE_USER})
        return frame

    ratings = dataset.ratings.rename(index={concept: HOSTILE_CONCEPT})
    return Dataset(
        ratings=ratings,
        detections=rename(dataset.detections),
        images=rename(dataset.images),
        users=rename(dataset.users),
        labels=rename(dataset.labels),
        layout=dataset.layout,
        source=dataset.source,
    )


def feedback_model(root: Path) -> tuple[TrainedModel, Dataset, Path]:
    """A small synthetic data set (with `hostile` names) and a ridge model saved under `root`."""
    write_synthetic(root / "data", n_users=150, seed=5)
    dataset = hostile(load_dataset(root / "data"))
    cv = {"mean_pearson": 0.5}
    trained = train_model(training_set(dataset), preset("ridge"), root / "model", cv=cv)
    return trained, dataset, root / "model"
