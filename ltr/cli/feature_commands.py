"""`ltr features`: the feature matrix of one split, written as parquet or CSV.

Thin layer over ltr.features.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ltr.cli.boundary import command
from ltr.cli.common import VALUES, DataDir, load_data, out_option, say, split_option, split_values
from ltr.cli.vocabulary import FEATURE_FAMILIES
from ltr.errors import LtrError


def _thresholds(values: list[str] | None) -> tuple[float, ...] | None:
    parts = split_values(values, "--thresholds")
    if parts is None:
        return None
    try:
        return tuple(float(t) for t in parts)
    except ValueError:
        raise LtrError(
            f"--thresholds: expected numbers ({VALUES}), got {','.join(parts)!r}"
        ) from None


def features(
    data: DataDir,
    split: Annotated[str, split_option("Split to featurise, e.g. train.")],
    out: Annotated[Path, out_option("Output file: .parquet (or .pq) or .csv.")],
    families: Annotated[
        list[str] | None,
        typer.Option(
            "--families",
            "-f",
            metavar="NAMES",
            help=f"Feature families ({VALUES}; default: all): {', '.join(FEATURE_FAMILIES)}.",
            show_default=False,
        ),
    ] = None,
    thresholds: Annotated[
        list[str] | None,
        typer.Option(
            "--thresholds",
            metavar="NUMBERS",
            help=f"Confidence thresholds of the BASE family ({VALUES}; default 0 and 0.4).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Compute the feature matrix of one split (one row per user) and write it."""
    from ltr.features import FeatureConfig, featurize
    from ltr.features.config import parse_families
    from ltr.features.io import feature_format, write_features
    from ltr.outputs import claim_output

    feature_format(out)  # an unknown extension fails before any work
    chosen = split_values(families, "--families")
    config_args: dict[str, object] = {
        "families": parse_families(None if chosen is None else ",".join(chosen))
    }
    parsed = _thresholds(thresholds)
    if parsed is not None:
        config_args["thresholds"] = parsed
    config = FeatureConfig(**config_args)  # type: ignore[arg-type]
    claim_output(out)
    dataset = load_data(data)
    matrix = featurize(dataset, split, config)
    if matrix.shape[1] == 0:
        raise LtrError(
            f"{dataset.name}: no features to write (families {', '.join(config.families or ())} "
            "do not apply to this data set)"
        )
    write_features(matrix, out)
    say(
        f"wrote {matrix.shape[0]} users x {matrix.shape[1]} features "
        f"({', '.join(matrix.families)}) to {out}"
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to `app`."""
    command(app, "features")(features)
