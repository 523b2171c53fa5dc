"""Studies that survive real use: resumable, guarded by a fingerprint, safe with many workers.

Storage. Any SQLAlchemy URL Optuna accepts: the default is a SQLite file in the working folder
(`DEFAULT_STORAGE`, or ``$LTR_STORAGE``); ``postgresql://user:pw@host/db`` or
``mysql+pymysql://...`` let workers on several machines share one study (install the driver).
A bare path is taken as a SQLite file.

Identity. A study records, as study attributes, the search space (name, version, hash), the
training data (content hash of features + labels, feature config) and the CV protocol. Running
`tune` again with the same name resumes the study; asking for another space, other data or
other folds under that name is refused with the differences spelled out.

Interruptions. Ctrl-C: Optuna marks the running trial failed, completed trials stay. kill -9:
the trial stays RUNNING in the storage; the next run marks it failed at once when its worker
(host, pid, process start time, recorded on the trial) is gone from this machine, and Optuna's
heartbeat marks it failed after `GRACE_SECONDS` otherwise (workers on other machines).

Workers. ``jobs > 1`` spawns that many worker processes on the storage; separate `ltr tune`
commands on the same storage work the same way. Optuna's RDB storage gives every trial its own
row and number, so no trial is lost or run twice; TPE's constant liar keeps concurrent workers
from sampling the same region. Each process uses 1 learner thread by default: on small data,
parallel processes scale, threads do not.

Choosing a configuration. The best mean is an optimistic estimate (the maximum of many noisy
CV scores). The chosen trial maximises ``mean - k * std`` over completed trials (std = spread
across folds of the per-fold mean Pearson), k = `DEFAULT_PENALTY` = 0.5 by default: it breaks
near-ties in favour of the steadier configuration but never lets the spread outweigh a clear
gain. Not more, because the spread of 10 folds is itself noisy (its standard error is about a
quarter of its value): re-scoring the top trials of the real studies on fresh folds, k from 0
to 2 chose the same configuration on both data sets, k = 3 chose a low-spread one that lost
0.011, and a low spread did not predict a small drop on fresh folds (see README, Tuning).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing
import os
import signal
import socket
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from ltr import __version__
from ltr.errors import StudyError
from ltr.models import ModelSpec
from tuning.objective import CVObjective, CVProtocol, TuningData, process_start
from tuning.space import DEFAULT_SPACE, SearchSpace, get_space

DEFAULT_STORAGE = "sqlite:///ltr-studies.db"
STORAGE_ENV = "LTR_STORAGE"
#: Optuna heartbeat: running trials write a heartbeat this often (seconds) ...
HEARTBEAT_SECONDS = 30
#: ... and a trial without one for this long is failed by the next worker that starts a trial.
GRACE_SECONDS = 120
#: Default k of the penalised score mean - k * std used to choose a study's configuration.
DEFAULT_PENALTY = 0.5
#: Stop a worker after this many failed trials in a row (a bug, not a bad configuration).
MAX_CONSECUTIVE_FAILURES = 5
PRUNERS = ("median", "halving", "none")
#: After Ctrl-C, how long workers get to finish their fold before they are killed.
STOP_WAIT_SECONDS = 120
FORMAT = 1

_ATTR_FORMAT = "ltr:format"
_ATTR_IDENTITY = "ltr:identity"
_ATTR_FINGERPRINT = "ltr:fingerprint"
_ATTR_CREATED = "ltr:created"


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
            f"no study storage at {url} ({path} does not exist); "
            "run `ltr tune` first or pass --storage"
        )
    engine_kwargs: dict[str, Any] = {}
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Concurrent workers wait for SQLite's write lock instead of failing after 5 s.
        engine_kwargs["connect_args"] = {"timeout": 120}
    with warnings.catch_warnings():
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
                f"cannot open {url}: the database driver is missing ({error}); "
                "e.g. pip install psycopg2-binary (PostgreSQL) or pymysql (MySQL)"
            ) from None
        except Exception as error:  # SQLAlchemy errors: bad URL, server down, not a database
            raise StudyError(f"cannot open study storage {url}: {error}") from None


@contextlib.contextmanager
def _setup_lock(url: str) -> Iterator[None]:
    """Serialise study creation between processes on one machine (SQLite files only).

    Two workers started together on a new SQLite file would otherwise race to create the
    tables and the study attributes. Server databases handle this themselves.
    """
    path = _sqlite_path(url)
    if path is None:
        yield
        return
    try:
        import fcntl
    except ImportError:  # Windows: no flock; start the first worker alone there
        yield
        return
    # The lock file lives in the temporary folder, keyed by the database's absolute path, so
    # nothing but the database appears next to it.
    key = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
    with open(Path(tempfile.gettempdir()) / f"ltr-study-setup-{key}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# -------------------------------------------------------------------------------- identity
def study_identity(space: SearchSpace, data: TuningData, protocol: CVProtocol) -> dict[str, Any]:
    return {
        "space": {"name": space.name, "version": space.version, "hash": space.fingerprint()},
        "data": data.describe(),
        "cv": protocol.to_dict(),
    }


def identity_fingerprint(identity: dict[str, Any]) -> str:
    """Hash of what the objective means: not of paths or sizes, which may change harmlessly."""
    data = identity["data"]
    key = {
        "space": identity["space"],
        "data": {k: data[k] for k in ("split", "feature_config", "fingerprint")},
        "cv": identity["cv"],
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    out = []
    if old["space"] != new["space"]:
        out.append(
            f"search space: study has {old['space']['name']!r} (v{old['space']['version']}, "
            f"{old['space']['hash']}), this run {new['space']['name']!r} "
            f"(v{new['space']['version']}, {new['space']['hash']})"
        )
    od, nd = old["data"], new["data"]
    if (od["fingerprint"], od["split"], od["feature_config"]) != (
        nd["fingerprint"],
        nd["split"],
        nd["feature_config"],
    ):
        out.append(
            f"data: study was tuned on {od['name']} {od['split']} ({od['n_users']} users, "
            f"{od['n_features']} features, fingerprint {od['fingerprint']}), this run has "
            f"{nd['name']} {nd['split']} ({nd['n_users']} users, {nd['n_features']} features, "
            f"fingerprint {nd['fingerprint']})"
        )
    if old["cv"] != new["cv"]:
        oc, nc = CVProtocol(**old["cv"]), CVProtocol(**new["cv"])
        out.append(f"cross-validation: study uses {oc.text()}, this run {nc.text()}")
    return out


def read_identity(study: optuna.Study) -> dict[str, Any] | None:
    return study.user_attrs.get(_ATTR_IDENTITY)


# ----------------------------------------------------------------------------- samplers
def make_sampler(
    seed: int, n_existing: int = 0, worker: int = 0, nonce: int = 0
) -> optuna.samplers.BaseSampler:
    """Seeded multivariate TPE.

    The seed mixes in the number of trials already in the study, the worker index and a nonce
    (0 for the run that created the study, else the process id): a resumed study, a second
    spawned worker or a second `ltr tune` command on the same study never replays the random
    start-up points of another run, which would evaluate the same configurations twice. A new
    study run by one command is reproducible: same seed, same trials.
    """
    state = np.random.SeedSequence([seed, n_existing, worker, nonce]).generate_state(1)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(
            seed=int(state), multivariate=True, group=True, constant_liar=True
        )


def make_pruner(kind: str = "median") -> optuna.pruners.BasePruner:
    """``median``: stop a trial whose running mean after a fold is below the median of earlier
    trials at that fold (from the 2nd fold on, after 5 trials). ``halving``: asynchronous
    successive halving over folds. ``none``: every trial runs every fold."""
    if kind == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    if kind == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    if kind == "none":
        return optuna.pruners.NopPruner()
    raise StudyError(f"unknown pruner {kind!r} (choose {', '.join(PRUNERS)})")


# ----------------------------------------------------------------------- open / create
@dataclass(frozen=True)
class StudySettings:
    """What `tune` was asked for; None = the existing study's value, else the default."""

    space: str | None = None
    protocol: CVProtocol | None = None
    #: Single CV fields (used when `protocol` is None): missing ones come from the study.
    folds: int | None = None
    repeats: int | None = None
    cv_seed: int | None = None


