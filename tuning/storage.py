"""Where studies live: storage URLs, the RDB storage with Optuna's heartbeat, and trials whose
worker died.

Any SQLAlchemy URL Optuna accepts works: the default is a SQLite file in the working folder
(`DEFAULT_STORAGE`, or ``$LTR_STORAGE``); ``postgresql://user:pw@host/db`` or
``mysql+pymysql://...`` let workers on several machines share one study (install the driver).
A bare path is taken as a SQLite file.

A worker killed with kill -9 leaves its trial RUNNING in the storage. Every trial records its
worker (host, pid, process start time), so the next run on the same machine marks the trial
failed at once when that process is gone (`fail_orphaned_trials`); Optuna's heartbeat fails it
after `GRACE_SECONDS` otherwise (a worker on another machine).
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from ltr.errors import StudyError
from ltr.redact import redact_url
from ltr.tuning.objective import process_start

__all__ = [
    "DEFAULT_STORAGE",
    "STORAGE_ENV",
    "fail_orphaned_trials",
    "lock_path",
    "open_storage",
    "redact_url",
    "setup_lock",
    "storage_url",
    "worker_alive",
]

DEFAULT_STORAGE = "sqlite:///ltr-studies.db"
STORAGE_ENV = "LTR_STORAGE"
#: Optuna heartbeat: running trials write a heartbeat this often (seconds) ...
HEARTBEAT_SECONDS = 30
#: ... and a trial without one for this long is failed by the next worker that starts a trial.
GRACE_SECONDS = 120

_HELD: dict[str, int] = {}  # SQLite files whose setup lock this process holds


# --------------------------------------------------------------------------------- storage
def storage_url(storage: str | Path | None = None) -> str:
    """The storage URL: `storage`, else ``$LTR_STORAGE``, else `DEFAULT_STORAGE`.
    A value without ``://`` is a SQLite file path."""
    value = str(storage) if storage is not None else os.environ.get(STORAGE_ENV) or DEFAULT_STORAGE
    if "://" not in value:
        value = f"sqlite:///{Path(value).expanduser()}"
    return value


def _sqlite_path(url: str) -> Path | None:
    if not url.startswith("sqlite:///"):
        return None
    path = url.removeprefix("sqlite:///").split("?", 1)[0]
    return None if path in ("", ":memory:") else Path(path)


def open_storage(url: str, *, must_exist: bool = False) -> optuna.storages.RDBStorage:
    """An Optuna RDB storage with the heartbeat on; `must_exist` refuses to create a file."""
    path = _sqlite_path(url)
    if must_exist and path is not None and not path.is_file():
        raise StudyError(
            f"no study storage at {redact_url(url)} ({path} does not exist); "
            "run `ltr tune` first or pass --storage"
        )
    engine_kwargs: dict[str, Any] = {}
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Concurrent workers wait for SQLite's write lock instead of failing after 5 s.
        engine_kwargs["connect_args"] = {"timeout": 120}
    # Opening creates the tables of a new database: not while another process does it.
    with setup_lock(url), warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            return optuna.storages.RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=HEARTBEAT_SECONDS,
                grace_period=GRACE_SECONDS,
            )
        except ImportError as error:
            raise StudyError(
                f"cannot open {redact_url(url)}: the database driver is missing ({error}); "
                "e.g. pip install psycopg2-binary (PostgreSQL) or pymysql (MySQL)"
            ) from None
        except Exception as error:  # SQLAlchemy errors: bad URL, server down, not a database
            raise StudyError(redact_url(f"cannot open study storage {url}: {error}")) from None


def lock_path(database: Path) -> Path:
    """The setup lock of a SQLite study database: a hidden file next to it.

    Next to the database, not in the shared temporary folder: whoever may write the database
    may write there, nobody else can plant a file or a symlink under a predictable name, and
    the lock of one database never blocks another's.
    """
    return database.with_name(f".{database.name}.lock")


def _open_lock(path: Path) -> int:
    """A descriptor of the lock file, created if missing, never through a symlink."""
    flags = os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        return os.open(path, os.O_RDWR | flags, 0o644)
    except PermissionError:
        pass  # left by another user: flock also works on a read-only descriptor
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise StudyError(f"{path}: the study lock is a symbolic link; remove it") from None
        raise
    try:
        return os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except OSError as error:
        owner = path.lstat().st_uid if path.exists() else "unknown"
        raise StudyError(
            f"{path}: cannot open the study lock (it belongs to user id {owner}: "
            f"{error.strerror}); remove it if no `ltr tune` is running on this study"
        ) from None


@contextlib.contextmanager
def setup_lock(url: str) -> Iterator[None]:
    """Serialise study creation between processes on one machine (SQLite files only).

    Two workers started together on a new SQLite file would otherwise race to create the
    tables and the study attributes. Server databases handle this themselves. Re-entrant
    within a process (an flock taken twice by one process would wait for itself). The lock
    file is removed on release; a process that locked a file another one had just removed
    notices (the path no longer names its file) and locks the new one instead.
    """
    path = _sqlite_path(url)
    key = None if path is None else str(path.resolve())
    if path is None or key is None or _HELD.get(key):
        yield
        return
    try:
        import fcntl
    except ImportError:  # Windows: no flock; start the first worker alone there
        yield
        return
    lock = lock_path(Path(key))
    lock.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = _open_lock(lock)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            current = os.stat(lock, follow_symlinks=False)
        except FileNotFoundError:
            current = None
        mine = os.fstat(fd)
        if current is not None and (current.st_dev, current.st_ino) == (mine.st_dev, mine.st_ino):
            break
        os.close(fd)  # the holder before us removed this file: lock the current one
    _HELD[key] = 1
    try:
        yield
    finally:
        del _HELD[key]
        with contextlib.suppress(OSError):
            os.unlink(lock)  # while still holding it: nobody can lock the old file after this
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


# ------------------------------------------------------------------- orphaned trials
def worker_alive(worker: dict[str, Any]) -> bool:
    """Whether the process that ran a trial still runs (only decidable on its own host)."""
    pid = int(worker.get("pid", -1))
    if pid <= 0:
        return False
    if worker.get("start") is not None:
        start = process_start(pid)
        if start is None or start != worker["start"]:
            return False
        with contextlib.suppress(OSError):
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            return state != "Z"  # a zombie is dead, only not yet reaped
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fail_orphaned_trials(study: optuna.Study) -> list[int]:
    """Mark failed the RUNNING trials whose worker process on this host is gone (kill -9,
    power cut); returns their numbers. Trials of other hosts are left to the heartbeat."""
    host = socket.gethostname()
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = trial.user_attrs.get("worker")
        if not worker or worker.get("host") != host or worker_alive(worker):
            continue
        try:
            study._storage.set_trial_user_attr(
                trial._trial_id, "error", f"worker process {worker['pid']} died during the trial"
            )
            study.tell(trial.number, state=TrialState.FAIL)
            failed.append(trial.number)
        except (optuna.exceptions.UpdateFinishedTrialError, ValueError, RuntimeError):
            pass  # another worker got there first
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    return failed
