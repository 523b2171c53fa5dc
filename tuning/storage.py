"""Where studies live: storage URLs, the RDB storage with Optuna's heartbeat, and trials whose
worker died.

Any SQLAlchemy URL Optuna accepts works: the default is a SQLite file in the working folder
(`DEFAULT_STORAGE`, or ``$LTR_STORAGE``); ``postgresql://user:pw@host/db`` (``pip install -e
'.[postgres]'``: psycopg 3; plain ``postgresql://`` is mapped to the installed driver) or
``mysql+pymysql://...`` let workers on several machines share one study. A bare path is taken
as a SQLite file. URLs are shown with their password replaced by ``***`` (`redact_url`).

Creating the tables and a new study is serialised between processes: a file lock next to a
SQLite database, a lock held by the database server itself for PostgreSQL and MySQL (workers
on other machines share no file system, process ids or host name with us).

A worker killed with kill -9 leaves its trial RUNNING in the storage. Every trial records its
worker (host, boot id, pid, process start time), so the next run on the same machine marks the
trial failed at once when that process is gone (`fail_orphaned_trials`); Optuna's heartbeat
fails it after `GRACE_SECONDS` otherwise (a worker on another machine). Either way the trial is
queued again with the same parameters (at most `MAX_RETRY` times), so a run of N trials still
ends with N finished ones.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import importlib.util
import inspect
import os
import socket
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from ltr.errors import StudyError, install_hint
from ltr.fileio import pid_alive
from ltr.redact import REDACTED, redact_url, url_password
from ltr.tuning.objective import boot_id, process_start

DEFAULT_STORAGE = "sqlite:///ltr-studies.db"
STORAGE_ENV = "LTR_STORAGE"
#: Optuna heartbeat: running trials write a heartbeat this often (seconds) ...
HEARTBEAT_SECONDS = 30
#: ... and a trial without one for this long is failed by the next worker that starts a trial.
GRACE_SECONDS = 120
#: Environment variables that change the two (tests use seconds, not minutes).
HEARTBEAT_ENV, GRACE_ENV = "LTR_HEARTBEAT_SECONDS", "LTR_HEARTBEAT_GRACE_SECONDS"
#: A trial whose worker died is queued again at most this many times (a configuration that
#: kills its worker, e.g. out of memory, must not loop forever).
MAX_RETRY = 2
#: Key of the server-side setup lock (PostgreSQL advisory lock; MySQL named lock).
_SERVER_LOCK_KEY = zlib.crc32(b"ltr.tuning study setup")
_SERVER_LOCK_NAME = "ltr.tuning.setup"
_SERVER_LOCK_TIMEOUT = 300  # seconds a MySQL worker waits for the lock

_HELD: dict[str, int] = {}  # SQLite files whose setup lock this process holds


# --------------------------------------------------------------------------------- storage
def storage_url(storage: str | Path | None = None) -> str:
    """The storage URL: `storage`, else ``$LTR_STORAGE``, else `DEFAULT_STORAGE`.
    A value without ``://`` is a SQLite file path."""
    value = str(storage) if storage is not None else os.environ.get(STORAGE_ENV) or DEFAULT_STORAGE
    if "://" not in value:
        value = f"sqlite:///{Path(value).expanduser()}"
    return value


def _hide_password(text: str, url: str) -> str:
    """`text` (e.g. a driver's error) with URL passwords redacted, and the URL's password too
    wherever the driver repeats it on its own."""
    text = redact_url(text)
    password = url_password(url)
    return text.replace(password, REDACTED) if password else text


def _dialect(url: str) -> str:
    """``sqlite``, ``postgresql``, ``mysql``, ... (the part of the scheme before ``+``)."""
    scheme = url.split("://", 1)[0].lower()
    name = scheme.split("+", 1)[0]
    return "postgresql" if name == "postgres" else name


