"""What every command shares: the consoles, one-line messages, warnings shown once, loading a
data folder, and the parameters that must look and mean the same in every command.

Only light modules are imported here (typer, rich, the standard library): `ltr --help` must
not pay for pandas, scikit-learn or Optuna. Commands import what they need when they run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from ltr.errors import LtrError
from ltr.redact import redact_url

if TYPE_CHECKING:
    from ltr.data import Dataset

console = Console()
err_console = Console(stderr=True)


class _CommandState:
    """Per command: --quiet, and the warnings already shown (each is shown once)."""

    quiet = False
    shown: set[str] = set()


def start_command() -> None:
    """Forget the previous command's --quiet and warnings (tests run many in one process)."""
    _CommandState.quiet = False
    _CommandState.shown = set()


def set_quiet(quiet: bool) -> None:
    _CommandState.quiet = quiet


def warn(message: str, *, report: bool = False) -> None:
    """``warning: ...`` once per command, unless --quiet: on stderr, or on stdout when it is
    part of the command's `report` (`ltr data check` reports what a folder holds)."""
    message = redact_url(message)
    if _CommandState.quiet or message in _CommandState.shown:
        return
    _CommandState.shown.add(message)
    (console if report else err_console).print(
        f"[yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True
    )


def error_line(message: str, *, prefix: str = "error: ") -> None:
    """One line on stderr; `soft_wrap` keeps long paths on that line."""
    label = f"[bold red]{escape(prefix.strip())}[/] " if prefix else ""
    err_console.print(f"{label}{escape(message)}", highlight=False, soft_wrap=True)


def say(text: str) -> None:
    """Plain text on stdout: no rich markup (paths may hold brackets), no wrapping."""
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def note(text: str) -> None:
    """A remark about the figures just shown (stdout, dim)."""
    console.print(text, markup=False, highlight=False, soft_wrap=True, style="dim")


#: The folder in which a bare data-set name (``ltr cv aware2023``) is looked up.
DATA_ENV = "LTR_DATA"
#: The largest seed an option takes: every library seeds from 32 bits, and a study's rescoring
#: adds an offset to its seed.
MAX_SEED = 2**31 - 1
#: The most repeats of K-fold an option takes (each repeat is K more fits).
MAX_REPEATS = 100


def resolve_data_dir(folder: Path) -> Path:
    """The data folder that a command's data argument names.

    A path that exists is used as given. A bare name (one path component, such as
    ``aware2023``) that is not a folder here is looked up in ``$LTR_DATA``, so that
    ``export LTR_DATA=~/ltr-data`` lets every command say ``aware2023`` for
    ``~/ltr-data/aware2023``. Anything else is returned unchanged (the loader then says what
    is missing).

    Args:
        folder: The path or name given on the command line.

    Returns:
        The folder to load.

    Raises:
        DataError: `folder` is a bare name that is not a folder here while ``$LTR_DATA`` is
            not set (the message says where bare names are looked up).
    """
    if folder.exists() or len(folder.parts) != 1 or folder.name in ("", ".", ".."):
        return folder
    parent = os.environ.get(DATA_ENV, "")
    if not parent:
        from ltr.errors import DataError

        raise DataError(
            folder,
            f"folder not found (a bare data-set name is looked up in ${DATA_ENV}, which is not "
            "set: export it, or give the folder's path)",
        )
    return Path(parent).expanduser() / folder


def load_data(folder: Path, *, strict_ratings: bool = False, report: bool = False) -> Dataset:
    """Load a data folder; its loading warnings (e.g. unrated concepts) go through `warn`
    (`report`: on stdout, after the caller's report, see `show_warnings`).

    `folder` may be a bare data-set name under ``$LTR_DATA`` (see `resolve_data_dir`)."""
    from ltr.data import load_dataset
    from ltr.outputs import use_input

    path = use_input(resolve_data_dir(folder))
    dataset = load_dataset(path, strict_ratings=strict_ratings)
    if not report:
        show_warnings(dataset)
    return dataset


def show_warnings(dataset: Dataset, *, report: bool = False) -> None:
    """The loader's warnings of `dataset`, each once per command."""
    for message in dataset.warnings:
        warn(message, report=report)


def use_storage_input(storage: str | None) -> None:
    """Record a SQLite study file as an input (an export or report must not replace it)."""
    from ltr.outputs import use_input
    from ltr.tuning.storage import storage_url

    url = storage_url(storage)
    if url.lower().startswith("sqlite:///"):
        use_input(Path(url[len("sqlite:///") :]))


def split_values(values: list[str] | None, option: str) -> list[str] | None:
    """The values of a several-value option given as a comma list, repeated, or both:
    ``--models a,b --models c`` = a, b, c."""
    if values is None:
        return None
    parts = [part.strip() for value in values for part in value.split(",")]
    parts = [part for part in parts if part]
    if not parts:
        raise LtrError(f"{option}: no value given")
    return parts


# -------------------------------------------------------------------------- shared parameters
# One definition per meaning, so the same option has the same name, short name and metavar in
# every command (tests/test_cli_help.py walks the app and checks it).
DataDir = Annotated[
    Path,
    typer.Argument(
        metavar="DATA_DIR",
        help="Data folder (challenge or research layout, detected automatically), or the name "
        f"of one in ${DATA_ENV}.",
        show_default=False,
    ),
]
ModelDir = Annotated[
    Path,
    typer.Argument(
        metavar="MODEL_DIR", help="A model folder from `ltr train`.", show_default=False
    ),
]
RunFile = Annotated[
    Path,
    typer.Argument(metavar="RUN_FILE", help="Run file (.json or .csv).", show_default=False),
]
DataOption = Annotated[
    Path,
    typer.Option(
        "--data",
        "-d",
        metavar="DATA_DIR",
        help=f"Data folder holding the split's labels (either layout), or the name of one in "
        f"${DATA_ENV}.",
        show_default=False,
    ),
]
Threads = Annotated[int, typer.Option("--threads", min=1, help="Threads per learner.")]
Force = Annotated[
    bool,
    typer.Option("--force", help="Replace a result that already exists under the default name."),
]
VALUES = "comma list or repeated"


def split_option(help: str) -> object:
    """``--split/-s``: the split a command works on."""
    return typer.Option("--split", "-s", help=help, show_default=True)


def out_option(help: str) -> object:
    """``--out/-o``: where a command writes its result."""
    return typer.Option("--out", "-o", help=help, show_default=False)


__all__ = [
    "MAX_REPEATS",
    "MAX_SEED",
    "DATA_ENV",
    "VALUES",
    "DataDir",
    "DataOption",
    "Force",
    "ModelDir",
    "RunFile",
    "Threads",
    "console",
    "err_console",
    "error_line",
    "load_data",
    "note",
    "out_option",
    "resolve_data_dir",
    "say",
    "use_storage_input",
    "set_quiet",
    "show_warnings",
    "split_option",
    "split_values",
    "start_command",
    "warn",
]
