"""Scoring detections tables (folders of Parquet files) by partition: the local streaming engine
and a real Dask LocalCluster (2 worker processes) give the scores of the in-memory path on the
same profiles; bad input is one line naming the file and the row, and leaves no output."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ltr.data import load_dataset
from ltr.data.parquet import (
    RATINGS_FILE,
    SPLIT,
    TABLE_COLUMNS,
    open_table,
    read_dataset,
    write_synthetic_table,
    write_table,
)
from ltr.data.synthetic import generate_synthetic, write_synthetic
from ltr.errors import DataError, LtrError, LtrWarning, ModelError
from ltr.features import featurize
from ltr.models import preset
from ltr.models.persistence import TrainedModel, load_trained
from ltr.scoring import read_scores, score_table
from ltr.situations import SITUATIONS
from ltr.workflow import train_model, training_set


def _train(dataset, spec_name: str, model_dir: Path) -> TrainedModel:
    train_model(training_set(dataset, "train"), preset(spec_name).with_seed(0), model_dir)
    return load_trained(model_dir)


def _in_memory(trained: TrainedModel, dataset) -> pd.DataFrame:
    """The reference: `TrainedModel.predict` split by split, on the data folder as loaded."""
    return pd.concat([trained.predict(dataset, split) for split in dataset.splits])


def _assert_same_scores(scored: pd.DataFrame, reference: pd.DataFrame) -> None:
    assert list(scored.index) == list(reference.index)  # every user once, in table order
    got = scored[list(SITUATIONS)].to_numpy()
    want = reference[list(SITUATIONS)].to_numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A synthetic folder (challenge layout), its table in 5 files, and two trained models."""
    root = tmp_path_factory.mktemp("scoring")
    write_synthetic(root / "synth", n_users=400, seed=7)
    dataset = load_dataset(root / "synth")
    write_table(dataset, root / "table", users_per_file=90)
    models = {name: _train(dataset, name, root / name) for name in ("default", "ridge")}
    return {"root": root, "dataset": dataset, "table": root / "table", "models": models}


# ------------------------------------------------------------------------------ tables
def test_a_table_round_trips_the_profiles_of_a_data_folder(synth: dict) -> None:
    table = open_table(synth["table"])
    assert [p.name for p in table.files] == [f"part-{k:05d}.parquet" for k in range(5)]
    assert table.users == (90, 90, 90, 90, 40) and table.n_users == 400
    dataset = synth["dataset"]
    again = read_dataset(synth["table"])
    pd.testing.assert_frame_equal(again.ratings, dataset.ratings, check_index_type=False)
    assert list(again.users["user"]) == list(dataset.users["user"])
    columns = ["user", "image", "concept", "confidence", "x0", "y0", "x1", "y1"]
    got = again.detections[columns].reset_index(drop=True)
    want = dataset.detections[columns].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


def test_only_folders_of_parquet_files_outside_the_json_layouts_are_tables(
    synth: dict, tmp_path: Path
) -> None:
    from ltr.data.parquet import is_table

    assert is_table(synth["table"])
    assert not is_table(synth["root"] / "synth") and not is_table(tmp_path)
    stray = synth["root"] / "synth" / "features.parquet"  # e.g. `ltr features --out` in there
    pq.write_table(pa.table({"x": [1]}), stray)
    try:
        assert not is_table(synth["root"] / "synth")
    finally:
        stray.unlink()


def test_synthetic_tables_are_written_file_by_file_with_users_never_split(tmp_path: Path) -> None:
    out = write_synthetic_table(tmp_path / "t", 50, seed=3, users_per_file=20)
    table = open_table(out)  # also checks that no user is in two files
    assert table.users == (17, 17, 16) and table.n_users == 50
    first = generate_synthetic(17, seed=3).dataset
    pd.testing.assert_frame_equal(table.ratings, first.ratings, check_index_type=False)
    part = pq.read_table(table.files[0]).to_pandas()
    assert list(part.columns) == list(TABLE_COLUMNS)
    assert list(pd.unique(part["user"])) == list(first.users["user"])
    np.testing.assert_array_equal(part["confidence"], first.detections["confidence"])
    with pytest.raises(LtrError, match="folder is not empty"):
        write_synthetic_table(tmp_path, 20, seed=3)
    write_synthetic_table(out, 20, seed=4)  # an earlier table is replaced
    assert open_table(out).n_users == 20


