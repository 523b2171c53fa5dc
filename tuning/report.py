"""A study as figures and one HTML page, for a person rather than a log.

Figures (PNG, drawn here with `matplotlib.figure.Figure`: no pyplot state, no backend switch
inside a library call, and axes named in the toolkit's terms rather than Optuna's generic ones):

- ``history.png``: every trial's mean Pearson (CV) by trial number, pruned trials at the running
  mean where they stopped, the best so far and the chosen trial;
- ``importances.png``: which parameters mattered (fANOVA), only once enough trials are complete
  (`MIN_IMPORTANCE_TRIALS`) and only for parameters that enough of them share, top
  `MAX_IMPORTANCES`;
- ``intermediate.png``: the running mean fold by fold, pruned trials included;
- ``spread.png``: mean against fold spread of every completed trial, with the penalised
  choice and the line mean - k * std through it;
- ``situations.png``: the chosen trial's Pearson per situation, fold by fold.

A figure that cannot say anything (too few trials, none complete) is still written, as a short
note saying why, so the report always has the same files; the page says why too.
"""

from __future__ import annotations

import json
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator, PercentFormatter
from optuna.trial import FrozenTrial, TrialState

from ltr.feedback.html import esc, facts, inline_markdown, page
from ltr.fileio import atomic_path, write_text_atomic
from ltr.situations import DESCRIPTIONS, SITUATIONS
from ltr.tuning.objective import CVProtocol
from ltr.tuning.studies import DEFAULT_PENALTY, scored_trials, study_summary

#: Fewer complete trials than this give no importances: fANOVA fits a random forest to the
#: trials, and on a handful of points it ranks noise (with 5 trials every one of ~30 parameters
#: got a share, most "<0.01").
MIN_IMPORTANCE_TRIALS = 10
#: At most this many parameters in the importance figure (the rest are summed up in its title).
MAX_IMPORTANCES = 15
OBJECTIVE = "mean Pearson (CV)"
DPI = 110


def _save(figure: Figure, path: Path) -> None:
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=DPI, format="png")


def _note_figure(path: Path, title: str, reason: str) -> None:
    """A small figure that says why `title` was not drawn."""
    figure = Figure(figsize=(7, 1.6))
    figure.text(0.02, 0.7, title, fontsize=12, weight="bold")
    figure.text(0.02, 0.3, f"Not drawn: {reason}", fontsize=10, wrap=True)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=DPI, format="png")


def _complete(study: optuna.Study) -> list[FrozenTrial]:
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return [t for t in trials if t.value is not None]


def _last_running_mean(trial: FrozenTrial) -> float | None:
    if not trial.intermediate_values:
        return None
    return float(trial.intermediate_values[max(trial.intermediate_values)])


def history_figure(study: optuna.Study, penalty: float) -> Figure | str:
    complete = sorted(_complete(study), key=lambda t: t.number)
    pruned = [
        (t.number, value)
        for t in study.get_trials(deepcopy=False, states=(TrialState.PRUNED,))
        if (value := _last_running_mean(t)) is not None
    ]
    if not complete and not pruned:
        return "no complete or pruned trial yet"
    figure = Figure(figsize=(8, 4.8))
    ax = figure.add_subplot()
    if pruned:
        x, y = zip(*pruned, strict=True)
        ax.scatter(x, y, marker="x", s=22, color="0.55", label="pruned: running mean when stopped")
    if complete:
        numbers = np.array([t.number for t in complete])
        values = np.array([t.value for t in complete], dtype=float)
        ax.scatter(numbers, values, s=22, color="tab:blue", label="complete trial")
        best = np.maximum.accumulate(values)
        ax.step(numbers, best, where="post", color="navy", lw=1.2, label="best so far")
        chosen = scored_trials(study, penalty)
        if chosen:
            ax.scatter(
                [chosen[0].number],
                [chosen[0].mean],
                marker="*",
                s=180,
                color="crimson",
                zorder=3,
                label=f"chosen: trial {chosen[0].number} (mean - {penalty:g} std)",
            )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trial number")
    ax.set_ylabel(OBJECTIVE)
    ax.set_title(f"Optimisation history: {len(complete)} complete, {len(pruned)} pruned")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return figure


