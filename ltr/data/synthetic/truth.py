"""`synthetic_truth.json`: what a generated folder holds beyond the challenge files.

The seed, the noise ceiling, the appeal model drawn for the seed, the noise-free labels of every
user and the withheld noisy labels (test). The loaders ignore the file; `write_synthetic` uses
it to recognise a folder it may overwrite.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pandas as pd

from ltr.data.synthetic.labels import N_ANNOTATORS
from ltr.situations import SITUATIONS

if TYPE_CHECKING:
    from ltr.data.synthetic.generator import SyntheticData

#: Extra file written next to the challenge files; loaders ignore it.
TRUTH_FILE = "synthetic_truth.json"


def _by_split(frame: pd.DataFrame) -> dict[str, dict[str, dict[str, float]]]:
    """`{split: {user: {acc, bank, it, wait}}}` of a label frame, in row order."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for split, rows in frame.groupby("split", sort=False):
        values = rows[list(SITUATIONS)].to_numpy(dtype=float).tolist()
        out[str(split)] = {
            str(user): dict(zip(SITUATIONS, row, strict=True))
            for user, row in zip(rows["user"], values, strict=True)
        }
    return out


def truth_document(data: SyntheticData) -> dict[str, Any]:
    """The JSON object of `TRUTH_FILE` (NaN ceilings of tiny splits become null)."""
    return {
        "generator": "ltr.data.synthetic",
        "seed": data.seed,
        "n_users": data.n_users,
        "n_annotators": N_ANNOTATORS,
        "noise_ceiling": {
            split: {k: (None if math.isnan(v) else v) for k, v in scores.items()}
            for split, scores in data.noise_ceiling.items()
        },
        "appeal_model": data.appeal.to_json(),
        "clean_labels": _by_split(data.clean_labels),
        "withheld_labels": _by_split(data.withheld_labels),
    }
