"""Studies on a real PostgreSQL server (a throwaway cluster, `postgres_server` in conftest.py),
shared by real `ltr tune` processes, one of them on a second "machine": a network namespace with
its own address, host name, process ids and temporary folder, reaching the server over TCP
(`test_machine`).

The storage URLs are plain ``postgresql://user:password@host:port/db``: ltr maps them to the
installed driver (psycopg 3), and never prints the password.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from services import PostgresServer, TestMachine, unavailable, wait_for
from typer.testing import CliRunner

from ltr.cli.main import app
from ltr.data.synthetic import write_synthetic
from ltr.errors import StudyError
from ltr.tuning.objective import CVProtocol, load_tuning_data
from ltr.tuning.runner import tune
from ltr.tuning.storage import open_storage, redact_url, sqlalchemy_url
from ltr.tuning.studies import chosen_spec, list_studies

optuna.logging.set_verbosity(optuna.logging.WARNING)
LTR = [sys.executable, "-c", "from ltr.cli.main import main; main()"]
SLOW_FOLDS = """
import time
import ltr.tuning.objective as objective
cross_validate = objective.cross_validate
def slow_cross_validate(*args, on_fold, **kwargs):
    def after_fold(step, scores):
        time.sleep(0.3)
        on_fold(step, scores)
    return cross_validate(*args, on_fold=after_fold, **kwargs)
objective.cross_validate = slow_cross_validate
from ltr.cli.main import main
main()
"""
RIDGE = ["--model", "ridge", "--folds", "3", "--repeats", "1", "--pruner", "none"]
FAST = CVProtocol(folds=3, repeats=1, seed=0)
#: Heartbeat every second, a trial without one for 3 s is stale (instead of 30 s / 120 s).
HEARTBEAT = {"LTR_HEARTBEAT_SECONDS": "1", "LTR_HEARTBEAT_GRACE_SECONDS": "3"}
HEARTBEAT_GRACE = 3


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pg") / "synth"
    write_synthetic(path, n_users=150, seed=11)
    return path


@pytest.fixture(scope="module")
def other_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pg") / "other"
    write_synthetic(path, n_users=150, seed=12)
    return path


@pytest.fixture
def database(postgres_server: PostgresServer, request: pytest.FixtureRequest) -> str:
    """A fresh database per test (studies of one test never meet another's)."""
    name = "t_" + request.node.name.lower().replace("[", "_").replace("]", "")[:50]
    return postgres_server.create_database(name)


@pytest.fixture
def machine(test_machine: TestMachine | Exception) -> TestMachine:
    if not isinstance(test_machine, TestMachine):
        unavailable(f"no second test machine: {test_machine}")
    return test_machine


_STORAGES: dict[str, optuna.storages.RDBStorage] = {}


def _trials(url: str, study: str) -> list[optuna.trial.FrozenTrial]:
    """The study's trials as stored now (one storage per URL: polling opens no connections)."""
    storage = _STORAGES.get(url) or _STORAGES.setdefault(url, open_storage(url))
    try:
        return optuna.load_study(study_name=study, storage=storage).get_trials()
    except KeyError:
        return []


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "LTR_STORAGE"}
    return {**env, "COLUMNS": "250", **extra}  # no line wrapping in the outputs we search


