"""The one place where a command's failure becomes what the user sees.

Every command runs inside `command_boundary` (through `LtrGroup.invoke` of the root group), so
no command handles errors itself:

* `LtrError` (bad input, a result that may not be replaced, ...) -> ``error: ...``, exit 1;
* `OSError` (a file that cannot be read or written) -> ``error: PATH: reason``, exit 1;
* Ctrl-C -> ``interrupted; nothing was written`` (or what was kept), exit 130;
* click's usage errors and `typer.Exit` pass through unchanged;
* anything else is a bug in ltr -> one line with the exception's type and message, exit 1
  (``LTR_DEBUG=1`` shows the traceback instead).

Messages are one line on stderr, without rich markup, with URL passwords removed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import warnings
from collections.abc import Iterator
from typing import Any

import typer
from typer import _click
from typer.core import TyperCommand, TyperGroup

from ltr.cli import common
from ltr.errors import LtrError, LtrWarning
from ltr.outputs import reset_claims, written_since_claimed
from ltr.redact import redact_url

#: Set to 1 to see the traceback of an unexpected error (for developers of ltr).
DEBUG_ENV = "LTR_DEBUG"

_PASS_THROUGH = (
    typer.Exit,
    typer.Abort,
    _click.exceptions.ClickException,
)


def os_error_text(error: OSError) -> str:
    """``PATH: reason`` for an operating-system error, naming both paths of a rename."""
    reason = error.strerror or str(error)
    paths = [p for p in (error.filename, error.filename2) if p is not None]
    if not paths:
        return reason
    return " -> ".join(os.fsdecode(p) for p in paths) + f": {reason}"


def _interrupted_text() -> str:
    kept = written_since_claimed()
    if not kept:
        return "interrupted; nothing was written"
    return "interrupted; written before the interruption: " + ", ".join(map(str, kept))


def _show_python_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    """Library warnings (`warnings.warn`) go through the same once-only, --quiet-aware path;
    ltr's own (`LtrWarning`) are written for the user and need no category name."""
    own = issubclass(category, LtrWarning)
    common.warn(str(message) if own else f"{message} ({category.__name__})")


@contextlib.contextmanager
def command_boundary() -> Iterator[None]:
    """Run one command: turn every failure into one line on stderr and the right exit code."""
    reset_claims()
    common.start_command()
    with warnings.catch_warnings():
        warnings.showwarning = _show_python_warning
        try:
            yield
        except _PASS_THROUGH:
            raise
        except KeyboardInterrupt:
            common.error_line(_interrupted_text(), prefix="")
            raise typer.Exit(130) from None
        except LtrError as error:
            common.error_line(redact_url(str(error)))
            raise typer.Exit(1) from None
        except OSError as error:
            if error.errno == errno.EPIPE:  # output piped into `head`: typer exits quietly
                raise
            common.error_line(redact_url(os_error_text(error)))
            raise typer.Exit(1) from None
        except Exception as error:
            if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
                raise
            common.error_line(
                f"this is a bug in ltr: {type(error).__name__}: {redact_url(str(error))} "
                f"(run again with {DEBUG_ENV}=1 to see the traceback, and please report it)"
            )
            raise typer.Exit(1) from None


def _plain_flags(params: list[Any]) -> list[Any]:
    """Flags take no value, so help shows no type for them (typer would print ``<bool>``)."""
    for param in params:
        if getattr(param, "is_flag", False):
            param.display_type_rich = lambda ctx: None
    return params


class LtrCommand(TyperCommand):
    """A command whose help shows flags without a value type."""

    def get_params(self, ctx: _click.Context) -> list[Any]:
        return _plain_flags(super().get_params(ctx))


class LtrGroup(TyperGroup):
    """A command group; the root group runs every command inside `command_boundary`."""

    def get_params(self, ctx: _click.Context) -> list[Any]:
        return _plain_flags(super().get_params(ctx))

    def invoke(self, ctx: _click.Context) -> Any:
        if ctx.parent is not None:
            return super().invoke(ctx)
        with command_boundary():
            return super().invoke(ctx)


def new_app(**options: Any) -> typer.Typer:
    """A Typer app (or sub-group) whose groups and commands use the classes above."""
    options.setdefault("no_args_is_help", True)
    options.setdefault("add_completion", False)
    options.setdefault("pretty_exceptions_enable", False)
    return typer.Typer(cls=LtrGroup, **options)


def command(app: typer.Typer, name: str, **options: Any) -> Any:
    """`app.command(name)` with `LtrCommand`: every command is registered through here."""
    return app.command(name, cls=LtrCommand, **options)


__all__ = ["DEBUG_ENV", "LtrCommand", "LtrGroup", "command", "command_boundary", "new_app"]
