"""`write_synthetic`: a generated set on disk, in the challenge layout plus its truth file."""

from __future__ import annotations

import json
from pathlib import Path

from ltr.data.challenge_writer import write_challenge_layout
from ltr.data.synthetic.generator import SyntheticData, generate_synthetic
from ltr.data.synthetic.truth import TRUTH_FILE
from ltr.errors import LtrError
from ltr.fileio import write_text_atomic


def write_synthetic(out_dir: Path, n_users: int = 1000, seed: int = 0) -> SyntheticData:
    """Generate a synthetic set and write it in the challenge layout plus `synthetic_truth.json`.

    Args:
        out_dir: The folder to write. It may not exist yet, be empty, or hold a synthetic set
            (overwritten file by file, atomically); anything else is refused, so a typo never
            clobbers real data.
        n_users: Users over all splits.
        seed: Seed of everything drawn.

    Returns:
        The generated data set and its truth, as `generate_synthetic` returns them.

    Raises:
        LtrError: `out_dir` is a file, holds other files, or cannot be written.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise LtrError(f"{out_dir}: exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / TRUTH_FILE).is_file():
        raise LtrError(
            f"{out_dir}: folder is not empty and holds no synthetic data set ({TRUTH_FILE}); "
            "choose an empty or new folder"
        )
    data = generate_synthetic(n_users=n_users, seed=seed)
    # The truth file first: a folder left half-written by a crash is still recognised as
    # synthetic and can simply be generated again. Compact JSON: at 100,000 users an indented
    # file takes seconds more to write.
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out_dir / TRUTH_FILE, json.dumps(data.truth_json(), allow_nan=False))
        write_challenge_layout(data.dataset, out_dir)
    except OSError as error:
        where = error.filename or out_dir
        raise LtrError(f"{where}: cannot write the synthetic data set ({error.strerror})") from None
    return data
