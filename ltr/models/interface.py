"""The one interface every model follows: features + labels in, four scores per user out.

Like a scikit-learn estimator: the spec (hyper-parameters) is kept untouched by `__init__`, `fit`
learns state named with a trailing underscore, and `predict` checks it gets the features it was
trained on. Subclasses implement `_fit_scores`/`_predict_scores` on plain arrays and
`_save_state`/`_load_state` for their native files; feature selection, label alignment and
calibration live here once.
"""

from __future__ import annotations

import dataclasses
import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold

from ltr.errors import ModelError
from ltr.features import FeatureMatrix
from ltr.fileio import write_json_atomic
from ltr.models.calibration import FITTED, Calibrator
from ltr.models.learners import backend_refusal
from ltr.models.spec import ModelSpec
from ltr.situations import SITUATIONS

#: Inner folds used to get out-of-fold scores for a fitted calibration.
CALIBRATION_FOLDS = 3


def aligned_labels(features: FeatureMatrix, labels: pd.DataFrame) -> np.ndarray:
    """Labels as an (n_users x 4) array in the row order of `features`."""
    missing = features.users.difference(labels.index)
    if len(missing):
        raise ModelError(f"{len(missing)} user(s) have features but no labels, e.g. {missing[0]!r}")
    return labels.loc[features.users, list(SITUATIONS)].to_numpy(dtype=float)


