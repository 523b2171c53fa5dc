"""The `ltr` application: one module per area of the toolkit, one error boundary for all.

Importing this module stays light (typer, rich): commands import the heavy libraries (pandas,
scikit-learn, LightGBM, XGBoost, Optuna) when they run, so `ltr --help` starts at once.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ltr import __version__
from ltr.cli import (
    common,
    data_commands,
    evaluation_commands,
    explain_commands,
    feature_commands,
    model_commands,
    study_commands,
)
from ltr.cli.boundary import DEBUG_ENV, new_app

app = new_app(
    name="ltr",
    help="Learning-to-rank for photo profiles in the ImageCLEFaware situations "
    "(acc, bank, it, wait).\n\n"
    "Errors are one line on stderr with exit code 1 (130 after Ctrl-C); "
    f"{DEBUG_ENV}=1 shows the traceback of an unexpected one.",
)

for module in (
    data_commands,
    feature_commands,
    evaluation_commands,
    model_commands,
    explain_commands,
    study_commands,
):
    module.register(app)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ltr {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    quiet: Annotated[
        bool,
        typer.Option("--quiet", "-q", help="Do not print warnings (errors are still printed)."),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Learning-to-rank for photo profiles in the ImageCLEFaware situations."""
    common.set_quiet(quiet)