def intermediate_figure(study: optuna.Study, penalty: float) -> Figure | str:
    trials = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
        if t.intermediate_values
    ]
    if not trials:
        return "no trial has reported a fold yet"
    figure = Figure(figsize=(8, 4.8))
    ax = figure.add_subplot()
    for trial in sorted(trials, key=lambda t: t.number):
        steps = sorted(trial.intermediate_values)
        folds = [s + 1 for s in steps]
        values = [trial.intermediate_values[s] for s in steps]
        if trial.state == TrialState.PRUNED:
            ax.plot(folds, values, ls="--", lw=0.8, color="0.6")
            ax.plot(folds[-1:], values[-1:], marker="x", color="0.45", ms=5)
        else:
            ax.plot(folds, values, lw=0.9, color="tab:blue", alpha=0.6)
    ax.legend(
        handles=[
            Line2D([], [], color="tab:blue", lw=1, label="complete trial"),
            Line2D([], [], color="0.5", ls="--", marker="x", lw=1, label="pruned after this fold"),
        ],
        loc="lower right",
        fontsize=8,
    )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("fold (in the order scored)")
    ax.set_ylabel(f"running {OBJECTIVE}")
    ax.set_title(f"Running mean fold by fold: {len(trials)} trials")
    ax.grid(alpha=0.3)
    return figure


def importance_parameters(study: optuna.Study) -> tuple[list[str], int, str | None]:
    """The parameters to rank, how many complete trials share all of them, or why none.

    Conditional parameters exist only in some trials (e.g. XGBoost's when the ensemble chose
    XGBoost). Parameters are taken most common first, each only if at least
    `MIN_IMPORTANCE_TRIALS` complete trials have it and every one taken before; a parameter
    with one value in all of those trials carries no information and is left out.
    """
    complete = _complete(study)
    if len(complete) < MIN_IMPORTANCE_TRIALS:
        return (
            [],
            len(complete),
            f"{len(complete)} complete trial(s); importances need at least "
            f"{MIN_IMPORTANCE_TRIALS} (fANOVA fits a forest to the trials: on fewer it ranks "
            "noise)",
        )
    counts = Counter(name for t in complete for name in t.params)
    chosen: list[str] = []
    sharing = complete
    for name in sorted(counts, key=lambda p: (-counts[p], p)):
        having = [t for t in sharing if name in t.params]
        if len(having) >= MIN_IMPORTANCE_TRIALS:
            chosen.append(name)
            sharing = having
    varying = [p for p in chosen if len({repr(t.params[p]) for t in sharing}) > 1]
    if not varying:
        return [], len(sharing), "no parameter varies among the complete trials"
    return varying, len(sharing), None


def parameter_importances(study: optuna.Study) -> tuple[dict[str, float], int, str | None]:
    """fANOVA importances (seeded: the same study gives the same figure), the number of trials
    they rest on, or why there are none."""
    params, n_trials, why = importance_parameters(study)
    if why is not None:
        return {}, n_trials, why
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # experimental-API warnings
        try:
            importances = get_param_importances(
                study, evaluator=FanovaImportanceEvaluator(seed=0), params=params
            )
        except (ValueError, RuntimeError, ZeroDivisionError) as error:
            return {}, n_trials, str(error) or type(error).__name__
    ordered = sorted(importances.items(), key=lambda item: (-item[1], item[0]))
    return {name: float(value) for name, value in ordered}, n_trials, None


def importance_figure(importances: dict[str, float], n_trials: int) -> Figure:
    """Horizontal bars of the `MAX_IMPORTANCES` largest importances, labelled in percent."""
    shown = list(importances.items())[:MAX_IMPORTANCES]
    rest = len(importances) - len(shown)
    figure = Figure(figsize=(8, 1.3 + 0.32 * len(shown)))
    ax = figure.add_subplot()
    names = [name for name, _ in shown][::-1]
    values = [value for _, value in shown][::-1]
    ax.barh(names, values, color="tab:blue")
    for y, value in enumerate(values):
        label = f"{value:.0%}" if value >= 0.005 else "<1%"
        ax.text(value, y, f" {label}", va="center", fontsize=8)
    ax.set_xlim(0, max(values) * 1.15 if max(values) > 0 else 1)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel(f"share of the variance of {OBJECTIVE} explained (fANOVA)")
    more = f"; {rest} more below {shown[-1][1]:.0%}" if rest else ""
    ax.set_title(
        f"Parameter importances: {len(importances)} parameters shared by {n_trials} "
        f"complete trials{more}",
        fontsize=10,
    )
    ax.tick_params(axis="y", labelsize=8)
    return figure


