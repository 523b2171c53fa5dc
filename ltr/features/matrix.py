"""The feature matrix: users x features, sparse, with per-column metadata.

Per-concept blocks are mostly zeros (a profile shows ~25 of ~250 concepts), so values are a CSR
matrix; 100k users x ~1000 features would need 800 MB dense.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ltr.errors import LtrError
from ltr.features.config import check_families
from ltr.situations import SITUATIONS

COLUMN_FIELDS: tuple[str, ...] = ("name", "family", "situation", "concept")


@dataclass(frozen=True, eq=False)
class FeatureMatrix:
    """Features of a set of users.

    Attributes:
        users: row order (index named ``user``).
        values: float64 CSR matrix, ``len(users) x len(columns)``.
        columns: one row per feature: ``name`` (unique, e.g. ``freq:VC4``, ``base@0.5:acc``,
            ``n_images``), ``family``, ``situation`` (a code of `SITUATIONS` or None) and
            ``concept`` (or None).
    """

    users: pd.Index
    values: sp.csr_matrix
    columns: pd.DataFrame

    def __post_init__(self) -> None:
        users = pd.Index(self.users, name="user")
        values = self.values
        if not isinstance(values, sp.csr_matrix) or values.dtype != np.float64:
            values = sp.csr_matrix(values, dtype=np.float64)
        columns = self.columns.reset_index(drop=True)
        missing = [c for c in COLUMN_FIELDS if c not in columns.columns]
        if missing:
            raise ValueError(f"FeatureMatrix.columns lacks {missing}")
        if values.shape != (len(users), len(columns)):
            raise ValueError(
                f"values shape {values.shape} != ({len(users)} users, {len(columns)} columns)"
            )
        if columns["name"].duplicated().any():
            dup = columns.loc[columns["name"].duplicated(), "name"].iloc[0]
            raise ValueError(f"feature name {dup!r} is not unique")
        if users.has_duplicates:
            raise ValueError(f"user {users[users.duplicated()][0]!r} has two rows")
        object.__setattr__(self, "users", users)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "columns", columns)

    # ------------------------------------------------------------------------------ queries
    @property
    def shape(self) -> tuple[int, int]:
        """``(users, features)``."""
        return self.values.shape

    @property
    def names(self) -> pd.Index:
        """The feature names, in column order (index named ``feature``)."""
        names: pd.Index = pd.Index(self.columns["name"], name="feature")
        return names

    @property
    def families(self) -> tuple[str, ...]:
        """Families present, in column order."""
        return tuple(pd.unique(self.columns["family"]))

    def column(self, name: str) -> np.ndarray:
        """Values of one feature, one per user (dense)."""
        matches = np.flatnonzero(self.columns["name"].to_numpy() == name)
        if not matches.size:
            raise LtrError(f"no feature named {name!r}")
        return self.values[:, int(matches[0])].toarray().ravel()

    # -------------------------------------------------------------------------- subsetting
    def _take_columns(self, keep: np.ndarray) -> FeatureMatrix:
        idx = np.flatnonzero(keep)
        return FeatureMatrix(
            users=self.users,
            values=self.values[:, idx].tocsr(),
            columns=self.columns.iloc[idx].reset_index(drop=True),
        )

    def select(self, families: Iterable[str] | None = None) -> FeatureMatrix:
        """Only the columns of `families` (None = all). Known families absent here (e.g.
        ``area`` on data without boxes) are simply absent; unknown names are an error."""
        if families is None:
            return self
        wanted = list(families)
        check_families(wanted)
        return self._take_columns(self.columns["family"].isin(wanted).to_numpy())

    def for_situation(self, situation: str) -> FeatureMatrix:
        """Situation-agnostic columns plus `situation`'s, named without the situation suffix.

        The result has the same column names and order for every situation, so a pooled model
        can stack ``(user, situation)`` rows of the four situations.
        """
        if situation not in SITUATIONS:
            raise LtrError(f"unknown situation {situation!r} (known: {', '.join(SITUATIONS)})")
        sit = self.columns["situation"]
        picked = self._take_columns((sit.isna() | (sit == situation)).to_numpy())
        columns = picked.columns.copy()
        own = columns["situation"].notna().to_numpy()
        suffix = f":{situation}"
        columns.loc[own, "name"] = [n.removesuffix(suffix) for n in columns.loc[own, "name"]]
        return FeatureMatrix(users=picked.users, values=picked.values, columns=columns)

    def reindex(self, users: Sequence[str] | pd.Index) -> FeatureMatrix:
        """Rows for exactly `users`, in that order; unknown users are an error."""
        wanted = pd.Index(users, name="user")
        positions = self.users.get_indexer(wanted)
        if (positions < 0).any():
            missing = wanted[positions < 0]
            listing = ", ".join(map(repr, missing[:5])) + (" ..." if len(missing) > 5 else "")
            raise LtrError(f"{len(missing)} user(s) have no features: {listing}")
        return FeatureMatrix(users=wanted, values=self.values[positions], columns=self.columns)

    def take(self, rows: np.ndarray | Sequence[int]) -> FeatureMatrix:
        """Rows at integer positions `rows`, in that order (cross-validation folds)."""
        rows = np.asarray(rows, dtype=np.int64)
        return FeatureMatrix(users=self.users[rows], values=self.values[rows], columns=self.columns)

    # ---------------------------------------------------------------------------- exports
    def dense(self) -> np.ndarray:
        """Dense ``users x features`` array (small data only)."""
        return self.values.toarray()

    def to_frame(self) -> pd.DataFrame:
        """Dense DataFrame indexed by ``user``, one column per feature name."""
        names = pd.Index(self.columns["name"].tolist())  # default string dtype, as read back
        return pd.DataFrame(self.dense(), index=self.users.copy(), columns=names)
