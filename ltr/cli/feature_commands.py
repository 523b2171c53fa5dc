"""`ltr features`: the feature matrix of one split, written as parquet or CSV.

Thin layer over ltr.features.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ltr.cli.common import console, handle_errors, load_data
from ltr.errors import LtrError
from ltr.features import FAMILIES, FeatureConfig, featurize
from ltr.features.config import parse_families
from ltr.features.io import feature_format, write_features


def _thresholds(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise LtrError(
            f"--thresholds: expected numbers separated by commas, got {text!r}"
        ) from None


@handle_errors
def features(
    data: Annotated[
        Path, typer.Argument(metavar="DIR", help="Data folder (challenge or research layout).")
    ],
    split: Annotated[str, typer.Option("--split", "-s", help="Split to featurise, e.g. train.")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output file: .parquet (or .pq) or .csv.")
    ],
    families: Annotated[
        str | None,
        typer.Option(
            "--families",
            "-f",
            help=f"Comma-separated families (default: all): {', '.join(FAMILIES)}.",
        ),
    ] = None,
    thresholds: Annotated[
        str | None,
        typer.Option(help="Comma-separated confidence thresholds of the BASE family."),
    ] = None,
) -> None:
    """Compute the feature matrix of one split (one row per user) and write it."""
    feature_format(out)  # an unknown extension fails before any work
    config_args: dict[str, object] = {"families": parse_families(families)}
    parsed = _thresholds(thresholds)
    if parsed is not None:
        config_args["thresholds"] = parsed
    config = FeatureConfig(**config_args)  # type: ignore[arg-type]
    dataset = load_data(data)
    matrix = featurize(dataset, split, config)
    if matrix.shape[1] == 0:
        raise LtrError(
            f"{dataset.name}: no features to write (families {', '.join(config.families or ())} "
            "do not apply to this data set)"
        )
    write_features(matrix, out)
    console.print(
        f"wrote {matrix.shape[0]} users x {matrix.shape[1]} features "
        f"({', '.join(matrix.families)}) to {out}",
        highlight=False,
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""
    app.command("features")(features)