# ----------------------------------------------------------------------- same scores
@pytest.mark.parametrize("model", ["default", "ridge"])
def test_local_engine_equals_the_in_memory_path(synth: dict, model: str, tmp_path: Path) -> None:
    trained = synth["models"][model]
    out = tmp_path / "scores.parquet"
    summary = score_table(synth["root"] / model, synth["table"], out, engine="local")
    assert summary.users == 400 and summary.files == 5
    assert list(pd.read_parquet(out).columns) == ["user", *SITUATIONS]
    _assert_same_scores(read_scores(out), _in_memory(trained, synth["dataset"]))


@pytest.mark.parametrize("model", ["default", "ridge"])
def test_a_table_without_ratings_file_is_scored_with_the_model_s_ratings(
    synth: dict, model: str, tmp_path: Path
) -> None:
    """A table is often just detections: its ratings are the model's, so the scores are those
    of the same table with its ratings file and of the in-memory path."""
    trained = synth["models"][model]
    bare = write_table(synth["dataset"], tmp_path / "bare", users_per_file=90, ratings=False)
    assert not (bare / RATINGS_FILE).exists() and open_table(bare).ratings is None
    assert open_table(synth["table"]).ratings is not None
    with_file, without = tmp_path / "with.parquet", tmp_path / "without.parquet"
    score_table(synth["root"] / model, synth["table"], with_file)
    summary = score_table(synth["root"] / model, bare, without)
    assert summary.users == 400 and summary.files == 5 and not summary.unknown
    pd.testing.assert_frame_equal(pd.read_parquet(without), pd.read_parquet(with_file))
    _assert_same_scores(read_scores(without), _in_memory(trained, synth["dataset"]))
    # not vacuous: the ratings weigh in, so scoring without any would give other scores
    unrated = replace(trained.vocabulary, ratings=np.zeros_like(trained.vocabulary.ratings))
    profiles = read_dataset(bare, ratings=synth["dataset"].ratings)
    other = trained.model.predict(featurize(profiles, SPLIT, trained.feature_config, unrated))
    scored = read_scores(without)
    assert list(other.index) == list(scored.index)
    differ = np.abs(other[list(SITUATIONS)].to_numpy() - scored[list(SITUATIONS)].to_numpy())
    assert (differ > 1e-6).mean() > 0.5


def test_concepts_the_model_never_saw_are_counted_in_one_warning(
    synth: dict, tmp_path: Path
) -> None:
    """Across all partitions: one warning naming the table, the concepts and detections."""
    folder = _table(tmp_path, [_rows("u1", concept=(0, "NEW1")), _rows("u2", n=4)])
    frame = pd.read_parquet(folder / "p1.parquet")
    frame["concept"] = ["NEW1", "NEW2", "NEW2", "VC1"]
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), folder / "p1.parquet")
    with pytest.warns(LtrWarning) as caught:
        summary = score_table(synth["root"] / "ridge", folder, tmp_path / "out.parquet")
    assert summary.unknown == {"NEW1": 2, "NEW2": 2}
    (message,) = [str(w.message) for w in caught if issubclass(w.category, LtrWarning)]
    assert message == (
        f"{folder}: 2 concept(s) the model was not trained with are ignored (4 detections): "
        "NEW1 (2), NEW2 (2)"
    )


def test_concepts_the_model_never_saw_drop_no_user_and_no_image(
    synth: dict, tmp_path: Path
) -> None:
    """A user whose detections are all of unknown concepts was dropped (a part of only such
    users failed with "no split 'all'"), and an image of only such detections no longer counted
    in its user's profile: the scores now equal the in-memory path's, which ignores only the
    detections."""
    new = {"concept": (0, "NEW1")}
    folder = _table(tmp_path, [
        pd.concat([_rows("u1", 1, **new), _rows("u2", 3, **new)], ignore_index=True),
        _rows("u3", 1, **new),
    ])  # fmt: skip
    out = tmp_path / "out.parquet"
    with pytest.warns(LtrWarning):
        score_table(synth["root"] / "ridge", folder, out)
    trained = load_trained(synth["root"] / "ridge")
    with pytest.warns(LtrWarning, match="NEW1"):
        reference = trained.predict(read_dataset(folder, synth["dataset"].ratings), SPLIT)
    assert list(reference.index) == ["u1", "u2", "u3"]
    _assert_same_scores(read_scores(out), reference)


def _empty_part(path: Path) -> None:
    """A part with the table's schema and no rows (as Spark or Dask write an empty partition)."""
    schema = pa.Table.from_pandas(_rows(), preserve_index=False).schema
    pq.write_table(schema.empty_table(), path)


