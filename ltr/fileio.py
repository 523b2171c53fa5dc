"""Atomic file writes: a reader never sees a half-written file, and a failure leaves nothing.

Every failure to write is an `OutputError` naming the path the user asked for and the
operating system's reason (not the temporary file's name), so the CLI shows one clear line.
"""

from __future__ import annotations

import codecs
import contextlib
import ctypes
import errno
import json
import os
import secrets
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from ltr.errors import DataError, LtrWarning, OutputError


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
        raise error(
            path, f"not UTF-8 text ({exc.reason} at byte {exc.start:,})", line=_line_of(path, exc)
        ) from None
    except OSError as exc:
        raise error(path, f"cannot read file ({exc.strerror})") from None


def _line_of(path: Path, exc: UnicodeDecodeError) -> int | None:
    """The line of the byte that does not decode (the whole file is decoded at once, so the
    offset is the file's), or None if the file cannot be read again."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    bom = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    return data.count(b"\n", 0, bom + exc.start) + 1


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def public_mode(path: Path, *, directory: bool = False) -> None:
    """Give a temporary file (0600) or folder (0700) the mode a plain `open`/`mkdir` would."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


def os_reason(error: OSError) -> str:
    """The operating system's words for `error` (e.g. ``Permission denied``)."""
    return error.strerror or str(error)


def _existing_ancestor(path: Path) -> Path:
    """The nearest folder (or file) on the way up from `path` that exists."""
    ancestor = path.parent
    while not (ancestor.exists() or ancestor.is_symlink()) and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    return ancestor


def check_writable(path: str | Path, *, folder: bool = False) -> Path:
    """Refuse, before any work is done, a `path` that cannot be written: it is a folder (or,
    with `folder`, a file), it sits under a file, or its folder does not take new files
    (permissions, a read-only or virtual file system such as /proc).

    Probing with a real temporary file is the only test that also holds for root, for
    read-only mounts and for /proc, where permission bits say nothing. Nothing is left behind.
    """
    path = Path(path)
    if folder and path.exists() and not path.is_dir():
        raise OutputError(path, "exists and is a file, not a folder")
    if not folder and path.is_dir():
        raise OutputError(path, "is a folder; give a file name")
    places = [_existing_ancestor(path)]
    if folder and path.is_dir():
        places.append(path)  # files are written inside it
    for place in places:
        if not place.is_dir():
            raise OutputError(path, f"cannot write under {place}: it is a file, not a folder")
        try:
            fd, probe = tempfile.mkstemp(prefix=".ltr-probe-", dir=place)
        except OSError as error:
            raise OutputError(path, f"cannot write in {place} ({os_reason(error)})") from None
        os.close(fd)
        os.unlink(probe)
    return path


def _make_parents(path: Path) -> list[Path]:
    """Create the missing folders above `path`; returns them, deepest first."""
    missing = []
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        missing.append(parent)
        parent = parent.parent
    path.parent.mkdir(parents=True, exist_ok=True)
    return missing


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; move it over `path` only if the block succeeds.

    Any operating-system failure (the path is a folder or sits under a file, no permission,
    disk full) becomes an `OutputError` naming `path`; the temporary file and any folder
    created for it are removed.
    """
    path = Path(path)
    created: list[Path] = []
    tmp_path: Path | None = None
    try:
        if path.is_dir():
            raise OutputError(path, "is a folder; give a file name")
        created = _make_parents(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        public_mode(tmp_path)  # mkstemp makes it private; the result is an ordinary file
        yield tmp_path
        os.replace(tmp_path, path)
        created = []
    except OSError as error:
        raise OutputError(path, f"cannot write ({os_reason(error)})") from None
    finally:
        if tmp_path is not None:
            tmp_path.unlink(missing_ok=True)
        _remove_empty(created)


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


# ------------------------------------------------------------------------ whole folders
#: Temporary siblings of a folder being written: ``.NAME.ltr-tmp-PID-RANDOM``.
_TMP_MARK = ".ltr-tmp-"


@contextlib.contextmanager
def atomic_directory(directory: str | Path) -> Iterator[Path]:
    """Yield an empty temporary sibling of `directory`; if the block succeeds, it takes the
    place of `directory` in one atomic exchange (an existing folder there is removed).

    A reader sees the old folder or the new one, whole, never a mix; a failure leaves the old
    one as it was and no temporary folder (a crash leaves one that the next write removes).
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(directory)
    tmp = directory.parent / f".{directory.name}{_TMP_MARK}{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()
    public_mode(tmp, directory=True)
    try:
        yield tmp
        _swap_into_place(tmp, directory)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # the new folder if it failed, else the old one


def _rename_exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one atomic step (Linux renameat2 with RENAME_EXCHANGE).

    False where the system cannot (other OS, old kernel, file system without support).
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    renameat2.argtypes += [ctypes.c_uint]
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _swap_into_place(new: Path, directory: Path) -> None:
    """Put the finished directory `new` at `directory`; afterwards `new` holds the old one.

    With an existing folder the two are exchanged atomically, so a reader always finds a
    whole one. Where that is impossible the old one is moved aside first (a short window
    without it; a crash there leaves a leftover that the next write removes).
    """
    if not directory.exists():
        os.replace(new, directory)
        return
    if _rename_exchange(new, directory):
        return
    aside = new.with_name(new.name + "-old")
    os.replace(directory, aside)
    try:
        os.replace(new, directory)
    except OSError:
        os.replace(aside, directory)  # put the previous folder back
        raise
    os.replace(aside, new)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine (one we may not signal counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_leftovers(directory: Path) -> list[Path]:
    """Remove temporary siblings of `directory` left by a write that crashed (its process is
    gone); warn about each one. Writes running in other processes are left alone."""
    removed = []
    prefix = f".{directory.name}{_TMP_MARK}"
    with contextlib.suppress(OSError):
        for path in directory.parent.iterdir():
            if not path.name.startswith(prefix):
                continue
            pid_text = path.name[len(prefix) :].split("-", 1)[0]
            if pid_text.isdigit() and pid_alive(int(pid_text)):
                continue
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
            warnings.warn(
                f"{path}: removed what an interrupted write of {directory} left behind",
                LtrWarning,
                stacklevel=2,
            )
    return removed
