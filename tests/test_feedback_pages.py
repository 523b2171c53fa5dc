"""Feedback pages without a browser: numbers equal the JSON, escaping, files, determinism; the
histograms, the cross-situation table, colour cues, the note and photo labels, read from the
parsed page and checked against the data.

The same pages are opened in headless Chromium by test_feedback_browser.py.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
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
from ltr.feedback.profile import ACROSS, HIST_BINS, Population, histogram_svg, render_profile
from ltr.feedback.provenance import describe_cv, describe_spec, page_date, provenance
from ltr.models import preset
from ltr.models.persistence import TrainedModel
from ltr.situations import SITUATIONS


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainedModel, Dataset, Path]:
    return feedback_model(tmp_path_factory.mktemp("feedback"))


def profile_page(
    model,
    user: str,
    top: int = 3,
    date: str | None = "2026-01-02",
    *,
    across: int = ACROSS,
    dataset: Dataset | None = None,
) -> tuple[str, dict]:
    """The page of `user` and its JSON (`dataset`: other data scored with the same model)."""
    trained, trained_on, model_dir = model
    dataset = trained_on if dataset is None else dataset
    explanation = explain_user(trained, dataset, "test", user)
    prov = provenance(trained, dataset, "test", model_dir=model_dir, date=date)
    population = population_scores(trained, dataset, "test")
    page = render_profile(explanation, population, prov, top=top, across=across)
    return page, explanation.to_dict()


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


# ------------------------------------------------------------- the page as a tree of elements
VOID = {"br", "meta", "link", "img", "input", "hr", "wbr", "col", "source"}


@dataclass(eq=False)
class Node:
    """One element of a parsed page: its tag, attributes and children (elements and text)."""

    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = field(default_factory=list, repr=False)
    parent: Node | None = field(default=None, repr=False)

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text() for c in self.children)

    def words(self) -> str:
        """The text with runs of white space as one space."""
        return " ".join(self.text().split())

    def walk(self) -> Iterator[Node]:
        for child in self.children:
            if isinstance(child, Node):
                yield child
                yield from child.walk()

    def all(self, tag: str | None = None, cls: str | None = None, **data: str) -> list[Node]:
        """Descendants with `tag`, class `cls` and the ``data-*`` attributes `data`
        (``field="effect"`` is ``data-field="effect"``)."""
        wanted = {f"data-{k.replace('_', '-')}": v for k, v in data.items()}
        return [
            n
            for n in self.walk()
            if (tag is None or n.tag == tag)
            and (cls is None or cls in n.classes)
            and all(n.attrs.get(k) == v for k, v in wanted.items())
        ]

    def one(self, tag: str | None = None, cls: str | None = None, **data: str) -> Node:
        found = self.all(tag, cls, **data)
        assert len(found) == 1, (tag, cls, data, len(found))
        return found[0]

    def up(self, tag: str, cls: str | None = None) -> Node | None:
        """The nearest ancestor with `tag` (and class `cls`)."""
        node = self.parent
        while node is not None and not (node.tag == tag and (cls is None or cls in node.classes)):
            node = node.parent
        return node


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.open = [self.root]

    def _add(self, tag: str, attrs: list[tuple[str, str | None]]) -> Node:
        node = Node(tag, {k: v or "" for k, v in attrs}, parent=self.open[-1])
        self.open[-1].children.append(node)
        return node

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = self._add(tag, attrs)
        if tag not in VOID:
            self.open.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._add(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        assert any(n.tag == tag for n in self.open), f"</{tag}> closes nothing"
        while self.open[-1].tag != tag:
            self.open.pop()
        self.open.pop()

    def handle_data(self, data: str) -> None:
        self.open[-1].children.append(data)


def tree(text: str) -> Node:
    builder = _TreeBuilder()
    builder.feed(text)
    builder.close()
    assert builder.open == [builder.root], "unclosed elements"
    return builder.root


def section(doc: Node, ident: str) -> Node:
    (found,) = [n for n in doc.all("section") if n.attrs.get("id") == ident]
    return found


# --------------------------------------------------------------------- the four distributions
def bin_of(value: float, scores: np.ndarray) -> int:
    """The bin holding `value` among `HIST_BINS` equal bins from the lowest to the highest of
    `scores` (a bin holds its lower edge; the last one also the highest score)."""
    edges = np.linspace(scores.min(), scores.max(), HIST_BINS + 1)
    # clipped at both ends: the explanation's score of the lowest (highest) profile can lie an
    # ulp outside the split's scores, which are computed in another batch
    return max(0, min(int(np.searchsorted(edges, value, side="right")) - 1, HIST_BINS - 1))


def check_histogram(svg: Node, scores: np.ndarray, mine: float) -> tuple[int, np.ndarray]:
    """The drawn histogram counts `scores` and marks `mine` in its bin: returns that bin and
    the counts per bin (counted here from the scores)."""
    assert svg.attrs["role"] == "img" and svg.one("title").text()  # a text alternative
    step = float(svg.attrs["viewbox"].split()[2]) / HIST_BINS
    bars = {}
    for rect in svg.all("rect"):
        x, width = float(rect.attrs["x"]), float(rect.attrs["width"])
        k = int((x + width / 2) // step)
        assert k not in bars and 0 <= k < HIST_BINS
        bars[k] = (float(rect.attrs["height"]), rect.attrs["fill"])
    counts = np.bincount([bin_of(v, scores) for v in scores], minlength=HIST_BINS)
    # a bar for each bin holding users, none for an empty bin
    assert sorted(bars) == [k for k in range(HIST_BINS) if counts[k]]
    # heights are proportional to the counts: scaled so that the tallest bar is the largest
    # count, every bar gives back its count (the heights' 0.1 precision is enough with fewer
    # users than height units), and together they count every user of the split
    tallest = max(height for height, _ in bars.values())
    assert counts.max() < tallest
    drawn = {k: round(height / tallest * counts.max()) for k, (height, _) in bars.items()}
    assert drawn == {k: counts[k] for k in bars}
    assert sum(drawn.values()) == len(scores)
    # the profile: its bin's bar is the one drawn apart, and the marker line stands in that bin
    mine_bin = bin_of(mine, scores)
    fills = Counter(fill for _, fill in bars.values())
    assert len(fills) == 2 and [k for k, (_, f) in bars.items() if fills[f] == 1] == [mine_bin]
    (marker,) = [n for n in svg.all("line") if n.attrs["x1"] == n.attrs["x2"]]
    x = float(marker.attrs["x1"])
    assert mine_bin * step - 0.05 <= x <= (mine_bin + 1) * step + 0.05, (x, mine_bin)
    assert "this profile" in svg.words()
    return mine_bin, counts


def test_each_situation_s_histogram_counts_the_split_and_marks_the_profile(model) -> None:
    trained, dataset, _ = model
    scores = population_scores(trained, dataset, "test")
    n_users = len(dataset.split_users("test"))
    assert len(scores) == n_users
    # the lowest and highest profiles of a situation (first and last bin) and a middle one
    order = scores["acc"].sort_values().index
    for user in (order[0], order[len(order) // 2], order[-1]):
        text, data = profile_page(model, user)
        glance = section(tree(text), "glance")
        assert [c.attrs["data-situation"] for c in glance.all("article", "card")] == list(
            SITUATIONS
        )
        for s in SITUATIONS:
            card = glance.one("article", "card", situation=s)
            svg = card.one("svg")
            said = re.search(r"Scores of the ([\d,]+) users of split test", svg.one("title").text())
            assert said and int(said.group(1).replace(",", "")) == n_users
            mine_bin, counts = check_histogram(svg, scores[s].to_numpy(), data["scores"][s])
            # the JSON's percentile (share of the other users scored lower) agrees with the
            # bars: everyone in a lower bin is below the profile, no one in a higher bin is
            below = round(data["percentiles"][s] / 100 * (n_users - 1))
            assert counts[:mine_bin].sum() <= below <= counts[: mine_bin + 1].sum() - 1


def test_every_user_of_the_split_is_marked_in_the_bin_of_its_score(model) -> None:
    trained, dataset, _ = model
    scores = population_scores(trained, dataset, "test")
    population = Population.of(scores)
    for s in SITUATIONS:
        values = scores[s].to_numpy()
        counts = np.bincount([bin_of(v, values) for v in values], minlength=HIST_BINS)
        assert population.counts[s] == counts.tolist() and sum(population.counts[s]) == len(scores)
        for user in scores.index:
            svg = tree(histogram_svg(population, s, scores.loc[user, s], "scores")).one("svg")
            check_histogram(svg, values, scores.loc[user, s])


# ---------------------------------------------------------------- the cross-situation table
def shown_sign(value: float) -> int:
    """The sign of an effect on a score as the page shows it, to 3 decimals."""
    rounded = round(value, 3)
    return (rounded > 0) - (rounded < 0)


def test_cross_situation_table_has_a_column_per_situation_and_the_largest_effects(model) -> None:
    _, dataset, _ = model
    for user in list(dataset.split_users("test"))[:4]:
        text, data = profile_page(model, user)
        across = section(tree(text), "across")
        table = across.one("table", "across")
        heads = [h.words() for h in table.one("thead").all("th")]
        assert heads[0] == "Photo" and heads[-1] == "In short"
        assert [h.rsplit("(", 1)[-1].rstrip(")") for h in heads[1:-1]] == list(SITUATIONS)
        photos = {r["photo"]: r for r in data["photos"]}
        rows = table.one("tbody").all("tr")
        shown = [tr.attrs["data-name"] for tr in rows]
        assert len(set(shown)) == len(shown) == min(ACROSS, len(photos)) < len(photos)
        # the rule the page states: largest effects in percentile points, in any situation
        rule = re.search(
            r"The table shows the (\d+) photos with the largest effects \(in percentile points, "
            r"in any situation\)",
            across.words(),
        )
        assert rule and int(rule.group(1)) == len(shown)
        size = {p: max(abs(r[f"{s}_pct"]) for s in SITUATIONS) for p, r in photos.items()}
        assert min(size[p] for p in shown) >= max(size[p] for p in photos if p not in shown)
        assert [size[p] for p in shown] == sorted((size[p] for p in shown), reverse=True)
        for tr, name in zip(rows, shown, strict=True):
            cells = [td for td in tr.all("td") if "data-situation" in td.attrs]
            assert [td.attrs["data-situation"] for td in cells] == list(SITUATIONS)
            for td, s in zip(cells, SITUATIONS, strict=True):
                for shown_as, key in (("effect", s), ("effect_pct", f"{s}_pct")):
                    number = td.one(field=shown_as)
                    assert number.attrs["data-name"] == name
                    assert number.attrs["data-situation"] == s
                    assert float(number.attrs["data-value"]) == photos[name][key]


def test_a_photo_that_helps_somewhere_and_hurts_elsewhere_reads_differently(model) -> None:
    _, dataset, _ = model
    tagged = untagged = 0
    for user in list(dataset.split_users("test"))[:3]:
        text, data = profile_page(model, user, across=1000)  # every photo in the table
        across = section(tree(text), "across")
        mixed_photos = 0
        rows = {tr.attrs["data-name"]: tr for tr in across.one("tbody").all("tr")}
        assert set(rows) == {r["photo"] for r in data["photos"]}
        for record in data["photos"]:
            helps = [s for s in SITUATIONS if shown_sign(record[s]) > 0]
            hurts = [s for s in SITUATIONS if shown_sign(record[s]) < 0]
            summary = rows[record["photo"]].one("td", "mixed")
            tags = [t.words() for t in summary.all(cls="tag")]
            if helps and hurts:
                assert tags == ["reads differently"], record
                mixed_photos += 1
            else:
                assert tags == [], record
            untagged += not tags
            tagged += bool(tags)
            for word, where in (("helps", helps), ("hurts", hurts)):
                if where:
                    assert f"{word}: {', '.join(where)}" in summary.words()
                else:
                    assert word not in summary.words()
        said = re.search(
            r"(\d+) help in at least one situation and hurt in another", across.words()
        )
        assert said and int(said.group(1)) == mixed_photos
    assert tagged and untagged  # both cases were seen


# ---------------------------------------------------------------------- colour is not alone
SIGN = {"help": "+", "hurt": fmt.MINUS}
WORD = {"help": "helps", "hurt": "hurts"}


def test_colour_is_never_the_only_cue(model) -> None:
    _, dataset, _ = model
    for user in list(dataset.split_users("test"))[:3]:
        text, _ = profile_page(model, user, top=50, across=1000)
        body = tree(text).one("main")
        coloured = [n for n in body.walk() if n.classes & {"help", "hurt"}]
        assert len(coloured) > 50
        for node in coloured:
            (cue,) = node.classes & {"help", "hurt"}
            cell = node if node.tag == "td" else node.up("td")
            row = node.up("li", "bar-row")
            if cell is not None and cell.up("table", "across") is not None:
                assert cue in cell.classes
                assert cell.one(field="effect").words().startswith(SIGN[cue])
                assert [t.words() for t in cell.all(cls="tag")] == [WORD[cue]]
            elif row is not None:
                assert row.attrs["data-effect"] == cue
                effect = row.one(field="effect")
                assert effect.words().startswith(SIGN[cue])
                assert effect.up("span", "val").words().endswith(f" {WORD[cue]}")
                if "bar" in node.classes:  # a drawn bar: the number next to it has its sign
                    number = node.up("div", "cell").one(cls="n")
                    assert number.words().startswith(SIGN[cue]), number.words()
            else:
                raise AssertionError(f"coloured <{node.tag}> outside an effect: {node.attrs}")
        # an uncoloured cell of the table has no sign and says so
        for cell in body.all("td", "none"):
            assert cell.one(field="effect").words()[0].isdigit()
            assert [t.words() for t in cell.all(cls="tag")] == ["no effect"]
        # the crowd ratings' grey bars: their direction is also a sign and a word
        rated = body.all("span", "rate")
        assert rated
        for bar in rated:
            sign, word = ("+", "positive") if "pos" in bar.classes else (fmt.MINUS, "negative")
            value = bar.up("div", "cell").one(cls="val")
            assert value.one(field="rating").words().startswith(sign)
            assert value.words().endswith(f" {word}")


def test_a_percentile_effect_is_coloured_by_its_own_sign(model) -> None:
    """A photo whose score effect is too small to move the rank shows a neutral 0.0 pp (no
    colour, no bar), not a helping or hurting one; a shown non-zero one has its sign's colour."""
    _, dataset, _ = model
    seen = {"none": 0, "help": 0, "hurt": 0}
    for user in list(dataset.split_users("test"))[:3]:
        text, _ = profile_page(model, user, top=50, across=1000)
        for row in tree(text).one("main").all("li", "bar-row"):
            cell = row.one("div", label="percentile")
            value = cell.one(cls="val")
            shown = value.one(field="effect_pct").words()
            expected = {"+": "help", fmt.MINUS: "hurt"}.get(shown[0], "none")
            (own,) = value.classes & {"help", "hurt", "none"}
            assert own == expected, shown
            bars = [n for n in cell.walk() if "bar" in n.classes]
            assert (own == "none") == (not bars)  # a bar is drawn only for a non-zero effect
            seen[own] += 1
    assert seen["none"] and seen["help"] and seen["hurt"]


