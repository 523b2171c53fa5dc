"""A study as figures and one HTML page, for a person rather than a log.

Figures (PNG, matplotlib through Optuna's own plotting where it has one):
- ``history.png``: every trial's CV mean and the best so far;
- ``importances.png``: which parameters mattered (fANOVA over completed trials; only the
  parameters every completed trial has, so conditional ones show in single-family studies);
- ``intermediate.png``: the running mean fold by fold, pruned trials included;
- ``spread.png``: mean against fold spread of every completed trial, with the penalised
  choice and the line mean - k * std through it;
- ``situations.png``: the chosen trial's Pearson per situation, fold by fold.
"""

from __future__ import annotations

import html
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from ltr.fileio import atomic_path, write_text_atomic
from ltr.situations import DESCRIPTIONS, SITUATIONS
from ltr.tuning.objective import CVProtocol
from ltr.tuning.studies import DEFAULT_PENALTY, scored_trials, study_summary


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure: Any, path: Path) -> None:
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=110, format="png")
    _pyplot().close(figure)


def _optuna_figure(plot: Any, study: optuna.Study, path: Path, **kwargs: Any) -> str | None:
    """Draw one of optuna.visualization.matplotlib's plots; the reason if it cannot."""
    plt = _pyplot()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # experimental-API warnings of the matplotlib backend
        try:
            axes = plot(study, **kwargs)
        except (ValueError, RuntimeError, ZeroDivisionError) as error:
            plt.close("all")
            return str(error) or type(error).__name__
    first = axes if hasattr(axes, "figure") else np.ravel(axes)[0]
    figure = first.figure
    legend = first.get_legend()
    if legend is not None and len(legend.get_texts()) > 8:
        legend.remove()  # one entry per trial: unreadable beyond a few
    figure.set_size_inches(8, 5)
    _save(figure, path)
    return None


def _spread_figure(study: optuna.Study, penalty: float, path: Path) -> str | None:
    scores = scored_trials(study, penalty)
    if not scores:
        return "no completed trial"
    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(7, 5))
    std = np.array([s.std for s in scores])
    mean = np.array([s.mean for s in scores])
    ax.scatter(std, mean, s=18, alpha=0.6, color="tab:blue", label="completed trials")
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
    ax.set_ylabel("CV mean Pearson")
    ax.set_title("Mean against fold spread")
    ax.legend(loc="lower right", fontsize=8)
    _save(figure, path)
    return None


def _situations_figure(study: optuna.Study, penalty: float, path: Path) -> str | None:
    scores = scored_trials(study, penalty)
    if not scores:
        return "no completed trial"
    chosen = scores[0]
    trial = study.trials[chosen.number]
    folds = np.asarray(trial.user_attrs["cv"]["fold_pearson"], dtype=float)
    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(7, 5))
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
    _save(figure, path)
    return None


def write_report(
    study: optuna.Study, out_dir: str | Path, *, penalty: float = DEFAULT_PENALTY
) -> dict[str, Any]:
    """Write the figures, ``summary.json`` and ``index.html`` into `out_dir`; returns the
    summary with the figure files (or why a figure is missing)."""
    from optuna.visualization import matplotlib as ovm

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures: dict[str, str | None] = {
        "history.png": _optuna_figure(ovm.plot_optimization_history, study, out / "history.png"),
        "importances.png": _optuna_figure(
            ovm.plot_param_importances, study, out / "importances.png"
        ),
        "intermediate.png": _optuna_figure(
            ovm.plot_intermediate_values, study, out / "intermediate.png"
        ),
        "spread.png": _spread_figure(study, penalty, out / "spread.png"),
        "situations.png": _situations_figure(study, penalty, out / "situations.png"),
    }
    summary = study_summary(study, penalty)
    summary["figures"] = {name: why or "ok" for name, why in figures.items()}
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2, default=str))
    write_text_atomic(out / "index.html", _html(summary, figures))
    return summary


def _table(rows: list[list[str]], header: list[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html(summary: dict[str, Any], figures: dict[str, str | None]) -> str:
    identity = summary["identity"]
    data, space = identity.get("data", {}), identity.get("space", {})
    protocol = CVProtocol(**identity["cv"]) if "cv" in identity else None
    k = summary["penalty"]
    parts = [
        f"<h1>Study {html.escape(summary['name'])}</h1>",
        "<p>"
        + html.escape(
            f"Model family {space.get('name')} (search space v{space.get('version')}, "
            f"{space.get('hash')}); data {data.get('name')} {data.get('split')} "
            f"({data.get('n_users')} users, {data.get('n_features')} features, fingerprint "
            f"{data.get('fingerprint')}); objective: mean Pearson over "
            f"{protocol.text() if protocol else '?'}."
        )
        + "</p>",
        "<p>Trials: "
        + html.escape(", ".join(f"{n} {s}" for s, n in sorted(summary["states"].items())))
        + "</p>",
    ]
    chosen, best = summary["chosen"], summary["best"]
    if chosen:
        parts.append(
            "<h2>Chosen configuration</h2><p>"
            + html.escape(
                f"Trial {chosen['number']}: CV mean {chosen['mean']:.4f} ± {chosen['std']:.4f} "
                f"(penalised mean - {k:g} std = {chosen['penalised']:.4f}). Best mean: trial "
                f"{best['number']}, {best['mean']:.4f} ± {best['std']:.4f}. "
                f"`ltr train DIR --study {summary['name']} --model-dir OUT` trains the chosen one."
            )
            + "</p>"
        )
        parts.append(
            _table(
                [
                    [
                        s,
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
            f"</summary><pre>{html.escape(json.dumps(chosen['spec'], indent=2))}</pre></details>"
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
        parts.append(_table(rows, ["trial", "mean", "std", f"mean - {k:g} std", "seconds"]))
    titles = {
        "situations.png": "Chosen trial per situation",
        "spread.png": "Mean against fold spread",
        "history.png": "Optimisation history",
        "importances.png": "Parameter importances",
        "intermediate.png": "Running mean per fold (pruning)",
    }
    for name, title in titles.items():
        why = figures.get(name)
        parts.append(f"<h2>{html.escape(title)}</h2>")
        if why is None:
            parts.append(f'<img src="{name}" alt="{html.escape(title)}">')
        else:
            parts.append(f"<p><em>not drawn: {html.escape(why)}</em></p>")
    style = (
        "body{font-family:sans-serif;max-width:60em;margin:2em auto;line-height:1.4}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .6em;"
        "text-align:right}img{max-width:100%}pre{background:#f6f6f6;padding:1em}"
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>ltr study {html.escape(summary['name'])}</title><style>{style}</style></head>"
        f"<body>{''.join(parts)}</body></html>\n"
    )
