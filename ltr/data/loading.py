"""Load any supported folder: the layout is detected from the files it holds."""

from __future__ import annotations

from pathlib import Path

from ltr.data.challenge import (
    PREDICTIONS_FILES,
    RATINGS_FILE,
    SPLITS,
    is_challenge_layout,
    load_challenge,
    predictions_file,
)
from ltr.data.dataset import Dataset
from ltr.data.research import CONCEPTS_DIR, SPLIT_GLOB, is_research_layout, load_research
from ltr.errors import DataError

LAYOUTS = (
    f"{RATINGS_FILE} + {PREDICTIONS_FILES} (challenge layout) or "
    f"{CONCEPTS_DIR}/ + {SPLIT_GLOB} (research layout)"
)


def _half_layout_error(root: Path) -> DataError | None:
    """The error for a folder holding one part of a layout but not the rest, if it is one."""
    known = [predictions_file(root, s).name for s in SPLITS if predictions_file(root, s).is_file()]
    predictions = known or sorted(p.name for p in root.glob("predictions_*.json"))
    if predictions and not (root / RATINGS_FILE).is_file():
        return DataError(
            root / RATINGS_FILE,
            f"file not found: the challenge layout needs the concept ratings next to "
            f"{predictions[0]}",
        )
    if (root / RATINGS_FILE).is_file() and not predictions:
        return DataError(
            root,
            f"{RATINGS_FILE} found but no {PREDICTIONS_FILES} file",
        )
    split_files = sorted(p.name for p in root.glob(SPLIT_GLOB))
    if split_files and not (root / CONCEPTS_DIR).is_dir():
        return DataError(
            root / CONCEPTS_DIR,
            f"folder not found: the research layout needs the concept ratings next to "
            f"{split_files[0]}",
        )
    if (root / CONCEPTS_DIR).is_dir() and not split_files:
        return DataError(root, f"{CONCEPTS_DIR}/ found but no {SPLIT_GLOB} file")
    return None


def detect_layout(root: str | Path) -> str:
    """``challenge`` or ``research``; a clear error for anything else."""
    root = Path(root)
    if not root.exists():
        raise DataError(root, "folder not found")
    if not root.is_dir():
        raise DataError(root, f"not a folder: expected a data folder holding {LAYOUTS}")
    if is_challenge_layout(root):
        return "challenge"
    if is_research_layout(root):
        return "research"
    error = _half_layout_error(root)
    if error is not None:
        raise error
    entries = sorted(p.name + ("/" if p.is_dir() else "") for p in root.iterdir())
    if not entries:
        raise DataError(root, f"folder is empty: expected {LAYOUTS}")
    shown = ", ".join(entries[:8]) + (f" and {len(entries) - 8} more" if len(entries) > 8 else "")
    raise DataError(root, f"no known data layout (found {shown}): expected {LAYOUTS}")


def load_dataset(root: str | Path, *, strict_ratings: bool = False) -> Dataset:
    """Load a data folder of either layout into one normalised `Dataset`.

    Detected concepts without a rating are a warning (recorded in `Dataset.warnings`, counted
    as rating 0) unless `strict_ratings` makes them an error. Files are only read: loading
    writes nothing and keeps no state between calls.
    """
    layout = detect_layout(root)
    loader = load_challenge if layout == "challenge" else load_research
    return loader(root, strict_ratings=strict_ratings)
