"""Assemble the `ltr` application from one module per area of the toolkit."""

from __future__ import annotations

import typer

from ltr import __version__
from ltr.cli import (
    dashboard_commands,
    data_commands,
    evaluation_commands,
    explain_commands,
    feature_commands,
    model_commands,
    study_commands,
)

app = typer.Typer(
    name="ltr",
    help="Learning-to-rank for photo profiles in the ImageCLEFaware situations "
    "(acc, bank, it, wait).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

for module in (
    data_commands,
    feature_commands,
    evaluation_commands,
    model_commands,
    explain_commands,
    study_commands,
    dashboard_commands,  # adds `ltr studies dashboard`: after study_commands
):
    module.register(app)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ltr {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Learning-to-rank for photo profiles in the ImageCLEFaware situations."""


def main() -> None:
    app()
