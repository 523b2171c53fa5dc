"""Where results go: default names that identify what made them, the rule that an existing
result is never replaced silently, and a record of what a command wrote.

A command *claims* each path it will write before doing any work: a path that cannot be
written fails then, not after an hour of cross-validation, and a result that exists is only
replaced when the user named the path (``--out``) or passed ``--force``. The claims also let
an interrupted command say truthfully what it wrote (`written_since_claimed`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ltr.errors import OutputError
from ltr.fileio import check_writable

#: Default folder of run files (`ltr predict`, `ltr quickstart`).
SUBMISSIONS_DIR = Path("submissions")
#: Default folder of cross-validation reports (`ltr cv`).
REPORTS_DIR = Path("reports")

_UNSAFE = re.compile(r"[^A-Za-z0-9._+=-]+")


def folder_name(folder: str | Path) -> str:
    """The name a folder is known by, also for ``.`` or ``..`` (whose `Path.name` is empty or
    ``..``): the last part of its absolute path, without following symbolic links."""
    return Path(os.path.abspath(folder)).name or str(folder)


def slug(text: str) -> str:
    """`text` as one safe file-name part: runs of other characters become ``-``."""
    return _UNSAFE.sub("-", text).strip("-.") or "unnamed"


def submission_path(data_name: str, model_name: str, split: str) -> Path:
    """``submissions/<data>-<model>-<split>.json``: two models never share a default name."""
    return SUBMISSIONS_DIR / f"{slug(data_name)}-{slug(model_name)}-{slug(split)}.json"


def cv_report_path(data_name: str, label: str) -> Path:
    """``reports/cv-<data>-<model or compare>.json``."""
    return REPORTS_DIR / f"cv-{slug(data_name)}-{slug(label.removesuffix('.json'))}.json"


@dataclass(frozen=True)
class _Claim:
    path: Path
    before: tuple[int, int] | None  # (inode, mtime_ns) when claimed, None if absent


_claims: list[_Claim] = []
#: What the running command reads (data folders, models, run files, tables, study files): no
#: output may be one of them, a file or folder directly in one (where every data, model and
#: table file lives), or a folder holding one. Subfolders stay usable: ``ltr predict MODEL .``
#: run inside a data folder writes its default ``submissions/``.
_inputs: list[Path] = []


def _real(path: str | Path) -> Path:
    return Path(os.path.realpath(path))


def _check_apart(output: Path, source: Path) -> None:
    """Refuse an output that would replace or change an input of the same command."""
    out, into = _real(output), _real(source)
    if out == into:
        raise OutputError(output, "is also an input of this command; write elsewhere")
    if out.parent == into:
        raise OutputError(output, f"is inside {source}, an input of this command; write elsewhere")
    if out in into.parents:
        raise OutputError(output, f"holds {source}, an input of this command; write elsewhere")


def _state(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_ino, stat.st_mtime_ns)


def claim_output(
    path: str | Path,
    *,
    folder: bool = False,
    replace: bool = True,
    hint: str = "pass --force to replace it",
) -> Path:
    """Check, before any work, that `path` can be written, and record it.

    `replace=False` refuses an existing `path` (a default name that already holds a result):
    the message says it exists and how to go on (`hint`).
    """
    path = Path(path)
    for source in _inputs:
        _check_apart(path, source)
    if any(_real(claim.path) == _real(path) for claim in _claims):
        raise OutputError(path, "is given for two outputs of this command")
    check_writable(path, folder=folder)  # first: a file where a folder goes is no --force case
    if not replace and (path.exists() or path.is_symlink()):
        raise OutputError(path, f"exists; {hint}")
    _claims.append(_Claim(path, _state(path)))
    return path


def use_input(path: str | Path) -> Path:
    """Record a path the command reads, checked against every output claimed before or after
    (a command claims its outputs first, but reads some inputs only later)."""
    path = Path(path)
    for claim in _claims:
        _check_apart(claim.path, path)
    _inputs.append(path)
    return path


def reset_claims() -> None:
    """Forget the claims and inputs of the previous command (the CLI calls this as a command
    starts)."""
    _claims.clear()
    _inputs.clear()


def written_since_claimed() -> list[Path]:
    """Claimed paths that were created or replaced since they were claimed."""
    seen: list[Path] = []
    for entry in _claims:
        now = _state(entry.path)
        if now is not None and now != entry.before and entry.path not in seen:
            seen.append(entry.path)
    return seen


__all__ = [
    "REPORTS_DIR",
    "SUBMISSIONS_DIR",
    "claim_output",
    "cv_report_path",
    "folder_name",
    "reset_claims",
    "slug",
    "submission_path",
    "use_input",
    "written_since_claimed",
]