def sqlalchemy_url(url: str) -> str:
    """The URL handed to SQLAlchemy: a plain ``postgresql://`` (or ``postgres://``) URL names the
    installed driver, psycopg 3 (``ltr[postgres]``) or else psycopg2; other URLs are unchanged.

    SQLAlchemy would otherwise always pick psycopg2, which the extra does not install.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in ("postgresql", "postgres"):
        return url
    if importlib.util.find_spec("psycopg") is not None:
        return f"postgresql+psycopg://{rest}"
    if importlib.util.find_spec("psycopg2") is not None:
        return f"postgresql+psycopg2://{rest}"
    raise StudyError(
        f"cannot open {redact_url(url)}: no PostgreSQL driver is installed; "
        f"{install_hint('postgres')} (psycopg 3)"
    )


def _env_seconds(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        seconds = int(value)
    except ValueError:
        seconds = 0
    if seconds < 1:
        raise StudyError(f"${name}: expected a whole number of seconds >= 1, got {value!r}")
    return seconds


def heartbeat_settings() -> tuple[int, int]:
    """(heartbeat interval, grace period) in seconds: defaults, or ``$LTR_HEARTBEAT_SECONDS``
    and ``$LTR_HEARTBEAT_GRACE_SECONDS``. The grace must exceed the interval."""
    interval = _env_seconds(HEARTBEAT_ENV, HEARTBEAT_SECONDS)
    grace = _env_seconds(GRACE_ENV, max(GRACE_SECONDS, 2 * interval))
    if grace <= interval:
        raise StudyError(
            f"${GRACE_ENV} ({grace} s) must be longer than the heartbeat interval ({interval} s)"
        )
    return interval, grace


#: Trial attributes that describe one attempt, not the configuration (not copied to a retry).
_PER_RUN_ATTRS = ("worker", "cv", "error")


class RetryDeadTrial:
    """Called for a trial whose worker died (heartbeat lost, or its process gone) once it is
    failed: queue a copy with the same parameters (Optuna's retry callback; the copy records
    the failed trial's number as ``failed_trial``), so the configuration is still evaluated
    and a run of N trials ends with N finished ones."""

    def __init__(self, max_retry: int = MAX_RETRY) -> None:
        retry = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # experimental / deprecated alias, by version
            if retry is None:
                retry = optuna.storages.RetryFailedTrialCallback
            self._retry = retry(max_retry=max_retry)

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        # The copy must not carry the dead worker's identity: between being picked up and
        # recording its new worker it would look like an orphan of that dead process.
        trial = copy.deepcopy(trial)
        trial.user_attrs = {k: v for k, v in trial.user_attrs.items() if k not in _PER_RUN_ATTRS}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self._retry(study, trial)


def _sqlite_path(url: str) -> Path | None:
    if not url.startswith("sqlite:///"):
        return None
    path = url.removeprefix("sqlite:///").split("?", 1)[0]
    return None if path in ("", ":memory:") else Path(path)


def _engine_kwargs(url: str) -> dict[str, Any]:
    path = _sqlite_path(url)
    if path is not None:
        # Concurrent workers wait for SQLite's write lock instead of failing after 5 s.
        return {"connect_args": {"timeout": 120}}
    if _dialect(url) in ("postgresql", "mysql"):
        # A server restart or an idle timeout drops pooled connections: test before use.
        kwargs: dict[str, Any] = {"pool_pre_ping": True}
        if _dialect(url) == "postgresql":
            kwargs["connect_args"] = {"connect_timeout": 15}  # an unreachable host fails fast
        return kwargs
    return {}


def _storage_error(url: str, error: BaseException) -> StudyError:
    """One line for a storage that cannot be opened: the driver's own reason, no password."""
    if isinstance(error, ImportError):
        return StudyError(
            f"cannot open {redact_url(url)}: the database driver is missing ({error}); "
            f"{install_hint('postgres')} (PostgreSQL) or pip install pymysql (MySQL)"
        )
    reason = str(getattr(error, "orig", None) or error).strip().splitlines()
    text = reason[0] if reason else type(error).__name__
    if len(reason) > 1 and reason[0].rstrip().endswith(":"):
        text += " " + reason[1].strip()
    return StudyError(_hide_password(f"cannot open study storage {url}: {text}", url))


def open_storage(url: str, *, must_exist: bool = False) -> optuna.storages.RDBStorage:
    """An Optuna RDB storage with the heartbeat on and dead workers' trials retried;
    `must_exist` refuses to create a SQLite file."""
    path = _sqlite_path(url)
    if must_exist and path is not None and not path.is_file():
        raise StudyError(
            f"no study storage at {url} ({path} does not exist); "
            "run `ltr tune` first or pass --storage"
        )
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    interval, grace = heartbeat_settings()
    options: dict[str, Any] = {"heartbeat_interval": interval, "grace_period": grace}
    parameters = inspect.signature(optuna.storages.RDBStorage).parameters
    callback = "heartbeat_stale_trial_callback"  # Optuna >= 4.9; before: failed_trial_callback
    options[callback if callback in parameters else "failed_trial_callback"] = RetryDeadTrial()
    # Opening creates the tables of a new database: not while another process does it.
    with setup_lock(url), warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.simplefilter("ignore", FutureWarning)
        try:
            return optuna.storages.RDBStorage(
                sqlalchemy_url(url), engine_kwargs=_engine_kwargs(url), **options
            )
        except StudyError:
            raise
        except Exception as error:  # SQLAlchemy errors: bad URL, server down, not a database
            raise _storage_error(url, error) from None


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
    """Serialise creating the tables and a study between processes, wherever they run.

    Two workers started together on a new database would otherwise race to create the tables,
    the study and its attributes (two untuned default trials, or a half-written identity).
    SQLite: a file lock next to the database (the processes share its file system).
    PostgreSQL and MySQL: a lock held by the server for this connection (`_server_lock`), so
    workers on other machines take turns too, and a worker that dies releases it. Re-entrant
    within a process (an flock taken twice by one process would wait for itself). The lock
    file is removed on release; a process that locked a file another one had just removed
    notices (the path no longer names its file) and locks the new one instead.
    """
    path = _sqlite_path(url)
    if path is None:
        if _dialect(url) in ("postgresql", "mysql") and not _HELD.get(url):
            with _server_lock(url):
                yield
        else:
            yield
        return
    key = str(path.resolve())
    if _HELD.get(key):
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


@contextlib.contextmanager
def _server_lock(url: str) -> Iterator[None]:
    """A session lock of the database server (PostgreSQL advisory lock, MySQL named lock) on a
    connection of its own: released when we are done or when our connection dies."""
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(
            sqlalchemy_url(url), poolclass=sqlalchemy.pool.NullPool, **_without_pool(url)
        )
        connection = engine.connect()
    except StudyError:
        raise
    except Exception as error:
        raise _storage_error(url, error) from None
    postgres = _dialect(url) == "postgresql"
    try:
        if postgres:
            connection.exec_driver_sql(f"SELECT pg_advisory_lock({_SERVER_LOCK_KEY})")
        else:
            got = connection.exec_driver_sql(
                f"SELECT GET_LOCK('{_SERVER_LOCK_NAME}', {_SERVER_LOCK_TIMEOUT})"
            ).scalar()
            if got != 1:
                raise StudyError(
                    f"{redact_url(url)}: another worker held the study setup lock for "
                    f"{_SERVER_LOCK_TIMEOUT} s; is one stuck?"
                )
        connection.commit()
        _HELD[url] = 1
        try:
            yield
        finally:
            del _HELD[url]
            with contextlib.suppress(Exception):
                unlock = (
                    f"pg_advisory_unlock({_SERVER_LOCK_KEY})"
                    if postgres
                    else (f"RELEASE_LOCK('{_SERVER_LOCK_NAME}')")
                )
                connection.exec_driver_sql(f"SELECT {unlock}")
                connection.commit()
    finally:
        connection.close()
        engine.dispose()


def _without_pool(url: str) -> dict[str, Any]:
    return {k: v for k, v in _engine_kwargs(url).items() if k != "pool_pre_ping"}


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
    return pid_alive(pid)


def on_this_machine(worker: dict[str, Any]) -> bool:
    """Whether a trial's worker ran on this machine, so that its process id means something
    here: same host name and, when recorded, the same boot (two machines may share a name)."""
    if worker.get("host") != socket.gethostname():
        return False
    return worker.get("boot") is None or worker.get("boot") == boot_id()


def fail_orphaned_trials(study: optuna.Study) -> list[int]:
    """Mark failed the RUNNING trials whose worker process on this machine is gone (kill -9,
    power cut) and queue them again; returns their numbers. Trials of other machines are
    left to the heartbeat."""
    failed = []
    retry = RetryDeadTrial()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = trial.user_attrs.get("worker")
        if not worker or not on_this_machine(worker) or worker_alive(worker):
            continue
        try:
            study._storage.set_trial_user_attr(
                trial._trial_id, "error", f"worker process {worker['pid']} died during the trial"
            )
            study.tell(trial.number, state=TrialState.FAIL)
        except (optuna.exceptions.UpdateFinishedTrialError, ValueError, RuntimeError):
            continue  # another worker got there first
        failed.append(trial.number)
        retry(study, trial)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    return failed
