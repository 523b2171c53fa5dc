"""What every command shares: clean error reporting and the rich console."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from ltr.data import Dataset, load_dataset
from ltr.errors import LtrError

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., object])


def handle_errors(func: F) -> F:
    """Turn an `LtrError` into a one-line message on stderr and exit code 1 (no traceback)."""

    @functools.wraps(func)
    def wrapper(*args: object, **kwargs: object) -> object:
        try:
            return func(*args, **kwargs)
        except LtrError as error:
            err_console.print(
                f"[bold red]error:[/] {escape(str(error))}",
                markup=True,
                highlight=False,
                soft_wrap=True,
            )
            raise typer.Exit(code=1) from None

    return wrapper  # type: ignore[return-value]


def load_data(folder: Path) -> Dataset:
    """Load a data folder and show its loading warnings (e.g. unrated concepts) on stderr."""
    dataset = load_dataset(folder)
    for warning in dataset.warnings:
        err_console.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
    return dataset
