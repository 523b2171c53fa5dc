"""`ltr baseline`, `ltr evaluate`, `ltr submission check`: the BASE baseline, scoring, run files.

Thin layer over ltr.workflow and ltr.submission.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ltr.cli.boundary import command, new_app
from ltr.cli.common import (
    DataDir,
    DataOption,
    RunFile,
    console,
    load_data,
    note,
    out_option,
    say,
    split_option,
    warn,
)

SPLIT_HELP = "Split to score, e.g. train, val or test."


def baseline(
    data: DataDir,
    split: Annotated[str, split_option(SPLIT_HELP)],
    out: Annotated[
        Path | None, out_option("Write the BASE run here (.json = challenge format, or .csv).")
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            "--threshold",
            help="Confidence threshold; default: fitted on the labels of split train.",
            show_default=False,
        ),
    ] = None,
    show_grid: Annotated[
        bool,
        typer.Option("--show-grid", help="Also print the train Pearson at every grid threshold."),
    ] = False,
) -> None:
    """Score a split with BASE, the organisers' baseline (global threshold fitted on train)."""
    from ltr.baseline import DEFAULT_GRID
    from ltr.outputs import claim_output
    from ltr.submission import run_format
    from ltr.tables import grid_table, scores_table
    from ltr.workflow import run_baseline

    if out is not None:
        run_format(out)  # an unknown extension fails before any work
        claim_output(out)
    dataset = load_data(data)
    job = run_baseline(dataset, split, threshold=threshold, grid=show_grid, out=out)
    if job.fitted:
        grid = f"{DEFAULT_GRID[0]:.2f}..{DEFAULT_GRID[-1]:.2f}"
        say(
            f"BASE threshold {job.threshold!r}: fitted on split 'train' (best mean Pearson over "
            f"the grid {grid}, ties to the lowest)"
        )
    else:
        say(f"BASE threshold {job.threshold!r} (given)")
    if job.grid is not None:
        title = f"BASE Pearson on {dataset.name} train by threshold (* = used)"
        console.print(grid_table(job.grid, job.threshold, title))
    if job.scores is not None:
        title = f"BASE on {dataset.name} {split} ({job.scores.n_users} users)"
        console.print(scores_table(job.scores, title))
        if job.in_sample:
            note("note: in-sample figures (the threshold was fitted on these labels)")
    else:
        say(f"split {split!r} has no labels here: nothing to score")
    if job.written is not None:
        say(f"wrote {job.written} ({len(job.run)} users)")


def evaluate(
    run_file: RunFile,
    data: DataOption,
    split: Annotated[str, split_option(SPLIT_HELP)],
) -> None:
    """Score a run file against a split's labels with the challenge's metric."""
    from ltr.tables import scores_table
    from ltr.workflow import evaluate_run, in_sample_note

    dataset = load_data(data)
    scores = evaluate_run(run_file, dataset, split)
    title = f"{run_file.name} on {dataset.name} {split} ({scores.n_users} users)"
    console.print(scores_table(scores, title))
    remark = in_sample_note(split)
    if remark:
        note(remark)


def check(
    run_file: RunFile,
    data: DataOption,
    split: Annotated[str, split_option("Split the run is for.")],
) -> None:
    """Check a run file as the challenge does: format, exactly the split's users, finite numbers.

    Also says which edition's format the file follows, and warns when a situation's scores are
    all equal (its Pearson correlation is undefined).
    """
    from ltr.submission import check_submission

    dataset = load_data(data)
    found = check_submission(run_file, dataset.split_users(split), split=split)
    say(f"valid: {found.n_users} users ({dataset.name} {split}); {found.edition}")
    for situation in found.constant:
        warn(
            f"{run_file}: every user has the same {situation!r} score: its Pearson "
            "correlation is undefined, so the challenge cannot score this situation"
        )


def register(app: typer.Typer) -> None:
    """Add `baseline`, `evaluate` and the `submission` group to `app`."""
    command(app, "baseline")(baseline)
    command(app, "evaluate")(evaluate)
    submission_app = new_app(help="Run (submission) files.")
    command(submission_app, "check")(check)
    app.add_typer(submission_app, name="submission")