class ProfileModel(ABC):
    """The interface of every model: features and labels in, four scores per user out.

    Build one with `ltr.models.build_model`. Like a scikit-learn estimator, `__init__` keeps
    the spec untouched, `fit` learns state named with a trailing underscore, and `predict`
    checks it gets the features the model was trained on.

    Args:
        spec: The model's description.
        threads: Threads per learner.
    """

    def __init__(self, spec: ModelSpec, *, threads: int = 1) -> None:
        self.spec = spec
        self.threads = threads

    # ------------------------------------------------------------------ subclass hooks
    @abstractmethod
    def _fit_scores(self, features: FeatureMatrix, y: np.ndarray) -> None:
        """Learn from the selected features and an (n x 4) label array."""

    @abstractmethod
    def _predict_scores(self, features: FeatureMatrix) -> np.ndarray:
        """Raw (n x 4) scores for the selected features."""

    @abstractmethod
    def _save_state(self, directory: Path, prefix: str) -> list[str]:
        """Write learned state into `directory` (file names start with `prefix`); list them."""

    @abstractmethod
    def _load_state(self, directory: Path, prefix: str) -> None: ...

    # ------------------------------------------------------------------------- public API
    def select(self, features: FeatureMatrix) -> FeatureMatrix:
        """The feature families this model uses."""
        return features if self.spec.families is None else features.select(self.spec.families)

    def fit(self, features: FeatureMatrix, labels: pd.DataFrame) -> ProfileModel:
        """Train on every user of `features`.

        Args:
            features: The training users' features (the model selects its families).
            labels: Labels indexed by user, columns `SITUATIONS`; every user of `features` needs
                a row.

        Returns:
            The trained model itself.

        Raises:
            ModelError: A user of `features` has no labels, the spec's families give no
                column, or the back-end refuses a parameter value (one line naming the
                learner, the parameter and the back-end's reason).
        """
        y = aligned_labels(features, labels)
        selected = self.select(features)
        if selected.shape[1] == 0 and self.spec.families is not None:
            raise ModelError(
                f"{self.spec.learner}: the feature families {', '.join(self.spec.families)} "
                "give no column on these data (e.g. 'area' needs boxes)"
            )
        self.feature_names_ = list(selected.columns["name"])
        self.calibrator_: Calibrator | None = None
        try:
            if self.spec.calibration in FITTED:
                oof = self._out_of_fold_scores(selected, y)
                self.calibrator_ = Calibrator(self.spec.calibration).fit(oof, y)
            self._fit_scores(selected, y)
        except Exception as error:
            # the one place a back-end's refusal of a value becomes the user's error; an
            # ensemble's member has translated its own already (a ModelError passes through)
            refusal = backend_refusal(self.spec.learner, self.spec.params, error)
            if refusal is None:
                raise
            raise refusal from None
        return self

    def predict_array(self, features: FeatureMatrix) -> np.ndarray:
        """Calibrated scores as an array.

        Args:
            features: Features with the training columns (more are ignored).

        Returns:
            An ``n_users x 4`` float64 array in the row order of `features`, columns
            `SITUATIONS`.

        Raises:
            ModelError: The model is not trained, or a training column is missing.
        """
        if not hasattr(self, "feature_names_"):
            raise ModelError("the model is not trained yet")
        selected = self.select(features)
        names = list(selected.columns["name"])
        if names != self.feature_names_:
            raise ModelError(
                "the features differ from those the model was trained on "
                f"({len(names)} vs {len(self.feature_names_)} columns; first difference: "
                f"{_first_difference(names, self.feature_names_)})"
            )
        # float64 always: XGBoost predicts float32, and an ensemble standardising float32 scores
        # would compute differently before saving and after loading (centres read back as float64)
        scores = np.asarray(self._predict_scores(selected), dtype=np.float64)
        if self.calibrator_ is not None:
            scores = self.calibrator_.transform(scores)
        return scores

    def predict(self, features: FeatureMatrix) -> pd.DataFrame:
        """Scores of every user of `features`.

        Args:
            features: Features with the training columns (more are ignored).

        Returns:
            A frame indexed by user, columns `SITUATIONS` (``acc, bank, it, wait``).

        Raises:
            ModelError: The model is not trained, or a training column is missing.
        """
        return pd.DataFrame(
            self.predict_array(features), index=features.users, columns=list(SITUATIONS)
        )

    def _clone(self, spec: ModelSpec) -> ProfileModel:
        """An untrained model of the same kind for `spec`."""
        return type(self)(spec, threads=self.threads)

    def _out_of_fold_scores(self, features: FeatureMatrix, y: np.ndarray) -> np.ndarray:
        inner = self._clone(dataclasses.replace(self.spec, calibration="none", families=None))
        oof = np.zeros_like(y)
        folds = KFold(CALIBRATION_FOLDS, shuffle=True, random_state=self.spec.seed)
        for train, held in folds.split(y):
            inner._fit_scores(features.take(train), y[train])
            oof[held] = inner._predict_scores(features.take(held))
        return oof

    # ------------------------------------------------------------------------ persistence
    def save(self, directory: Path, prefix: str = "") -> list[str]:
        """Write the learned state (native files + a small JSON) and return the file names."""
        state: dict[str, Any] = {
            "feature_names": self.feature_names_,
            "calibrator": None if self.calibrator_ is None else self.calibrator_.to_dict(),
        }
        name = f"{prefix}state.json"
        write_json_atomic(directory / name, state)
        return [name, *self._save_state(directory, prefix)]

    def load(self, directory: Path, prefix: str = "") -> ProfileModel:
        """Read the state `save` wrote (a model folder: `ltr.models.persistence.load_trained`).

        Args:
            directory: The folder holding the files.
            prefix: The prefix of this model's files (ensemble members use ``m1-``, ...).

        Returns:
            The trained model itself.

        Raises:
            ModelError: A file is missing or malformed.
        """
        path = directory / f"{prefix}state.json"
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ModelError(f"{path}: cannot read model state ({error})") from None
        self.feature_names_ = list(state["feature_names"])
        calibrator = state.get("calibrator")
        self.calibrator_ = None if calibrator is None else Calibrator.from_dict(calibrator)
        self._load_state(directory, prefix)
        return self


def _first_difference(a: list[str], b: list[str]) -> str:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return f"column {i + 1}: {x!r} vs {y!r}"
    return f"column {min(len(a), len(b)) + 1}: one list is longer"