def resolve_settings(
    existing: dict[str, Any] | None, settings: StudySettings
) -> tuple[SearchSpace, CVProtocol]:
    space_name = settings.space or (existing["space"]["name"] if existing else DEFAULT_SPACE)
    protocol = settings.protocol
    if protocol is None:
        base = CVProtocol(**existing["cv"]) if existing else CVProtocol()
        protocol = CVProtocol(
            base.folds if settings.folds is None else settings.folds,
            base.repeats if settings.repeats is None else settings.repeats,
            base.seed if settings.cv_seed is None else settings.cv_seed,
        )
    return get_space(space_name), protocol


def open_study(
    name: str,
    url: str,
    data: TuningData,
    settings: StudySettings = StudySettings(),
    *,
    sampler: optuna.samplers.BaseSampler | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
) -> tuple[optuna.Study, SearchSpace, CVProtocol, bool]:
    """Create the study or resume it after checking its identity; (study, space, protocol,
    created). A new study gets the space's untuned default as its first (enqueued) trial."""
    with _setup_lock(url):
        storage = open_storage(url)
        exists = name in optuna.get_all_study_names(storage)
        existing = None
        if exists:
            existing = read_identity(optuna.load_study(study_name=name, storage=storage))
            if existing is None:
                raise StudyError(
                    f"study {name!r} in {url} was not created by `ltr tune` "
                    "(it has no ltr:identity attribute); choose another --study name"
                )
        space, protocol = resolve_settings(existing, settings)
        identity = study_identity(space, data, protocol)
        if existing is not None:
            problems = _differences(existing, identity)
            if problems or existing.get("format", FORMAT) != FORMAT:
                raise StudyError(
                    f"study {name!r} in {url} cannot be resumed with these settings: "
                    + "; ".join(problems or ["made by another version of ltr"])
                    + ". Use another --study name, or rerun with the study's data and settings"
                )
        study = optuna.create_study(
            study_name=name,
            storage=storage,
            direction="maximize",
            sampler=sampler,
            pruner=pruner,
            load_if_exists=True,
        )
        if not exists:
            study.set_user_attr(_ATTR_FORMAT, FORMAT)
            study.set_user_attr(_ATTR_IDENTITY, identity)
            study.set_user_attr(_ATTR_FINGERPRINT, identity_fingerprint(identity))
            study.set_user_attr(
                _ATTR_CREATED,
                {
                    "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "ltr": __version__,
                },
            )
            study.enqueue_trial(dict(space.defaults), user_attrs={"enqueued": "untuned default"})
    return study, space, protocol, not exists


