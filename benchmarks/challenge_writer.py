"""Benchmark of the challenge-layout writer: the library's writer against the standard `json`.

    python benchmarks/challenge_writer.py                       # 1k, 10k and 100k synthetic users
    python benchmarks/challenge_writer.py --sizes 1000 --repeats 1

Writers compared (all on the same generated `Dataset`, written to a temporary folder):
- ``library``: `ltr.data.challenge_writer.write_challenge_layout` as it is in this checkout (the
  vectorised Arrow writer until commit "challenge_writer: the standard json writer replaces...",
  the standard-json one since; check out the older file to compare them again);
- ``json-indent``: plain Python: the nested objects built with dict/list loops, then
  ``json.dumps(obj, indent=4)`` (the layout of the real files; Python's pure-Python encoder,
  since the C encoder does no indentation);
- ``json-compact``: the same objects, ``json.dumps(obj)`` (the C encoder; loads to the same
  data, but not byte-identical to the real files' layout).

Each (writer, size) runs in a fresh subprocess: it generates the data, then times `--repeats`
writes (best wall time and CPU time) and samples the process's resident memory every 2 ms
during the first write (``peak MiB`` = highest RSS minus RSS before the write: Arrow's buffers
are invisible to tracemalloc, so RSS is the fair measure). Every writer's files are checked to
load back to the generated data's fingerprint, and byte identity with ``library`` is reported.

Prints a markdown table and writes JSON to benchmarks/results/challenge_writer.json (git-ignored).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
WRITERS = ("library", "json-indent", "json-compact")
PAGE_MIB = os.sysconf("SC_PAGE_SIZE") / 2**20


def _rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * PAGE_MIB


class _PeakRss:
    """Samples the resident set size in a thread while the block runs."""

    def __enter__(self) -> _PeakRss:
        self.before = _rss_mib()
        self.peak = self.before
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, _rss_mib())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mib())


def _plain_writer(indent: int | None):
    """A writer built on the standard library only (see the module docstring)."""
    from ltr.data.dataset import BOX_COLUMNS
    from ltr.fileio import write_text_atomic
    from ltr.situations import SITUATIONS

    def write(dataset, out_dir: Path) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)

        def dump(name: str, obj: object) -> None:  # atomic and fsynced, like the library
            write_text_atomic(out_dir / name, json.dumps(obj, indent=indent))

        ratings = dataset.ratings
        dump(
            "class_scores.json",
            {
                str(c): {s: repr(float(ratings.at[c, s])) for s in ("acc", "it", "bank", "wait")}
                for c in ratings.index
            },
        )
        for split in dataset.splits:
            out: dict[str, dict[str, list[str]]] = {str(u): {} for u in dataset.split_users(split)}
            images = dataset.split_images(split)
            for user, image in zip(images["user"].tolist(), images["image"].tolist(), strict=True):
                out.setdefault(user, {}).setdefault(image, [])
            det = dataset.split_detections(split)
            boxes = det[list(BOX_COLUMNS)].to_numpy(dtype=float).tolist()
            for user, image, concept, conf, box in zip(
                det["user"].tolist(),
                det["image"].tolist(),
                det["concept"].tolist(),
                det["confidence"].tolist(),
                boxes,
                strict=True,
            ):
                text = f"{concept} {conf!r}"
                if box[0] == box[0]:  # not NaN
                    text += f" {box[0]!r} {box[1]!r} {box[2]!r} {box[3]!r}"
                out.setdefault(user, {}).setdefault(image, []).append(text)
            dump(f"predictions_{split}.json", out)
            if dataset.has_labels(split):
                labels = dataset.split_labels(split)
                dump(
                    f"gt_{split}.json",
                    {
                        str(u): dict(zip(SITUATIONS, row, strict=True))
                        for u, row in zip(labels.index, labels.to_numpy().tolist(), strict=True)
                    },
                )

    return write


def _writer(name: str):
    if name == "library":
        from ltr.data.challenge_writer import write_challenge_layout

        return write_challenge_layout
    return _plain_writer(4 if name == "json-indent" else None)


def _digest(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:16] for p in sorted(folder.iterdir())
    }


def worker(users: int, name: str, repeats: int, seed: int) -> dict[str, Any]:
    """Measure one (size, writer) case in this process."""
    from ltr.data.loading import load_dataset
    from ltr.data.synthetic import generate_synthetic

    dataset = generate_synthetic(users, seed=seed).dataset
    write = _writer(name)
    times, cpu_times, peak = [], [], 0.0
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        for repeat in range(repeats):
            out = Path(tmp) / f"run{repeat}"
            gc.collect()
            with _PeakRss() as rss:
                start, cpu_start = time.perf_counter(), time.process_time()
                write(dataset, out)
                times.append(time.perf_counter() - start)
                cpu_times.append(time.process_time() - cpu_start)
            peak = max(peak, rss.peak - rss.before)
        size = sum(p.stat().st_size for p in out.iterdir())
        digest = _digest(out)
        loaded = load_dataset(out)
        same = loaded.fingerprint() == dataset.fingerprint()
    return {
        "users": users,
        "writer": name,
        "detections": int(len(dataset.detections)),
        "seconds": min(times),
        "all_seconds": times,
        "cpu_seconds": min(cpu_times),
        "peak_rss_mib": peak,
        "bytes": size,
        "digest": digest,
        "loads_to_same_fingerprint": same,
        "load_average": os.getloadavg()[0],
    }


def measure(users: int, name: str, repeats: int, seed: int) -> dict[str, Any]:
    """Run `worker` in a fresh interpreter and return its JSON result."""
    command = [sys.executable, __file__, "--worker", str(users), name, str(repeats)]
    command += ["--seed", str(seed)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
    if done.returncode != 0:
        raise SystemExit(f"benchmark case {users} / {name} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| users | detections | writer | time (s) | CPU (s) | peak RSS MiB | MB written "
        "| same bytes as library | loads to same fingerprint |",
        "| ---: | ---: | --- | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    library = {r["users"]: r["digest"] for r in rows if r["writer"] == "library"}
    for r in rows:
        same = "n/a" if r["users"] not in library else str(r["digest"] == library[r["users"]])
        lines.append(
            f"| {r['users']:,} | {r['detections']:,} | {r['writer']} | {r['seconds']:.2f} "
            f"| {r['cpu_seconds']:.2f} | {r['peak_rss_mib']:.0f} | {r['bytes'] / 1e6:.1f} "
            f"| {same.lower()} | {str(r['loads_to_same_fingerprint']).lower()} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000", help="synthetic user counts")
    parser.add_argument("--writers", default=",".join(WRITERS), help="writers to compare")
    parser.add_argument("--repeats", type=int, default=3, help="timed writes per case (best)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS / "challenge_writer.json")
    parser.add_argument(
        "--worker", nargs=3, metavar=("USERS", "WRITER", "REPEATS"), help="internal"
    )
    args = parser.parse_args(argv)

    if args.worker:
        users, name, repeats = args.worker
        print(json.dumps(worker(int(users), name, int(repeats), args.seed)))
        return 0

    rows = []
    for users in (int(s) for s in args.sizes.split(",") if s.strip()):
        for name in (w.strip() for w in args.writers.split(",") if w.strip()):
            print(f"measuring {users:,} users, {name} ...", file=sys.stderr, flush=True)
            rows.append(measure(users, name, args.repeats, args.seed))

    from run_metadata import write_report  # benchmarks/run_metadata.py, next to this script

    write_report("challenge_writer", args.out, {"rows": rows}, table=table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
