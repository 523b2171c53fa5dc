"""The hand-made data folders of tests/data, ready to load.

Their files are stored with a ``.case`` suffix (``class_scores.json.case``,
``visual_concepts.case/``) so that nothing in the repository looks like a copy of the real data
sets, which must stay out of git. `DATA` is a temporary copy of tests/data with the suffix
stripped from every name, made once per test session.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

SOURCE = Path(__file__).resolve().parent / "data"
SUFFIX = ".case"


def materialise(source: Path, target: Path) -> Path:
    """Copy `source` to `target`, removing `SUFFIX` from every file and folder name."""
    for path in sorted(source.rglob("*")):
        relative = Path(*(part.removesuffix(SUFFIX) for part in path.relative_to(source).parts))
        destination = target / relative
        if path.is_dir():
            destination.mkdir(parents=True, exist_ok=True)
        else:
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, destination)
    return target


def _session_copy() -> Path:
    root = Path(tempfile.mkdtemp(prefix="ltr-test-data-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return materialise(SOURCE, root / "data")


#: tests/data with real file names, shared by every test module (read-only by convention:
#: tests that change a folder copy it to their own tmp_path first).
DATA: Path = _session_copy()