def load_existing_study(name: str, storage: str | Path | None = None) -> optuna.Study:
    """A study made by `tune`, for reading; a clear error when it does not exist."""
    url = storage_url(storage)
    store = open_storage(url, must_exist=True)
    names = optuna.get_all_study_names(store)
    if name not in names:
        known = ", ".join(sorted(names)) or "none"
        raise StudyError(f"no study named {name!r} in {url} (studies there: {known})")
    study = optuna.load_study(study_name=name, storage=store)
    if read_identity(study) is None:
        raise StudyError(f"study {name!r} in {url} was not created by `ltr tune`")
    return study


# ------------------------------------------------------------------- orphaned trials
def _worker_alive(worker: dict[str, Any]) -> bool:
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
        if not worker or worker.get("host") != host or _worker_alive(worker):
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


# -------------------------------------------------------------------------- running
@dataclass
class Progress:
    """What a progress display needs; sent after every trial (and fold, in-process)."""

    done: int
    total: int | None
    complete: int = 0
    pruned: int = 0
    failed: int = 0
    best_value: float | None = None
    best_std: float | None = None
    best_number: int | None = None
    current: str = ""


ProgressCallback = Callable[[Progress], None]


@dataclass
class TuneOutcome:
    study_name: str
    storage: str
    space: str
    protocol: CVProtocol
    created: bool
    trials_before: int
    new_trials: dict[str, int] = field(default_factory=dict)
    orphans_failed: list[int] = field(default_factory=list)
    interrupted: bool = False