def spread_figure(study: optuna.Study, penalty: float) -> Figure | str:
    scores = scored_trials(study, penalty)
    if not scores:
        return "no completed trial"
    figure = Figure(figsize=(7, 5))
    ax = figure.add_subplot()
    std = np.array([s.std for s in scores])
    mean = np.array([s.mean for s in scores])
    ax.scatter(std, mean, s=18, alpha=0.6, color="tab:blue", label="complete trials")
    chosen, best = scores[0], max(scores, key=lambda s: s.mean)
    grid = np.linspace(std.min() * 0.9, std.max() * 1.1 + 1e-9, 50)
    ax.plot(
        grid,
        chosen.penalised + penalty * grid,
        "--",
        color="grey",
        lw=1,
        label=f"mean - {penalty:g} std = {chosen.penalised:.4f}",
    )
    ax.scatter(
        [best.std],
        [best.mean],
        marker="s",
        s=110,
        facecolors="none",
        edgecolors="navy",
        linewidths=1.5,
        label=f"best mean: trial {best.number}",
    )
    ax.scatter(
        [chosen.std],
        [chosen.mean],
        marker="*",
        s=180,
        color="crimson",
        label=f"chosen: trial {chosen.number}",
    )
    ax.set_xlabel("spread across folds (std of the per-fold mean Pearson)")
    ax.set_ylabel(OBJECTIVE)
    ax.set_title("Mean against fold spread")
    ax.legend(loc="lower right", fontsize=8)
    return figure


def situations_figure(study: optuna.Study, penalty: float) -> Figure | str:
    scores = scored_trials(study, penalty)
    if not scores:
        return "no completed trial"
    chosen = scores[0]
    trial = study.trials[chosen.number]
    folds = np.asarray(trial.user_attrs["cv"]["fold_pearson"], dtype=float)
    figure = Figure(figsize=(7, 5))
    ax = figure.add_subplot()
    ax.boxplot([folds[:, j] for j in range(len(SITUATIONS))], widths=0.5)
    ax.set_xticks(range(1, len(SITUATIONS) + 1))
    ax.set_xticklabels([f"{s}\n{DESCRIPTIONS[s]}" for s in SITUATIONS], fontsize=8)
    for j in range(len(SITUATIONS)):
        jitter = np.linspace(-0.12, 0.12, len(folds)) if len(folds) > 1 else [0.0]
        ax.scatter(j + 1 + np.asarray(jitter), folds[:, j], s=10, alpha=0.6, color="tab:blue")
        ax.annotate(f"{folds[:, j].mean():.3f}", (j + 1.28, folds[:, j].mean()), fontsize=8)
    ax.axhline(chosen.mean, color="crimson", lw=1, ls="--", label=f"mean {chosen.mean:.4f}")
    ax.set_ylabel("Pearson on the held-out fold")
    ax.set_title(f"Chosen trial {chosen.number}: Pearson per situation, {len(folds)} folds")
    ax.legend(loc="lower right", fontsize=8)
    return figure


#: Figure files in page order, with their titles.
TITLES = {
    "situations.png": "Chosen trial per situation",
    "spread.png": "Mean against fold spread",
    "history.png": "Optimisation history",
    "importances.png": "Parameter importances",
    "intermediate.png": "Running mean per fold (pruning)",
}


