"""`ltr cv`, `ltr train`, `ltr predict` and `ltr quickstart`: thin wrappers over ltr.workflow."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ltr.cli.boundary import command
from ltr.cli.common import (
    MAX_REPEATS,
    MAX_SEED,
    VALUES,
    DataDir,
    Force,
    ModelDir,
    Threads,
    console,
    load_data,
    out_option,
    say,
    split_option,
    split_values,
)
from ltr.cli.vocabulary import (
    COMPARE,
    DEFAULT_PENALTY,
    DEFAULT_STORAGE,
    MIN_QUICKSTART_USERS,
    PRESETS,
    STORAGE_ENV,
)
from ltr.errors import LtrError

ENGINE_HELP = (
    "Table: local streams the table's files through this process (bounded memory); dask runs "
    "the same per-file function on a Dask cluster (the dask extra: pip install -e '.\\[dask]')."
)
SCHEDULER_HELP = (
    "Table, dask engine: address of a running Dask scheduler (its workers must see the model "
    "and the table at the same paths). Default: a LocalCluster."
)
MODEL_HELP = f"Model preset: {', '.join(PRESETS)}."
PARAMS_HELP = (
    "JSON file with a whole model spec (has a 'learner' field) or overrides of the preset, "
    'e.g. {"params": {"max_depth": 4}, "families": ["freq", "conf"]}.'
)
Model = Annotated[str, typer.Option("--model", "-m", help=MODEL_HELP)]
Params = Annotated[
    Path | None, typer.Option("--params", metavar="SPEC_FILE", help=PARAMS_HELP, show_default=False)
]


def cv(
    data_dir: DataDir,
    model: Model = "default",
    params: Params = None,
    folds: Annotated[int, typer.Option("--folds", "-k", min=2, help="K of repeated K-fold.")] = 5,
    repeats: Annotated[
        int, typer.Option("--repeats", "-r", min=1, max=MAX_REPEATS, help="Repeats of K-fold.")
    ] = 3,
    seed: Annotated[
        int,
        typer.Option("--seed", min=0, max=MAX_SEED, help="Seed of the folds (and of the models)."),
    ] = 0,
    compare: Annotated[
        bool,
        typer.Option("--compare", help=f"Cross-validate several models: {', '.join(COMPARE)}."),
    ] = False,
    models: Annotated[
        list[str] | None,
        typer.Option(
            "--models",
            metavar="NAMES",
            help=f"Presets to compare ({VALUES}; implies --compare).",
            show_default=False,
        ),
    ] = None,
    split: Annotated[str, split_option("Labelled split to cross-validate.")] = "train",
    report: Annotated[
        Path | None,
        typer.Option(
            "--report",
            help="Where to write the JSON report (replaced if it exists). "
            "Default: reports/cv-<data>-<model or 'compare'>.json, never replaced without --force.",
            show_default=False,
        ),
    ] = None,
    force: Force = False,
    threads: Threads = 1,
) -> None:
    """Repeated K-fold cross-validation on the training users (features computed once)."""
    from ltr.outputs import claim_output, cv_report_path
    from ltr.tables import cv_table, versus_table
    from ltr.workflow import (
        check_cv_folds,
        cross_validate_models,
        cv_report,
        cv_specs,
        training_set,
    )

    chosen = split_values(models, "--models")
    specs = cv_specs(model, params, compare=compare, models=chosen, seed=seed)
    if report is not None:
        claim_output(report)
    dataset = load_data(data_dir)
    if report is None:
        label = "compare" if compare or chosen else next(iter(specs))
        report = claim_output(
            cv_report_path(dataset.name, label),
            replace=force,
            hint="pass --force to replace it, or --report to write elsewhere",
        )
    data = training_set(dataset, split)
    check_cv_folds(data, folds, repeats)
    say(
        f"{dataset.name} {split}: {len(data.features.users)} users, "
        f"{data.features.shape[1]} features; {folds}-fold x {repeats} repeats, seed {seed}"
    )
    with console.status("cross-validating") as status:
        results = cross_validate_models(
            data,
            specs,
            folds=folds,
            repeats=repeats,
            seed=seed,
            threads=threads,
            progress=lambda name: status.update(f"cross-validating {name}"),
        )
    console.print(cv_table(results, f"Pearson, {folds}-fold x {repeats} ({dataset.name})"))
    if len(results) > 1:
        console.print(versus_table(results))
    from ltr.fileio import write_json_atomic

    write_json_atomic(report, cv_report(results, data))
    say(f"report: {report}")


def train(
    data_dir: DataDir,
    model_dir: Annotated[
        Path,
        typer.Option(
            "--model-dir",
            metavar="MODEL_DIR",
            help="Folder to save the model in (an earlier model there is replaced).",
            show_default=False,
        ),
    ],
    model: Model = "default",
    params: Params = None,
    study: Annotated[
        str | None,
        typer.Option(
            "--study",
            help="Train what an Optuna study chose (`ltr tune`, `ltr studies show`): its best "
            "mean - k * std trial, rebuilt exactly, if it beats the untuned default on fresh "
            "folds (re-scored first if `ltr tune` did not), else the default.",
            show_default=False,
        ),
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(
            "--storage",
            envvar=STORAGE_ENV,
            help=f"Storage URL of --study (default ${STORAGE_ENV}, else {DEFAULT_STORAGE}).",
            show_default=False,
        ),
    ] = None,
    penalty: Annotated[
        float | None,
        typer.Option(
            "--penalty",
            min=0,
            help=f"With --study: k of mean - k * std (default {DEFAULT_PENALTY}).",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            "--seed",
            min=0,
            max=MAX_SEED,
            help="Seed of the model (default 0; with --study, the seed the trial was scored with).",
            show_default=False,
        ),
    ] = None,
    force_tuned: Annotated[
        bool,
        typer.Option(
            "--force-tuned",
            help="With --study: train the chosen trial even when it does not beat the untuned "
            "default on the study's fresh folds.",
        ),
    ] = False,
    cv_folds: Annotated[
        int,
        typer.Option(
            "--cv-folds", min=0, help="Also cross-validate (K folds x 1) and store the figures."
        ),
    ] = 0,
    threads: Threads = 1,
) -> None:
    """Train a model on split 'train' and save it (native files + schema + fingerprints)."""
    from ltr.errors import LtrError
    from ltr.outputs import claim_output
    from ltr.tables import cv_table
    from ltr.workflow import (
        check_cv_folds,
        check_model_dir,
        cross_validate_models,
        resolve_spec,
        study_choice,
        train_model,
        training_set,
    )

    if study is not None and (params is not None or model != "default"):
        raise LtrError("--study trains the study's chosen configuration: drop --model/--params")
    if force_tuned and study is None:
        raise LtrError("--force-tuned only applies to --study")
    spec = None if study is not None else resolve_spec(model, params)
    check_model_dir(claim_output(model_dir, folder=True))
    dataset = load_data(data_dir)
    data = training_set(dataset, "train")
    if cv_folds:
        check_cv_folds(data, cv_folds)
    cv = None
    if spec is not None:
        name = model
        spec = spec.with_seed(0 if seed is None else seed)
    else:
        assert study is not None  # spec is None only with --study
        with console.status("reading the study") as status:
            choice = study_choice(
                data,
                study,
                storage,
                penalty=penalty,
                seed=seed,
                force_tuned=force_tuned,
                threads=threads,
                progress=lambda text: status.update(f"re-scoring on fresh folds: {text}"),
            )
        name, spec, cv = choice.name, choice.spec, choice.cv
        say(choice.reason)
    if cv_folds:
        cv_seed = 0 if seed is None else seed
        with console.status("cross-validating"):
            (result,) = cross_validate_models(
                data, {name: spec}, folds=cv_folds, repeats=1, seed=cv_seed, threads=threads
            )
        cv = result.to_dict()
        console.print(cv_table([result], f"Pearson, {cv_folds}-fold ({dataset.name})"))
    users = len(data.features.users)
    say(f"training {name} on {users} users of {dataset.name} train")
    trained = train_model(data, spec, model_dir, cv=cv, threads=threads)
    say(
        f"trained {name} on {users} users of {dataset.name} train; "
        f"saved to {model_dir} ({len(trained.manifest['files'])} files)"
    )


def predict(
    model_dir: ModelDir,
    data_dir: Annotated[
        Path,
        typer.Argument(
            metavar="DATA_DIR",
            help="Data folder (either layout), or a Parquet detections table (a folder of "
            "part files, see `ltr data synth --format parquet`).",
            show_default=False,
        ),
    ],
    split: Annotated[
        str | None, split_option("Split to score (e.g. val, test); not for a table.")
    ] = None,
    out: Annotated[
        Path | None,
        out_option(
            "Run file: .json (challenge format) or .csv (replaced if it exists). Default: "
            "submissions/<data>-<model>-<split>.json, never replaced without --force. For a "
            "table: the scores as FILE.parquet (required)."
        ),
    ] = None,
    force: Force = False,
    threads: Threads = 1,
    engine: Annotated[str, typer.Option("--engine", help=ENGINE_HELP)] = "local",
    scheduler: Annotated[
        str | None,
        typer.Option("--scheduler", metavar="ADDRESS", help=SCHEDULER_HELP, show_default=False),
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Table, dask engine: LocalCluster workers.")
    ] = 2,
    percentiles: Annotated[
        bool,
        typer.Option("--percentiles", help="Table: also each score's percentile among the users."),
    ] = False,
) -> None:
    """Score every user of a split and write a validated submission file; or every user of a
    Parquet detections table, written as Parquet."""
    from ltr.data.parquet import is_table
    from ltr.models.persistence import load_trained
    from ltr.outputs import claim_output, folder_name, submission_path, use_input
    from ltr.submission import run_format
    from ltr.workflow import write_submission

    if is_table(data_dir):
        from ltr.cli.scoring_commands import predict_table

        predict_table(
            model_dir,
            data_dir,
            out,
            split=split,
            engine=engine,
            scheduler=scheduler,
            workers=workers,
            percentiles=percentiles,
            threads=threads,
        )
        return
    if split is None:
        raise LtrError("--split is required to score a data folder (e.g. --split test)")
    if out is not None:
        run_format(out)  # an unknown extension fails before any work
        claim_output(out)
    trained = load_trained(use_input(model_dir), threads=threads)
    source = trained.manifest["data"]
    say(
        f"model {model_dir}: {trained.spec.learner}, trained on "
        f"{folder_name(source['source']) if source.get('source') else 'in-memory data'} "
        f"{source['split']} ({source['n_users']} users)"
    )
    dataset = load_data(data_dir)
    if out is None:
        out = claim_output(
            submission_path(dataset.name, folder_name(model_dir), split),
            replace=force,
            hint="pass --force to replace it, or --out to write elsewhere",
        )
    scores = trained.predict(dataset, split)
    write_submission(scores, out, dataset, split)
    say(f"wrote {out} ({len(scores)} users of {dataset.name} {split})")


def quickstart(
    workdir: Annotated[
        Path,
        typer.Option(
            "--workdir", metavar="OUT_DIR", help="Folder for the synthetic data and the model."
        ),
    ] = Path("quickstart"),
    users: Annotated[
        int, typer.Option("--users", min=MIN_QUICKSTART_USERS, help="Synthetic users.")
    ] = 1000,
    seed: Annotated[
        int, typer.Option("--seed", min=0, max=MAX_SEED, help="Seed of the data, folds and models.")
    ] = 0,
    submissions: Annotated[
        Path,
        typer.Option(
            "--submissions", metavar="OUT_DIR", help="Where to write the submission files."
        ),
    ] = Path("submissions"),
    force: Annotated[
        bool,
        typer.Option("--force", help="Replace the model and submissions of an earlier run."),
    ] = False,
) -> None:
    """The whole job on embedded synthetic data: generate, cross-validate, train, predict,
    write submissions, and compare with BASE on the validation split."""
    from ltr.quickstart import run_quickstart

    run_quickstart(
        workdir, users=users, seed=seed, submissions=submissions, console=console, force=force
    )


def register(app: typer.Typer) -> None:
    """Add `cv`, `train`, `predict` and `quickstart` to `app`."""
    command(app, "cv")(cv)
    command(app, "train")(train)
    command(app, "predict")(predict)
    command(app, "quickstart")(quickstart)