def test_a_part_without_rows_is_skipped(synth: dict, tmp_path: Path) -> None:
    """It failed with "part-00002.parquet: no split 'all' (splits here: none)"."""
    folder = _table(tmp_path, [_rows("u1"), _rows("u2")])
    expected = tmp_path / "expected.parquet"
    score_table(synth["root"] / "ridge", folder, expected)
    _empty_part(folder / "p00-empty.parquet")
    _empty_part(folder / "p2.parquet")
    assert open_table(folder).files == (folder / "p0.parquet", folder / "p1.parquet")
    out = tmp_path / "out.parquet"
    summary = score_table(synth["root"] / "ridge", folder, out, percentiles=True)
    assert (summary.files, summary.users) == (2, 2)
    pd.testing.assert_frame_equal(read_scores(out)[list(SITUATIONS)], read_scores(expected))


def test_a_table_without_any_row_names_its_folder(synth: dict, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ltr.cli.main import app

    folder = tmp_path / "table"
    folder.mkdir()
    for name in ("part-00000.parquet", "part-00001.parquet"):
        _empty_part(folder / name)
    result = CliRunner().invoke(
        app,
        [
            "predict",
            str(synth["root"] / "ridge"),
            str(folder),
            "--out",
            str(tmp_path / "o.parquet"),
        ],
    )
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: {folder}: the table holds no rows: its 2 part file(s) (part-00000.parquet, "
        "part-00001.parquet) have columns but no rows (an empty export?)\n"
    )


@pytest.mark.slow
def test_dask_local_cluster_equals_the_local_engine(synth: dict, tmp_path: Path) -> None:
    pytest.importorskip("dask.distributed")
    local, dask = tmp_path / "local.parquet", tmp_path / "dask.parquet"
    model = synth["root"] / "default"
    score_table(model, synth["table"], local, engine="local", percentiles=True)
    summary = score_table(model, synth["table"], dask, engine="dask", workers=2, percentiles=True)
    assert summary.engine == "dask" and summary.users == 400
    # two worker processes, neither of them this one
    assert len(summary.worker_peak_rss) == 2
    assert all(not w.endswith(f":{os.getpid()}") for w in summary.worker_peak_rss)
    pd.testing.assert_frame_equal(pd.read_parquet(dask), pd.read_parquet(local))  # bit-identical
    _assert_same_scores(read_scores(dask), _in_memory(synth["models"]["default"], synth["dataset"]))


@pytest.mark.slow
def test_dask_engine_on_a_scheduler_address(synth: dict, tmp_path: Path) -> None:
    """--scheduler ADDRESS: a cluster started elsewhere (here: by the test, one worker process)."""
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None,
        host="127.0.0.1",
    ) as cluster:  # fmt: skip
        out = tmp_path / "remote.parquet"
        summary = score_table(
            synth["root"] / "ridge", synth["table"], out, engine="dask",
            scheduler=cluster.scheduler_address,
        )  # fmt: skip
    assert summary.users == 400 and len(summary.worker_peak_rss) == 1
    _assert_same_scores(read_scores(out), _in_memory(synth["models"]["ridge"], synth["dataset"]))
    with pytest.raises(LtrError, match="--scheduler needs --engine dask"):
        score_table(synth["root"] / "ridge", synth["table"], out, scheduler="tcp://x:1")


def test_percentiles_rank_users_within_the_scored_population(synth: dict, tmp_path: Path) -> None:
    out = tmp_path / "pct.parquet"
    score_table(synth["root"] / "ridge", synth["table"], out, percentiles=True)
    frame = pd.read_parquet(out)
    assert list(frame.columns) == ["user", *SITUATIONS, *(f"{s}_pct" for s in SITUATIONS)]
    for s in SITUATIONS:
        pct = frame[f"{s}_pct"].to_numpy()
        assert 0 < pct.min() < 1 and 99 < pct.max() < 100
        order = np.argsort(frame[s].to_numpy(), kind="stable")
        assert np.all(np.diff(pct[order]) >= 0)  # monotone in the score
        assert pct.mean() == pytest.approx(50.0)


