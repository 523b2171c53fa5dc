"""Writing feedback pages: one profile (`--html FILE`) or a whole split (`--html-dir DIR`).

A split's pages come from `ltr.explain.explain_users`, which scores the what-if variants of
hundreds of users per model call; the split's scores are computed once and shared by every
page. Each page is written next to its JSON (the numbers `ltr explain --out` writes for that
user), so a page can always be checked against its data.

    DIR/index.html            every user, sortable by each situation's score
    DIR/users/NAME.html       one page per user (NAME: the user id, made safe for file names)
    DIR/users/NAME.json       the numbers of that page (`Explanation.to_dict`, compact)

The users' files are plain writes (no fsync each: two thousand syncs cost more than the pages),
and the whole folder is swapped into place atomically: it is complete or absent.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd

from ltr.data import Dataset
from ltr.errors import LtrError
from ltr.explain import BATCH_USERS, Explanation, explain_users, population_scores
from ltr.feedback.index import IndexRow, render_index
from ltr.feedback.profile import Population, render_profile
from ltr.feedback.provenance import Provenance, provenance
from ltr.fileio import atomic_directory, write_text_atomic
from ltr.models.persistence import TrainedModel
from ltr.situations import SITUATIONS

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def page_names(users: Iterable[str]) -> dict[str, str]:
    """A file name stem per user: the id itself when it is plain ASCII letters, digits, '-' and
    '_', else a cleaned id plus a hash of the real one. Ids that differ only in case also get a
    hash, so no two pages share a file on a case-insensitive file system."""
    users = list(users)
    plain = {u: (_UNSAFE.sub("_", u)[:64] or "user") for u in users}
    folded: dict[str, int] = {}
    for name in plain.values():
        folded[name.lower()] = folded.get(name.lower(), 0) + 1
    names = {}
    for user, name in plain.items():
        if name != user or folded[name.lower()] > 1:
            name = f"{name}-{hashlib.sha256(user.encode('utf-8')).hexdigest()[:10]}"
        names[user] = name
    return names


def _records(frame: pd.DataFrame) -> list[dict[str, object]]:
    """``frame.reset_index().to_dict(orient="records")`` without pandas' per-cell overhead."""
    names = [frame.index.name, *frame.columns]
    columns = [frame.index.tolist(), *(frame[c].tolist() for c in frame.columns)]
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


def explanation_json(explanation: Explanation) -> str:
    """`Explanation.to_dict` as compact JSON (the same data `ltr explain --out` writes)."""
    data = {
        "user": explanation.user,
        "split": explanation.split,
        "scores": {s: float(explanation.scores[s]) for s in explanation.scores.index},
        "percentiles": {
            s: float(explanation.percentiles[s]) for s in explanation.percentiles.index
        },
        "photos": _records(explanation.photos),
        "concepts": _records(explanation.concepts),
    }
    return json.dumps(data, allow_nan=False)


def write_profile_page(
    path: str | Path,
    explanation: Explanation,
    population: pd.DataFrame | Population,
    prov: Provenance,
    *,
    top: int = 3,
    index_href: str | None = None,
) -> Path:
    """Write one profile's self-contained page to `path`."""
    html = render_profile(explanation, population, prov, top=top, index_href=index_href)
    return write_text_atomic(path, html)


#: What `write_split_pages` puts in its folder: the only entries of a folder it may replace.
PAGES_ENTRIES = frozenset({"index.html", "users"})


def check_pages_dir(out_dir: str | Path) -> Path:
    """Refuse a folder that is neither new, empty, nor earlier pages: writing the pages
    replaces the whole folder, so a typo (or `--force` on a data or model folder) must never
    remove other files."""
    path = Path(out_dir)
    if path.is_dir():
        entries = {entry.name for entry in path.iterdir()}
        if entries and not ("index.html" in entries and entries <= PAGES_ENTRIES):
            raise LtrError(
                f"{path}: exists and does not hold earlier pages (only index.html and "
                "users/); not replacing it"
            )
    return path


def write_split_pages(
    trained: TrainedModel,
    dataset: Dataset,
    split: str,
    out_dir: str | Path,
    *,
    model_dir: str | Path | None = None,
    users: list[str] | None = None,
    top: int = 3,
    date: str | None = None,
    batch_users: int = BATCH_USERS,
    on_page: Callable[[int, int], None] | None = None,
) -> Path:
    """A page per user of `split` (default: all) plus their JSON and `index.html`; returns the
    index path. `on_page(done, total)` is called after each page (for a progress display)."""
    out = check_pages_dir(out_dir)
    prov = provenance(trained, dataset, split, model_dir=model_dir, date=date)
    population = population_scores(trained, dataset, split)
    chosen = list(dataset.split_users(split)) if users is None else list(users)
    names = page_names(chosen)
    drawn = Population.of(population)
    rows = []
    explained = explain_users(
        trained, dataset, split, chosen, population=population, batch_users=batch_users
    )
    with atomic_directory(out) as tmp:
        (tmp / "users").mkdir()
        for done, explanation in enumerate(explained, start=1):
            stem = names[explanation.user]
            (tmp / "users" / f"{stem}.json").write_text(explanation_json(explanation), "utf-8")
            page = render_profile(explanation, drawn, prov, top=top, index_href="../index.html")
            (tmp / "users" / f"{stem}.html").write_text(page, "utf-8")
            rows.append(
                IndexRow(
                    user=explanation.user,
                    href=f"users/{stem}.html",
                    photos=len(explanation.photos),
                    scores={s: float(explanation.scores[s]) for s in SITUATIONS},
                    percentiles={s: float(explanation.percentiles[s]) for s in SITUATIONS},
                )
            )
            if on_page is not None:
                on_page(done, len(chosen))
        (tmp / "index.html").write_text(render_index(rows, prov), "utf-8")
    return out / "index.html"


def write_explain_pages(
    trained: TrainedModel,
    dataset: Dataset,
    split: str,
    *,
    model_dir: str | Path | None,
    explanation: Explanation | None = None,
    html: str | Path | None = None,
    html_dir: str | Path | None = None,
    top: int = 3,
    say: Callable[[str], object] | None = None,
) -> list[Path]:
    """What `ltr explain --html FILE / --html-dir DIR` writes; returns the paths (and tells
    `say` each one) for the user.

    `--html` renders `explanation` itself (the object `--out` writes as JSON), so the page and
    the JSON hold the very same numbers.
    """
    if html is not None and explanation is None:
        raise LtrError("--html writes the page of one user: give --user")
    written = []
    if html is not None and explanation is not None:
        prov = provenance(trained, dataset, split, model_dir=model_dir)
        population = population_scores(trained, dataset, split)
        written.append(write_profile_page(html, explanation, population, prov, top=top))
    if html_dir is not None:
        written.append(
            write_split_pages(trained, dataset, split, html_dir, model_dir=model_dir, top=top)
        )
    for path in written:
        if say is not None:
            say(f"wrote {path}")
    return written
