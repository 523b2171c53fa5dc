"""`ltr explain`: which photos and concepts help or hurt one profile, per situation."""

from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd
import typer
from rich.table import Table

from ltr.cli.common import console, handle_errors, load_data
from ltr.fileio import write_json_atomic
from ltr.situations import DESCRIPTIONS, SITUATIONS


def _effects_table(frame: pd.DataFrame, situation: str, what: str, top: int) -> Table:
    """The `top` items that hurt most and help most in `situation`."""
    table = Table(
        title=f"{what}s that matter most for {situation} ({DESCRIPTIONS[situation]})",
        title_justify="left",
    )
    table.add_column(what)
    if "concepts" in frame.columns:
        table.add_column("detected concepts")
    if f"rating_{situation}" in frame.columns:
        table.add_column("crowd rating", justify="right")
    table.add_column("effect on score", justify="right")
    table.add_column("effect on percentile", justify="right")
    ordered = frame.sort_values(situation)
    hurting = ordered[ordered[situation] < 0].head(top)
    helping = ordered[ordered[situation] > 0].iloc[::-1].head(top)
    for label, rows in (("hurts", hurting), ("helps", helping)):
        for name, row in rows.iterrows():
            cells = [f"{name} ({label})"]
            if "concepts" in frame.columns:
                cells.append(str(row["concepts"]))
            if f"rating_{situation}" in frame.columns:
                cells.append(f"{row[f'rating_{situation}']:+.2f}")
            cells += [f"{row[situation]:+.3f}", f"{row[f'{situation}_pct']:+.1f} pp"]
            table.add_row(*cells)
    return table


def register(app: typer.Typer) -> None:
    @app.command("explain")
    @handle_errors
    def explain_command(
        model_dir: Path = typer.Argument(..., help="A model directory from `ltr train`."),
        data_dir: Path = typer.Argument(..., help="Data folder holding the user."),
        user: str | None = typer.Option(
            None, "--user", "-u", help="The user (profile) to explain (optional with --html-dir)."
        ),
        split: str = typer.Option(..., "--split", "-s", help="Split the user belongs to."),
        top: int = typer.Option(3, "--top", min=1, help="Photos/concepts shown per direction."),
        situation: list[str] = typer.Option(
            list(SITUATIONS), "--situation", help="Situation(s) to show (default: all four)."
        ),
        out: Path | None = typer.Option(None, "--out", help="Also write everything as JSON."),
        html: Path | None = typer.Option(None, "--html", help="Also write it as one HTML page."),
        html_dir: Path | None = typer.Option(
            None, "--html-dir", help="Write a page per user of the split and index.html here."
        ),
    ) -> None:
        """Which photos and concepts help or hurt a profile in each situation.

        Each effect is what the model's score (and the user's percentile among the split's
        users) loses when the photo, or every detection of the concept, is removed: positive
        = it helps, negative = it hurts. --html / --html-dir write the same as pages to open in
        a browser (self-contained files; see README, Feedback).
        """
        from ltr.errors import LtrError
        from ltr.explain import explain_user
        from ltr.feedback.pages import write_explain_pages
        from ltr.models.persistence import load_trained

        unknown = [s for s in situation if s not in SITUATIONS]
        if unknown:
            raise LtrError(f"unknown situation {unknown[0]!r} (known: {', '.join(SITUATIONS)})")
        trained = load_trained(model_dir)
        dataset = load_data(data_dir)
        say = functools.partial(console.print, markup=False, highlight=False, soft_wrap=True)
        pages = functools.partial(
            write_explain_pages, trained, dataset, split, model_dir=model_dir, top=top, say=say
        )
        if user is None:
            if html_dir is None:
                raise LtrError("missing option --user (or --html-dir: a page for every user)")
            pages(html=html, html_dir=html_dir)
            return
        explanation = explain_user(trained, dataset, split, user)
        summary = Table(
            title=f"user {user} ({len(explanation.photos)} photos, {dataset.name} {split})",
            title_justify="left",
        )
        summary.add_column("situation")
        summary.add_column("score", justify="right")
        summary.add_column("percentile among the split's users", justify="right")
        for s in situation:
            summary.add_row(
                f"{s} ({DESCRIPTIONS[s]})",
                f"{explanation.scores[s]:+.3f}",
                f"{explanation.percentiles[s]:.0f}%",
            )
        console.print(summary)
        for s in situation:
            console.print(_effects_table(explanation.photos, s, "photo", top))
            console.print(_effects_table(explanation.concepts, s, "concept", top))
        if out is not None:
            write_json_atomic(out, explanation.to_dict())
            console.print(f"wrote {out}", markup=False, highlight=False)
        pages(explanation=explanation, html=html, html_dir=html_dir)
