"""`ltr explain`: which photos and concepts help or hurt one profile, per situation."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ltr.cli.boundary import command
from ltr.cli.common import (
    VALUES,
    DataDir,
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
    user: Annotated[str, typer.Option("--user", "-u", help="The user (profile) to explain.")],
    split: Annotated[str, split_option("Split the user belongs to.")],
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
) -> None:
    """Which photos and concepts help or hurt a profile in each situation.

    Each effect is what the model's score (and the user's percentile among the split's
    users, in percentile points) loses when the photo, or every detection of the concept, is
    removed: positive = it helps, negative = it hurts.
    """
    from ltr.explain import explain_user
    from ltr.fileio import write_json_atomic
    from ltr.models.persistence import load_trained
    from ltr.outputs import claim_output
    from ltr.tables import effects_table, profile_table

    chosen = split_values(situation, "--situation") or list(SITUATIONS)
    unknown = [s for s in chosen if s not in SITUATIONS]
    if unknown:
        raise LtrError(f"unknown situation {unknown[0]!r} (known: {', '.join(SITUATIONS)})")
    chosen = list(dict.fromkeys(chosen))
    if out is not None:
        claim_output(out)
    trained = load_trained(model_dir)
    dataset = load_data(data_dir)
    explanation = explain_user(trained, dataset, split, user)
    title = f"user {user} ({len(explanation.photos)} photos, {dataset.name} {split})"
    console.print(profile_table(explanation.scores, explanation.percentiles, chosen, title))
    for s in chosen:
        console.print(effects_table(explanation.photos, s, "photo", top))
        console.print(effects_table(explanation.concepts, s, "concept", top))
    if out is not None:
        write_json_atomic(out, explanation.to_dict())
        say(f"wrote {out}")


def register(app: typer.Typer) -> None:
    """Add `explain` to `app`."""
    command(app, "explain")(explain)