@pytest.mark.parametrize("name", ["aware2023", "lervup2021"])
def test_real_data_converted_to_parquet_scores_like_the_data_folder(
    name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    folder = request.getfixturevalue(name)
    dataset = load_dataset(folder)
    write_table(dataset, tmp_path / "table", users_per_file=150)
    trained = _train(dataset, "default", tmp_path / "model")
    out = tmp_path / "scores.parquet"
    summary = score_table(tmp_path / "model", tmp_path / "table", out)
    assert summary.users == len(dataset.users)
    _assert_same_scores(read_scores(out), _in_memory(trained, dataset))


# ------------------------------------------------------------------------- bad input
def _table(tmp_path: Path, frames: list[pd.DataFrame]) -> Path:
    folder = tmp_path / "bad"
    folder.mkdir()
    for k, frame in enumerate(frames):
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), folder / f"p{k}.parquet")
    return folder


def _rows(user: str = "u1", n: int = 3, **changes) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "user": [user] * n,
            "image": [f"{user}-img{i}" for i in range(n)],
            "concept": ["VC1"] * n,
            "confidence": [0.5] * n,
            "x0": [0.1] * n,
            "y0": [0.1] * n,
            "x1": [0.6] * n,
            "y1": [0.7] * n,
        }
    )
    for column, (row, value) in changes.items():
        frame[column] = frame[column].astype(object)
        frame.loc[row, column] = value
    return frame


BAD_TABLES = {
    "missing column": (
        lambda: [_rows().drop(columns=["confidence"])],
        "p0.parquet: missing column(s) 'confidence'",
    ),
    "non-numeric confidence": (
        lambda: [_rows().astype({"confidence": str}).assign(confidence=["0.5", "high", "0.4"])],
        "p0.parquet: row 1: confidence 'high' is not a number",
    ),
    "box out of range": (
        lambda: [_rows("u1"), _rows("u2", x1=(2, 1.5)).astype({"x1": float})],
        "p1.parquet: row 2, user 'u2', image 'u2-img2': box corners [0.1, 0.1, 1.5, 0.7] are "
        "outside [0, 1]",
    ),
    "user in two files": (
        lambda: [_rows("u1"), pd.concat([_rows("u2"), _rows("u1", 1)], ignore_index=True)],
        "p1.parquet: row 3, user 'u1': user is also in p0.parquet; all rows of a user must be "
        "in one file",
    ),
}


def test_a_table_sharing_no_concept_with_the_model_is_refused(synth: dict, tmp_path: Path) -> None:
    """Counted over the whole table: parts with no known concept are fine if others have."""
    folder = _table(tmp_path, [_rows("u1"), _rows("u2", n=2)])
    for part in folder.glob("*.parquet"):
        frame = pd.read_parquet(part)
        frame["concept"] = "NEW1"
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), part)
    out = tmp_path / "out.parquet"
    with pytest.raises(ModelError) as caught:
        score_table(synth["root"] / "ridge", folder, out)
    assert str(caught.value).startswith(
        f"{folder}: none of its 5 detections is of a concept the model was trained with"
    ), str(caught.value)
    assert "trained on another data set" in str(caught.value)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad"]  # no temporary file left
    # one part with a concept of the model's: scored, the others' detections ignored
    extra = pa.Table.from_pandas(_rows("u3", n=1), preserve_index=False)
    pq.write_table(extra, folder / "p2.parquet")
    with pytest.warns(LtrWarning, match="1 concept"):
        summary = score_table(synth["root"] / "ridge", folder, out)
    assert summary.users == 3 and summary.unknown == {"NEW1": 5}
    # users and images showing only unknown concepts are scored as in memory (not dropped)
    trained = synth["models"]["ridge"]
    profiles = read_dataset(folder, ratings=synth["dataset"].ratings)
    with pytest.warns(LtrWarning, match="1 concept"):
        features = featurize(profiles, SPLIT, trained.feature_config, trained.vocabulary)
    _assert_same_scores(read_scores(out), trained.model.predict(features))


@pytest.mark.parametrize("case", sorted(BAD_TABLES))
def test_bad_input_is_one_line_naming_file_and_row_and_nothing_is_written(
    case: str, synth: dict, tmp_path: Path
) -> None:
    frames, expected = BAD_TABLES[case]
    folder = _table(tmp_path, frames())
    out = tmp_path / "out" / "scores.parquet"
    with pytest.raises(DataError) as caught:
        score_table(synth["root"] / "ridge", folder, out)
    message = str(caught.value)
    assert message.startswith(str(folder / expected)), message
    assert "\n" not in message
    assert not out.exists()
    assert not out.parent.exists() or not list(out.parent.iterdir())  # no temporary file left


