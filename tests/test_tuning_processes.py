"""Studies under real interruptions and real concurrency, with real `ltr tune` processes:
kill -9 and Ctrl-C mid-trial then rerun, two commands on one storage, --jobs 2.

For the interruption tests every fold is made to last 0.25 s longer (a sleep wrapped around the
objective's per-fold callback inside the subprocess), so that "mid-trial" is a wide, reliable
target whatever the sampled configuration; everything else is the real `ltr tune` command.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from ltr.data.synthetic import write_synthetic
from ltr.tuning.storage import open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)
pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals"),
    pytest.mark.slow,  # real worker processes, signals and kill -9
]

LTR = [sys.executable, "-c", "from ltr.cli.main import main; main()"]
SLOW_FOLDS = """
import time
import ltr.tuning.objective as objective
cross_validate = objective.cross_validate
def slow_cross_validate(*args, on_fold, **kwargs):
    def after_fold(step, scores):
        time.sleep(0.25)
        on_fold(step, scores)
    return cross_validate(*args, on_fold=after_fold, **kwargs)
objective.cross_validate = slow_cross_validate
from ltr.cli.main import main
main()
"""
LTR_SLOW = [sys.executable, "-c", SLOW_FOLDS]
RIDGE = ["--model", "ridge", "--folds", "3", "--repeats", "1"]


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tuning-proc") / "synth"
    write_synthetic(path, n_users=150, seed=5)
    return path


def _tune(data: Path, db: Path, study: str, *args: str, slow: bool = False) -> subprocess.Popen:
    return subprocess.Popen(
        [
            *(LTR_SLOW if slow else LTR),
            "tune",
            str(data),
            "--study",
            study,
            "--storage",
            str(db),
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _trials(db: Path, study: str) -> list[optuna.trial.FrozenTrial]:
    storage = open_storage(f"sqlite:///{db}")  # waits while a tune process creates the tables
    try:
        return optuna.load_study(study_name=study, storage=storage).get_trials(deepcopy=False)
    except KeyError:
        return []


def _wait_mid_trial(process: subprocess.Popen, db: Path, study: str, timeout: float = 90) -> None:
    """Until a trial has completed and the next one has finished at least one fold."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[0]
        trials = _trials(db, study) if db.exists() else []
        done = any(t.state == TrialState.COMPLETE for t in trials)
        if done and any(t.state == TrialState.RUNNING and t.intermediate_values for t in trials):
            return
        time.sleep(0.05)
    process.kill()
    raise AssertionError(f"no trial in progress after {timeout} s")


def _interrupt_mid_trial(
    data: Path, db: Path, study: str, sig: int
) -> tuple[subprocess.Popen, str, list[optuna.trial.FrozenTrial], int]:
    """Start `ltr tune`, send `sig` while a trial runs; retry when the trial ended just before
    the signal (a race the test cannot exclude). Returns the process, the trials as they
    were when the signal was sent, and the number of the trial that was running."""
    for _ in range(5):
        process = _tune(data, db, study, "--trials", "500", *RIDGE, slow=True)
        _wait_mid_trial(process, db, study)
        before = _trials(db, study)
        running = [t.number for t in before if t.state == TrialState.RUNNING]
        process.send_signal(sig)
        output = process.communicate(timeout=120)[0]
        after = {t.number: t for t in _trials(db, study)}
        if running and after[running[0]].state != TrialState.COMPLETE:
            return process, output, before, running[0]
    raise AssertionError("could not interrupt a trial in progress")


def _assert_resumes(data: Path, db: Path, study: str, before: list, broken: int) -> None:
    """Rerun: completed trials are untouched, the broken trial is failed, new trials run."""
    rerun = subprocess.run(
        [*LTR, "tune", str(data), "--study", study, "--storage", str(db), "--trials", "2", *RIDGE],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    after = {t.number: t for t in _trials(db, study)}
    for trial in before:
        if trial.state == TrialState.COMPLETE:
            assert after[trial.number].state == TrialState.COMPLETE
            assert after[trial.number].value == trial.value
            assert after[trial.number].user_attrs["cv"] == trial.user_attrs["cv"]
    assert after[broken].state == TrialState.FAIL
    assert not [t for t in after.values() if t.state == TrialState.RUNNING]
    new = [t for t in after.values() if t.number > max(t.number for t in before)]
    assert len(new) == 2
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in new)
    assert sorted(after) == list(range(len(after)))


def test_kill_9_mid_trial_then_rerun(synth_dir: Path, tmp_path: Path) -> None:
    db = tmp_path / "kill.db"
    process, _, before, broken = _interrupt_mid_trial(synth_dir, db, "k", signal.SIGKILL)
    assert process.returncode == -signal.SIGKILL
    # the killed trial stays RUNNING in the storage until a new run looks at it
    assert {t.number: t.state for t in _trials(db, "k")}[broken] == TrialState.RUNNING
    _assert_resumes(synth_dir, db, "k", before, broken)
    error = {t.number: t for t in _trials(db, "k")}[broken].user_attrs["error"]
    assert "died during the trial" in error


def test_ctrl_c_mid_trial_then_rerun(synth_dir: Path, tmp_path: Path) -> None:
    db = tmp_path / "int.db"
    process, output, before, broken = _interrupt_mid_trial(synth_dir, db, "c", signal.SIGINT)
    assert process.returncode == 130, output
    assert "interrupted: completed trials are saved" in output
    trials = {t.number: t for t in _trials(db, "c")}
    assert trials[broken].state == TrialState.FAIL  # failed at once, not left running
    assert "interrupted" in trials[broken].user_attrs["error"]
    _assert_resumes(synth_dir, db, "c", before, broken)


def _assert_all_trials_once(db: Path, study: str, expected: int) -> list:
    trials = _trials(db, study)
    assert len(trials) == expected
    assert sorted(t.number for t in trials) == list(range(expected))
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials), Counter(
        t.state.name for t in trials
    )
    assert sum(t.user_attrs.get("enqueued") == "untuned default" for t in trials) == 1
    # All within TPE's 10 random start-up trials: workers seeded alike would sample the same
    # configurations (later, TPE itself may legitimately come back to a configuration).
    params = [json.dumps(t.params, sort_keys=True) for t in trials]
    assert len(set(params)) == len(params)
    return trials


def test_two_tune_commands_share_one_new_study(synth_dir: Path, tmp_path: Path) -> None:
    db = tmp_path / "two.db"
    processes = [_tune(synth_dir, db, "two", "--trials", "4", *RIDGE) for _ in range(2)]
    outputs = [p.communicate(timeout=300)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    assert sum("created" in out for out in outputs) == 1
    trials = _assert_all_trials_once(db, "two", 8)
    assert len({t.user_attrs["worker"]["pid"] for t in trials}) == 2


def test_jobs_2_spawns_two_workers(synth_dir: Path, tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    process = _tune(synth_dir, db, "jobs", "--trials", "8", "--jobs", "2", *RIDGE)
    output = process.communicate(timeout=300)[0]
    assert process.returncode == 0, output
    assert "2 worker(s)" in output and "this run: " in output
    trials = _assert_all_trials_once(db, "jobs", 8)
    pids = Counter(t.user_attrs["worker"]["pid"] for t in trials)
    assert sorted(pids.values()) == [4, 4] and process.pid not in pids
    assert not [p for p in pids if os.path.exists(f"/proc/{p}")]  # workers exited
