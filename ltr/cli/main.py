"""Entry point of the `ltr` command.

Only the standard library is imported before `main` runs, so even a Ctrl-C while the
application loads ends with one line and exit code 130. `app` is importable from here too
(``from ltr.cli.main import app``), built on first use.
"""

from __future__ import annotations

import sys
from typing import Any


def _never_fail_on_encoding() -> None:
    """A terminal or pipe that cannot show a character (``PYTHONIOENCODING=ascii``, a C
    locale) gets an escape (``\\u00e9``) instead of an encoding error in the middle of a
    result: concept names, users and paths may hold any Unicode text."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")


def main() -> None:
    """Run `ltr` with the command line's arguments."""
    _never_fail_on_encoding()
    if sys.argv[1:] == ["--version"]:  # answered without loading typer and rich
        from ltr import __version__

        print(f"ltr {__version__}")
        return
    try:
        from ltr.cli.app import app
    except KeyboardInterrupt:
        sys.stderr.write("interrupted; nothing was written\n")
        raise SystemExit(130) from None
    app(prog_name="ltr")


def __getattr__(name: str) -> Any:
    if name == "app":
        from ltr.cli.app import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
