"""`ltr data synth`: write the embedded synthetic data set, so ltr runs with no download."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ltr.cli.boundary import command
from ltr.cli.common import MAX_SEED, console, say
from ltr.cli.vocabulary import MIN_SYNTHETIC_USERS
from ltr.errors import LtrError


def register(data_app: typer.Typer) -> None:
    """Add `synth` to the `ltr data` command group."""
    command(data_app, "synth")(synth)


def synth(
    out_dir: Annotated[
        Path,
        typer.Argument(
            metavar="OUT_DIR",
            help="Folder to write (created; must be empty or hold an earlier synthetic set).",
            show_default=False,
        ),
    ],
    users: Annotated[
        int,
        typer.Option(
            "--users", min=MIN_SYNTHETIC_USERS, help="Number of profiles (60/20/20 % splits)."
        ),
    ] = 1000,
    seed: Annotated[int, typer.Option("--seed", min=0, max=MAX_SEED, help="Random seed.")] = 0,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="challenge (the JSON files of the challenge layout) or parquet (a detections "
            "table of any size, for `ltr predict`).",
        ),
    ] = "challenge",
    users_per_file: Annotated[
        int,
        typer.Option("--users-per-file", min=MIN_SYNTHETIC_USERS, help="With --format parquet."),
    ] = 25_000,
) -> None:
    """Generate a synthetic data set in the challenge layout (like aware2023).

    Train and val get labels, test labels are withheld (like the real data).
    The noise-free labels and the noise ceiling go to synthetic_truth.json.
    """
    from ltr.data.synthetic import TRUTH_FILE, write_synthetic
    from ltr.outputs import claim_output

    if fmt not in ("challenge", "parquet"):
        raise LtrError(f"unknown --format {fmt!r} (choose challenge or parquet)")
    if fmt == "parquet":
        from ltr.cli.scoring_commands import synth_table

        synth_table(out_dir, users, seed, users_per_file)
        return
    claim_output(out_dir, folder=True)
    data = write_synthetic(out_dir, n_users=users, seed=seed)
    dataset = data.dataset
    table = Table(title_justify="left")
    for name in ("split", "users", "images", "detections", "labels", "noise ceiling"):
        table.add_column(name, justify="left" if name in ("split", "labels") else "right")
    for split in dataset.splits:
        table.add_row(
            escape(split),
            f"{len(dataset.split_users(split)):,}",
            f"{int((dataset.images['split'] == split).sum()):,}",
            f"{int((dataset.detections['split'] == split).sum()):,}",
            "yes" if dataset.has_labels(split) else "withheld",
            f"{data.noise_ceiling[split]['mean']:.3f}",
        )
    say(f"Synthetic data set (seed {seed}) written to {out_dir}")
    console.print(table)
    say(f"Noise-free labels and generator parameters: {out_dir / TRUTH_FILE}")
