"""Detections tables on the command line: `ltr predict MODEL TABLE_DIR --out F` and
`ltr data synth OUT --format parquet` call these (thin wrappers over ltr.scoring and
ltr.data.parquet), so the existing commands only gain a branch. Imported when used."""

from __future__ import annotations

import time
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ltr.cli.common import console, say
from ltr.errors import LtrError
from ltr.outputs import claim_output, use_input


def predict_table(
    model_dir: Path,
    table_dir: Path,
    out: Path | None,
    *,
    split: str | None,
    engine: str,
    scheduler: str | None,
    workers: int,
    percentiles: bool,
    threads: int,
) -> None:
    """Score every user of a detections table and write `out` (Parquet)."""
    from ltr.scoring import score_table

    if split is not None:
        raise LtrError(f"{table_dir}: a detections table has no splits; drop --split")
    if out is None or out.suffix != ".parquet":
        raise LtrError("scoring a detections table needs --out FILE.parquet")
    use_input(model_dir)
    use_input(table_dir)
    claim_output(out)
    columns = (
        TextColumn("[bold]scoring"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("files"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("scoring", total=None)
        summary = score_table(
            model_dir,
            table_dir,
            out,
            engine=engine,
            scheduler=scheduler,
            workers=workers,
            percentiles=percentiles,
            threads=threads,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    rate = summary.users / summary.seconds if summary.seconds else 0.0
    say(
        f"wrote {summary.out} ({summary.users:,} users from {summary.files} file(s), "
        f"{summary.rows:,} rows; engine {summary.engine}; {summary.seconds:.1f} s, "
        f"{rate:,.0f} users/s)"
    )


def synth_table(out_dir: Path, users: int, seed: int, users_per_file: int) -> None:
    """Write a synthetic detections table of any size, one file at a time."""
    from ltr.data.parquet import write_synthetic_table

    claim_output(out_dir, folder=True)
    started = time.perf_counter()
    with console.status(f"generating {users:,} synthetic profiles"):
        write_synthetic_table(out_dir, users, seed, users_per_file=users_per_file)
    files = len(list(out_dir.glob("part-*.parquet")))
    say(
        f"Synthetic detections table (seed {seed}): {users:,} users in {files} Parquet file(s) "
        f"and ratings.parquet, written to {out_dir} in {time.perf_counter() - started:.1f} s"
    )
