"""Where a page's numbers come from: the model, its training data and CV figure, the split.

A page without this cannot be checked or compared with another one. The date is the only
time-dependent fact: it comes from the model directory (when its manifest was written) or is
injected (`date=...`, or the reproducible-builds convention ``SOURCE_DATE_EPOCH``), so two
identical runs write identical pages.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ltr import __version__
from ltr.data import Dataset
from ltr.models.persistence import MANIFEST, TrainedModel


@dataclass(frozen=True)
class Provenance:
    """Facts a page states about itself, as plain text (escaped when rendered)."""

    model: str
    spec: str
    trained_on: str
    cv: str
    data: str
    split: str
    n_users: int
    date: str
    date_label: str
    ltr_version: str = __version__


def describe_spec(spec: Mapping[str, Any]) -> str:
    """A model spec in a few words: ``ensemble of 0.5 x ridge + 0.5 x xgb-regression``."""
    learner = str(spec.get("learner", "?"))
    if spec.get("members"):
        weights = spec.get("weights") or [None] * len(spec["members"])
        parts = [
            f"{w:g} x {m.get('learner', '?')}" if isinstance(w, int | float) else m["learner"]
            for m, w in zip(spec["members"], weights, strict=False)
        ]
        learner = f"ensemble of {' + '.join(parts)}"
    details = [str(spec.get("formulation", "per-situation"))]
    if spec.get("calibration", "none") != "none":
        details.append(f"{spec['calibration']} calibration")
    return f"{learner} ({', '.join(details)})"


def describe_cv(cv: Mapping[str, Any] | None) -> str:
    """The CV figure stored with the model, or why there is none."""
    if not cv or "mean_pearson" not in cv:
        return "none stored (train with --cv-folds K to keep one)"
    text = f"mean Pearson {cv['mean_pearson']:.4f}"
    if cv.get("std_pearson") is not None:
        text += f" ± {cv['std_pearson']:.4f} across folds"
    if cv.get("folds"):
        text += f", {cv['folds']}-fold x {cv.get('repeats') or 1}"
    if cv.get("study") is not None:
        text += f", study {cv['study']} trial {cv.get('trial')}"
    return text


def _date(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).date().isoformat()


def page_date(model_dir: str | Path | None, date: str | None = None) -> tuple[str, str]:
    """(date, what it is): injected, else ``SOURCE_DATE_EPOCH``, else the model's save date."""
    if date is not None:
        return date, "Date"
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch.isdigit():
        return _date(int(epoch)), "Date"
    if model_dir is not None and (Path(model_dir) / MANIFEST).is_file():
        return _date((Path(model_dir) / MANIFEST).stat().st_mtime), "Model saved"
    return "unknown", "Date"


def provenance(
    trained: TrainedModel,
    dataset: Dataset,
    split: str,
    *,
    model_dir: str | Path | None = None,
    date: str | None = None,
) -> Provenance:
    """The provenance of pages about `split` of `dataset` scored by `trained`."""
    manifest = trained.manifest
    data = manifest.get("data") or {}
    source = Path(data["source"]).name if data.get("source") else "in-memory data"
    n_train = data.get("n_users")
    trained_on = (
        f"{source} {data.get('split', '?')}"
        + (f" ({n_train:,} users)" if isinstance(n_train, int) else "")
        + f", data fingerprint {data.get('fingerprint', '?')}"
    )
    n_users = len(dataset.split_users(split))
    when, label = page_date(model_dir, date)
    return Provenance(
        model=Path(model_dir).name if model_dir is not None else "in-memory model",
        spec=describe_spec(manifest.get("spec") or {}),
        trained_on=trained_on,
        cv=describe_cv(manifest.get("cv")),
        data=f"{dataset.name} {split} ({n_users:,} users), data fingerprint "
        f"{dataset.fingerprint()}",
        split=split,
        n_users=n_users,
        date=when,
        date_label=label,
    )
