"""Every table the CLI prints, rendered at 80 columns (a narrow terminal, or a pipe where rich
picks 80): no line is wider, names are never cut, numbers stay whole on one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console
from typer.testing import CliRunner

from ltr.cli import data_commands
from ltr.cli.main import app
from ltr.cv import CVResult
from ltr.data import load_dataset
from ltr.data.summary import summarize
from ltr.data.synthetic import write_synthetic
from ltr.metrics import score_run
from ltr.models import COMPARE, preset
from ltr.situations import SITUATIONS
from ltr.tables import (
    comparison_table,
    cv_table,
    effects_table,
    grid_table,
    profile_table,
    scores_table,
    trials_table,
)

runner = CliRunner()
WIDTH = 80
LONG_NAMES = [*COMPARE, "lgbm-lambdarank-pooled", "xgb-regression-pooled+my-overrides.json"]


def render(table: object, width: int = WIDTH) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(table)
    return console.export_text()


def fits(text: str, width: int = WIDTH) -> None:
    assert max(len(line) for line in text.splitlines()) <= width, text
    assert "…" not in text, text  # nothing cut


def on_one_line(text: str, *pieces: str) -> None:
    lines = text.splitlines()
    for piece in pieces:
        assert any(piece in line for line in lines), (piece, text)


def cv_result(name: str, rng: np.random.Generator) -> CVResult:
    return CVResult(
        name=name,
        spec=preset("ridge"),
        fold_pearson=rng.uniform(-0.2, 0.8, size=(15, 4)),
        oof=np.zeros((3, 10, 4)),
        users=pd.Index([f"u{i}" for i in range(10)]),
        folds=5,
        repeats=3,
        seed=0,
        seconds=float(rng.uniform(0, 999)),
    )


def test_cv_table_keeps_every_model_name_and_number_whole() -> None:
    rng = np.random.default_rng(0)
    results = [cv_result(name, rng) for name in LONG_NAMES[:-1]]
    text = render(cv_table(results, "Pearson, 5-fold x 3 (aware2023)"))
    fits(text)
    for result in results:
        on_one_line(text, result.name, f"{result.mean:.4f}", f"{result.std:.3f}")
        on_one_line(text, *(f"{v:.3f}" for v in result.per_situation))
    # a wide terminal shows the seconds too; at 80 columns the note says they were left out
    wide = render(cv_table(results, "t"), width=120)
    on_one_line(wide, f"{results[0].seconds:.1f}")
    assert "seconds left out to fit 80 columns" in text


def test_a_name_too_long_for_any_layout_wraps_but_is_not_cut() -> None:
    rng = np.random.default_rng(1)
    name = "x" * 70
    text = render(cv_table([cv_result(name, rng)], "t"))
    fits(text)
    assert "".join(line.split("│")[0].strip() for line in text.splitlines()).count(name) == 1


def test_scores_grid_and_comparison_tables_fit() -> None:
    rng = np.random.default_rng(2)
    truth = pd.DataFrame(rng.normal(size=(50, 4)), columns=list(SITUATIONS))
    scores = score_run(truth + rng.normal(size=(50, 4)), truth)
    text = render(scores_table(scores, "a-run-file-with-a-long-name.json on aware2023 val"))
    fits(text)
    on_one_line(text, "pearson (official)", *(f"{v:.4f}" for v in scores.pearson))
    grid = pd.DataFrame(
        rng.uniform(-1, 1, size=(20, 5)),
        index=pd.Index(np.round(np.arange(20) * 0.05, 2), name="threshold"),
        columns=[*SITUATIONS, "mean"],
    )
    grid["empty_users"] = 123
    text = render(grid_table(grid, 0.0, "BASE Pearson by threshold"))
    fits(text)
    on_one_line(text, "0.00 *", "123")
    rows = {"default model": [0.5, 0.6, 0.7, 0.8, 0.65], "noise ceiling": [0.9] * 5}
    text = render(comparison_table(rows, "5. val Pearson"))
    fits(text)
    on_one_line(text, "default model", "noise ceiling", "0.650")


def test_trials_table_fits() -> None:
    rng = np.random.default_rng(3)
    top = [
        {
            "number": 1000 + i,
            "mean": 0.5 + i / 100,
            "std": 0.0123,
            "penalised": 0.49,
            "per_situation": {s: float(rng.uniform()) for s in SITUATIONS},
            "seconds": 1234.5,
        }
        for i in range(5)
    ]
    text = render(trials_table({"penalty": 0.5, "top": top}, 5))
    fits(text)
    on_one_line(text, "1004", "0.5400", "0.0123", "0.4900", "mean-0.5sd")


def test_explain_tables_keep_photo_ids_whole() -> None:
    photos = pd.DataFrame(
        {
            "concepts": ["bicycle, tricycle, person, dog, umbrella, bench", "banner"],
            "bank": [-0.0861, 0.035],
            "bank_pct": [-9.1, 3.0],
        },
        index=["8552427104_long_flickr_photo_id", "157546522"],
    )
    text = render(effects_table(photos, "bank", "photo", 3))
    fits(text)
    on_one_line(text, "8552427104_long_flickr_photo_id (hurts)", "-0.086", "-9.1", "+3.0")
    concepts = pd.DataFrame(
        {"rating_wait": [-0.67, 0.5], "wait": [-0.231, 0.2], "wait_pct": [-7.0, 14.6]},
        index=["a-rather-long-concept-name", "VC6"],
    )
    text = render(effects_table(concepts, "wait", "concept", 3))
    fits(text)
    on_one_line(text, "a-rather-long-concept-name (hurts)", "-0.67", "+14.6")
    text = render(
        profile_table(
            {s: 0.1 for s in SITUATIONS}, {s: 50.0 for s in SITUATIONS}, SITUATIONS, "user"
        )
    )
    fits(text)
    on_one_line(text, "wait (job as waiter/waitress)", "+0.100", "50%")


# --------------------------------------------------------------- what the commands print
@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tables") / "data"
    write_synthetic(folder, n_users=300, seed=6)
    return folder


def test_data_check_tables_fit(data: Path) -> None:
    summary = summarize(load_dataset(data))
    tables = [
        data_commands._splits_table(summary),
        data_commands._concepts_table(summary),
        *data_commands._labels_tables(summary),
    ]
    for table in tables:
        text = render(table)
        fits(text)
    on_one_line(render(tables[0]), "images/user min/mean/max")


def test_command_output_fits_80_columns(data: Path, tmp_path: Path) -> None:
    """CliRunner is not a terminal, so rich renders at 80 columns, as in a pipe."""
    model = tmp_path / "model"
    user = next(iter(json.loads((data / "predictions_test.json").read_text())))
    run = tmp_path / "base.json"
    runs = [
        ["cv", str(data), "--models", "base,ridge-pooled", "-k", "3", "-r", "1"]
        + ["--report", str(tmp_path / "cv.json")],
        ["baseline", str(data), "-s", "train", "--show-grid", "-o", str(run)],
        ["evaluate", str(run), "-d", str(data), "-s", "train"],
        ["data", "check", str(data)],
        ["train", str(data), "-m", "ridge", "--model-dir", str(model), "--cv-folds", "3"],
        ["explain", str(model), str(data), "-s", "test", "-u", user],
    ]
    for args in runs:
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args, result.output)
        lines = [line for line in result.stdout.splitlines() if line.strip("─━ ")]
        table_lines = [line for line in lines if line[:1] in "┏┃┡│└━ " or "┃" in line]
        assert table_lines, args
        assert max(len(line) for line in table_lines) <= WIDTH, (args, result.stdout)
        assert "…" not in result.stdout, (args, result.stdout)
    on_one_line(result.stdout, f"user {user}")
