"""Rich tables shared by the CLI and the library's quick start, made for 80 columns.

A terminal (and a pipe, where rich assumes 80 columns) is often narrow; rich's answer to a
table that does not fit is to cut cells ("xgb-regr…", "0.5…"), which hides exactly what a
table is for. `FittedTable` decides at render time, for the width it gets: first the table
as designed; then without its outer border; then without its secondary columns (least
important first); and only then lets the name column wrap, never cut. Numbers always stay
whole, on one line.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rich.console import Console, ConsoleOptions, RenderableType
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from ltr.situations import DESCRIPTIONS, SITUATIONS

if TYPE_CHECKING:
    import pandas as pd

    from ltr.cv import CVResult
    from ltr.metrics import Scores

#: Width when nothing else is known (rich's own choice for pipes).
WIDTH = 80


@dataclass(frozen=True)
class Column:
    """`drop` ranks secondary columns (1 is dropped first); `name` marks the column that holds
    names (never cut; it wraps only when nothing else is left to drop); `wrap` lets a text
    column wrap at spaces."""

    header: str
    justify: str = "right"
    drop: int | None = None
    name: bool = False
    wrap: bool = False


@dataclass
class FittedTable:
    """A table that fits the width it is rendered at (see the module docstring)."""

    title: str | None = None
    columns: list[Column] = field(default_factory=list)
    rows: list[list[RenderableType]] = field(default_factory=list)
    #: printed under the table when secondary columns were dropped; {width} is the width
    note: str | None = None

    def add_column(self, header: str, **options: Any) -> None:
        self.columns.append(Column(header, **options))

    def add_row(self, *cells: RenderableType) -> None:
        self.rows.append(list(cells))

    def _table(self, keep: Sequence[int], *, edge: bool, fold_names: bool) -> Table:
        table = Table(show_edge=edge)  # the title is a line of its own: never squeezed
        for i in keep:
            column = self.columns[i]
            wraps = column.wrap or (column.name and fold_names)
            table.add_column(
                column.header,
                justify="left" if column.name or column.wrap else column.justify,  # type: ignore[arg-type]
                no_wrap=not wraps,
                overflow="fold" if column.name else "ellipsis",
            )
        for row in self.rows:
            table.add_row(*(row[i] for i in keep))
        return table

    def layouts(self) -> Iterator[tuple[Table, bool]]:
        """Candidate tables from the richest to the narrowest, with 'columns were dropped'."""
        everything = list(range(len(self.columns)))
        yield self._table(everything, edge=True, fold_names=False), False
        yield self._table(everything, edge=False, fold_names=False), False
        ranks = sorted({c.drop for c in self.columns if c.drop is not None})
        keep = everything
        for rank in ranks:
            keep = [i for i in keep if self.columns[i].drop != rank]
            yield self._table(keep, edge=False, fold_names=False), True
        yield self._table(keep, edge=False, fold_names=True), bool(ranks)

    def fitted(self, width: int, console: Console | None = None) -> tuple[Table, bool]:
        """The richest layout whose natural width is at most `width`."""
        console = console or Console(width=width)
        options = console.options.update(max_width=10_000)
        candidate = None
        for candidate in self.layouts():
            if Measurement.get(console, options, candidate[0]).maximum <= width:
                return candidate
        assert candidate is not None  # layouts() yields at least one table
        return candidate  # the narrowest: names wrap, nothing is cut

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Any]:
        table, dropped = self.fitted(options.max_width, console)
        if self.title is not None:
            yield Text(self.title, style="italic")
        yield table
        if dropped and self.note:
            yield Text(self.note.format(width=options.max_width), style="dim")

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        table, _ = self.fitted(options.max_width, console)
        return Measurement.get(console, options, table)


# ------------------------------------------------------------------------------ the tables
def cv_table(results: Iterable[CVResult], title: str) -> FittedTable:
    """Mean Pearson per situation and overall (with its spread across folds) of each model."""
    table = FittedTable(
        title,
        note="(seconds left out to fit {width} columns; the JSON report has every figure)",
    )
    table.add_column("model", name=True)
    for situation in SITUATIONS:
        table.add_column(situation)
    table.add_column("mean")
    table.add_column("sd")
    table.add_column("s", drop=1)
    for result in results:
        table.add_row(
            Text(result.name),
            *(f"{m:.3f}" for m in result.per_situation),
            Text(f"{result.mean:.4f}", style="bold"),
            f"{result.std:.3f}",
            f"{result.seconds:.1f}",
        )
    return table


def versus_table(results: Sequence[CVResult], level: float = 0.95) -> FittedTable:
    """Each model against the first, over the same folds: the mean per-fold difference of the
    mean Pearson with its corrected resampled t-test (interval and two-sided p)."""
    first = results[0]
    pct = f"{level * 100:g}%"
    table = FittedTable(f"vs {first.name} (corrected resampled t-test, {pct} interval)")
    table.add_column("model", name=True)
    table.add_column("difference")
    table.add_column(f"{pct} interval")
    table.add_column("p")
    for result in results[1:]:
        test = result.versus(first, level=level)
        p = "n/a" if test.p_value != test.p_value else f"{test.p_value:.3f}"
        table.add_row(
            Text(result.name), f"{test.mean:+.4f}", f"{test.low:+.4f} .. {test.high:+.4f}", p
        )
    return table


def scores_table(scores: Scores, title: str) -> FittedTable:
    """Pearson (the official score), Spearman and Kendall per situation and their means."""
    table = FittedTable(title)
    table.add_column("statistic", name=True)
    for column in (*SITUATIONS, "mean"):
        table.add_column(column)
    for name, row in scores.table().iterrows():
        label = f"{name} (official)" if name == "pearson" else str(name)
        table.add_row(Text(label), *(f"{value:.4f}" for value in row))
    return table


def grid_table(grid: pd.DataFrame, chosen: float | None, title: str) -> FittedTable:
    """BASE's Pearson at every threshold of the grid; `*` marks the threshold used."""
    table = FittedTable(title)
    table.add_column("threshold")
    for column in (*SITUATIONS, "mean"):
        table.add_column(column)
    table.add_column("empty", drop=1)
    for threshold, row in grid.iterrows():
        marker = " *" if chosen is not None and threshold == chosen else ""
        values = [f"{row[c]:.4f}" if row[c] == row[c] else "n/a" for c in (*SITUATIONS, "mean")]
        table.add_row(f"{threshold:.2f}{marker}", *values, str(int(row["empty_users"])))
    return table


