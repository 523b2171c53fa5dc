"""The whole job on the embedded synthetic data, end to end, in well under a minute.

generate -> load -> featurise once -> cross-validate (default model and BASE, same folds) ->
train the default model -> predict val and test -> validated submission files -> val score
next to BASE's and the noise ceiling.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from ltr.cv import MIN_FOLD_USERS
from ltr.data import load_dataset
from ltr.data.synthetic import write_synthetic
from ltr.errors import LtrError
from ltr.metrics import Scores, score_run
from ltr.models import build_model, preset
from ltr.outputs import claim_output, submission_path
from ltr.situations import SITUATIONS
from ltr.tables import comparison_table, cv_table
from ltr.workflow import (
    check_model_dir,
    cross_validate_models,
    train_model,
    training_set,
    write_submission,
)

#: Folds of the quick start's cross-validation (one repeat keeps it under a minute).
QUICK_FOLDS = 5
#: The fewest synthetic users whose training split (60 %) still makes `QUICK_FOLDS` folds of
#: `MIN_FOLD_USERS` held-out users.
MIN_USERS = 166


@dataclass(frozen=True)
class QuickstartResult:
    val: Scores
    base_val: Scores
    noise_ceiling: float
    cv_mean: float
    base_cv_mean: float
    submissions: tuple[Path, ...]


def run_quickstart(
    workdir: Path,
    *,
    users: int = 1000,
    seed: int = 0,
    submissions: Path = Path("submissions"),
    console: Console | None = None,
    force: bool = False,
) -> QuickstartResult:
    """Run the whole job; every output is checked before any work, and the model and the
    submission files of an earlier run are only replaced with `force`."""
    console = console or Console()
    data_dir, model_dir = workdir / "data", workdir / "model"
    # <data>-<model>-<split>.json, as `ltr predict` names them
    paths = [
        submissions / submission_path("synthetic", "quickstart", s).name for s in ("val", "test")
    ]
    again = "pass --force to replace the results of an earlier quick start"
    claim_output(data_dir, folder=True)
    check_model_dir(claim_output(model_dir, folder=True, replace=force, hint=again))
    for path in paths:
        claim_output(path, replace=force, hint=again)
    if users < MIN_USERS:  # before anything is written
        raise LtrError(
            f"the quick start needs at least {MIN_USERS} users ({QUICK_FOLDS}-fold CV of "
            f"the 60 % training split, {MIN_FOLD_USERS} held-out users per fold); got {users}"
        )
    synthetic = write_synthetic(data_dir, n_users=users, seed=seed)

    def plain(text: str) -> None:  # paths: no markup, no wrap
        console.print(text, markup=False, highlight=False, soft_wrap=True)

    plain(f"1. synthetic data ({users} users, seed {seed}) written to {data_dir}")

    dataset = load_dataset(data_dir)
    data = training_set(dataset, "train")
    default, base = preset("default").with_seed(seed), preset("base")
    results = cross_validate_models(
        data, {"default": default, "base": base}, folds=QUICK_FOLDS, repeats=1, seed=seed
    )
    console.print(f"2. cross-validation on {len(data.features.users)} training users")
    console.print(cv_table(results, f"Pearson, {QUICK_FOLDS}-fold CV on train"))

    trained = train_model(data, default, model_dir, cv=results[0].to_dict())
    plain(f"3. default model trained on train, saved to {model_dir}")

    written = []
    predictions = {}
    for split, path in zip(("val", "test"), paths, strict=True):
        predictions[split] = trained.predict(dataset, split)
        write_submission(predictions[split], path, dataset, split)
        written.append(path)
    plain(f"4. submissions: {', '.join(map(str, written))}")

    base_model = build_model(base).fit(data.features, data.labels)
    base_val = base_model.predict(trained.features(dataset, "val"))
    truth = dataset.split_labels("val")
    val_scores = score_run(predictions["val"], truth, name="default model")
    base_scores = score_run(base_val, truth, name="BASE")
    ceiling = float(synthetic.noise_ceiling["val"]["mean"])

    rows = {
        name: [*scores.pearson, scores.official]
        for name, scores in (("default model", val_scores), ("BASE", base_scores))
    }
    rows["noise ceiling"] = [
        *(synthetic.noise_ceiling["val"][s] for s in SITUATIONS),
        ceiling,
    ]
    table = comparison_table(rows, "5. val Pearson (labels never seen in training)")
    console.print(table)
    return QuickstartResult(
        val=val_scores,
        base_val=base_scores,
        noise_ceiling=ceiling,
        cv_mean=results[0].mean,
        base_cv_mean=results[1].mean,
        submissions=tuple(written),
    )
