"""What every command shares: clean error reporting and the rich console."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

import typer
from rich.console import Console
from rich.markup import escape

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
