"""The whole job on the embedded synthetic data, end to end, in well under a minute.

generate -> load -> featurise once -> cross-validate (default model and BASE, same folds) ->
train the default model -> predict val and test -> validated submission files -> val score
next to BASE's and the noise ceiling.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ltr.data import load_dataset
from ltr.data.synthetic import write_synthetic
from ltr.metrics import Scores, score_run
from ltr.models import build_model, preset
from ltr.situations import SITUATIONS
from ltr.tables import cv_table
from ltr.workflow import cross_validate_models, train_model, training_set, write_submission

#: Folds of the quick start's cross-validation (one repeat keeps it under a minute).
QUICK_FOLDS = 5


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
) -> QuickstartResult:
    console = console or Console()
    data_dir, model_dir = workdir / "data", workdir / "model"
    synthetic = write_synthetic(data_dir, n_users=users, seed=seed)
    plain = {"markup": False, "highlight": False, "soft_wrap": True}  # paths: no markup, no wrap
    console.print(f"1. synthetic data ({users} users, seed {seed}) written to {data_dir}", **plain)

    dataset = load_dataset(data_dir)
    data = training_set(dataset, "train")
    default, base = preset("default").with_seed(seed), preset("base")
    results = cross_validate_models(
        data, {"default": default, "base": base}, folds=QUICK_FOLDS, repeats=1, seed=seed
    )
    console.print(f"2. cross-validation on {len(data.features.users)} training users")
    console.print(cv_table(results, f"Pearson, {QUICK_FOLDS}-fold CV on train"))

    trained = train_model(data, default, model_dir, cv=results[0].to_dict())
    console.print(f"3. default model trained on train, saved to {model_dir}", **plain)

    written = []
    predictions = {}
    for split in ("val", "test"):
        predictions[split] = trained.predict(dataset, split)
        path = submissions / f"synthetic-{split}.json"
        write_submission(predictions[split], path, dataset, split)
        written.append(path)
    console.print(f"4. submissions: {', '.join(map(str, written))}", **plain)

    base_model = build_model(base).fit(data.features, data.labels)
    base_val = base_model.predict(trained.features(dataset, "val"))
    truth = dataset.split_labels("val")
    val_scores = score_run(predictions["val"], truth, name="default model")
    base_scores = score_run(base_val, truth, name="BASE")
    ceiling = float(synthetic.noise_ceiling["val"]["mean"])

    table = Table(title="5. val Pearson (labels never seen in training)", title_justify="left")
    table.add_column("model")
    for situation in SITUATIONS:
        table.add_column(situation, justify="right")
    table.add_column("mean", justify="right")
    for name, scores in (("default model", val_scores), ("BASE", base_scores)):
        table.add_row(name, *(f"{v:.3f}" for v in scores.pearson), f"[bold]{scores.official:.3f}")
    ceiling_row = [f"{synthetic.noise_ceiling['val'][s]:.3f}" for s in SITUATIONS]
    table.add_row("noise ceiling", *ceiling_row, f"{ceiling:.3f}")
    console.print(table)
    return QuickstartResult(
        val=val_scores,
        base_val=base_scores,
        noise_ceiling=ceiling,
        cv_mean=results[0].mean,
        base_cv_mean=results[1].mean,
        submissions=tuple(written),
    )
