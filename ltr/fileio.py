"""Atomic file writes: a reader never sees a half-written file, and a failure leaves nothing."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from ltr.errors import DataError


def read_text(
    path: str | Path, error: type[DataError] = DataError, *, keep_newlines: bool = False
) -> str:
    """A UTF-8 text file (a byte-order mark is accepted); unreadable = `error` naming the file.

    `keep_newlines` leaves line breaks as written (CSV fields may hold a lone carriage return).
    """
    path = Path(path)
    try:
        with open(path, encoding="utf-8-sig", newline="" if keep_newlines else None) as handle:
            return handle.read()
    except FileNotFoundError:
        raise error(path, "file not found") from None
    except IsADirectoryError:
        raise error(path, "is a folder, expected a file") from None
    except UnicodeDecodeError as exc:
        raise error(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise error(path, f"cannot read file ({exc.strerror})") from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def public_mode(path: Path, *, directory: bool = False) -> None:
    """Give a temporary file (0600) or folder (0700) the mode a plain `open`/`mkdir` would."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; move it over `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    public_mode(tmp_path)  # mkstemp makes it private; the result is an ordinary file
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_atomic(path: str | Path, write: Callable[[IO[str]], Any]) -> Path:
    """Call `write(handle)` on a temporary text file, then rename it to `path`."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as handle:
        write(handle)
        handle.flush()
        os.fsync(handle.fileno())
    return Path(path)


def write_text_atomic(path: str | Path, text: str) -> Path:
    return write_atomic(path, lambda handle: handle.write(text))


def write_json_atomic(path: str | Path, obj: Any, *, indent: int | None = 2) -> Path:
    return write_atomic(path, lambda handle: json.dump(obj, handle, indent=indent, allow_nan=False))
