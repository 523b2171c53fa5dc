"""Studies: created or resumed under a checked identity, and read back to choose a trial.

Identity. A study records, as study attributes, the search space (name, version, hash), the
training data (content hash of features + labels, feature config) and the CV protocol. Running
`tune` again with the same name resumes the study; asking for another space, other data or
other folds under that name is refused with the differences spelled out. A new study gets the
space's untuned default as its first (enqueued) trial.

Choosing a configuration. The best mean is an optimistic estimate (the maximum of many noisy
CV scores). The chosen trial maximises ``mean - k * std`` over completed trials (std = spread
across folds of the per-fold mean Pearson), k = `DEFAULT_PENALTY` = 0.5 by default: it breaks
near-ties in favour of the steadier configuration but never lets the spread outweigh a clear
gain. Not more, because the spread of 10 folds is itself noisy (its standard error is about a
quarter of its value): re-scoring the top trials of the real studies on fresh folds, k from 0
to 2 chose the same configuration on both data sets, k = 3 chose a low-spread one that lost
0.011, and a low spread did not predict a small drop on fresh folds (docs/tuning.md).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from ltr import __version__
from ltr.errors import StudyError
from ltr.models import ModelSpec
from ltr.tuning.objective import CVProtocol, TuningData
from ltr.tuning.space import DEFAULT_SPACE, SearchSpace, get_space
from ltr.tuning.storage import (
    on_this_machine,
    open_storage,
    redact_url,
    setup_lock,
    storage_url,
    worker_alive,
)

#: Default k of the penalised score mean - k * std used to choose a study's configuration.
DEFAULT_PENALTY = 0.5
FORMAT = 1

_ATTR_FORMAT = "ltr:format"
_ATTR_IDENTITY = "ltr:identity"
_ATTR_FINGERPRINT = "ltr:fingerprint"
_ATTR_CREATED = "ltr:created"
#: Prefix of the study attributes holding fresh-fold rescorings (`ltr.tuning.rescore`).
RESCORE_ATTR_PREFIX = "ltr:rescore:"


# -------------------------------------------------------------------------------- identity
def study_identity(space: SearchSpace, data: TuningData, protocol: CVProtocol) -> dict[str, Any]:
    return {
        "space": {"name": space.name, "version": space.version, "hash": space.fingerprint()},
        "data": data.describe(),
        "cv": protocol.to_dict(),
    }


def identity_fingerprint(identity: dict[str, Any]) -> str:
    """Hash of what the objective means: not of paths or sizes, which may change harmlessly."""
    data = identity["data"]
    key = {
        "space": identity["space"],
        "data": {k: data[k] for k in ("split", "feature_config", "fingerprint")},
        "cv": identity["cv"],
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    out = []
    if old["space"] != new["space"]:
        out.append(
            f"search space: study has {old['space']['name']!r} (v{old['space']['version']}, "
            f"{old['space']['hash']}), this run {new['space']['name']!r} "
            f"(v{new['space']['version']}, {new['space']['hash']})"
        )
    od, nd = old["data"], new["data"]
    if (od["fingerprint"], od["split"], od["feature_config"]) != (
        nd["fingerprint"],
        nd["split"],
        nd["feature_config"],
    ):
        out.append(
            f"data: study was tuned on {od['name']} {od['split']} ({od['n_users']} users, "
            f"{od['n_features']} features, fingerprint {od['fingerprint']}), this run has "
            f"{nd['name']} {nd['split']} ({nd['n_users']} users, {nd['n_features']} features, "
            f"fingerprint {nd['fingerprint']})"
        )
    if old["cv"] != new["cv"]:
        oc, nc = CVProtocol(**old["cv"]), CVProtocol(**new["cv"])
        out.append(f"cross-validation: study uses {oc.text()}, this run {nc.text()}")
    return out


def read_identity(study: optuna.Study) -> dict[str, Any] | None:
    return study.user_attrs.get(_ATTR_IDENTITY)


# ----------------------------------------------------------------------- open / create
@dataclass(frozen=True)
class StudySettings:
    """What `tune` was asked for; None = the existing study's value, else the default."""

    space: str | None = None
    protocol: CVProtocol | None = None
    #: Single CV fields (used when `protocol` is None): missing ones come from the study.
    folds: int | None = None
    repeats: int | None = None
    cv_seed: int | None = None


def resolve_settings(
    existing: dict[str, Any] | None, settings: StudySettings
) -> tuple[SearchSpace, CVProtocol]:
    space_name = settings.space or (existing["space"]["name"] if existing else DEFAULT_SPACE)
    protocol = settings.protocol
    if protocol is None:
        base = CVProtocol(**existing["cv"]) if existing else CVProtocol()
        protocol = CVProtocol(
            base.folds if settings.folds is None else settings.folds,
            base.repeats if settings.repeats is None else settings.repeats,
            base.seed if settings.cv_seed is None else settings.cv_seed,
        )
    return get_space(space_name), protocol