def trials_table(summary: dict[str, Any], top: int) -> FittedTable:
    """The `top` trials of a study by penalised score (`ltr studies show`, `ltr tune`)."""
    k = summary["penalty"]
    table = FittedTable(f"top {top} trials by mean - {k:g} sd (fold spread)")
    table.add_column("trial")
    table.add_column("mean")
    table.add_column("sd")
    table.add_column(f"mean-{k:g}sd")
    for situation in SITUATIONS:
        table.add_column(situation, drop=2)
    table.add_column("s", drop=1)
    for row in summary["top"][:top]:
        table.add_row(
            str(row["number"]),
            f"{row['mean']:.4f}",
            f"{row['std']:.4f}",
            f"{row['penalised']:.4f}",
            *(f"{row['per_situation'][s]:.3f}" for s in SITUATIONS),
            f"{row['seconds']:.1f}",
        )
    return table


def situation_label(code: str) -> str:
    """``bank (bank loan)``."""
    return f"{code} ({DESCRIPTIONS[code]})"


def profile_table(
    scores: Mapping[str, float],
    percentiles: Mapping[str, float],
    situations: Sequence[str],
    title: str,
) -> FittedTable:
    """A profile's score and percentile among its split's users, per situation."""
    table = FittedTable(title)
    table.add_column("situation", name=True)
    table.add_column("score")
    table.add_column("percentile")
    for s in situations:
        table.add_row(Text(situation_label(s)), f"{scores[s]:+.3f}", f"{percentiles[s]:.0f}%")
    return table


def effects_table(frame: pd.DataFrame, situation: str, what: str, top: int) -> FittedTable:
    """The `top` photos (or concepts) that hurt most and help most in `situation`: the score
    they add and the percentile points (pp) they are worth."""
    table = FittedTable(
        f"{what}s that matter most for {situation_label(situation)} (pp: percentile points)",
        note="(detected concepts left out to fit {width} columns; --out writes everything)",
    )
    table.add_column(what, name=True)
    if "concepts" in frame.columns:
        table.add_column("concepts", wrap=True, drop=1)
    rating = f"rating_{situation}"
    if rating in frame.columns:
        table.add_column("rating")
    table.add_column("effect")
    table.add_column("pp")
    ordered = frame.sort_values(situation)
    hurting = ordered[ordered[situation] < 0].head(top)
    helping = ordered[ordered[situation] > 0].iloc[::-1].head(top)
    for label, rows in (("hurts", hurting), ("helps", helping)):
        for name, row in rows.iterrows():
            cells: list[RenderableType] = [Text(f"{name} ({label})")]
            if "concepts" in frame.columns:
                cells.append(Text(str(row["concepts"])))
            if rating in frame.columns:
                cells.append(f"{row[rating]:+.2f}")
            cells += [f"{row[situation]:+.3f}", f"{row[f'{situation}_pct']:+.1f}"]
            table.add_row(*cells)
    return table


def comparison_table(rows: Mapping[str, Sequence[float]], title: str) -> FittedTable:
    """Named rows of four per-situation values and their mean (the quick start's val table)."""
    table = FittedTable(title)
    table.add_column("model", name=True)
    for situation in SITUATIONS:
        table.add_column(situation)
    table.add_column("mean")
    for name, values in rows.items():
        *per_situation, mean = values
        table.add_row(
            Text(name), *(f"{v:.3f}" for v in per_situation), Text(f"{mean:.3f}", style="bold")
        )
    return table


__all__ = [
    "WIDTH",
    "Column",
    "FittedTable",
    "comparison_table",
    "cv_table",
    "effects_table",
    "grid_table",
    "profile_table",
    "scores_table",
    "situation_label",
    "trials_table",
]
