"""Rich tables shared by the CLI and the library's quick start."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from ltr.cv import CVResult
from ltr.situations import SITUATIONS


def cv_table(results: list[CVResult], title: str) -> Table:
    """Per-situation and mean Pearson (mean +- std over folds) of each model."""
    table = Table(title=escape(title), title_justify="left")
    table.add_column("model")
    for situation in SITUATIONS:
        table.add_column(situation, justify="right")
    table.add_column("mean Pearson", justify="right")
    table.add_column("seconds", justify="right")
    for result in results:
        cells = [
            f"{m:.3f} ± {s:.3f}"
            for m, s in zip(result.per_situation, result.per_situation_std, strict=True)
        ]
        table.add_row(
            escape(result.name),
            *cells,
            f"[bold]{result.mean:.4f}[/] ± {result.std:.3f}",
            f"{result.seconds:.1f}",
        )
    return table