def write_report(
    study: optuna.Study, out_dir: str | Path, *, penalty: float = DEFAULT_PENALTY
) -> dict[str, Any]:
    """Write the figures, ``summary.json`` and ``index.html`` into `out_dir`; returns the
    summary with the figure files (or why a figure says it was not drawn)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    importances, n_trials, why = parameter_importances(study)
    drawn: dict[str, Figure | str] = {
        "history.png": history_figure(study, penalty),
        "importances.png": why if why is not None else importance_figure(importances, n_trials),
        "intermediate.png": intermediate_figure(study, penalty),
        "spread.png": spread_figure(study, penalty),
        "situations.png": situations_figure(study, penalty),
    }
    figures: dict[str, str | None] = {}
    for name, figure in drawn.items():
        if isinstance(figure, str):
            _note_figure(out / name, TITLES[name], figure)
            figures[name] = figure
        else:
            _save(figure, out / name)
            figures[name] = None
    summary = study_summary(study, penalty)
    summary["figures"] = {name: why or "ok" for name, why in figures.items()}
    summary["importances"] = (
        {"skipped": why} if why is not None else {"trials": n_trials, "importances": importances}
    )
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2, default=str))
    write_text_atomic(out / "index.html", _html(summary, figures))
    return summary


def _table(rows: list[list[str]], header: list[str], numeric_from: int = 1) -> str:
    def cell(tag: str, i: int, value: object) -> str:
        cls = ' class="num"' if i >= numeric_from else ""
        return f"<{tag}{cls}>{esc(value)}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(header))
    body = "".join(
        "<tr>" + "".join(cell("td", i, c) for i, c in enumerate(row)) + "</tr>" for row in rows
    )
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f'<div class="scroll">{table}</div>'


def _html(summary: dict[str, Any], figures: dict[str, str | None]) -> str:
    identity = summary["identity"]
    data, space = identity.get("data", {}), identity.get("space", {})
    protocol = CVProtocol(**identity["cv"]) if "cv" in identity else None
    k = summary["penalty"]
    name = summary["name"]
    parts = [
        '<p class="eyebrow">ltr &middot; tuning study report</p>',
        f"<h1>Study <code>{esc(name)}</code></h1>",
        facts(
            [
                (
                    "Model family",
                    f"<code>{esc(space.get('name'))}</code> (search space "
                    f"v{esc(space.get('version'))}, {esc(space.get('hash'))})",
                ),
                (
                    "Data",
                    esc(
                        f"{data.get('name')} {data.get('split')} ({data.get('n_users')} users, "
                        f"{data.get('n_features')} features), fingerprint {data.get('fingerprint')}"
                    ),
                ),
                (
                    "Objective",
                    esc(f"{OBJECTIVE} over {protocol.text() if protocol else '?'}"),
                ),
                (
                    "Trials",
                    esc(", ".join(f"{n} {s}" for s, n in sorted(summary["states"].items()))),
                ),
            ]
        ),
    ]
    chosen, best = summary["chosen"], summary["best"]
    if chosen:
        parts.append("<h2>Chosen configuration</h2>")
        parts.append(
            "<p>"
            + inline_markdown(
                f"Trial {chosen['number']}: CV mean {chosen['mean']:.4f} ± {chosen['std']:.4f} "
                f"(penalised mean - {k:g} std = {chosen['penalised']:.4f}). Best mean: trial "
                f"{best['number']}, {best['mean']:.4f} ± {best['std']:.4f}. "
                f"`ltr train DIR --study {name} --model-dir OUT` trains the chosen one."
            )
            + "</p>"
        )
        parts.append(
            _table(
                [
                    [
                        f"{s} ({DESCRIPTIONS[s]})",
                        f"{chosen['per_situation'][s]:.4f}",
                        f"{chosen['per_situation_std'][s]:.4f}",
                    ]
                    for s in SITUATIONS
                ],
                ["situation", "mean Pearson", "std across folds"],
            )
        )
        parts.append(
            "<details><summary>Model spec (JSON, usable with <code>ltr cv --params</code>)"
            f"</summary><pre><code>{esc(json.dumps(chosen['spec'], indent=2))}</code></pre>"
            "</details>"
        )
        rows = [
            [
                t["number"],
                f"{t['mean']:.4f}",
                f"{t['std']:.4f}",
                f"{t['penalised']:.4f}",
                f"{t['seconds']:.1f}",
            ]
            for t in summary["top"]
        ]
        parts.append("<h2>Top trials by penalised score</h2>")
        parts.append(
            _table(rows, ["trial", "mean", "std", f"mean - {k:g} std", "seconds"], numeric_from=0)
        )
    else:
        parts.append('<p class="note">No complete trial yet: run <code>ltr tune</code> (more).</p>')
    for file, title in TITLES.items():
        why = figures.get(file)
        caption = f"Not drawn: {why}" if why is not None else _CAPTIONS[file]
        parts.append(
            f'<section><h2>{esc(title)}</h2><figure><img src="{esc(file)}" '
            f'alt="{esc(title if why is None else f"{title}: not drawn, {why}")}">'
            f"<figcaption>{inline_markdown(caption)}</figcaption></figure></section>"
        )
    return page(f"ltr study {name}", "".join(parts), extra_style="table{width:auto;min-width:60%}")


_CAPTIONS = {
    "situations.png": "The chosen trial's Pearson correlation on each held-out fold, per "
    "situation.",
    "spread.png": "Each complete trial's CV mean against its spread across folds; the chosen "
    "trial maximises mean - k x std (the dashed line).",
    "history.png": "Each trial's mean Pearson over the folds, by trial number; pruned trials "
    "at the running mean where they were stopped.",
    "importances.png": "How much of the variation of the CV mean each parameter explains "
    f"(fANOVA over the complete trials that share the parameters; top {MAX_IMPORTANCES}).",
    "intermediate.png": "The running mean after each fold: the pruner stops a trial that is "
    "already behind the others at that fold.",
}
