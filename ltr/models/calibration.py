"""Output calibration: Pearson rewards linear agreement with the labels, not only the order.

- ``none``: raw scores.
- ``normal``: a score -> its mid-rank among the out-of-fold training scores -> the standard
  normal quantile of that share (interpolated between training scores, clipped at the ends).
  Removes outlying scores that would dominate a Pearson correlation. The map is fitted on the
  training users, so a user's score does not depend on who else is scored with them.
- ``linear``: a least-squares line from out-of-fold scores to the training labels. It leaves the
  Pearson correlation unchanged (an affine map) but puts scores on the label scale, which makes
  them readable as appeal scores.
- ``isotonic``: a monotone fit from out-of-fold scores to the training labels (scikit-learn);
  can straighten a curved score-label relation, which Pearson rewards.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

from ltr.errors import LtrError

#: Calibrations that `Calibrator` fits (every one but ``none``).
FITTED = ("normal", "linear", "isotonic")


def normal_map(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct scores, normal quantile of each one's mid-rank share) of one column.

    Ties share their mean rank, so equal training scores map to one value.
    """
    grid, counts = np.unique(np.asarray(scores, dtype=float), return_counts=True)
    mid_ranks = np.cumsum(counts) - (counts - 1) / 2.0  # 1-based mean rank of each value
    return grid, norm.ppf((mid_ranks - 0.5) / counts.sum())


class Calibrator:
    """One monotone map per situation column, fitted on out-of-fold scores."""

    def __init__(self, method: str) -> None:
        if method not in FITTED:
            raise LtrError(f"calibration {method!r} is not fitted (use {', '.join(FITTED)})")
        self.method = method

    def fit(self, scores: np.ndarray, labels: np.ndarray) -> Calibrator:
        self.maps_: list[tuple[np.ndarray, np.ndarray]] = []
        for j in range(scores.shape[1]):
            x, y = scores[:, j], labels[:, j]
            if self.method == "normal":
                self.maps_.append(normal_map(x))
            elif self.method == "linear":
                slope, intercept = np.polyfit(x, y, 1) if np.ptp(x) > 0 else (0.0, y.mean())
                grid = np.array([x.min(), x.max()]) if np.ptp(x) > 0 else np.array([x[0], x[0]])
                self.maps_.append((grid, slope * grid + intercept))
            else:
                from sklearn.isotonic import IsotonicRegression

                iso = IsotonicRegression(out_of_bounds="clip").fit(x, y)
                self.maps_.append((iso.X_thresholds_.copy(), iso.y_thresholds_.copy()))
        return self

    def transform(self, scores: np.ndarray) -> np.ndarray:
        out = np.empty_like(scores, dtype=float)
        for j, (grid, values) in enumerate(self.maps_):
            if self.method == "linear" and grid[1] > grid[0]:
                slope = (values[1] - values[0]) / (grid[1] - grid[0])
                out[:, j] = values[0] + slope * (scores[:, j] - grid[0])  # extrapolates
            else:
                out[:, j] = np.interp(scores[:, j], grid, values)
        return out

    def to_dict(self) -> dict:
        return {"method": self.method, "maps": [[g.tolist(), v.tolist()] for g, v in self.maps_]}

    @classmethod
    def from_dict(cls, data: dict) -> Calibrator:
        calibrator = cls(data["method"])
        calibrator.maps_ = [(np.asarray(g, float), np.asarray(v, float)) for g, v in data["maps"]]
        return calibrator
