"""The setup lock of SQLite studies: next to the database, never through a symlink, removed
afterwards, and not defeated by a stale lock file another user left behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from ltr.errors import StudyError
from ltr.tuning.storage import lock_path, open_storage, setup_lock

NOBODY = 65534


def test_the_lock_lives_next_to_the_database_and_is_removed(tmp_path: Path) -> None:
    db = tmp_path / "studies.db"
    url = f"sqlite:///{db}"
    before = set(os.listdir(tempfile.gettempdir()))
    with setup_lock(url):
        assert lock_path(db).is_file() and lock_path(db).parent == tmp_path
    assert not lock_path(db).exists()
    open_storage(url)
    assert sorted(os.listdir(tmp_path)) == ["studies.db"]
    new = set(os.listdir(tempfile.gettempdir())) - before
    assert not [name for name in new if "ltr-study" in name]


def test_a_symlink_in_place_of_the_lock_is_refused(tmp_path: Path) -> None:
    db, target = tmp_path / "studies.db", tmp_path / "precious.txt"
    target.write_text("keep me")
    lock_path(db).symlink_to(target)
    with pytest.raises(StudyError, match="the study lock is a symbolic link; remove it"):
        open_storage(f"sqlite:///{db}")
    assert target.read_text() == "keep me"


@pytest.mark.slow
def test_holders_take_turns_even_when_the_file_is_removed_between_them(tmp_path: Path) -> None:
    """Another process removing the file while we wait must not let two holders in."""
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    inside, overlaps = [], []
    code = (
        "import sys, time\n"
        "from ltr.tuning.storage import setup_lock\n"
        "with setup_lock(sys.argv[1]):\n"
        "    print('in', flush=True); time.sleep(0.3)\n"
    )
    processes = [
        subprocess.Popen([sys.executable, "-c", code, url], stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]

    def watch(process: subprocess.Popen) -> None:
        assert process.stdout is not None
        for _ in process.stdout:
            inside.append(time.monotonic())
            overlaps.append(len(inside))

    threads = [threading.Thread(target=watch, args=(p,)) for p in processes]
    for thread in threads:
        thread.start()
    for process in processes:
        assert process.wait(timeout=60) == 0
    for thread in threads:
        thread.join()
    starts = sorted(inside)
    assert len(starts) == 3
    assert all(b - a >= 0.25 for a, b in zip(starts, starts[1:], strict=False))
    assert not lock_path(tmp_path / "studies.db").exists()


def _as_nobody(code: str, *args: str) -> subprocess.CompletedProcess:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to act as another user")
    command = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    return subprocess.run(
        [*command, sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def shared(tmp_path: Path):  # noqa: ANN201 - a generator fixture
    """A folder every user may write (pytest's own temp folders are private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="ltr-lock-test-"))
    folder.chmod(0o777)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


OPEN = "import sys\nfrom ltr.tuning.storage import open_storage\nopen_storage(sys.argv[1])\n"


@pytest.mark.slow
def test_a_stale_lock_of_another_user_is_used_and_removed(shared: Path) -> None:
    db = shared / "studies.db"
    lock_path(db).write_text("")  # left by root (another user for nobody), readable
    lock_path(db).chmod(0o644)
    done = _as_nobody(OPEN, f"sqlite:///{db}")
    assert done.returncode == 0, done.stderr
    assert db.is_file() and not lock_path(db).exists()


@pytest.mark.slow
def test_an_unreadable_lock_of_another_user_is_one_clear_error(shared: Path) -> None:
    db = shared / "studies.db"
    lock_path(db).write_text("")
    lock_path(db).chmod(0o600)
    code = (
        "import sys\nfrom ltr.errors import StudyError\n"
        "from ltr.tuning.storage import open_storage\n"
        "try:\n    open_storage(sys.argv[1])\n"
        "except StudyError as e:\n    print(e); sys.exit(3)\n"
    )
    done = _as_nobody(code, f"sqlite:///{db}")
    assert done.returncode == 3, done.stderr
    assert "cannot open the study lock (it belongs to user id 0" in done.stdout
    assert "remove it if no `ltr tune` is running on this study" in done.stdout
