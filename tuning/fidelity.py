"""Multi-fidelity: most trials are scored on a few folds, only promising ones on all of them.

Every trial of a study is cross-validated on the same folds in the same order (`CVProtocol`),
and the objective reports the running mean after each fold, so a trial that is behind after two
folds is behind *on the same held-out users* as the trials it is compared with: a paired,
cheap look. A pruner decides from those looks which trials get the full protocol:

- ``halving`` (the default): successive halving over folds (Optuna's asynchronous
  `SuccessiveHalvingPruner`, reduction factor 3). A trial is compared at its rungs -- after 2
  and 4 folds of the default 10 (`rungs`) -- with every trial that reached that rung, and goes
  on only when it is in their top third (the first ones: only when it is the best there). So
  most trials cost 2 folds, a third of them 4, and about a ninth run all 10: roughly three
  times the trials per minute of no pruning. The study's first trial, the untuned default, is
  alone at its rungs and always runs every fold: it is the yardstick the others must beat.
- ``hyperband``: Optuna's `HyperbandPruner` (several halving brackets with different minimum
  folds; a trial's bracket follows from its number). Less aggressive, for long budgets.
- ``median``: stop a trial below the median of earlier trials at the same fold (from the 2nd
  fold, after 5 trials). It looks at every fold, so one unlucky fold prunes a good trial.
- ``none``: every trial runs every fold.

Why halving is the default: replaying the pruners on trials whose every fold was recorded (no
pruning; `benchmarks/tuning_budget.py fidelity`), see docs/results.md, "Does tuning pay?".
"""

from __future__ import annotations

import optuna

from ltr.errors import StudyError

#: Pruners by ``--pruner`` name; the first is the default.
PRUNERS: tuple[str, ...] = ("halving", "hyperband", "median", "none")
DEFAULT_PRUNER = "halving"
#: Successive halving: a trial goes on past a rung when in the top 1/REDUCTION_FACTOR there.
REDUCTION_FACTOR = 3
#: Folds scored before the first rung of successive halving (Optuna counts steps from 0, and
#: its first rung is step `MIN_RESOURCE`: after MIN_RESOURCE + 1 folds).
MIN_RESOURCE = 1


def make_pruner(kind: str = DEFAULT_PRUNER) -> optuna.pruners.BasePruner:
    """The pruner named `kind` (see the module docstring); a StudyError for an unknown one."""
    if kind == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=MIN_RESOURCE, reduction_factor=REDUCTION_FACTOR
        )
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=MIN_RESOURCE, max_resource="auto", reduction_factor=REDUCTION_FACTOR
        )
    if kind == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    if kind == "none":
        return optuna.pruners.NopPruner()
    raise StudyError(f"unknown pruner {kind!r} (choose {', '.join(PRUNERS)})")


def rungs(n_folds: int) -> list[int]:
    """Folds done at each rung of ``halving`` for a protocol of `n_folds` folds: where a trial
    may be stopped (e.g. [2, 4] for 5-fold x 2; the last fold is never a rung)."""
    out: list[int] = []
    rung = 0
    while True:
        step = MIN_RESOURCE * REDUCTION_FACTOR**rung  # Optuna's rung step (0-based)
        if step + 1 >= n_folds:
            return out
        out.append(step + 1)
        rung += 1


def expected_folds(n_folds: int) -> float:
    """Mean folds per trial under ``halving`` when a fraction 1/REDUCTION_FACTOR of the trials
    passes each rung (the long-run rate; early trials pass more often)."""
    marks = [*rungs(n_folds), n_folds]
    total, share, done = 0.0, 1.0, 0
    for mark in marks:
        total += share * (mark - done)
        done = mark
        share /= REDUCTION_FACTOR
    return total