def _progress_from(
    trials: list[FrozenTrial], first: int, total: int | None, current: str = ""
) -> Progress:
    mine = [t for t in trials if t.number >= first and t.state.is_finished()]
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    best = max(complete, key=lambda t: (t.value, -t.number), default=None)
    return Progress(
        done=len(mine),
        total=total,
        complete=sum(t.state == TrialState.COMPLETE for t in mine),
        pruned=sum(t.state == TrialState.PRUNED for t in mine),
        failed=sum(t.state == TrialState.FAIL for t in mine),
        best_value=None if best is None else best.value,
        best_std=None if best is None else best.user_attrs.get("cv", {}).get("std"),
        best_number=None if best is None else best.number,
        current=current,
    )


class _FailureGuard:
    """Stops a worker when trials keep failing: that is a bug or broken data, not tuning."""

    def __init__(self, limit: int = MAX_CONSECUTIVE_FAILURES) -> None:
        self.limit = limit
        self.run = 0

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.run = self.run + 1 if trial.state == TrialState.FAIL else 0
        if self.run >= self.limit:
            error = trial.user_attrs.get("error", "see the log above")
            raise StudyError(f"{self.run} trials in a row failed; the last one: {error}")


@dataclass(frozen=True)
class _WorkerTask:
    url: str
    name: str
    space: str
    protocol: CVProtocol
    data: TuningData
    n_trials: int | None
    timeout: float | None
    seed: int
    worker: int
    trials_before: int
    pruner: str
    threads: int
    nonce: int = 0
    parent: int | None = None


