"""The installed package: `tuning/` ships as `ltr.tuning`, and no top-level `tuning` exists.

Built as a wheel and installed into a fresh virtual environment (run from a neutral folder, so
the repository is not on the import path), as a user's `pip install` would.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q"] + ["-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (found,) = out.glob("ltr-*.whl")
    return found


@pytest.mark.slow
def test_the_wheel_holds_ltr_tuning_and_no_top_level_tuning(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "ltr/tuning/__init__.py" in names and "ltr/tuning/runner.py" in names
    assert not [n for n in names if n.startswith("tuning/")]
    assert {n.split("/")[0] for n in names if not n.startswith("ltr-")} == {"ltr"}


@pytest.mark.slow
def test_a_fresh_venv_imports_ltr_tuning_and_not_tuning(wheel: Path, tmp_path: Path) -> None:
    fresh = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(fresh)], check=True, timeout=120)
    python = fresh / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    # the dependencies come from this environment's site-packages, after the fresh one's own
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(purelib) / "zz_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"])
    code = (
        "import importlib.util, ltr, ltr.tuning, ltr.tuning.runner\n"
        "assert importlib.util.find_spec('tuning') is None, 'a top-level tuning package'\n"
        "print(ltr.tuning.__file__)\n"
    )
    done = subprocess.run(
        [str(python), "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith(purelib)  # the installed copy, not the repository


@pytest.mark.slow
def test_the_wheel_declares_the_extras_the_docs_name(wheel: Path) -> None:
    """`pip install 'ltr[postgres]'` etc. bring their driver/engine (the wheel's metadata)."""
    archive = zipfile.ZipFile(wheel)
    (metadata,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
    lines = archive.read(metadata).decode().splitlines()
    extras = {line.split(": ", 1)[1] for line in lines if line.startswith("Provides-Extra: ")}
    assert {"postgres", "dask", "dashboard", "test", "docs", "dev"} <= extras
    requires = [line.split(": ", 1)[1] for line in lines if line.startswith("Requires-Dist: ")]

    def needs(extra: str, package: str) -> bool:
        return any(r.startswith(package) and f'extra == "{extra}"' in r for r in requires)

    assert needs("postgres", "psycopg[binary]")
    assert needs("dask", "dask[distributed]")
    assert needs("dashboard", "optuna-dashboard")
    assert needs("docs", "mkdocs") and needs("dev", "mypy")
    assert not any("extra ==" not in r and r.startswith(("mkdocs", "mypy")) for r in requires)