def test_a_ratings_file_with_an_absurd_rating_is_refused(tmp_path: Path) -> None:
    """A rating of 1e308 is finite but overflows the features (their squares are infinite)."""
    folder = _table(tmp_path, [_rows()])
    ratings = pd.DataFrame({"concept": ["VC1", "VC2"], "acc": [0.5, 0.0], "bank": [0.1, 1e308],
                            "it": [0.0, 0.0], "wait": [-1e6, 1e6]})  # fmt: skip
    pq.write_table(pa.Table.from_pandas(ratings), folder / RATINGS_FILE)
    with pytest.raises(DataError) as caught:
        open_table(folder)
    assert str(caught.value).startswith(
        f"{folder / RATINGS_FILE}: row 1, concept 'VC2', situation 'bank': rating 1e+308 is "
        "outside [-1,000,000, 1,000,000] (ratings and labels are on a scale of a few units"
    )


def test_a_ratings_file_must_agree_with_the_model(synth: dict, tmp_path: Path) -> None:
    folder = _table(tmp_path, [_rows()])
    ratings = synth["dataset"].ratings.copy()
    pq.write_table(pa.Table.from_pandas(ratings.reset_index()), folder / RATINGS_FILE)
    out = tmp_path / "ok.parquet"
    score_table(synth["root"] / "ridge", folder, out)  # the model's own ratings: fine
    assert list(read_scores(out).index) == ["u1"]
    ratings.loc["VC1", "acc"] += 1.0
    pq.write_table(pa.Table.from_pandas(ratings.reset_index()), folder / RATINGS_FILE)
    with pytest.raises(ModelError, match="ratings differ from those the model was trained"):
        score_table(synth["root"] / "ridge", folder, tmp_path / "no.parquet")
    assert not (tmp_path / "no.parquet").exists()


def test_a_failing_partition_on_dask_leaves_no_output(synth: dict, tmp_path: Path) -> None:
    pytest.importorskip("dask.distributed")
    frames = [_rows("u1"), _rows("u2", confidence=(1, 1.5)).astype({"confidence": float})]
    folder = _table(tmp_path, frames)
    out = tmp_path / "scores.parquet"
    with pytest.raises(LtrError, match=r"p1\.parquet: row 1, user 'u2', image 'u2-img1': "
                       r"confidence 1\.5 is outside \[0, 1\]"):  # fmt: skip
        score_table(synth["root"] / "ridge", folder, out, engine="dask", workers=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad"]


# ------------------------------------------------------------------------------- CLI
def test_cli_synth_parquet_then_predict_a_table(synth: dict, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ltr.cli.main import app

    runner = CliRunner()
    table = tmp_path / "table"
    made = runner.invoke(
        app, ["data", "synth", str(table), "--users", "200", "--seed", "7", "--format", "parquet",
              "--users-per-file", "70"],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    assert open_table(table).users == (67, 67, 66)
    out = tmp_path / "scores.parquet"
    scored = runner.invoke(
        app, ["predict", str(synth["root"] / "ridge"), str(table), "--out", str(out),
              "--percentiles"],
    )  # fmt: skip
    assert scored.exit_code == 0, scored.output
    assert f"wrote {out} (200 users from 3 file(s)" in scored.output.replace("\n", "")
    frame = pd.read_parquet(out)
    assert len(frame) == 200 and "wait_pct" in frame.columns
    # the same through the CLI's Dask options: the same scores
    on_dask = tmp_path / "dask.parquet"
    scored = runner.invoke(
        app, ["predict", str(synth["root"] / "ridge"), str(table), "--out", str(on_dask),
              "--percentiles", "--engine", "dask", "--workers", "2"],
    )  # fmt: skip
    assert scored.exit_code == 0, scored.output
    pd.testing.assert_frame_equal(
        pd.read_parquet(on_dask).sort_values("user", ignore_index=True),
        frame.sort_values("user", ignore_index=True),
    )
    # its ratings file is the model's (same seed): accepted; a split makes no sense here
    refused = runner.invoke(
        app, ["predict", str(synth["root"] / "ridge"), str(table), "-s", "val", "--out", str(out)]
    )
    assert refused.exit_code == 1 and "a detections table has no splits" in refused.output

    bad = _table(tmp_path, [_rows("u1", x1=(0, 0.05)).astype({"x1": float})])
    out = tmp_path / "bad.parquet"
    result = runner.invoke(
        app, ["predict", str(synth["root"] / "ridge"), str(bad), "--out", str(out)]
    )
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert lines[0] == (
        f"error: {bad / 'p0.parquet'}: row 0, user 'u1', image 'u1-img0': box has x0 > x1 "
        "(0.1 > 0.05)"
    )
    assert not out.exists()