# ----------------------------------------------------------------------------- no server
def test_plain_postgresql_urls_name_the_installed_driver() -> None:
    pytest.importorskip("psycopg")
    assert sqlalchemy_url("postgresql://u:p@h:5432/db") == "postgresql+psycopg://u:p@h:5432/db"
    assert sqlalchemy_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert sqlalchemy_url("postgresql+psycopg2://u@h/db") == "postgresql+psycopg2://u@h/db"
    assert sqlalchemy_url("sqlite:///x.db") == "sqlite:///x.db"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://ltr:s3cret@db:5432/ltr", "postgresql://ltr:***@db:5432/ltr"),
        ("postgresql+psycopg://ltr:p@ss@db/ltr", "postgresql+psycopg://ltr:***@db/ltr"),
        ("mysql+pymysql://u:pw@h/db?charset=utf8", "mysql+pymysql://u:***@h/db?charset=utf8"),
        ("postgresql://ltr@db/ltr", "postgresql://ltr@db/ltr"),
        ("sqlite:///ltr-studies.db", "sqlite:///ltr-studies.db"),
    ],
)
def test_redact_url_hides_the_password(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_heartbeat_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from ltr.tuning.storage import GRACE_ENV, HEARTBEAT_ENV, heartbeat_settings

    monkeypatch.delenv(HEARTBEAT_ENV, raising=False)
    monkeypatch.delenv(GRACE_ENV, raising=False)
    assert heartbeat_settings() == (30, 120)
    monkeypatch.setenv(HEARTBEAT_ENV, "1")
    monkeypatch.setenv(GRACE_ENV, "3")
    assert heartbeat_settings() == (1, 3)
    monkeypatch.setenv(GRACE_ENV, "1")
    with pytest.raises(StudyError, match="must be longer than the heartbeat interval"):
        heartbeat_settings()
    monkeypatch.setenv(HEARTBEAT_ENV, "soon")
    with pytest.raises(StudyError, match=r"\$LTR_HEARTBEAT_SECONDS: expected a whole number"):
        heartbeat_settings()


def test_an_unreachable_server_is_one_line_without_the_password() -> None:
    pytest.importorskip("psycopg")
    from services import free_port

    url = f"postgresql://ltr:hunter2@127.0.0.1:{free_port()}/ltr"
    with pytest.raises(StudyError) as caught:
        open_storage(url)
    message = str(caught.value)
    assert "hunter2" not in message and "ltr:***@127.0.0.1" in message
    assert "\n" not in message and "connection" in message.lower()


# ------------------------------------------------------------------------ one process
def test_library_and_cli_use_a_postgresql_storage_unchanged(
    postgres_server: PostgresServer, database: str, synth_dir: Path, other_dir: Path, tmp_path: Path
) -> None:
    url = postgres_server.url(database)
    data = load_tuning_data(synth_dir)
    outcome = tune(
        data, "pg", storage=url, space="ridge", protocol=FAST, n_trials=3, seed=1, pruner="none"
    )
    assert outcome.created and outcome.new_trials == {"complete": 3}
    assert outcome.storage == url  # the caller's URL, driver mapping is internal
    assert [s["name"] for s in list_studies(url)] == ["pg"]
    spec, score, _ = chosen_spec("pg", url, data=data)
    assert spec.learner == "ridge" and score.number in range(3)

    # Same name, other data or other search space: refused, as on SQLite, without the password.
    with pytest.raises(StudyError, match="cannot be resumed") as caught:
        tune(load_tuning_data(other_dir), "pg", storage=url, n_trials=1)
    assert "data: study was tuned on synth" in str(caught.value)
    assert postgres_server.password not in str(caught.value)
    with pytest.raises(StudyError, match="search space: study has 'ridge'"):
        tune(data, "pg", storage=url, space="lgbm-regression", protocol=FAST, n_trials=1)
    assert len(_trials(url, "pg")) == 3

    runner = CliRunner()
    env = {"LTR_STORAGE": url}
    listed = runner.invoke(app, ["studies", "list"], env=env)
    assert listed.exit_code == 0, listed.output
    assert "pg: ridge on synth train (3-fold x 1); 3 trials: 3 complete" in listed.output
    shown = runner.invoke(app, ["studies", "show", "pg", "--storage", url])
    assert shown.exit_code == 0 and "chosen (max mean - 0.5 std)" in shown.output
    resumed = runner.invoke(
        app, ["tune", str(synth_dir), "--study", "pg", "--trials", "1"], env=env
    )
    assert resumed.exit_code == 0, resumed.output
    assert "study pg resumed (3 trials)" in resumed.output
    model_dir = tmp_path / "model"
    trained = runner.invoke(
        app, ["train", str(synth_dir), "--study", "pg", "--model-dir", str(model_dir)], env=env
    )
    assert trained.exit_code == 0, trained.output
    assert (model_dir / "model.json").is_file()
    refused = runner.invoke(app, ["tune", str(other_dir), "--study", "pg", "-n", "1"], env=env)
    assert refused.exit_code == 1 and "cannot be resumed" in refused.output
    for result in (listed, shown, resumed, trained, refused):
        assert postgres_server.password not in result.output
        assert "Traceback" not in result.output
    assert redact_url(url) in resumed.output.replace("\n", "")


# ----------------------------------------------------------------- processes, machines
def _host_tune(data: Path, url: str, study: str, *args: str, env: dict | None = None):
    return subprocess.Popen(
        [*LTR, "tune", str(data), "--study", study, "--storage", url, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_env(**(env or {})),
    )


def _remote_tune(
    machine: TestMachine,
    server: PostgresServer,
    database: str,
    data: Path,
    study: str,
    *args: str,
    slow: bool = False,
    env: dict | None = None,
):
    """`ltr tune` on the second machine: its own view of the data, the server over TCP at the
    host's veth address."""
    url = server.url(database, host=machine.host_address)
    argv = [*([sys.executable, "-c", SLOW_FOLDS] if slow else LTR), "tune"]
    argv += [machine.data_path(data)]
    argv += ["--study", study, "--storage", url, *args]
    return subprocess.Popen(
        machine.command(argv, hostname="machine-b", data=data),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_env(**(env or {})),
    )


@pytest.mark.slow
def test_four_workers_on_two_machines_fill_one_study_exactly(
    postgres_server: PostgresServer, database: str, machine: TestMachine, synth_dir: Path
) -> None:
    """2 `ltr tune --jobs 2` commands, one on each machine, start together on a new database:
    one creates the tables and the study, 8 trials run once each, none is lost."""
    url = postgres_server.url(database)
    processes = [
        _host_tune(synth_dir, url, "four", "--trials", "4", "--jobs", "2", *RIDGE),
        _remote_tune(machine, postgres_server, database, synth_dir, "four", "--trials", "4",
                     "--jobs", "2", *RIDGE),
    ]  # fmt: skip
    outputs = [p.communicate(timeout=400)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    assert sum("study four created" in out for out in outputs) == 1, outputs
    # each command reports its own 4 trials, not the other machine's
    assert all("this run: 4 complete\n" in out for out in outputs), outputs
    assert all(postgres_server.password not in out for out in outputs)

    trials = _trials(url, "four")
    assert sorted(t.number for t in trials) == list(range(8))
    assert Counter(t.state for t in trials) == {TrialState.COMPLETE: 8}
    assert sum(t.user_attrs.get("enqueued") == "untuned default" for t in trials) == 1
    params = [json.dumps(t.params, sort_keys=True) for t in trials]
    assert len(set(params)) == 8  # within TPE's 10 random start-up trials: none twice
    workers = Counter(
        (t.user_attrs["worker"]["host"], t.user_attrs["worker"]["pid"]) for t in trials
    )
    hosts = Counter(host for host, _ in workers.elements())
    assert hosts == {socket.gethostname(): 4, "machine-b": 4}
    assert len(workers) == 4 and sorted(workers.values()) == [2, 2, 2, 2]


@pytest.mark.slow
def test_a_killed_remote_worker_is_failed_by_the_heartbeat_and_its_trial_run_again(
    postgres_server: PostgresServer, database: str, machine: TestMachine, synth_dir: Path
) -> None:
    """kill -9 of the second machine's worker mid-trial. No process id or host name of that
    machine means anything here, so only the heartbeat can tell: once it is stale, the next
    worker to start a trial fails it and queues it again, and `--trials 4` there still ends
    with 4 complete trials, one of them the dead trial's configuration."""
    url = postgres_server.url(database)
    remote = _remote_tune(machine, postgres_server, database, synth_dir, "kill", "--trials",
                          "50", *RIDGE, slow=True, env=HEARTBEAT)  # fmt: skip

    def mid_trial() -> bool:
        assert remote.poll() is None, remote.communicate()[0]
        trials = _trials(url, "kill")
        done = any(t.state == TrialState.COMPLETE for t in trials)
        return done and any(t.state == TrialState.RUNNING and t.intermediate_values for t in trials)

    wait_for(mid_trial, timeout=120, interval=0.05, what="a trial in progress on machine-b")
    remote.send_signal(signal.SIGKILL)  # unshare --kill-child: the worker dies with it
    remote.communicate(timeout=60)
    killed_at = time.monotonic()
    before = _trials(url, "kill")
    (dead,) = [t for t in before if t.state == TrialState.RUNNING]
    assert dead.user_attrs["worker"]["host"] == "machine-b"
    assert dead.user_attrs["worker"]["pid"] == 1  # its own PID namespace: meaningless here
    remote_complete = sum(t.state == TrialState.COMPLETE for t in before)

    # Not judged by process id on this machine: the trial stays RUNNING until it is stale.
    time.sleep(max(0.0, killed_at + HEARTBEAT_GRACE + 1.5 - time.monotonic()))
    assert {t.number: t.state for t in _trials(url, "kill")}[dead.number] == TrialState.RUNNING

    host = _host_tune(synth_dir, url, "kill", "--trials", "4", "--jobs", "2", *RIDGE,
                      env=HEARTBEAT)  # fmt: skip
    output = host.communicate(timeout=300)[0]
    assert host.returncode == 0, output
    assert "this run: 4 complete" in output, output
    after = {t.number: t for t in _trials(url, "kill")}
    assert after[dead.number].state == TrialState.FAIL
    retries = [t for t in after.values() if t.system_attrs.get("failed_trial") == dead.number]
    assert len(retries) == 1
    assert retries[0].state == TrialState.COMPLETE and retries[0].params == dead.params
    assert retries[0].user_attrs["worker"]["host"] == socket.gethostname()
    assert not [t for t in after.values() if t.state == TrialState.RUNNING]
    ours = [t for t in after.values() if t.user_attrs["worker"]["host"] == socket.gethostname()]
    assert len(ours) == 4 and all(t.state == TrialState.COMPLETE for t in ours)
    states = Counter(t.state for t in after.values())
    assert states == {TrialState.COMPLETE: remote_complete + 4, TrialState.FAIL: 1}
    assert sorted(after) == list(range(len(after)))
