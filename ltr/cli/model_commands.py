"""`ltr cv`, `ltr train`, `ltr predict` and `ltr quickstart`: thin wrappers over ltr.workflow."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from ltr.cli import scoring_commands
from ltr.cli.common import console, handle_errors, load_data
from ltr.errors import LtrError
from ltr.fileio import write_json_atomic
from ltr.models import COMPARE, PRESETS, preset
from ltr.tables import cv_table
from ltr.workflow import (
    SUBMISSIONS_DIR,
    cross_validate_models,
    cv_report,
    resolve_spec,
    spec_label,
    train_model,
    training_set,
    write_submission,
)

MODEL_HELP = f"Model preset: {', '.join(PRESETS)}."
PARAMS_HELP = (
    "JSON file with a whole model spec (has a 'learner' field) or overrides of the preset, "
    'e.g. {"params": {"max_depth": 4}, "families": ["freq", "conf"]}.'
)


def say(text: str) -> None:
    """Plain text: paths may hold brackets (rich markup) and must not be wrapped mid-way."""
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    @app.command("cv")
    @handle_errors
    def cv_command(
        data_dir: Path = typer.Argument(..., help="Data folder (either layout)."),
        model: str = typer.Option("default", "--model", "-m", help=MODEL_HELP),
        params: Path | None = typer.Option(None, "--params", help=PARAMS_HELP),
        folds: int = typer.Option(5, "--folds", "-k", min=2, help="K of repeated K-fold."),
        repeats: int = typer.Option(3, "--repeats", "-r", min=1, help="Repeats of K-fold."),
        seed: int = typer.Option(0, "--seed", help="Seed of the folds (and of the models)."),
        compare: bool = typer.Option(
            False, "--compare", help=f"Cross-validate several models: {', '.join(COMPARE)}."
        ),
        models: str | None = typer.Option(
            None, "--models", help="Comma-separated presets to compare (implies --compare)."
        ),
        split: str = typer.Option("train", "--split", help="Labelled split to cross-validate."),
        report: Path = typer.Option(
            Path("reports/cv.json"), "--report", help="Where to write the JSON report."
        ),
        threads: int = typer.Option(1, "--threads", min=1, help="Threads per learner."),
    ) -> None:
        """Repeated K-fold cross-validation on the training users (features computed once)."""
        if compare or models:
            if params is not None:
                raise LtrError(
                    "--params changes one model (--model); not usable with --compare/--models"
                )
            names = [n.strip() for n in models.split(",")] if models else list(COMPARE)
            specs = {name: preset(name).with_seed(seed) for name in names}
        else:
            specs = {spec_label(model, params): resolve_spec(model, params).with_seed(seed)}
        dataset = load_data(data_dir)
        data = training_set(dataset, split)
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
        write_json_atomic(report, cv_report(results, data))
        say(f"report: {report}")

    @app.command("train")
    @handle_errors
    def train_command(
        data_dir: Path = typer.Argument(..., help="Data folder (either layout)."),
        model_dir: Path = typer.Option(..., "--model-dir", "-o", help="Where to save the model."),
        model: str = typer.Option("default", "--model", "-m", help=MODEL_HELP),
        params: Path | None = typer.Option(None, "--params", help=PARAMS_HELP),
        study: str | None = typer.Option(
            None,
            "--study",
            help="Train the configuration an Optuna study chose (`ltr tune`, `ltr studies "
            "show`): its best mean - k * std trial, rebuilt exactly.",
        ),
        storage: str | None = typer.Option(
            None,
            "--storage",
            envvar="LTR_STORAGE",
            help="Storage URL of --study (default $LTR_STORAGE, else sqlite:///ltr-studies.db).",
        ),
        penalty: float | None = typer.Option(
            None, "--penalty", min=0, help="With --study: k of mean - k * std (default 0.5)."
        ),
        seed: int | None = typer.Option(
            None,
            "--seed",
            help="Seed of the model (default 0; with --study, the seed the trial was scored with).",
        ),
        cv_folds: int = typer.Option(
            0, "--cv-folds", min=0, help="Also cross-validate (K folds x 1) and store the figures."
        ),
        threads: int = typer.Option(1, "--threads", min=1, help="Threads per learner."),
    ) -> None:
        """Train a model on split 'train' and save it (native files + schema + fingerprints)."""
        if study is not None and (params is not None or model != "default"):
            raise LtrError("--study trains the study's chosen configuration: drop --model/--params")
        dataset = load_data(data_dir)
        data = training_set(dataset, "train")
        cv = None
        if study is None:
            name = model
            spec = resolve_spec(model, params).with_seed(0 if seed is None else seed)
        else:
            from ltr.tuning.objective import TuningData
            from ltr.tuning.studies import DEFAULT_PENALTY, chosen_spec, study_cv_record

            spec, score, found = chosen_spec(
                study,
                storage,
                penalty=DEFAULT_PENALTY if penalty is None else penalty,
                data=TuningData.from_training_set(data),
            )
            spec = spec if seed is None else spec.with_seed(seed)
            name = f"study {study} trial {score.number}"
            cv = study_cv_record(found, score)
            say(
                f"{name}: CV mean Pearson {score.mean:.4f} ± {score.std:.4f} "
                f"(chosen by mean - {cv['penalty']:g} std = {score.penalised:.4f})"
            )
        if cv_folds:
            cv_seed = 0 if seed is None else seed
            with console.status("cross-validating"):
                (result,) = cross_validate_models(
                    data, {name: spec}, folds=cv_folds, repeats=1, seed=cv_seed, threads=threads
                )
            cv = result.to_dict()
            console.print(cv_table([result], f"Pearson, {cv_folds}-fold ({dataset.name})"))
        with console.status(f"training {escape(name)}"):
            trained = train_model(data, spec, model_dir, cv=cv, threads=threads)
        say(
            f"trained {name} on {len(data.features.users)} users of {dataset.name} train; "
            f"saved to {model_dir} ({len(trained.manifest['files'])} files)"
        )

    @app.command("predict")
    @handle_errors
    def predict_command(
        model_dir: Path = typer.Argument(..., help="A model directory from `ltr train`."),
        data_dir: Path = typer.Argument(
            ..., help="Data folder holding the split, or a Parquet detections table."
        ),
        split: str | None = typer.Option(
            None, "--split", "-s", help="Split to score (e.g. val, test); not for a table."
        ),
        out: Path | None = typer.Option(
            None,
            "--out",
            help="Run file: .json (challenge format) or .csv. "
            f"Default: {SUBMISSIONS_DIR}/<data>-<split>.json",
        ),
        threads: int = typer.Option(1, "--threads", min=1, help="Threads per learner."),
        engine: str = typer.Option("local", "--engine", help=scoring_commands.ENGINE_HELP),
        scheduler: str | None = typer.Option(
            None, "--scheduler", help=scoring_commands.SCHEDULER_HELP
        ),
        workers: int = typer.Option(2, "--workers", min=1, help="LocalCluster worker processes."),
        percentiles: bool = typer.Option(
            False, "--percentiles", help="Table: also each score's percentile among the users."
        ),
    ) -> None:
        """Score every user of a split and write a validated submission file; or every user of
        a Parquet detections table, written as Parquet."""
        from ltr.data.parquet import is_table
        from ltr.models.persistence import load_trained

        if is_table(data_dir):
            return scoring_commands.predict_table(
                model_dir, data_dir, out, split=split, engine=engine, scheduler=scheduler,
                workers=workers, percentiles=percentiles, threads=threads,
            )  # fmt: skip
        if split is None:
            raise LtrError("--split is required to score a data folder (e.g. --split test)")

        trained = load_trained(model_dir, threads=threads)
        dataset = load_data(data_dir)
        scores = trained.predict(dataset, split)
        path = out or SUBMISSIONS_DIR / f"{dataset.name}-{split}.json"
        write_submission(scores, path, dataset, split)
        say(f"wrote {path} ({len(scores)} users of {dataset.name} {split})")

    @app.command("quickstart")
    @handle_errors
    def quickstart_command(
        workdir: Path = typer.Option(
            Path("quickstart"), "--workdir", help="Folder for the synthetic data and the model."
        ),
        users: int = typer.Option(1000, "--users", min=10, help="Synthetic users."),
        seed: int = typer.Option(0, "--seed", help="Seed of the data, folds and models."),
        submissions: Path = typer.Option(
            SUBMISSIONS_DIR, "--submissions", help="Where to write the submission files."
        ),
    ) -> None:
        """The whole job on embedded synthetic data: generate, cross-validate, train, predict,
        write submissions, and compare with BASE on the validation split."""
        from ltr.quickstart import run_quickstart

        run_quickstart(workdir, users=users, seed=seed, submissions=submissions, console=console)
