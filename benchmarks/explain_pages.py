"""Benchmark of `ltr explain --html-dir`: one page per user of a 1,000-user split, plus the index.

    python benchmarks/explain_pages.py                        # 1,000 users, ridge and default
    python benchmarks/explain_pages.py --users 200 --models ridge    # quick run

Generates a synthetic data set whose test split has `--users` users (like aware2023's profiles:
~36 photos and ~25 concepts each, so ~60 what-if variants per user), trains each model on its
train split, then times `ltr.feedback.pages.write_split_pages` (what the command runs after
loading): the split's scores, the batched what-if scoring (`explain_users`), rendering and
writing every page, its JSON and the index. The batched scoring is also timed alone, and the
model calls are counted, to show that they do not grow with the number of users. Wall time and
this process's CPU time are both recorded: on a shared machine the CPU time is the steadier one.

Prints a markdown table and writes JSON to benchmarks/results/explain_pages.json (git-ignored).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def measure(model_name: str, data_dir: Path, work: Path, batch_users: int) -> dict[str, Any]:
    from ltr.data import load_dataset
    from ltr.explain import explain_users
    from ltr.feedback.pages import write_split_pages
    from ltr.models import preset
    from ltr.models.persistence import TrainedModel, load_trained
    from ltr.workflow import train_model, training_set

    start = time.perf_counter()
    dataset = load_dataset(data_dir)
    load_seconds = time.perf_counter() - start
    model_dir = work / f"model-{model_name}"
    start = time.perf_counter()
    train_model(training_set(dataset), preset(model_name), model_dir)
    train_seconds = time.perf_counter() - start
    trained = load_trained(model_dir)
    users = len(dataset.split_users("test"))

    calls: list[int] = []
    original = TrainedModel.predict

    def counting(self: TrainedModel, data: Any, split: str) -> Any:
        calls.append(len(data.split_users(split)))
        return original(self, data, split)

    TrainedModel.predict = counting  # type: ignore[method-assign]
    try:
        start, cpu = time.perf_counter(), time.process_time()
        for _ in explain_users(trained, dataset, "test", batch_users=batch_users):
            pass
        explain_seconds = time.perf_counter() - start
        explain_cpu = time.process_time() - cpu
        explain_calls = list(calls)
        calls.clear()
        out = work / f"pages-{model_name}"
        start, cpu = time.perf_counter(), time.process_time()
        write_split_pages(
            trained, dataset, "test", out, model_dir=model_dir, batch_users=batch_users
        )
        pages_seconds = time.perf_counter() - start
        pages_cpu = time.process_time() - cpu
    finally:
        TrainedModel.predict = original  # type: ignore[method-assign]
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return {
        "model": model_name,
        "users": users,
        "pages": len(list((out / "users").glob("*.html"))),
        "seconds_pages": round(pages_seconds, 2),
        "cpu_seconds_pages": round(pages_cpu, 2),
        "seconds_explain_alone": round(explain_seconds, 2),
        "cpu_seconds_explain_alone": round(explain_cpu, 2),
        "model_calls": len(calls),
        "profiles_scored": sum(calls),
        "model_calls_explain_alone": len(explain_calls),
        "seconds_load_data": round(load_seconds, 2),
        "seconds_train": round(train_seconds, 2),
        "megabytes_written": round(size / 2**20, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1000, help="Users of the test split.")
    parser.add_argument("--models", default="ridge,default", help="Presets, comma-separated.")
    parser.add_argument("--batch-users", type=int, default=None, help="Users per model call.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS / "explain_pages.json")
    args = parser.parse_args()

    from ltr.data.synthetic import write_synthetic
    from ltr.explain import BATCH_USERS

    batch_users = args.batch_users or BATCH_USERS
    work = Path(tempfile.mkdtemp(prefix="ltr-explain-pages-"))
    try:
        write_synthetic(work / "data", n_users=args.users * 5, seed=args.seed)  # test = 20%
        rows = [measure(name, work / "data", work, batch_users) for name in args.models.split(",")]
    finally:
        shutil.rmtree(work, ignore_errors=True)

    sys.path.insert(0, str(Path(__file__).parent))
    from run_metadata import write_report  # benchmarks/run_metadata.py, next to this script

    lines = [
        "| model | users | pages + JSON + index: wall s (CPU s) | what-if scoring alone: wall s "
        "(CPU s) | model calls | profiles scored | MB written |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {r['model']} | {r['users']:,} | {r['seconds_pages']:.1f} "
        f"({r['cpu_seconds_pages']:.1f}) | {r['seconds_explain_alone']:.1f} "
        f"({r['cpu_seconds_explain_alone']:.1f}) | {r['model_calls']} | "
        f"{r['profiles_scored']:,} | {r['megabytes_written']} |"
        for r in rows
    ]
    fields = {"batch_users": batch_users, "results": rows}
    report = write_report("explain_pages", args.out, fields, table="\n".join(lines))
    print(f"load average (1 min) {report['load_average_1min']:.2f}, {report['machine']}")


if __name__ == "__main__":
    main()
