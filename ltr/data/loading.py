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
    """The layout of a data folder, from the files it holds.

    Args:
        root: The data folder.

    Returns:
        ``"challenge"`` (``class_scores.json`` + ``predictions_*.json``) or ``"research"``
        (``visual_concepts/`` + ``train_test_split_*.json``).

    Raises:
        DataError: The folder is missing, is not a folder, is empty, holds only part of a
            layout, or matches neither; the message says what was found and what is expected.
    """
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

    Every record is validated; the first problem stops loading with a message naming the file,
    the record and what is wrong. Files are only read: loading writes nothing and keeps no
    state between calls.

    Args:
        root: The data folder (challenge or research layout, detected by `detect_layout`).
        strict_ratings: Make a detected concept without a rating an error. By default it is a
            warning (recorded in `Dataset.warnings`) and the concept counts as rating 0.

    Returns:
        The data set: ratings, detections, images, users and the labels present in the folder.

    Raises:
        DataError: A file is missing or malformed, or the records are inconsistent (invalid
            JSON, a box outside [0, 1], a user in two splits, labels without detections, ...).

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from ltr.data.synthetic import write_synthetic
        >>> folder = Path(tempfile.mkdtemp()) / "synthetic"
        >>> _ = write_synthetic(folder, n_users=50, seed=0)
        >>> dataset = load_dataset(folder)
        >>> dataset.layout, dataset.splits
        ('challenge', ('train', 'val', 'test'))
    """
    layout = detect_layout(root)
    loader = load_challenge if layout == "challenge" else load_research
    return loader(root, strict_ratings=strict_ratings)
