"""Optuna tuning of the rankers for mean Pearson: search spaces, the CV objective, studies
that resume and run in parallel, and reports.

    from ltr.tuning import load_tuning_data, rescore_choice, tune
    data = load_tuning_data("../shared/data/aware2023")
    tune(data, "aware", timeout=300)              # SQLite file ltr-studies.db in the cwd
    trial, rescoring = rescore_choice(data, "aware")  # chosen trial vs default, fresh folds
    rescoring.tuned_wins                          # what `ltr train --study` goes by
"""

from ltr.tuning.fidelity import DEFAULT_PRUNER, PRUNERS, make_pruner
from ltr.tuning.objective import CVObjective, CVProtocol, TuningData, load_tuning_data
from ltr.tuning.rescore import (
    Rescoring,
    default_spec,
    rescore_choice,
    rescore_protocol,
    rescore_trial,
    stored_rescoring,
)
from ltr.tuning.runner import TuneInterrupted, tune
from ltr.tuning.space import DEFAULT_SPACE, SPACES, SearchSpace, get_space
from ltr.tuning.storage import DEFAULT_STORAGE, storage_url
from ltr.tuning.studies import (
    DEFAULT_PENALTY,
    chosen_spec,
    chosen_trial,
    list_studies,
    load_existing_study,
    scored_trials,
    study_summary,
)

__all__ = [
    "DEFAULT_PENALTY",
    "DEFAULT_PRUNER",
    "PRUNERS",
    "Rescoring",
    "default_spec",
    "make_pruner",
    "rescore_choice",
    "rescore_protocol",
    "rescore_trial",
    "stored_rescoring",
    "DEFAULT_SPACE",
    "DEFAULT_STORAGE",
    "SPACES",
    "CVObjective",
    "CVProtocol",
    "SearchSpace",
    "TuneInterrupted",
    "TuningData",
    "chosen_spec",
    "chosen_trial",
    "get_space",
    "list_studies",
    "load_existing_study",
    "load_tuning_data",
    "scored_trials",
    "storage_url",
    "study_summary",
    "tune",
]