def open_study(
    name: str,
    url: str,
    data: TuningData,
    settings: StudySettings = StudySettings(),
    *,
    sampler: optuna.samplers.BaseSampler | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
) -> tuple[optuna.Study, SearchSpace, CVProtocol, bool]:
    """Create the study or resume it after checking its identity; (study, space, protocol,
    created). A new study gets the space's untuned default as its first (enqueued) trial."""
    with setup_lock(url):
        storage = open_storage(url)
        exists = name in optuna.get_all_study_names(storage)
        existing = None
        if exists:
            existing = read_identity(optuna.load_study(study_name=name, storage=storage))
            if existing is None:
                raise StudyError(
                    f"study {name!r} in {redact_url(url)} was not created by `ltr tune` "
                    "(it has no ltr:identity attribute); choose another --study name"
                )
        space, protocol = resolve_settings(existing, settings)
        identity = study_identity(space, data, protocol)
        if existing is not None:
            problems = _differences(existing, identity)
            if problems or existing.get("format", FORMAT) != FORMAT:
                raise StudyError(
                    f"study {name!r} in {redact_url(url)} cannot be resumed with these settings: "
                    + "; ".join(problems or ["made by another version of ltr"])
                    + ". Use another --study name, or rerun with the study's data and settings"
                )
        study = optuna.create_study(
            study_name=name,
            storage=storage,
            direction="maximize",
            sampler=sampler,
            pruner=pruner,
            load_if_exists=True,
        )
        if not exists:
            study.set_user_attr(_ATTR_FORMAT, FORMAT)
            study.set_user_attr(_ATTR_IDENTITY, identity)
            study.set_user_attr(_ATTR_FINGERPRINT, identity_fingerprint(identity))
            study.set_user_attr(
                _ATTR_CREATED,
                {
                    "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "ltr": __version__,
                },
            )
            study.enqueue_trial(dict(space.defaults), user_attrs={"enqueued": "untuned default"})
    return study, space, protocol, not exists


def load_existing_study(name: str, storage: str | Path | None = None) -> optuna.Study:
    """A study made by `tune`, for reading; a clear error when it does not exist."""
    url = storage_url(storage)
    store = open_storage(url, must_exist=True)
    names = optuna.get_all_study_names(store)
    if name not in names:
        known = ", ".join(sorted(names)) or "none"
        raise StudyError(f"no study named {name!r} in {redact_url(url)} (studies there: {known})")
    study = optuna.load_study(study_name=name, storage=store)
    if read_identity(study) is None:
        raise StudyError(f"study {name!r} in {redact_url(url)} was not created by `ltr tune`")
    return study


# ---------------------------------------------------------------------- choosing a trial
def count_states(trials: list[FrozenTrial]) -> dict[str, int]:
    """Trials per state name (``complete``, ``pruned``, ``fail``, ``running``, ``waiting``)."""
    counts: dict[str, int] = {}
    for trial in trials:
        counts[trial.state.name.lower()] = counts.get(trial.state.name.lower(), 0) + 1
    return counts


@dataclass(frozen=True)
class TrialScore:
    """A completed trial's CV figures and its penalised score."""

    number: int
    mean: float
    std: float
    penalty: float
    penalised: float
    per_situation: dict[str, float]
    per_situation_std: dict[str, float]
    seconds: float
    params: dict[str, Any]
    spec: dict[str, Any]


def scored_trials(study: optuna.Study, penalty: float = DEFAULT_PENALTY) -> list[TrialScore]:
    """Completed trials, best penalised score first."""
    out = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        cv = trial.user_attrs.get("cv")
        spec = trial.user_attrs.get("spec")
        if trial.value is None or not cv or not spec:
            continue
        out.append(
            TrialScore(
                number=trial.number,
                mean=float(trial.value),
                std=float(cv["std"]),
                penalty=penalty,
                penalised=float(trial.value) - penalty * float(cv["std"]),
                per_situation=cv["per_situation"],
                per_situation_std=cv["per_situation_std"],
                seconds=float(cv.get("seconds", 0.0)),
                params=dict(trial.params),
                spec=spec,
            )
        )
    return sorted(out, key=lambda s: (-s.penalised, s.number))


