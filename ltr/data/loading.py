"""Load any supported folder: the layout is detected from the files it holds."""

from __future__ import annotations

from pathlib import Path

from ltr.data.challenge import is_challenge_layout, load_challenge
from ltr.data.dataset import Dataset
from ltr.data.research import is_research_layout, load_research
from ltr.errors import DataError


def detect_layout(root: str | Path) -> str:
    """``challenge`` or ``research``; a clear error for anything else."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(root, "not a folder" if root.exists() else "folder not found")
    if is_challenge_layout(root):
        return "challenge"
    if is_research_layout(root):
        return "research"
    raise DataError(
        root,
        "no known data layout here: expected class_scores.json + predictions_{split}.json "
        "(challenge layout) or visual_concepts/ + train_test_split_*.json (research layout)",
    )


def load_dataset(root: str | Path, *, strict_ratings: bool = False) -> Dataset:
    """Load a data folder of either layout into one normalised `Dataset`.

    Detected concepts without a rating are a warning (recorded in `Dataset.warnings`, counted
    as rating 0) unless `strict_ratings` makes them an error.
    """
    layout = detect_layout(root)
    loader = load_challenge if layout == "challenge" else load_research
    return loader(root, strict_ratings=strict_ratings)
