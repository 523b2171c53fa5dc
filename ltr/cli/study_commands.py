"""`ltr tune` and `ltr studies list/show/report`: thin wrappers over the `tuning` package."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ltr.cli.common import console, handle_errors, load_data
from ltr.fileio import write_json_atomic
from ltr.situations import SITUATIONS
from ltr.tuning.runner import PRUNERS
from ltr.tuning.space import DEFAULT_SPACE, SPACES
from ltr.tuning.storage import DEFAULT_STORAGE, STORAGE_ENV
from ltr.tuning.studies import DEFAULT_PENALTY

STORAGE_HELP = (
    f"Optuna storage URL (default ${STORAGE_ENV}, else {DEFAULT_STORAGE} in the working "
    "folder); a plain path is a SQLite file; postgresql://... or mysql+pymysql://... for "
    "workers on several machines."
)
PENALTY_HELP = (
    "k of the penalised score mean - k * std (std = spread across folds) that chooses the "
    "configuration."
)
FAMILY_HELP = (
    "Model family to tune: "
    + "; ".join(f"{name} ({space.description})" for name, space in SPACES.items())
    + f". Default: the study's family, else {DEFAULT_SPACE}."
)


def _best_text(value: float | None, std: float | None, number: int | None) -> str:
    if value is None:
        return "best: -"
    spread = "" if std is None else f" ± {std:.3f}"
    return f"best {value:.4f}{spread} (trial {number})"


class _ProgressDisplay:
    """A rich progress bar with the best value so far; plain lines when not on a terminal
    (logs of background runs)."""

    def __init__(self, total: int | None) -> None:
        self.live = console.is_terminal
        self.last_done = -1
        if self.live:
            self.bar = Progress(
                TextColumn("[bold]tuning"),
                BarColumn(),
                MofNCompleteColumn() if total else TextColumn("{task.completed} trials"),
                TimeElapsedColumn(),
                TextColumn("{task.fields[best]}"),
                TextColumn("[dim]{task.fields[current]}"),
                console=console,
            )
            self.task = self.bar.add_task("tuning", total=total, best="best: -", current="")

    def __enter__(self) -> _ProgressDisplay:
        if self.live:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live:
            self.bar.stop()

    def __call__(self, info) -> None:  # ltr.tuning.runner.Progress
        best = _best_text(info.best_value, info.best_std, info.best_number)
        if self.live:
            self.bar.update(self.task, completed=info.done, best=best, current=info.current)
        elif info.done != self.last_done:
            total = f"/{info.total}" if info.total else ""
            console.print(
                f"trials {info.done}{total} ({info.complete} complete, {info.pruned} pruned, "
                f"{info.failed} failed); {best}",
                highlight=False,
            )
        self.last_done = info.done


def _summary_table(summary: dict, top: int) -> Table:
    k = summary["penalty"]
    table = Table(
        title=f"top {top} trials by mean - {k:g} std", title_justify="left", show_lines=False
    )
    for column in ("trial", "mean", "std", f"mean - {k:g} std", *SITUATIONS, "seconds"):
        table.add_column(column, justify="right")
    for row in summary["top"][:top]:
        table.add_row(
            str(row["number"]),
            f"{row['mean']:.4f}",
            f"{row['std']:.4f}",
            f"{row['penalised']:.4f}",
            *(f"{row['per_situation'][s]:.3f}" for s in SITUATIONS),
            f"{row['seconds']:.1f}",
        )
    return table


def _print_summary(summary: dict, *, top: int = 5, spec: bool = True) -> None:
    from ltr.tuning.objective import CVProtocol

    identity = summary["identity"]
    data, space = identity["data"], identity["space"]
    states = ", ".join(f"{n} {s}" for s, n in sorted(summary["states"].items())) or "none"
    console.print(
        f"study [bold]{summary['name']}[/]: family {space['name']} (space v{space['version']}), "
        f"{data['name']} {data['split']} ({data['n_users']} users, {data['n_features']} "
        f"features), {CVProtocol(**identity['cv']).text()}",
        highlight=False,
    )
    console.print(f"trials: {states}", highlight=False)
    if summary["orphaned_running"]:
        console.print(
            f"running trials whose worker is gone: {summary['orphaned_running']} "
            "(the next `ltr tune` on this study marks them failed)",
            highlight=False,
        )
    chosen, best = summary["chosen"], summary["best"]
    if not chosen:
        console.print("no completed trial yet")
        return
    console.print(
        f"best mean: trial {best['number']}, {best['mean']:.4f} ± {best['std']:.4f} (fold spread)",
        highlight=False,
    )
    console.print(
        f"chosen (max mean - {summary['penalty']:g} std): trial {chosen['number']}, "
        f"[bold]{chosen['mean']:.4f}[/] ± {chosen['std']:.4f}, penalised "
        f"{chosen['penalised']:.4f}",
        highlight=False,
    )
    console.print(
        "  per situation: "
        + ", ".join(
            f"{s} {chosen['per_situation'][s]:.3f} ± {chosen['per_situation_std'][s]:.3f}"
            for s in SITUATIONS
        ),
        highlight=False,
    )
    if top:
        console.print(_summary_table(summary, top))
    if spec:
        console.print("parameters of the chosen trial:", highlight=False)
        params = SPACES[space["name"]].params
        order = {p.name: i for i, p in enumerate(params)}
        number = chosen["number"]
        values = next(t["params"] for t in summary["top"] if t["number"] == number)
        for name in sorted(values, key=lambda n: order.get(n, len(order))):
            value = values[name]
            text = f"{value:.4g}" if isinstance(value, float) else str(value)
            console.print(f"  {name} = {text}", highlight=False)


def register(app: typer.Typer) -> None:
    studies_app = typer.Typer(
        help="Inspect Optuna studies made by `ltr tune`.", no_args_is_help=True
    )

    @app.command("tune")
    @handle_errors
    def tune_command(
        data_dir: Path = typer.Argument(..., help="Data folder (either layout)."),
        study: str = typer.Option(..., "--study", "-s", help="Study name (resumed if it exists)."),
        storage: str | None = typer.Option(
            None, "--storage", envvar=STORAGE_ENV, help=STORAGE_HELP
        ),
        trials: int | None = typer.Option(
            None, "--trials", "-n", min=1, help="Trials to add (default 50 without --timeout)."
        ),
        timeout: float | None = typer.Option(
            None, "--timeout", min=1, help="Stop starting trials after this many seconds."
        ),
        jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="Worker processes."),
        model: str | None = typer.Option(None, "--model", "-m", help=FAMILY_HELP),
        folds: int | None = typer.Option(
            None,
            "--folds",
            "-k",
            min=2,
            help="K of the repeated K-fold objective (default: the study's, else 5).",
        ),
        repeats: int | None = typer.Option(
            None, "--repeats", "-r", min=1, help="Repeats of K-fold (default: the study's, else 2)."
        ),
        cv_seed: int | None = typer.Option(
            None, "--cv-seed", help="Seed of the folds and models (default: the study's, else 0)."
        ),
        seed: int = typer.Option(0, "--seed", help="Seed of the TPE sampler."),
        pruner: str = typer.Option(
            "median", "--pruner", help=f"Pruner: {', '.join(PRUNERS)} (see README)."
        ),
        threads: int = typer.Option(1, "--threads", min=1, help="Threads per learner."),
        split: str = typer.Option("train", "--split", help="Labelled split to tune on."),
        penalty: float = typer.Option(DEFAULT_PENALTY, "--penalty", min=0, help=PENALTY_HELP),
    ) -> None:
        """Tune a model family with Optuna for mean CV Pearson; resumable, parallel."""
        import optuna

        from ltr.tuning.objective import TuningData
        from ltr.tuning.runner import TuneInterrupted, tune
        from ltr.tuning.storage import redact_url, storage_url
        from ltr.tuning.studies import load_existing_study, study_summary
        from ltr.workflow import training_set

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        if trials is None and timeout is None:
            trials = 50
        data = TuningData.from_training_set(training_set(load_data(data_dir), split))
        url = storage_url(storage)
        budget = " and ".join(
            x
            for x in (f"{trials} trials" if trials else "", f"{timeout:g} s" if timeout else "")
            if x
        )
        console.print(
            f"{data.name} {split}: {data.features.shape[0]} users, {data.features.shape[1]} "
            f"features; study {study} in {redact_url(url)}; {budget}, {jobs} worker(s)",
            highlight=False,
        )
        interrupted = False
        with _ProgressDisplay(trials) as display:
            try:
                outcome = tune(
                    data,
                    study,
                    storage=url,
                    space=model,
                    folds=folds,
                    repeats=repeats,
                    cv_seed=cv_seed,
                    n_trials=trials,
                    timeout=timeout,
                    jobs=jobs,
                    seed=seed,
                    pruner=pruner,
                    threads=threads,
                    progress=display,
                )
            except TuneInterrupted as stop:
                outcome, interrupted = stop.outcome, True
        if outcome.orphans_failed:
            console.print(
                f"marked failed: trial(s) {outcome.orphans_failed} (their worker had died)",
                highlight=False,
            )
        state = "created" if outcome.created else f"resumed ({outcome.trials_before} trials)"
        counts = ", ".join(f"{n} {s}" for s, n in sorted(outcome.new_trials.items())) or "none"
        console.print(
            f"study {study} {state}: family {outcome.space}, {outcome.protocol.text()}; "
            f"this run: {counts}",
            highlight=False,
        )
        _print_summary(study_summary(load_existing_study(study, url), penalty), top=5, spec=False)
        if interrupted:
            console.print(
                "[yellow]interrupted[/]: completed trials are saved, the running one is marked "
                "failed; run the same command again to resume"
            )
            raise typer.Exit(130)

    @studies_app.command("list")
    @handle_errors
    def list_command(
        storage: str | None = typer.Option(
            None, "--storage", envvar=STORAGE_ENV, help=STORAGE_HELP
        ),
        penalty: float = typer.Option(DEFAULT_PENALTY, "--penalty", min=0, help=PENALTY_HELP),
    ) -> None:
        """Studies in a storage: family, data, trials by state, best and chosen values."""
        from ltr.tuning.objective import CVProtocol
        from ltr.tuning.storage import redact_url, storage_url
        from ltr.tuning.studies import list_studies

        rows = list_studies(storage, penalty)
        console.print(f"{len(rows)} studies in {redact_url(storage_url(storage))}", highlight=False)
        for row in rows:
            identity = row["identity"]
            best, chosen, states = row["best"], row["chosen"], row["states"]
            data, protocol = identity["data"], CVProtocol(**identity["cv"])
            counts = ", ".join(f"{n} {state}" for state, n in sorted(states.items())) or "none"
            console.print(
                f"[bold]{escape(row['name'])}[/]: {identity['space']['name']} on {data['name']} "
                f"{data['split']} ({protocol.folds}-fold x {protocol.repeats}); "
                f"{row['n_trials']} trials: {counts}",
                highlight=False,
            )
            if best:
                console.print(
                    f"  best {best['mean']:.4f} ± {best['std']:.4f} (trial {best['number']}); "
                    f"chosen: trial {chosen['number']} (mean - {row['penalty']:g} std = "
                    f"{chosen['penalised']:.4f})",
                    highlight=False,
                )

    @studies_app.command("show")
    @handle_errors
    def show_command(
        name: str = typer.Argument(..., help="Study name."),
        storage: str | None = typer.Option(
            None, "--storage", envvar=STORAGE_ENV, help=STORAGE_HELP
        ),
        penalty: float = typer.Option(DEFAULT_PENALTY, "--penalty", min=0, help=PENALTY_HELP),
        top: int = typer.Option(10, "--top", min=0, help="Trials to list."),
        export: Path | None = typer.Option(
            None, "--export", help="Write the chosen model spec as JSON (for `ltr cv --params`)."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    ) -> None:
        """Trials by state, best value with its spread, the chosen configuration."""
        from ltr.tuning.studies import load_existing_study, study_summary

        summary = study_summary(load_existing_study(name, storage), penalty)
        if as_json:
            typer.echo(json.dumps(summary, indent=2, default=str))
        else:
            _print_summary(summary, top=top)
        if export is not None:
            if not summary["chosen"]:
                from ltr.errors import StudyError

                raise StudyError(f"study {name!r} has no completed trial to export")
            write_json_atomic(export, summary["chosen"]["spec"])
            if not as_json:
                console.print(f"wrote the chosen spec to {export}", highlight=False)

    @studies_app.command("report")
    @handle_errors
    def report_command(
        name: str = typer.Argument(..., help="Study name."),
        out: Path = typer.Option(..., "--out", "-o", help="Folder for the figures and HTML."),
        storage: str | None = typer.Option(
            None, "--storage", envvar=STORAGE_ENV, help=STORAGE_HELP
        ),
        penalty: float = typer.Option(DEFAULT_PENALTY, "--penalty", min=0, help=PENALTY_HELP),
    ) -> None:
        """Figures (history, importances, pruning, spread, per situation) and an HTML page."""
        from ltr.tuning.report import write_report
        from ltr.tuning.studies import load_existing_study

        summary = write_report(load_existing_study(name, storage), out, penalty=penalty)
        for figure, status in summary["figures"].items():
            note = "" if status == "ok" else f" (not drawn: {status})"
            console.print(f"  {out / figure}{note}", highlight=False)
        console.print(f"report: {out / 'index.html'}", highlight=False)

    app.add_typer(studies_app, name="studies")
