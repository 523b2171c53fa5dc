"""Feature files: a dense users x features table, parquet or CSV chosen by the extension."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pandas as pd

from ltr.errors import DataError, LtrError
from ltr.features.matrix import FeatureMatrix
from ltr.fileio import atomic_path

#: File extensions `write_features` and `read_features` understand.
FORMATS: dict[str, str] = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


#: pandas < 3 parses CSV floats to within an ulp unless asked to round-trip exactly (None:
#: pandas' default, exact from pandas 3 on).
_EXACT_FLOATS: Literal["round_trip"] | None = (
    "round_trip" if int(pd.__version__.split(".")[0]) < 3 else None
)


def feature_format(path: str | Path) -> str:
    """``parquet`` or ``csv`` from the extension; a clear error for anything else."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        known = ", ".join(FORMATS)
        raise LtrError(
            f"{path}: unknown feature file extension {suffix or '(none)'!r} (use one of {known})"
        )
    return FORMATS[suffix]


def write_features(matrix: FeatureMatrix, path: str | Path) -> Path:
    """Write `matrix.to_frame()` (index ``user``) atomically; the format follows the extension."""
    kind = feature_format(path)
    frame = matrix.to_frame()
    with atomic_path(path) as tmp:
        if kind == "parquet":
            frame.to_parquet(tmp, engine="pyarrow", index=True)
        else:
            frame.to_csv(tmp, index=True, index_label="user")
    return Path(path)


def read_features(path: str | Path) -> pd.DataFrame:
    """Read a file of `write_features` back: index ``user`` (str), one float column per feature."""
    kind = feature_format(path)
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "feature file not found")
    if kind == "parquet":
        frame = pd.read_parquet(path, engine="pyarrow")
    else:
        frame = pd.read_csv(
            path, index_col="user", dtype={"user": str}, float_precision=_EXACT_FLOATS
        )
    frame.index = pd.Index(frame.index.astype(str).tolist(), name="user")
    frame.columns = pd.Index([str(c) for c in frame.columns])
    return frame.astype(float)
