"""Reading JSON files with errors that point at the file, line and column."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ltr.errors import DataError


def read_json(path: str | Path, *, error: type[DataError] = DataError) -> Any:
    """Parse `path` as JSON; a syntax error names the file, line, column and the problem.

    NaN/Infinity literals are rejected too: they are not JSON and no scorer accepts them.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(path, "file not found") from None
    except UnicodeDecodeError as exc:
        raise error(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise error(path, f"cannot read file ({exc.strerror})") from None

    def reject_constant(name: str) -> Any:
        raise ValueError(f"{name} is not a valid JSON number")

    try:
        return json.loads(text, parse_constant=reject_constant)
    except json.JSONDecodeError as exc:
        raise error(path, f"invalid JSON: {exc.msg}", line=exc.lineno, column=exc.colno) from None
    except ValueError as exc:
        raise error(path, f"invalid JSON: {exc}") from None
