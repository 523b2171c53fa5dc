"""Scoring a detections table of any size with a trained model, one file (partition) at a time.

    score_table(model_dir, table_dir, out, engine="local" | "dask", scheduler=None)

Every engine runs the same function on each part file (`score_part`): read and validate it,
featurise its users against the model's vocabulary, predict. A user's rows are all in one file
and a user's features depend on that user alone, so the scores are those of the in-memory path
(`TrainedModel.predict` on the same profiles) whatever the partitioning.

- ``local`` streams the files through that function in this process: memory holds one file's
  detections and features at a time, plus the scores written so far.
- ``dask`` maps it over a Dask cluster (``pip install -e '.[dask]'``): a `LocalCluster` of
  worker processes, or any scheduler at `scheduler` (its workers must see the model directory
  and the table at the same paths). Results come back in file order.

The output Parquet (``user, acc, bank, it, wait``, optionally ``acc_pct ...``: percentiles
within the scored population) is written to a temporary file and renamed at the end: an error
in any partition leaves no output at all.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from scipy.stats import rankdata

from ltr.data import parquet as tables
from ltr.errors import DataError, LtrError, install_hint
from ltr.features import featurize
from ltr.features.vocabulary import check_known_detections
from ltr.fileio import atomic_path
from ltr.situations import SITUATIONS

if TYPE_CHECKING:
    from ltr.models.persistence import TrainedModel

ENGINES = ("local", "dask")
PERCENTILE_SUFFIX = "_pct"


@dataclass
class PartResult:
    """What scoring one part file gives back to the driver (small and picklable)."""

    index: int
    scores: pa.Table | None = None
    error: str | None = None
    data_error: bool = False
    unknown: dict[str, int] = field(default_factory=dict)
    known: int = 0  # detections of concepts the model knows
    rows: int = 0
    seconds: float = 0.0
    peak_rss: int = 0
    worker: str = ""

    @property
    def error_args(self) -> tuple:
        return (None, self.error) if self.data_error else (self.error,)


@dataclass
class ScoringSummary:
    """What `score_table` did.

    Attributes:
        out: The Parquet file written.
        engine: ``local`` or ``dask``.
        files: Part files scored.
        users: Users scored.
        rows: Rows (detections and placeholders) read.
        seconds: Wall time.
        unknown: Detections of concepts outside the model's vocabulary, per concept (ignored).
        percentiles: Whether percentile columns were written.
        worker_peak_rss: Peak resident memory per process, in bytes.
    """

    out: Path
    engine: str
    files: int
    users: int
    rows: int
    seconds: float
    unknown: dict[str, int]
    percentiles: bool
    worker_peak_rss: dict[str, int] = field(default_factory=dict)


# ------------------------------------------------------------------------- one partition
@functools.lru_cache(maxsize=4)
def _model(model_dir: str, checksum: str, threads: int) -> TrainedModel:
    """The model, loaded once per process (a Dask worker scores many files with it)."""
    from ltr.models.persistence import load_trained

    return load_trained(model_dir, threads=threads)


def _peak_rss() -> int:
    """Peak resident memory of this process in bytes (Linux; 0 elsewhere)."""
    try:
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
    except (ImportError, OSError):
        return 0


def score_part(
    index: int,
    path: str,
    model_dir: str,
    checksum: str,
    threads: int = 1,
) -> PartResult:
    """Score every user of one part file of a detections table.

    Validates the part, featurises it with the model's vocabulary, ratings and feature
    settings, and predicts. Errors come back in the result as a message, not as an exception
    (an exception would have to be rebuilt on the driver's side of a cluster).

    Args:
        index: The part's position in the table (keeps the output in table order).
        path: The part file.
        model_dir: The model folder.
        checksum: The model manifest's checksum (a worker loads each model once).
        threads: Threads per learner.

    Returns:
        The part's scores, or its error message.
    """
    started = time.perf_counter()
    result = PartResult(index)
    try:
        trained = _model(model_dir, checksum, threads)
        frame = tables.read_part(Path(path))
        result.rows = len(frame)
        vocabulary = trained.vocabulary
        detected = frame["concept"].notna()
        unknown = (detected & ~frame["concept"].isin(vocabulary.concepts)).to_numpy()
        result.known = int((detected.to_numpy() & ~unknown).sum())
        if unknown.any():
            counts = frame.loc[unknown, "concept"].value_counts()
            result.unknown = {str(concept): int(n) for concept, n in counts.items()}
            # the detection is ignored, not its image or user (as in the in-memory path): its
            # row stays as an image without a detection, so its user is still scored
            frame = frame.copy()
            frame.loc[unknown, "concept"] = None
            frame.loc[unknown, list(tables.NUMBER_COLUMNS)] = np.nan
        if len(frame):
            ratings = pd.DataFrame(
                vocabulary.ratings[vocabulary.rated],
                index=vocabulary.concepts[vocabulary.rated],
                columns=list(SITUATIONS),
            )
            dataset = tables.part_dataset(frame, ratings, Path(path))
            features = featurize(dataset, tables.SPLIT, trained.feature_config, vocabulary)
            scores = trained.model.predict(features)
        else:  # a part without rows (`open_table` leaves them out): nothing to score
            scores = pd.DataFrame(columns=list(SITUATIONS), dtype=np.float64)
        result.scores = pa.table(
            {
                "user": pa.array(scores.index.astype(str).to_numpy(dtype=object), pa.string()),
                **{s: pa.array(scores[s].to_numpy(dtype=np.float64)) for s in SITUATIONS},
            }
        )
    except LtrError as error:
        result.error = str(error)
        result.data_error = isinstance(error, DataError)
    result.seconds = time.perf_counter() - started
    result.peak_rss = _peak_rss()
    result.worker = f"{socket.gethostname()}:{os.getpid()}"
    return result


# ------------------------------------------------------------------------------- engines
def _local(tasks: list[tuple]) -> Generator[PartResult, None, None]:
    for task in tasks:
        yield score_part(*task)


@contextlib.contextmanager
def _dask_client(scheduler: str | None, workers: int) -> Iterator[Any]:
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise LtrError(
            f"the dask engine needs Dask (dask[distributed]): {install_hint('dask')}"
        ) from None
    if scheduler:
        try:
            client = Client(scheduler, timeout="30s")
        except (OSError, TimeoutError, ValueError) as error:
            raise LtrError(f"cannot reach the Dask scheduler at {scheduler}: {error}") from None
        with client:
            yield client
        return
    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        host="127.0.0.1",
        silence_logs=40,  # logging.ERROR: a LocalCluster's chatter is not the user's business
    )
    with cluster, Client(cluster) as client:
        yield client


def _dask(
    tasks: list[tuple], scheduler: str | None, workers: int
) -> Generator[PartResult, None, None]:
    with _dask_client(scheduler, workers) as client:
        futures = client.map(score_part, *zip(*tasks, strict=True), pure=False)
        try:
            for future in futures:  # in file order; later files keep running meanwhile
                result = future.result()
                future.release()
                yield result
        finally:
            client.cancel(futures)


# --------------------------------------------------------------------------------- driver
def _percentiles(scores: np.ndarray) -> np.ndarray:
    """Percentile of each score within its column: 100 x (mid-rank - 0.5) / n (ties share)."""
    n = scores.shape[0]
    percentiles: np.ndarray = 100.0 * (rankdata(scores, method="average", axis=0) - 0.5) / n
    return percentiles


def score_table(
    model_dir: str | Path,
    table_dir: str | Path,
    out: str | Path,
    *,
    engine: str = "local",
    scheduler: str | None = None,
    workers: int = 2,
    percentiles: bool = False,
    threads: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> ScoringSummary:
    """Score every user of a Parquet detections table and write the scores as Parquet.

    A user's features depend on that user alone, so the scores equal those of the in-memory
    path (`ltr.workflow` on a data folder) to 1e-12. Memory holds one part file at a time per
    process; the output is written to a temporary file renamed at the end.

    Args:
        model_dir: A model folder from ``ltr train``.
        table_dir: The table: a folder of Parquet part files, and optionally
            ``ratings.parquet``, which must agree with the model's ratings (without it the
            model's own ratings are used).
        out: The output file (columns ``user, acc, bank, it, wait``, users in table order).
        engine: ``local`` (stream the files through this process) or ``dask``.
        scheduler: A Dask scheduler's address (``dask`` only; default: a ``LocalCluster``).
        workers: Processes of the ``LocalCluster``.
        percentiles: Also write each score's percentile among the scored users
            (``acc_pct`` ...).
        threads: Threads per learner.
        progress: Called with (files done, files in all) after each file.

    Returns:
        What was scored, how long it took, and the peak memory of each process.

    Raises:
        LtrError: An unknown engine, a scheduler without the Dask engine, an unreachable
            scheduler, or a part that cannot be scored.
        DataError: A part file breaks the table's rules (the message names the file and row).
        ModelError: The model folder cannot be used.
    """
    if engine not in ENGINES:
        raise LtrError(f"unknown engine {engine!r} (choose {', '.join(ENGINES)})")
    if scheduler and engine != "dask":
        raise LtrError("--scheduler needs --engine dask")
    from ltr.models.persistence import load_trained

    started = time.perf_counter()
    model_dir, out = Path(model_dir).resolve(), Path(out)
    trained = load_trained(model_dir, threads=threads)  # checks every file once, here
    table = tables.open_table(table_dir)
    if table.ratings is not None:
        trained.vocabulary.check_ratings(tables.part_dataset(_empty(), table.ratings, table.root))
    checksum = trained.manifest["checksum"]
    tasks = [
        (i, str(path.resolve()), str(model_dir), checksum, threads)
        for i, path in enumerate(table.files)
    ]
    results = _local(tasks) if engine == "local" else _dask(tasks, scheduler, workers)
    schema = pa.schema([("user", pa.string()), *((s, pa.float64()) for s in SITUATIONS)])
    unknown: dict[str, int] = {}
    columns: list[np.ndarray] = []
    users = rows = known = 0
    peaks: dict[str, int] = {}
    # closing(): on an error the engine stops at once (a cluster is shut down, not left to GC)
    with contextlib.closing(results), atomic_path(out) as tmp:
        raw = tmp.with_name(tmp.name + ".raw") if percentiles else tmp
        try:
            with pq.ParquetWriter(raw, schema, compression="zstd") as writer:
                for done, result in enumerate(results, start=1):
                    if result.error is not None:  # the partition's own message, as it was
                        raise (DataError if result.data_error else LtrError)(*result.error_args)
                    assert result.scores is not None
                    writer.write_table(result.scores.cast(schema))
                    if percentiles:
                        columns.append(
                            np.column_stack(
                                [result.scores.column(s).to_numpy() for s in SITUATIONS]
                            )
                        )
                    for concept, count in result.unknown.items():
                        unknown[concept] = unknown.get(concept, 0) + count
                    known += result.known
                    users += result.scores.num_rows
                    rows += result.rows
                    peaks[result.worker] = max(peaks.get(result.worker, 0), result.peak_rss)
                    if progress is not None:
                        progress(done, len(tasks))
            # over the whole table, before the output is in place: refused, or one warning
            check_known_detections(str(table.root), known, unknown)
            if percentiles:
                _add_percentiles(raw, tmp, np.concatenate(columns) if columns else np.zeros((0, 4)))
        finally:
            if raw != tmp:
                raw.unlink(missing_ok=True)
    return ScoringSummary(
        out=out,
        engine=engine,
        files=len(tasks),
        users=users,
        rows=rows,
        seconds=time.perf_counter() - started,
        unknown=unknown,
        percentiles=percentiles,
        worker_peak_rss=peaks,
    )


def _empty() -> pd.DataFrame:
    return pd.DataFrame(
        {
            c: pd.Series(dtype="str" if c in tables.TEXT_COLUMNS else float)
            for c in tables.TABLE_COLUMNS
        }
    )


def _add_percentiles(raw: Path, out: Path, scores: np.ndarray) -> None:
    """Copy `raw` to `out` adding one percentile column per situation, a row group at a time."""
    pct = _percentiles(scores) if len(scores) else scores
    source = pq.ParquetFile(raw)
    names = [*source.schema_arrow.names, *(f"{s}{PERCENTILE_SUFFIX}" for s in SITUATIONS)]
    start = 0
    writer = None
    try:
        for group in range(source.num_row_groups):
            batch = source.read_row_group(group)
            stop = start + batch.num_rows
            for k, situation in enumerate(SITUATIONS):
                batch = batch.append_column(
                    f"{situation}{PERCENTILE_SUFFIX}", pa.array(pct[start:stop, k])
                )
            if writer is None:
                writer = pq.ParquetWriter(out, batch.schema, compression="zstd")
            writer.write_table(batch)
            start = stop
        if writer is None:  # no rows at all
            empty = pa.table(
                {n: pa.array([], pa.string() if n == "user" else pa.float64()) for n in names}
            )
            pq.write_table(empty, out)
    finally:
        if writer is not None:
            writer.close()


def read_scores(path: str | Path) -> pd.DataFrame:
    """Read a scores file written by `score_table`.

    Args:
        path: The Parquet file.

    Returns:
        The scores, indexed by user.
    """
    return pd.read_parquet(path).set_index("user")


def peak_rss_of(pids: Iterable[int]) -> dict[int, int]:
    """Peak resident memory (VmHWM) of running processes, bytes (Linux)."""
    out = {}
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    out[pid] = int(line.split()[1]) * 1024
    return out


__all__ = ["ENGINES", "ScoringSummary", "read_scores", "score_part", "score_table"]
