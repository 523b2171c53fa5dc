"""Running a study: the sampler and pruner, one or several worker processes, progress, and
stopping cleanly.

Workers. ``jobs > 1`` spawns that many worker processes on the storage; separate `ltr tune`
commands on the same storage work the same way. Optuna's RDB storage gives every trial its own
row and number, so no trial is lost or run twice; TPE's constant liar keeps concurrent workers
from sampling the same region, and every worker's sampler is seeded apart. Each process uses 1
learner thread by default: on small data, parallel processes scale, threads do not.

Interruptions. The first Ctrl-C (SIGTERM for a spawned worker) stops the running trial at the
end of its fold and marks it failed; completed trials stay; a second Ctrl-C stops at once.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import secrets
import signal
import socket
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from ltr.errors import StudyError
from ltr.tuning.fidelity import DEFAULT_PRUNER, PRUNERS, make_pruner  # noqa: F401 (re-export)
from ltr.tuning.objective import CVObjective, CVProtocol, TuningData
from ltr.tuning.space import get_space
from ltr.tuning.storage import fail_orphaned_trials, open_storage, storage_url
from ltr.tuning.studies import StudySettings, count_states, open_study

#: Stop a worker after this many failed trials in a row (a bug, not a bad configuration).
MAX_CONSECUTIVE_FAILURES = 5
#: After Ctrl-C, how long workers get to finish their fold before they are killed.
STOP_WAIT_SECONDS = 120


# ----------------------------------------------------------------------------- samplers
def make_sampler(
    seed: int, n_existing: int = 0, worker: int = 0, nonce: int = 0
) -> optuna.samplers.BaseSampler:
    """Seeded multivariate TPE.

    The seed mixes in the number of trials already in the study, the worker index and a nonce
    (0 for the run that created the study, else random): a resumed study, a second spawned
    worker or a second `ltr tune` command on the same study, here or on another machine, never
    replays the random start-up points of another run, which would evaluate the same
    configurations twice. Not the process id: on two machines (or in containers) they repeat.
    A new study run by one command is reproducible: same seed, same trials.
    """
    state = np.random.SeedSequence([seed, n_existing, worker, nonce]).generate_state(1)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(
            seed=int(state), multivariate=True, group=True, constant_liar=True
        )


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


class _NoTraceback(logging.Filter):
    """Optuna logs a failed trial with its traceback; the trial's error (kept in the study, and
    in the message) is what a user can act on, so the traceback goes (``LTR_DEBUG=1`` keeps it,
    like the CLI boundary)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not os.environ.get("LTR_DEBUG"):
            record.exc_info = None
            record.exc_text = None
        return True


@contextlib.contextmanager
def _one_line_trial_failures() -> Iterator[None]:
    handlers = logging.getLogger("optuna").handlers
    quiet = _NoTraceback()
    for handler in handlers:
        handler.addFilter(quiet)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(quiet)


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
    with _one_line_trial_failures():
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
    pruner: str = DEFAULT_PRUNER,
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
            nonce=0 if created else secrets.randbits(63),
        )
        for i, share in enumerate(shares)
        if share is None or share > 0
    ]
    pids = {os.getpid()} if len(tasks) == 1 else set()  # this run's worker processes
    try:
        if len(tasks) == 1:
            _run_in_process(tasks[0], study, before, n_trials, progress)
        else:
            _run_workers(tasks, study, before, n_trials, progress, pids)
    except KeyboardInterrupt:
        outcome.interrupted = True
    # This run's trials: those its own workers ran (other commands, on this machine or another,
    # may have added trials to the study meanwhile).
    host = socket.gethostname()
    trials = study.get_trials(deepcopy=False)
    mine = [
        t
        for t in trials
        if t.number >= before
        and t.user_attrs.get("worker", {}).get("host") == host
        and t.user_attrs.get("worker", {}).get("pid") in pids
    ]
    outcome.new_trials = count_states(mine)
    if outcome.interrupted:
        raise TuneInterrupted(outcome)
    failed = [t for t in mine if t.state == TrialState.FAIL]
    if failed and len(failed) == len(mine):
        error = failed[-1].user_attrs.get("error", "no reason recorded")
        raise StudyError(f"every trial of this run failed ({len(failed)}); the last one: {error}")
    return outcome


class TuneInterrupted(KeyboardInterrupt):
    """Ctrl-C during `tune`: carries what was done so the caller can report it."""

    def __init__(self, outcome: TuneOutcome) -> None:
        super().__init__("tuning interrupted")
        self.outcome = outcome


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
    pids: set[int],
) -> None:
    """Spawn one process per task and wait for them; their process ids go into `pids`."""
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
        assert process.pid is not None  # set by start()
        pids.add(process.pid)
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
