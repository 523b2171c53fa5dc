"""Fresh-fold rescoring: is the study's choice really better than the untuned default?

A study's best CV score is the maximum of many noisy estimates on one set of folds, so it is
optimistic; the gain over the default it suggests is too. `rescore_trial` cross-validates the
chosen trial's spec and the family's default again, on folds the search never used (the study's
CV seed + `RESCORE_SEED_OFFSET`, 5-fold x 3), and compares them fold by fold with the corrected
resampled t-test (`ltr.stats`). The result is stored in the study (user attribute
``ltr:rescore:<trial>``) so that `ltr train --study`, `ltr studies show` and Python callers read
it instead of recomputing it; the default's figures are computed once per study and reused.

`ltr train --study` trains the tuned spec only when its fresh-fold mean beats the default's
(`Rescoring.tuned_wins`), so tuning can never make the trained model worse by the measure that
did not choose it. These folds do take part in that one binary choice: a figure that plays no
part in any choice needs yet other seeds (`benchmarks/tuning_budget.py` uses 1 and 2).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from ltr.cv import MIN_FOLD_USERS, cross_validate
from ltr.errors import StudyError
from ltr.models import ModelSpec
from ltr.stats import corrected_t_test
from ltr.tuning.objective import CVProtocol, TuningData, fold_summary
from ltr.tuning.space import get_space
from ltr.tuning.studies import (
    DEFAULT_PENALTY,
    RESCORE_ATTR_PREFIX,
    TrialScore,
    chosen_spec,
    read_identity,
    scored_trials,
)

#: The rescoring protocol: 5-fold x 3 repeats (15 paired folds for the t-test) ...
RESCORE_FOLDS = 5
RESCORE_REPEATS = 3
#: ... with CV seed = the study's seed + this (never a seed the search used: it uses one).
RESCORE_SEED_OFFSET = 1000
ATTR_PREFIX = RESCORE_ATTR_PREFIX

#: Called with a short progress text (which model, which fold).
RescoreProgress = Callable[[str], None]


def rescore_protocol(search: CVProtocol, n_users: int) -> CVProtocol:
    """The fresh folds of a study searched on `search` over `n_users` users: 5-fold x 3 with
    the seed moved by `RESCORE_SEED_OFFSET`, fewer folds (not below 2) where a held-out fold
    would hold fewer than `MIN_FOLD_USERS` users."""
    folds = max(2, min(RESCORE_FOLDS, n_users // MIN_FOLD_USERS))
    return CVProtocol(folds, RESCORE_REPEATS, search.seed + RESCORE_SEED_OFFSET)


def study_protocol(study: optuna.Study) -> CVProtocol:
    identity = read_identity(study)
    if identity is None:
        raise StudyError(f"study {study.study_name!r} was not created by `ltr tune`")
    return CVProtocol(**identity["cv"])


def default_spec(study: optuna.Study) -> ModelSpec:
    """The family's untuned default as the study scored it: the enqueued first trial's spec,
    else (that trial never ran) the space's default with the study's seed."""
    for trial in study.get_trials(deepcopy=False):
        if trial.user_attrs.get("enqueued") == "untuned default" and "spec" in trial.user_attrs:
            return ModelSpec.from_dict(trial.user_attrs["spec"], where="the default trial")
    identity = read_identity(study) or {}
    space = get_space(identity.get("space", {}).get("name", "ensemble"))
    return space.default_spec().with_seed(study_protocol(study).seed)


@dataclass(frozen=True)
class Rescoring:
    """The chosen trial and the default on the same fresh folds.

    Attributes:
        trial: the trial rescored.
        protocol: the fresh folds (`rescore_protocol` of the study's).
        tuned, default: CV figures (`fold_summary`: mean, std, per situation, every fold).
        comparison: tuned - default, corrected t-test (mean, low, high, t, p_value, folds,
            level); None when the trial's spec is the default's.
        tuned_spec, default_spec: the specs scored.
    """

    trial: int
    protocol: CVProtocol
    tuned: dict[str, Any]
    default: dict[str, Any]
    comparison: dict[str, Any] | None
    tuned_spec: dict[str, Any]
    default_spec: dict[str, Any]

    @property
    def same_as_default(self) -> bool:
        return self.comparison is None

    @property
    def tuned_wins(self) -> bool:
        """Whether `ltr train --study` should train the tuned spec: a higher fresh-fold mean."""
        return not self.same_as_default and self.tuned["mean"] > self.default["mean"]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["protocol"] = self.protocol.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Rescoring:
        values = dict(data)
        values["protocol"] = CVProtocol(**values["protocol"])
        return cls(**values)


def _clean(value: Any) -> Any:
    """NaN (e.g. the p-value of identical folds) as None: storages and JSON readers differ."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    return value


def stored_rescoring(study: optuna.Study, trial: int) -> Rescoring | None:
    """The rescoring stored for `trial`, if it was made on this study's fresh folds."""
    data = study.user_attrs.get(f"{ATTR_PREFIX}{trial}")
    if not data:
        return None
    rescoring = Rescoring.from_dict(data)
    users = (read_identity(study) or {}).get("data", {}).get("n_users", 0)
    if rescoring.protocol != rescore_protocol(study_protocol(study), users):
        return None
    return rescoring


def _stored_default(study: optuna.Study, spec: ModelSpec, protocol: CVProtocol) -> dict | None:
    """The default's figures from any earlier rescoring of this study (same folds, same spec)."""
    for key, value in study.user_attrs.items():
        if not key.startswith(ATTR_PREFIX):
            continue
        if value.get("protocol") == protocol.to_dict() and value.get("default_spec") == (
            spec.to_dict()
        ):
            default: dict = value["default"]
            return default
    return None


def _cross_validate(
    spec: ModelSpec,
    data: TuningData,
    protocol: CVProtocol,
    label: str,
    threads: int,
    progress: RescoreProgress | None,
) -> dict[str, Any]:
    def on_fold(step: int, scores: np.ndarray) -> None:
        if progress is not None:
            progress(f"{label}: fold {step + 1}/{protocol.n_folds}")

    result = cross_validate(
        spec,
        data.features,
        data.labels,
        folds=protocol.folds,
        repeats=protocol.repeats,
        seed=protocol.seed,
        threads=threads,
        on_fold=on_fold,
    )
    return fold_summary(result.fold_pearson, result.seconds)


def rescore_trial(
    data: TuningData,
    study: optuna.Study,
    trial: int,
    *,
    threads: int = 1,
    progress: RescoreProgress | None = None,
) -> Rescoring:
    """Cross-validate trial `trial`'s spec and the default on the study's fresh folds, compare
    them, store the result in the study (``ltr:rescore:<trial>``) and return it."""
    frozen = study.get_trials(deepcopy=False)
    match = [t for t in frozen if t.number == trial and t.state == TrialState.COMPLETE]
    if not match or "spec" not in match[0].user_attrs:
        raise StudyError(f"study {study.study_name!r} has no completed trial {trial} to rescore")
    identity = read_identity(study) or {}
    tuned_on = identity.get("data", {}).get("fingerprint")
    if tuned_on is not None and tuned_on != data.fingerprint:
        raise StudyError(
            f"study {study.study_name!r} was tuned on other data (fingerprint {tuned_on}), "
            f"not on {data.name} {data.split} (fingerprint {data.fingerprint})"
        )
    tuned = ModelSpec.from_dict(match[0].user_attrs["spec"], where=f"trial {trial}")
    default = default_spec(study)
    protocol = rescore_protocol(study_protocol(study), int(data.features.shape[0]))
    default_cv = _stored_default(study, default, protocol)
    if default_cv is None:
        default_cv = _cross_validate(default, data, protocol, "default", threads, progress)
    comparison = None
    tuned_cv = default_cv
    if tuned != default:
        tuned_cv = _cross_validate(tuned, data, protocol, f"trial {trial}", threads, progress)
        test = corrected_t_test(
            np.asarray(tuned_cv["fold_pearson"]).mean(axis=1),
            np.asarray(default_cv["fold_pearson"]).mean(axis=1),
            folds=protocol.folds,
        )
        comparison = _clean(test.to_dict())
    rescoring = Rescoring(
        trial=trial,
        protocol=protocol,
        tuned=tuned_cv,
        default=default_cv,
        comparison=comparison,
        tuned_spec=tuned.to_dict(),
        default_spec=default.to_dict(),
    )
    study.set_user_attr(f"{ATTR_PREFIX}{trial}", rescoring.to_dict())
    return rescoring


def rescore_choice(
    data: TuningData,
    study_name: str,
    storage: str | Path | None = None,
    *,
    penalty: float = DEFAULT_PENALTY,
    threads: int = 1,
    progress: RescoreProgress | None = None,
    recompute: bool = False,
) -> tuple[TrialScore, Rescoring]:
    """The study's chosen trial (best mean - `penalty` x std) and its rescoring: the stored
    one, else computed now and stored (always recomputed with `recompute`)."""
    _, score, study = chosen_spec(study_name, storage, penalty=penalty, data=data)
    rescoring = trial_rescoring(
        data, study, score.number, threads=threads, progress=progress, recompute=recompute
    )
    return score, rescoring


def trial_rescoring(
    data: TuningData,
    study: optuna.Study,
    trial: int,
    *,
    threads: int = 1,
    progress: RescoreProgress | None = None,
    recompute: bool = False,
) -> Rescoring:
    """A trial's rescoring, from a study already loaded: the stored one, else computed now
    and stored (always recomputed with `recompute`)."""
    stored = None if recompute else stored_rescoring(study, trial)
    if stored is not None:
        return stored
    return rescore_trial(data, study, trial, threads=threads, progress=progress)


def rescorings(study: optuna.Study) -> dict[int, Rescoring]:
    """Every valid rescoring stored in the study, by trial number."""
    out = {}
    for trial in (s.number for s in scored_trials(study)):
        found = stored_rescoring(study, trial)
        if found is not None:
            out[trial] = found
    return out