def chosen_trial(study: optuna.Study, penalty: float = DEFAULT_PENALTY) -> TrialScore:
    """The completed trial with the best ``mean - penalty * std``."""
    scores = scored_trials(study, penalty)
    if not scores:
        raise StudyError(
            f"study {study.study_name!r} has no completed trial yet; run `ltr tune` (more)"
        )
    return scores[0]


def chosen_spec(
    study_name: str,
    storage: str | Path | None = None,
    *,
    penalty: float = DEFAULT_PENALTY,
    data: TuningData | None = None,
) -> tuple[ModelSpec, TrialScore, optuna.Study]:
    """The spec of the study's chosen trial, exactly as it was evaluated. With `data`, refuse
    data other than the study was tuned on (its features or labels differ)."""
    study = load_existing_study(study_name, storage)
    identity = read_identity(study)
    if data is not None and identity is not None:
        tuned = identity["data"]
        if tuned["fingerprint"] != data.fingerprint:
            raise StudyError(
                f"study {study_name!r} was tuned on {tuned['name']} {tuned['split']} "
                f"(fingerprint {tuned['fingerprint']}), not on this data ({data.name} "
                f"{data.split}, fingerprint {data.fingerprint})"
            )
    score = chosen_trial(study, penalty)
    spec = ModelSpec.from_dict(score.spec, where=f"study {study_name!r}, trial {score.number}")
    return spec, score, study


# ----------------------------------------------------------------------------- summaries
def study_summary(study: optuna.Study, penalty: float = DEFAULT_PENALTY) -> dict[str, Any]:
    """Everything `ltr studies show` prints, as JSON-friendly data."""
    trials = study.get_trials(deepcopy=False)
    identity = read_identity(study) or {}
    scores = scored_trials(study, penalty)
    best = max(scores, key=lambda s: (s.mean, -s.number), default=None)
    orphans = [
        t.number
        for t in trials
        if t.state == TrialState.RUNNING
        and on_this_machine(t.user_attrs.get("worker", {}))
        and not worker_alive(t.user_attrs["worker"])
    ]
    return {
        "name": study.study_name,
        "identity": identity,
        "created": study.user_attrs.get(_ATTR_CREATED),
        "states": count_states(trials),
        "n_trials": len(trials),
        "orphaned_running": orphans,
        "penalty": penalty,
        "best": None if best is None else asdict(best),
        "chosen": None if not scores else asdict(scores[0]),
        "top": [asdict(s) for s in scores[:10]],
        # the chosen trial's fresh-fold rescoring, when `ltr tune` or `ltr train` made one
        "rescoring": None
        if not scores
        else study.user_attrs.get(f"{RESCORE_ATTR_PREFIX}{scores[0].number}"),
    }


def list_studies(
    storage: str | Path | None = None, penalty: float = DEFAULT_PENALTY
) -> list[dict[str, Any]]:
    """One summary per study made by `tune` in the storage (others are skipped)."""
    url = storage_url(storage)
    store = open_storage(url, must_exist=True)
    out = []
    for name in sorted(optuna.get_all_study_names(store)):
        study = optuna.load_study(study_name=name, storage=store)
        if read_identity(study) is not None:
            out.append(study_summary(study, penalty))
    return out


def study_cv_record(
    study: optuna.Study,
    score: TrialScore,
    rescoring: Any,
    *,
    tuned: bool = True,
    storage: str | None = None,
) -> dict[str, Any]:
    """The CV figures a model trained from a study keeps in its manifest: the *fresh-fold*
    figures of what was trained (the tuned spec or the default, `tuned`) from `rescoring`
    (`ltr.tuning.rescore.Rescoring`) -- never the search's best, which is optimistic -- with
    the comparison to the default, the search's own figures for reference, and where the
    study lives (`storage`, its password redacted: manifests are shared)."""
    identity = read_identity(study) or {}
    cv = identity.get("cv", {})
    fresh = rescoring.tuned if tuned else rescoring.default
    protocol = rescoring.protocol
    return {
        "source": "fresh folds (study rescoring)",
        "study": study.study_name,
        "storage": None if storage is None else redact_url(storage),
        "trial": score.number,
        "model": "tuned" if tuned else "default",
        "penalty": score.penalty,
        "folds": protocol.folds,
        "repeats": protocol.repeats,
        "seed": protocol.seed,
        "mean_pearson": fresh["mean"],
        "std_pearson": fresh["std"],
        "per_situation": fresh["per_situation"],
        "per_situation_std": fresh["per_situation_std"],
        "tuned_minus_default": rescoring.comparison,
        "search": {
            "folds": cv.get("folds"),
            "repeats": cv.get("repeats"),
            "seed": cv.get("seed"),
            "mean_pearson": score.mean,
            "std_pearson": score.std,
            "penalised": score.penalised,
        },
    }
