"""`ltr tune` and `ltr studies list/show/report`: thin wrappers over the `tuning` package."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from ltr.cli import dashboard_commands
from ltr.cli.boundary import command, new_app
from ltr.cli.common import (
    MAX_REPEATS,
    MAX_SEED,
    DataDir,
    Threads,
    console,
    err_console,
    load_data,
    out_option,
    say,
    split_option,
    use_storage_input,
)
from ltr.cli.vocabulary import (
    DEFAULT_PENALTY,
    DEFAULT_PRUNER,
    DEFAULT_SPACE,
    DEFAULT_STORAGE,
    PRUNERS,
    RESCORE_FOLDS,
    RESCORE_REPEATS,
    RESCORE_SEED_OFFSET,
    SPACES,
    STORAGE_ENV,
)
from ltr.redact import redact_url
from ltr.situations import SITUATIONS

STORAGE_HELP = (
    f"Optuna storage URL (default ${STORAGE_ENV}, else {DEFAULT_STORAGE} in the working "
    "folder); a plain path is a SQLite file; postgresql://... or mysql+pymysql://... for "
    "workers on several machines (passwords are never printed)."
)
PENALTY_HELP = (
    "k of the penalised score mean - k * std (std = spread across folds) that chooses the "
    "configuration."
)
FAMILY_HELP = (
    f"Model family to tune: {', '.join(SPACES)} (docs/tuning.md). "
    f"Default: the study's family, else {DEFAULT_SPACE}."
)
Storage = Annotated[
    str | None,
    typer.Option(
        "--storage", metavar="URL", envvar=STORAGE_ENV, help=STORAGE_HELP, show_default=False
    ),
]
Penalty = Annotated[float, typer.Option("--penalty", min=0, help=PENALTY_HELP)]
StudyName = Annotated[str, typer.Argument(metavar="STUDY", help="Study name.", show_default=False)]


def _best_text(value: float | None, std: float | None, number: int | None) -> str:
    if value is None:
        return "best: -"
    spread = "" if std is None else f" ± {std:.3f}"
    return f"best {value:.4f}{spread} (trial {number})"


class _ProgressDisplay:
    """A rich progress bar with the best value so far; plain lines when not on a terminal
    (logs of background runs)."""

    def __init__(self, total: int | None) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

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

    def __call__(self, info: Any) -> None:  # ltr.tuning.runner.Progress
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


def _print_summary(summary: dict, *, top: int = 5, spec: bool = True) -> None:
    from ltr.tables import trials_table
    from ltr.tuning.objective import CVProtocol
    from ltr.tuning.space import SPACES as SPACE_DEFINITIONS

    identity = summary["identity"]
    data, space = identity["data"], identity["space"]
    states = ", ".join(f"{n} {s}" for s, n in sorted(summary["states"].items())) or "none"
    console.print(
        f"study [bold]{escape(summary['name'])}[/]: family {space['name']} "
        f"(space v{space['version']}), "
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
    if summary.get("rescoring"):
        print_rescoring(summary["rescoring"])
    if top:
        console.print(trials_table(summary, top))
    if spec:
        console.print("parameters of the chosen trial:", highlight=False)
        params = SPACE_DEFINITIONS[space["name"]].params
        order = {p.name: i for i, p in enumerate(params)}
        number = chosen["number"]
        values = next(t["params"] for t in summary["top"] if t["number"] == number)
        for name in sorted(values, key=lambda n: order.get(n, len(order))):
            value = values[name]
            text = f"{value:.4g}" if isinstance(value, float) else str(value)
            console.print(f"  {name} = {text}", highlight=False)


def print_rescoring(rescoring: dict[str, Any]) -> None:
    """The chosen trial next to the default on fresh folds, and what `train --study` trains."""
    from ltr.tuning.objective import CVProtocol

    protocol = CVProtocol(**rescoring["protocol"])
    tuned, default = rescoring["tuned"], rescoring["default"]
    trial = rescoring["trial"]
    say(f"fresh folds ({protocol.text()}, never used by the search):")
    rows = [("default", default)]
    if rescoring["comparison"] is not None:
        rows.insert(0, (f"trial {trial}", tuned))
    width = max(len(label) for label, _ in rows)
    for label, cv in rows:
        situations = ", ".join(f"{s} {cv['per_situation'][s]:.3f}" for s in SITUATIONS)
        say(f"  {label:<{width}}  {cv['mean']:.4f} ± {cv['std']:.4f}  ({situations})")
    comparison = rescoring["comparison"]
    if comparison is None:
        say(f"  the chosen trial {trial} is the untuned default: `ltr train --study` trains it")
        return
    p = comparison["p_value"]
    say(
        f"  trial {trial} - default: {comparison['mean']:+.4f}, 95% interval "
        f"[{comparison['low']:+.4f}, {comparison['high']:+.4f}] (corrected t-test, "
        f"p = {'-' if p is None else f'{p:.3f}'})"
    )
    if tuned["mean"] > default["mean"]:
        say(f"  `ltr train --study` trains trial {trial} (it beats the default here)")
    else:
        say(
            f"  `ltr train --study` trains the default (trial {trial} does not beat it here; "
            "--force-tuned trains the trial)"
        )


def tune(
    data_dir: DataDir,
    study: Annotated[
        str,
        typer.Option("--study", help="Study name (resumed if it exists).", show_default=False),
    ],
    storage: Storage = None,
    trials: Annotated[
        int | None,
        typer.Option(
            "--trials",
            "-n",
            min=1,
            help="Trials to add (default 50 without --timeout).",
            show_default=False,
        ),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            min=1,
            help="Stop starting trials after this many seconds.",
            show_default=False,
        ),
    ] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Worker processes.")] = 1,
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", metavar="FAMILY", help=FAMILY_HELP, show_default=False),
    ] = None,
    folds: Annotated[
        int | None,
        typer.Option(
            "--folds",
            "-k",
            min=2,
            help="K of the repeated K-fold objective (default: the study's, else 5).",
            show_default=False,
        ),
    ] = None,
    repeats: Annotated[
        int | None,
        typer.Option(
            "--repeats",
            "-r",
            min=1,
            max=MAX_REPEATS,
            help="Repeats of K-fold (default: the study's, else 2).",
            show_default=False,
        ),
    ] = None,
    cv_seed: Annotated[
        int | None,
        typer.Option(
            "--cv-seed",
            min=0,
            max=MAX_SEED,
            help="Seed of the folds and models (default: the study's, else 0).",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[
        int, typer.Option("--seed", min=0, max=MAX_SEED, help="Seed of the TPE sampler.")
    ] = 0,
    pruner: Annotated[
        str,
        typer.Option(
            "--pruner",
            help=f"Pruner: {', '.join(PRUNERS)} (halving: most trials stop after 2 or 4 folds; "
            "docs/tuning.md).",
        ),
    ] = DEFAULT_PRUNER,
    threads: Threads = 1,
    split: Annotated[str, split_option("Labelled split to tune on.")] = "train",
    penalty: Penalty = DEFAULT_PENALTY,
    rescore: Annotated[
        bool,
        typer.Option(
            "--rescore/--no-rescore",
            help=f"End by re-scoring the chosen trial and the default on fresh folds "
            f"({RESCORE_FOLDS}-fold x {RESCORE_REPEATS}, CV seed + {RESCORE_SEED_OFFSET}); "
            "stored in the study for `ltr train --study`.",
        ),
    ] = True,
) -> None:
    """Tune a model family with Optuna for mean CV Pearson; resumable, parallel; then
    re-score the choice against the default on fresh folds."""
    import optuna

    from ltr.tuning.objective import TuningData
    from ltr.tuning.runner import TuneInterrupted
    from ltr.tuning.runner import tune as run_tune
    from ltr.tuning.storage import storage_url
    from ltr.tuning.studies import load_existing_study, study_summary
    from ltr.workflow import check_cv_folds, training_set

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if trials is None and timeout is None:
        trials = 50
    training = training_set(load_data(data_dir), split)
    if folds is not None:
        check_cv_folds(training, folds, repeats or 1)
    data = TuningData.from_training_set(training)
    url = storage_url(storage)
    budget = " and ".join(
        x for x in (f"{trials} trials" if trials else "", f"{timeout:g} s" if timeout else "") if x
    )
    say(
        f"{data.name} {split}: {data.features.shape[0]} users, {data.features.shape[1]} "
        f"features; study {study} in {redact_url(url)}; {budget}, {jobs} worker(s)"
    )
    interrupted = False
    with _ProgressDisplay(trials) as display:
        try:
            outcome = run_tune(
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
        say(f"marked failed: trial(s) {outcome.orphans_failed} (their worker had died)")
    state = "created" if outcome.created else f"resumed ({outcome.trials_before} trials)"
    counts = ", ".join(f"{n} {s}" for s, n in sorted(outcome.new_trials.items())) or "none"
    say(
        f"study {study} {state}: family {outcome.space}, {outcome.protocol.text()}; "
        f"this run: {counts}"
    )
    summary = study_summary(load_existing_study(study, url), penalty)
    _print_summary(summary, top=5, spec=False)
    if rescore and not interrupted and summary["chosen"] and not summary.get("rescoring"):
        from ltr.tuning.rescore import rescore_choice

        with console.status("re-scoring on fresh folds") as status:
            _, rescoring = rescore_choice(
                data,
                study,
                url,
                penalty=penalty,
                threads=threads,
                progress=lambda text: status.update(f"re-scoring on fresh folds: {text}"),
            )
        print_rescoring(rescoring.to_dict())
    if interrupted:
        console.print(
            "[yellow]interrupted[/]: completed trials are saved, the running one is marked "
            "failed; run the same command again to resume"
        )
        raise typer.Exit(130)


def list_studies(storage: Storage = None, penalty: Penalty = DEFAULT_PENALTY) -> None:
    """Studies in a storage: family, data, trials by state, best and chosen values."""
    from ltr.tuning.objective import CVProtocol
    from ltr.tuning.storage import storage_url
    from ltr.tuning.studies import list_studies as summaries

    rows = summaries(storage, penalty)
    say(f"{len(rows)} studies in {redact_url(storage_url(storage))}")
    for row in rows:
        identity = row["identity"]
        best, chosen, states = row["best"], row["chosen"], row["states"]
        data, protocol = identity["data"], CVProtocol(**identity["cv"])
        counts = ", ".join(f"{n} {state}" for state, n in sorted(states.items())) or "none"
        console.print(
            f"[bold]{escape(row['name'])}[/]: {escape(identity['space']['name'])} on "
            f"{escape(data['name'])} {escape(data['split'])} ({protocol.folds}-fold x "
            f"{protocol.repeats}); {row['n_trials']} trials: {counts}",
            highlight=False,
            soft_wrap=True,
        )
        if best:
            say(
                f"  best {best['mean']:.4f} ± {best['std']:.4f} (trial {best['number']}); "
                f"chosen: trial {chosen['number']} (mean - {row['penalty']:g} std = "
                f"{chosen['penalised']:.4f})"
            )


def show(
    name: StudyName,
    storage: Storage = None,
    penalty: Penalty = DEFAULT_PENALTY,
    top: Annotated[int, typer.Option("--top", min=0, help="Trials to list.")] = 10,
    export: Annotated[
        Path | None,
        typer.Option(
            "--export",
            metavar="SPEC_FILE",
            help="Write the chosen model spec as JSON (for `ltr cv --params`).",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Trials by state, best value with its spread, the chosen configuration."""
    from ltr.errors import StudyError
    from ltr.fileio import write_json_atomic
    from ltr.outputs import claim_output
    from ltr.tuning.studies import load_existing_study, study_summary

    use_storage_input(storage)
    if export is not None:
        claim_output(export)
    summary = study_summary(load_existing_study(name, storage), penalty)
    if as_json:
        typer.echo(redact_url(json.dumps(summary, indent=2, default=str)))
    else:
        _print_summary(summary, top=top)
    if export is not None:
        if not summary["chosen"]:
            raise StudyError(f"study {name!r} has no completed trial to export")
        write_json_atomic(export, summary["chosen"]["spec"])
        # with --json, stdout holds only the JSON
        (err_console if as_json else console).print(
            f"wrote the chosen spec to {export}", markup=False, highlight=False, soft_wrap=True
        )


def report(
    name: StudyName,
    out: Annotated[
        Path,
        out_option("Folder for the figures and HTML (replaced if it holds an earlier report)."),
    ],
    storage: Storage = None,
    penalty: Penalty = DEFAULT_PENALTY,
) -> None:
    """Figures (history, importances, pruning, spread, per situation) and an HTML page."""
    from ltr.outputs import claim_output
    from ltr.workflow import check_report_dir, study_report

    use_storage_input(storage)
    check_report_dir(claim_output(out, folder=True))
    summary = study_report(name, out, storage=storage, penalty=penalty)
    for figure, status in summary["figures"].items():
        note = "" if status == "ok" else f" (not drawn: {status})"
        say(f"  {out / figure}{note}")
    say(f"report: {out / 'index.html'}")


def register(app: typer.Typer) -> None:
    """Add `tune` and the `studies` group (list, show, report) to `app`."""
    command(app, "tune")(tune)
    studies_app = new_app(help="Inspect Optuna studies made by `ltr tune`.")
    command(studies_app, "list")(list_studies)
    command(studies_app, "show")(show)
    command(studies_app, "report")(report)
    dashboard_commands.register(studies_app, Storage)
    app.add_typer(studies_app, name="studies")
