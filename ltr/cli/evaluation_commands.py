"""`ltr baseline`, `ltr evaluate`, `ltr submission check`: the BASE baseline, scoring, run files.

Thin layer over ltr.baseline, ltr.metrics and ltr.submission.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.table import Table
from rich.text import Text

from ltr.baseline import DEFAULT_GRID, base_scores, fit_base_threshold, threshold_table
from ltr.cli.common import console, handle_errors, load_data
from ltr.data.dataset import Dataset
from ltr.errors import LtrError
from ltr.metrics import Scores, score_run
from ltr.situations import SITUATIONS
from ltr.submission import read_run, validate_run, write_run

DATA_HELP = "Data folder (challenge or research layout)."
SPLIT_HELP = "Split to score, e.g. train, val or test."


def scores_table(scores: Scores, title: str) -> Table:
    """Pearson (the official score), Spearman and Kendall per situation and their means."""
    table = Table(title=Text(title), title_justify="left")
    table.add_column("statistic")
    for column in (*SITUATIONS, "mean"):
        table.add_column(column, justify="right")
    for name, row in scores.table().iterrows():
        label = f"{name} (official)" if name == "pearson" else str(name)
        table.add_row(label, *(f"{value:.4f}" for value in row))
    return table


def grid_table(grid: pd.DataFrame, chosen: float | None, title: str) -> Table:
    table = Table(title=Text(title), title_justify="left")
    table.add_column("threshold", justify="right", no_wrap=True)
    for column in (*SITUATIONS, "mean"):
        table.add_column(column, justify="right")
    table.add_column("empty users", justify="right")
    for threshold, row in grid.iterrows():
        marker = " *" if chosen is not None and threshold == chosen else ""
        values = [f"{row[c]:.4f}" if pd.notna(row[c]) else "n/a" for c in (*SITUATIONS, "mean")]
        table.add_row(f"{threshold:.2f}{marker}", *values, str(int(row["empty_users"])))
    return table


def _say(text: str) -> None:
    """Print plain text: no markup (paths may hold brackets), no wrapping inside paths."""
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def _labels(dataset: Dataset, split: str, command: str) -> pd.DataFrame:
    if not dataset.has_labels(split):
        dataset.split_users(split)  # a clear error first if the split does not exist
        raise LtrError(
            f"{dataset.name}: split {split!r} has no labels in these files, so `{command}` "
            "cannot score it (withheld labels are only scored by the challenge)"
        )
    return dataset.split_labels(split)


@handle_errors
def baseline(
    data: Annotated[Path, typer.Argument(metavar="DIR", help=DATA_HELP)],
    split: Annotated[str, typer.Option("--split", "-s", help=SPLIT_HELP)],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Write the BASE run here (.json = challenge format, or .csv)."
        ),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(help="Confidence threshold; default: fitted on the labels of split train."),
    ] = None,
    show_grid: Annotated[
        bool,
        typer.Option("--show-grid", help="Also print the train Pearson at every grid threshold."),
    ] = False,
) -> None:
    """Score a split with BASE, the organisers' baseline (global threshold fitted on train)."""
    dataset = load_data(data)
    dataset.split_users(split)  # fail early on an unknown split
    fitted = threshold is None
    if fitted:
        _labels(dataset, "train", "baseline (fitting the threshold)")
        threshold = fit_base_threshold(dataset, "train")
        grid = f"{DEFAULT_GRID[0]:.2f}..{DEFAULT_GRID[-1]:.2f}"
        _say(
            f"BASE threshold {threshold!r}: fitted on split 'train' (best mean Pearson over the "
            f"grid {grid}, ties to the lowest)"
        )
    else:
        _say(f"BASE threshold {threshold!r} (given)")
    if show_grid:
        grid_scores = threshold_table(dataset, "train")
        title = f"BASE Pearson on {dataset.name} train by threshold (* = used)"
        console.print(grid_table(grid_scores, threshold, title))
    run = base_scores(dataset, split, threshold)
    if dataset.has_labels(split):
        labels = dataset.split_labels(split)
        scores = score_run(run.loc[labels.index], labels, name="BASE")
        title = f"BASE on {dataset.name} {split} ({scores.n_users} users)"
        console.print(scores_table(scores, title))
        if fitted and split == "train":
            _say("note: in-sample figures (the threshold was fitted on these labels)")
    else:
        _say(f"split {split!r} has no labels here: nothing to score")
    if out is not None:
        write_run(run, out, dataset.split_users(split), split=split)
        _say(f"wrote {out} ({len(run)} users)")


@handle_errors
def evaluate(
    run_file: Annotated[Path, typer.Argument(metavar="RUN", help="Run file (.json or .csv).")],
    data: Annotated[Path, typer.Option("--data", "-d", help=DATA_HELP)],
    split: Annotated[str, typer.Option("--split", "-s", help=SPLIT_HELP)],
) -> None:
    """Score a run file against a split's labels with the challenge's metric."""
    dataset = load_data(data)
    labels = _labels(dataset, split, "evaluate")
    run = validate_run(read_run(run_file), dataset.split_users(split), run_file, split=split)
    scores = score_run(run.loc[labels.index], labels, name=str(run_file))
    title = f"{run_file.name} on {dataset.name} {split} ({scores.n_users} users)"
    console.print(scores_table(scores, title))


@handle_errors
def check(
    run_file: Annotated[Path, typer.Argument(metavar="FILE", help="Run file (.json or .csv).")],
    data: Annotated[Path, typer.Option("--data", "-d", help=DATA_HELP)],
    split: Annotated[str, typer.Option("--split", "-s", help="Split the run is for.")],
) -> None:
    """Check a run file as the challenge does: format, exactly the split's users, finite numbers."""
    dataset = load_data(data)
    users = dataset.split_users(split)
    run = validate_run(read_run(run_file), users, run_file, split=split)
    _say(f"valid: {len(run)} users ({dataset.name} {split})")


def register(app: typer.Typer) -> None:
    """Add `baseline`, `evaluate` and the `submission` group to `app`."""
    app.command("baseline")(baseline)
    app.command("evaluate")(evaluate)
    submission_app = typer.Typer(
        help="Run (submission) files.", no_args_is_help=True, add_completion=False
    )
    submission_app.command("check")(check)
    app.add_typer(submission_app, name="submission")