# ------------------------------------------------------------------------------ the note
def test_the_note_says_an_effect_is_a_what_if_removal_read_by_the_model(model) -> None:
    _, dataset, _ = model
    text, data = profile_page(model, dataset.split_users("test")[1])
    note = section(tree(text), "about").one("div", "note").words().lower()
    # what an effect is: the change when the photo is taken out of the profile
    assert "what if" in note and "not in the profile" in note
    assert "score without it" in note
    assert "+ helps" in note and f"{fmt.MINUS} hurts" in note
    # its limits: the model's reading, one item at a time, a fallible detector, this split only
    assert "model's reading" in note and "not a verdict" in note
    assert "one photo or concept at a time" in note and "do not add up" in note
    assert "detector" in note and "wrong or missing" in note
    assert f"split {data['split']} only" in note


# ------------------------------------------------------------------------- photo labels
def test_photo_labels_show_the_photo_s_concepts_or_that_it_has_none(model) -> None:
    _, dataset, _ = model
    user = HOSTILE_USER  # its photo HOSTILE_IMAGE shows HOSTILE_CONCEPT
    images = dataset.images.loc[dataset.images["user"] == user, "image"].tolist()
    bare = next(image for image in images if image != HOSTILE_IMAGE)
    det = dataset.detections
    stripped = replace(dataset, detections=det[~((det["user"] == user) & (det["image"] == bare))])
    mine = stripped.detections[stripped.detections["user"] == user]
    expected = {image: set(mine.loc[mine["image"] == image, "concept"]) for image in images}
    assert expected[bare] == set() and HOSTILE_CONCEPT in expected[HOSTILE_IMAGE]
    text, data = profile_page(model, user, top=50, across=1000, dataset=stripped)
    doc = tree(text)
    labels = [tr.one("th") for tr in section(doc, "across").one("tbody").all("tr")]
    labels += [li.one("div", "bar-label") for li in doc.all("li", "bar-row", kind="photo")]
    seen = set()
    for label in labels:
        name, what = label.one("code").text(), label.one("span", "what").words()
        if expected[name]:
            assert set(what.split(", ")) == expected[name], name
        else:
            assert what == "no detected concept"
        seen.add(name)
    assert seen == set(images)  # every photo is in the table; the bare one too
