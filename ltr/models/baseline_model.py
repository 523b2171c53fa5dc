"""BASE as a model: its only parameter, the confidence threshold, is fitted on training users.

It reads the ``base@{threshold}:{situation}`` columns of the featuriser, so it is scored in
cross-validation exactly like every learned model (the threshold is chosen on each training fold).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from ltr.baseline import choose_threshold
from ltr.errors import ModelError
from ltr.features import FeatureMatrix
from ltr.fileio import write_json_atomic
from ltr.models.interface import ProfileModel
from ltr.situations import SITUATIONS

_BASE_NAME = re.compile(r"^base@(?P<threshold>[0-9.]+):(?P<situation>\w+)$")


def base_columns(features: FeatureMatrix) -> dict[float, np.ndarray]:
    """Threshold -> column indices of its four BASE columns (SITUATIONS order)."""
    found: dict[float, dict[str, int]] = {}
    for index, name in enumerate(features.columns["name"]):
        match = _BASE_NAME.match(str(name))
        if match:
            found.setdefault(float(match["threshold"]), {})[match["situation"]] = index
    columns = {
        t: np.array([cols[s] for s in SITUATIONS])
        for t, cols in sorted(found.items())
        if all(s in cols for s in SITUATIONS)
    }
    if not columns:
        raise ModelError("BASE needs the 'base' feature family, which these features lack")
    return columns


class BaselineModel(ProfileModel):
    """The organisers' BASE with a threshold chosen on the training users."""

    def _fit_scores(self, features: FeatureMatrix, y: np.ndarray) -> None:
        X = features.dense()
        candidates = {t: X[:, cols] for t, cols in base_columns(features).items()}
        self.threshold_ = choose_threshold(candidates, y)

    def _predict_scores(self, features: FeatureMatrix) -> np.ndarray:
        columns = base_columns(features)
        if self.threshold_ not in columns:
            raise ModelError(f"these features lack BASE columns for threshold {self.threshold_}")
        return features.dense()[:, columns[self.threshold_]]

    def _save_state(self, directory: Path, prefix: str) -> list[str]:
        name = f"{prefix}base.json"
        write_json_atomic(directory / name, {"threshold": self.threshold_})
        return [name]

    def _load_state(self, directory: Path, prefix: str) -> None:
        state = json.loads((directory / f"{prefix}base.json").read_text(encoding="utf-8"))
        self.threshold_ = float(state["threshold"])
