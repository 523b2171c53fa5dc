"""`ltr data ...`: inspect data folders (`check`); other data verbs register on `data_app`."""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ltr.cli.boundary import command, new_app
from ltr.cli.common import DataDir, console, load_data, note, show_warnings
from ltr.situations import DESCRIPTIONS, SITUATIONS

if TYPE_CHECKING:
    from ltr.data.summary import DataSummary

#: The `data` sub-command group; other modules add their verbs to it (e.g. `ltr data synth`).
data_app = new_app(name="data", help="Inspect data folders (challenge or research layout).")


@data_app.callback()
def _data() -> None:
    """Inspect data folders (challenge or research layout)."""


def register(app: typer.Typer) -> None:
    """Add the `data` command group (check, synth) to `app`."""
    from ltr.cli import synth_commands

    synth_commands.register(data_app)
    app.add_typer(data_app, name="data")


def _num(value: float, digits: int = 2) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _splits_table(summary: DataSummary) -> Table:
    """One column per split, one row per measure (fits 80 columns with three splits)."""
    table = Table(title="Splits", title_justify="left")
    table.add_column("")
    for s in summary.splits:
        table.add_column(escape(s.split), justify="right")
    rows = {
        "users": [f"{s.users:,}" for s in summary.splits],
        "images": [f"{s.images:,}" for s in summary.splits],
        "detections": [f"{s.detections:,}" for s in summary.splits],
        "images/user min/mean/max": [
            f"{s.images_per_user_min}/{_num(s.images_per_user_mean, 1)}/{s.images_per_user_max}"
            for s in summary.splits
        ],
        "detections/image mean": [_num(s.detections_per_image_mean) for s in summary.splits],
        "concepts detected": [str(s.concepts_detected) for s in summary.splits],
        "conf. p10/p50/p90": [
            "/".join(_num(q) for q in s.confidence_quantiles) for s in summary.splits
        ],
        "labelled users": [
            f"{s.labelled_users:,}" if s.labelled else "none" for s in summary.splits
        ],
    }
    for name, values in rows.items():
        table.add_row(name, *values)
    return table


def _concepts_table(summary: DataSummary) -> Table:
    concepts = summary.concepts
    table = Table(title="Concepts", title_justify="left")
    for name in ("rated", "detected", "detected, unrated", "rated, never detected"):
        table.add_column(name, justify="right")
    table.add_row(
        str(concepts.rated),
        str(concepts.detected),
        str(len(concepts.detected_unrated)),
        str(concepts.rated_undetected),
    )
    return table


def _labels_tables(summary: DataSummary) -> list[Table]:
    tables = []
    for labels in summary.labels:
        stats = Table(title=f"Labels: {escape(labels.split)}", title_justify="left")
        stats.add_column("situation")
        for name in labels.stats.columns:
            stats.add_column(name, justify="right")
        for code, row in labels.stats.iterrows():
            stats.add_row(
                f"{code} ({DESCRIPTIONS[str(code)]})",
                f"{int(row['n'])}",
                *(_num(row[c], 3) for c in labels.stats.columns if c != "n"),
            )
        corr = Table(title=f"Label correlation: {escape(labels.split)}", title_justify="left")
        corr.add_column("")
        for code in SITUATIONS:
            corr.add_column(code, justify="right")
        for code, row in labels.correlation.iterrows():
            corr.add_row(str(code), *(_num(row[c]) for c in SITUATIONS))
        tables += [stats, corr]
    return tables


def print_summary(summary: DataSummary) -> None:
    """Render `summary` as rich tables on the standard output."""
    say = functools.partial(console.print, highlight=False, soft_wrap=True)
    say(f"[bold]Data folder[/] {escape(str(summary.source or summary.name))}")
    boxes = "with boxes" if summary.has_boxes else "no boxes"
    say(f"{summary.layout} layout, {boxes}, fingerprint {summary.fingerprint}")
    console.print(_splits_table(summary))
    console.print(_concepts_table(summary))
    if summary.concepts.detected_unrated:
        say(f"detected but unrated: {escape(', '.join(summary.concepts.detected_unrated))}")
    for table in _labels_tables(summary):
        console.print(table)
    if not summary.labels:
        say("no labels in this folder")


@command(data_app, "check")
def check(
    folder: DataDir,
    strict_ratings: Annotated[
        bool,
        typer.Option(
            "--strict-ratings",
            help="Fail when a detected concept has no rating (default: warn, use rating 0).",
        ),
    ] = False,
) -> None:
    """Load DATA_DIR, validate every record and print what it holds.

    Exit code 0 when the data loads (warnings are printed), 1 with a message naming the file,
    the record and the problem otherwise.
    """
    from ltr.data.summary import summarize

    dataset = load_data(folder, strict_ratings=strict_ratings, report=True)
    summary = summarize(dataset)
    print_summary(summary)
    show_warnings(dataset, report=True)  # part of the report of what the folder holds
    if summary.concepts.detected_unrated:
        note("(--strict-ratings makes unrated concepts an error)")