class _StopRequest:
    """A polite stop: the first signal asks the running trial to stop at the end of its fold
    (it is then marked failed) and no new trial to start; a second signal stops at once.

    Raising from a signal handler is not enough: LightGBM and XGBoost call back into Python
    (their loggers) from C, and an exception raised there is swallowed.
    """

    def __init__(self, on_request: Callable[[], None] | None = None) -> None:
        self.requested = False
        self.on_request = on_request

    def handler(self, signum: int, frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        # The interrupted trial is failed on purpose: no warning with a traceback for it.
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        if self.on_request is not None:
            self.on_request()

    def after_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if self.requested:
            study.stop()


@contextlib.contextmanager
def _signal_handler(signum: int, handler: Callable[[int, object], None]) -> Iterator[None]:
    try:
        previous = signal.signal(signum, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signum, previous)


def _optimize(
    task: _WorkerTask,
    stop: _StopRequest,
    *,
    callbacks: Sequence[Callable[[optuna.Study, FrozenTrial], None]] = (),
    on_fold: Any = None,
) -> None:
    """Run the worker's trials; raises KeyboardInterrupt if a stop was requested."""
    storage = open_storage(task.url)
    study = optuna.load_study(
        study_name=task.name,
        storage=storage,
        sampler=make_sampler(task.seed, task.trials_before, task.worker, task.nonce),
        pruner=make_pruner(task.pruner),
    )
    fail_orphaned_trials(study)
    parent = task.parent

    def should_stop() -> bool:
        # a stop request, or a spawned worker whose parent was killed (it got re-parented)
        return stop.requested or (parent is not None and os.getppid() != parent)

    objective = CVObjective(
        get_space(task.space),
        task.data,
        task.protocol,
        threads=task.threads,
        on_fold=on_fold,
        should_stop=should_stop,
    )
    study.optimize(
        objective,
        n_trials=task.n_trials,
        timeout=task.timeout,
        catch=(Exception,),
        callbacks=[_FailureGuard(), stop.after_trial, *callbacks],
    )
    if should_stop():
        raise KeyboardInterrupt


def _worker_main(task: _WorkerTask) -> None:
    """Entry point of a spawned worker: SIGINT is the parent's to handle; the parent asks a
    worker to stop with SIGTERM, which fails its running trial like Ctrl-C would."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stop = _StopRequest()
    signal.signal(signal.SIGTERM, stop.handler)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        _optimize(task, stop)
    except KeyboardInterrupt:
        sys.exit(130)
    except StudyError as error:
        print(f"error: worker {task.worker}: {error}", file=sys.stderr)
        sys.exit(1)


def _shares(n_trials: int | None, jobs: int) -> list[int | None]:
    if n_trials is None:
        return [None] * jobs
    return [n_trials // jobs + (i < n_trials % jobs) for i in range(jobs)]


def tune(
    data: TuningData,
    study_name: str,
    *,
    storage: str | Path | None = None,
    space: str | None = None,
    protocol: CVProtocol | None = None,
    folds: int | None = None,
    repeats: int | None = None,
    cv_seed: int | None = None,
    n_trials: int | None = None,
    timeout: float | None = None,
    jobs: int = 1,
    seed: int = 0,
    pruner: str = "median",
    threads: int = 1,
    progress: ProgressCallback | None = None,
) -> TuneOutcome:
    """Create or resume `study_name` and run `n_trials` more trials (and/or for `timeout`
    seconds) in `jobs` processes.

    `space` and the CV settings (a whole `protocol`, or single `folds`/`repeats`/`cv_seed`)
    default to the existing study's, else to `DEFAULT_SPACE` and `CVProtocol()`. Raises
    `TuneInterrupted` (a KeyboardInterrupt) after cleaning up on Ctrl-C.
    """
    if n_trials is None and timeout is None:
        raise StudyError("give a number of trials or a timeout (or both)")
    if jobs < 1 or threads < 1:
        raise StudyError("jobs and threads must be >= 1")
    make_pruner(pruner)  # validate early
    url = storage_url(storage)
    study, space_obj, protocol_obj, created = open_study(
        study_name, url, data, StudySettings(space, protocol, folds, repeats, cv_seed)
    )
    orphans = fail_orphaned_trials(study)
    trials = study.get_trials(deepcopy=False)
    # This run's trials: from the first one still waiting (the enqueued default) or new.
    before = min((t.number for t in trials if t.state == TrialState.WAITING), default=len(trials))
    outcome = TuneOutcome(
        study_name, url, space_obj.name, protocol_obj, created, before, orphans_failed=orphans
    )
    shares = _shares(n_trials, jobs)
    tasks = [
        _WorkerTask(
            url=url,
            name=study_name,
            space=space_obj.name,
            protocol=protocol_obj,
            data=data,
            n_trials=share,
            timeout=timeout,
            seed=seed,
            worker=i,
            trials_before=before,
            pruner=pruner,
            threads=threads,
            nonce=0 if created else os.getpid(),
        )
        for i, share in enumerate(shares)
        if share is None or share > 0
    ]
    try:
        if len(tasks) == 1:
            _run_in_process(tasks[0], study, before, n_trials, progress)
        else:
            _run_workers(tasks, study, before, n_trials, progress)
    except KeyboardInterrupt:
        outcome.interrupted = True
    trials = study.get_trials(deepcopy=False)
    outcome.new_trials = _count_states([t for t in trials if t.number >= before])
    if outcome.interrupted:
        raise TuneInterrupted(outcome)
    return outcome


class TuneInterrupted(KeyboardInterrupt):
    """Ctrl-C during `tune`: carries what was done so the caller can report it."""

    def __init__(self, outcome: TuneOutcome) -> None:
        super().__init__("tuning interrupted")
        self.outcome = outcome


def _count_states(trials: list[FrozenTrial]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for trial in trials:
        counts[trial.state.name.lower()] = counts.get(trial.state.name.lower(), 0) + 1
    return counts


def _run_in_process(
    task: _WorkerTask,
    study: optuna.Study,
    before: int,
    n_trials: int | None,
    progress: ProgressCallback | None,
) -> None:
    last = [_progress_from(study.get_trials(deepcopy=False), before, n_trials)]

    def show(current: str | None = None) -> None:
        if current is not None:
            last[0].current = current
        if progress is not None:
            progress(last[0])

    def on_fold(number: int, done: int, total: int, running: float) -> None:
        if not stop.requested:
            show(f"trial {number}: fold {done}/{total}, mean {running:.4f}")

    def after_trial(study: optuna.Study, trial: FrozenTrial) -> None:
        last[0] = _progress_from(study.get_trials(deepcopy=False), before, n_trials)
        show()

    stop = _StopRequest(lambda: show("stopping after this fold (Ctrl-C again: at once)"))
    show()
    verbosity = optuna.logging.get_verbosity()
    try:
        with _signal_handler(signal.SIGINT, stop.handler):
            _optimize(task, stop, callbacks=[after_trial], on_fold=on_fold)
    finally:
        optuna.logging.set_verbosity(verbosity)


def _run_workers(
    tasks: list[_WorkerTask],
    study: optuna.Study,
    before: int,
    n_trials: int | None,
    progress: ProgressCallback | None,
) -> None:
    context = multiprocessing.get_context("spawn")
    parent = os.getpid()
    processes = [
        context.Process(
            target=_worker_main,
            args=(_with_parent(task, parent),),
            name=f"ltr-tune-worker-{task.worker}",
        )
        for task in tasks
    ]
    for process in processes:
        process.start()
    try:
        while any(p.is_alive() for p in processes):
            if progress is not None:
                trials = study.get_trials(deepcopy=False)
                running = sum(t.state == TrialState.RUNNING for t in trials)
                progress(_progress_from(trials, before, n_trials, f"{running} running"))
            for process in processes:
                process.join(timeout=0.5 / len(processes))
    except KeyboardInterrupt:
        for process in processes:
            if process.is_alive() and process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_WAIT_SECONDS
        for process in processes:
            process.join(timeout=max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
        fail_orphaned_trials(study)
        raise
    failed = [p for p in processes if p.exitcode not in (0, None)]
    if failed:
        raise StudyError(
            f"{len(failed)} of {len(processes)} worker process(es) failed "
            f"(exit codes {', '.join(str(p.exitcode) for p in failed)}); see the messages above"
        )
    if progress is not None:
        progress(_progress_from(study.get_trials(deepcopy=False), before, n_trials))


def _with_parent(task: _WorkerTask, parent: int) -> _WorkerTask:
    return replace(task, parent=parent)


# ---------------------------------------------------------------------- choosing a trial
@dataclass(frozen=True)
class TrialScore:
    """A completed trial's CV figures and its penalised score."""

    number: int
    mean: float
    std: float
    penalty: float
    penalised: float
    per_situation: dict[str, float]
    per_situation_std: dict[str, float]
    seconds: float
    params: dict[str, Any]
    spec: dict[str, Any]


def scored_trials(study: optuna.Study, penalty: float = DEFAULT_PENALTY) -> list[TrialScore]:
    """Completed trials, best penalised score first."""
    out = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        cv = trial.user_attrs.get("cv")
        spec = trial.user_attrs.get("spec")
        if trial.value is None or not cv or not spec:
            continue
        out.append(
            TrialScore(
                number=trial.number,
                mean=float(trial.value),
                std=float(cv["std"]),
                penalty=penalty,
                penalised=float(trial.value) - penalty * float(cv["std"]),
                per_situation=cv["per_situation"],
                per_situation_std=cv["per_situation_std"],
                seconds=float(cv.get("seconds", 0.0)),
                params=dict(trial.params),
                spec=spec,
            )
        )
    return sorted(out, key=lambda s: (-s.penalised, s.number))


def chosen_trial(study: optuna.Study, penalty: float = DEFAULT_PENALTY) -> TrialScore:
    """The completed trial with the best ``mean - penalty * std``."""
    scores = scored_trials(study, penalty)
    if not scores:
        raise StudyError(
            f"study {study.study_name!r} has no completed trial yet; run `ltr tune` (more)"
        )
    return scores[0]


def chosen_spec(
    study_name: str,
    storage: str | Path | None = None,
    *,
    penalty: float = DEFAULT_PENALTY,
    data: TuningData | None = None,
) -> tuple[ModelSpec, TrialScore, optuna.Study]:
    """The spec of the study's chosen trial, exactly as it was evaluated. With `data`, refuse
    data other than the study was tuned on (its features or labels differ)."""
    study = load_existing_study(study_name, storage)
    identity = read_identity(study)
    if data is not None and identity is not None:
        tuned = identity["data"]
        if tuned["fingerprint"] != data.fingerprint:
            raise StudyError(
                f"study {study_name!r} was tuned on {tuned['name']} {tuned['split']} "
                f"(fingerprint {tuned['fingerprint']}), not on this data ({data.name} "
                f"{data.split}, fingerprint {data.fingerprint})"
            )
    score = chosen_trial(study, penalty)
    spec = ModelSpec.from_dict(score.spec, where=f"study {study_name!r}, trial {score.number}")
    return spec, score, study


# ----------------------------------------------------------------------------- summaries
def study_summary(study: optuna.Study, penalty: float = DEFAULT_PENALTY) -> dict[str, Any]:
    """Everything `ltr studies show` prints, as JSON-friendly data."""
    trials = study.get_trials(deepcopy=False)
    identity = read_identity(study) or {}
    scores = scored_trials(study, penalty)
    best = max(scores, key=lambda s: (s.mean, -s.number), default=None)
    orphans = [
        t.number
        for t in trials
        if t.state == TrialState.RUNNING
        and t.user_attrs.get("worker", {}).get("host") == socket.gethostname()
        and not _worker_alive(t.user_attrs["worker"])
    ]
    return {
        "name": study.study_name,
        "identity": identity,
        "created": study.user_attrs.get(_ATTR_CREATED),
        "states": _count_states(trials),
        "n_trials": len(trials),
        "orphaned_running": orphans,
        "penalty": penalty,
        "best": None if best is None else asdict(best),
        "chosen": None if not scores else asdict(scores[0]),
        "top": [asdict(s) for s in scores[:10]],
    }


def list_studies(
    storage: str | Path | None = None, penalty: float = DEFAULT_PENALTY
) -> list[dict[str, Any]]:
    """One summary per study made by `tune` in the storage (others are skipped)."""
    url = storage_url(storage)
    store = open_storage(url, must_exist=True)
    out = []
    for name in sorted(optuna.get_all_study_names(store)):
        study = optuna.load_study(study_name=name, storage=store)
        if read_identity(study) is not None:
            out.append(study_summary(study, penalty))
    return out


def study_cv_record(study: optuna.Study, score: TrialScore) -> dict[str, Any]:
    """The CV figures a model trained from a study keeps in its manifest."""
    identity = read_identity(study) or {}
    cv = identity.get("cv", {})
    return {
        "study": study.study_name,
        "trial": score.number,
        "penalty": score.penalty,
        "folds": cv.get("folds"),
        "repeats": cv.get("repeats"),
        "seed": cv.get("seed"),
        "mean_pearson": score.mean,
        "std_pearson": score.std,
        "penalised": score.penalised,
        "per_situation": score.per_situation,
        "per_situation_std": score.per_situation_std,
    }
