"""Errors a user can act on: they name the file, the record and the problem.

The CLI prints these without a traceback and exits non-zero; anything else is a bug.
"""

from __future__ import annotations

from pathlib import Path


class LtrError(Exception):
    """Base class for every error caused by the user's input or environment."""


class DataError(LtrError):
    """A data file is missing, malformed or inconsistent.

    `record` locates the offending entry inside the file (e.g. ``user 'u1', image 'i3',
    detection 2``); `line`/`column` are given for syntax errors.
    """

    def __init__(
        self,
        file: str | Path | None,
        problem: str,
        *,
        record: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.file = None if file is None else Path(file)
        self.problem = problem
        self.record = record
        self.line = line
        self.column = column
        super().__init__(str(self))

    def __str__(self) -> str:
        where = "" if self.file is None else str(self.file)
        if self.line is not None:
            where += f":{self.line}" + (f":{self.column}" if self.column is not None else "")
        parts = [p for p in (where, self.record) if p]
        return ": ".join([*parts, self.problem])


#: How many characters of a user's value a message quotes before shortening it.
QUOTE_LIMIT = 40


def quoted(value: object, limit: int = QUOTE_LIMIT) -> str:
    """`value` as a message quotes it: its repr, or for a long one (a corrupt file's
    5,000-digit number, a whole line of garbage) the first `limit` characters and the length,
    so that an error stays one readable line.

    Example:
        >>> quoted("0.5")
        "'0.5'"
        >>> quoted("9" * 5000, limit=5)
        "'99999'… (5,000 characters)"
        >>> quoted(10**400, limit=5)
        '10000… (401 digits)'
    """
    if isinstance(value, str):
        if len(value) <= limit:
            return repr(value)
        return f"{value[:limit]!r}… ({len(value):,} characters)"
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            text = repr(value)
        except ValueError:  # more digits than str() converts (sys.get_int_max_str_digits)
            return f"an integer of about {int(value.bit_length() * 0.30103):,} digits"
        if len(text) <= limit:
            return text
        return f"{text[:limit]}… ({len(text.lstrip('-')):,} digits)"
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text):,} characters)"


class RunFileError(DataError):
    """A run (submission) file does not follow the challenge's format."""


class ModelError(LtrError):
    """A saved model cannot be used (missing files, version, schema or data mismatch)."""


class StudyError(LtrError):
    """An Optuna study cannot be created, resumed or read as asked."""


class LtrWarning(UserWarning):
    """Something the user should know that does not stop the work (e.g. ignored concepts).

    Issued with `warnings.warn`; the CLI shows each distinct one once, `--quiet` hides them.
    """


class OutputError(LtrError):
    """A result cannot be written where the user asked: the path is a folder, sits under a
    file, is not writable, or already holds a result that must not be replaced silently."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def install_hint(extra: str) -> str:
    """How to install an optional extra, for messages: ltr is installed from its folder (a
    clone), not from a package index, so ``pip install 'ltr[extra]'`` would look for the
    wrong package.

    Example:
        >>> install_hint("dask")
        "pip install -e '.[dask]' in ltr's folder"
    """
    return f"pip install -e '.[{extra}]' in ltr's folder"
