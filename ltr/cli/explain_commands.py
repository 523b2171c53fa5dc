"""`ltr explain`: which photos and concepts help or hurt one profile, per situation."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ltr.cli.boundary import command
from ltr.cli.common import (
    VALUES,
    DataDir,
    Force,
    ModelDir,
    console,
    load_data,
    out_option,
    say,
    split_option,
    split_values,
)
from ltr.errors import LtrError
from ltr.situations import SITUATIONS


def explain(
    model_dir: ModelDir,
    data_dir: DataDir,
    split: Annotated[str, split_option("Split the user belongs to.")],
    user: Annotated[
        str | None,
        typer.Option(
            "--user", "-u", help="The user (profile) to explain (optional with --html-dir)."
        ),
    ] = None,
    top: Annotated[
        int, typer.Option("--top", min=1, help="Photos/concepts shown per direction.")
    ] = 3,
    situation: Annotated[
        list[str] | None,
        typer.Option(
            "--situation",
            metavar="NAMES",
            help=f"Situations to show ({VALUES}; default: all four): {', '.join(SITUATIONS)}.",
            show_default=False,
        ),
    ] = None,
    out: Annotated[Path | None, out_option("Also write everything as JSON.")] = None,
    html: Annotated[
        Path | None,
        typer.Option("--html", help="Also write it as one self-contained HTML page."),
    ] = None,
    html_dir: Annotated[
        Path | None,
        typer.Option(
            "--html-dir",
            help="Write a page per user of the split plus a sortable index.html into this "
            "folder (replaced only with --force).",
        ),
    ] = None,
    force: Force = False,
) -> None:
    """Which photos and concepts help or hurt a profile in each situation.

    Each effect is what the model's score (and the user's percentile among the split's
    users, in percentile points) loses when the photo, or every detection of the concept, is
    removed: positive = it helps, negative = it hurts. --html / --html-dir write the same as
    pages to open in a browser.
    """
    from ltr.explain import explain_user
    from ltr.feedback.pages import check_pages_dir, write_explain_pages
    from ltr.fileio import write_json_atomic
    from ltr.models.persistence import load_trained
    from ltr.outputs import claim_output, use_input
    from ltr.tables import effects_table, profile_table

    chosen = split_values(situation, "--situation") or list(SITUATIONS)
    unknown = [s for s in chosen if s not in SITUATIONS]
    if unknown:
        raise LtrError(f"unknown situation {unknown[0]!r} (known: {', '.join(SITUATIONS)})")
    chosen = list(dict.fromkeys(chosen))
    if user is None and html_dir is None:
        raise LtrError("missing option --user (or --html-dir: a page for every user)")
    if user is None and (out is not None or html is not None):
        raise LtrError("--out and --html describe one user: give --user")
    for path in (out, html):
        if path is not None:
            claim_output(path)
    if html_dir is not None:
        check_pages_dir(
            claim_output(html_dir, folder=True, replace=force, hint="pass --force to replace it")
        )
    trained = load_trained(use_input(model_dir))
    dataset = load_data(data_dir)
    explanation = None
    if user is not None:
        explanation = explain_user(trained, dataset, split, user)
        title = f"user {user} ({len(explanation.photos)} photos, {dataset.name} {split})"
        scores = {s: float(explanation.scores[s]) for s in chosen}
        percentiles = {s: float(explanation.percentiles[s]) for s in chosen}
        console.print(profile_table(scores, percentiles, chosen, title))
        for s in chosen:
            console.print(effects_table(explanation.photos, s, "photo", top))
            console.print(effects_table(explanation.concepts, s, "concept", top))
        if out is not None:
            write_json_atomic(out, explanation.to_dict())
            say(f"wrote {out}")
    write_explain_pages(
        trained,
        dataset,
        split,
        model_dir=model_dir,
        explanation=explanation,
        html=html,
        html_dir=html_dir,
        top=top,
        say=say,
    )


def register(app: typer.Typer) -> None:
    """Add `explain` to `app`."""
    command(app, "explain")(explain)
