"""Coverage-guided fuzzing of the parsers with atheris, for long local runs (not a test).

    pip install atheris                      # into the venv; not a project dependency
    python benchmarks/fuzz/fuzz_parsers.py challenge -max_total_time=180
    python benchmarks/fuzz/fuzz_parsers.py TARGET [libFuzzer options...]

Targets: ``challenge`` and ``research`` (the data loaders; the first input byte picks the file
to replace in a valid hand-made folder, the rest is its content), ``json`` (`read_json`),
``run-json`` and ``run-csv`` (`ltr.submission.read_run`), ``spec`` (`ModelSpec.from_dict` fed by
`read_json`). The property is the one of tests/test_fuzz_parsers.py: any input gives a result
or an `LtrError`; anything else is a crash, which libFuzzer saves as ``crash-*`` in the working
folder. The corpus starts from the valid files and grows in
benchmarks/results/fuzz/TARGET/ (git-ignored). libFuzzer's last line says how many inputs ran
("Done N runs in S second(s)").
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import atheris

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

with atheris.instrument_imports(include=["ltr"]):
    from ltr.data import load_dataset
    from ltr.data.jsonfile import read_json
    from ltr.data.summary import summarize
    from ltr.errors import LtrError
    from ltr.models import PRESETS
    from ltr.models.spec import ModelSpec
    from ltr.submission import read_run

from casefiles import DATA  # noqa: E402 - tests/ is on the path only now

WORK = Path(tempfile.mkdtemp(prefix="ltr-atheris-"))
CHALLENGE = ["class_scores.json", "predictions_train.json", "predictions_val.json",
             "predictions_test.json", "gt_train.json"]  # fmt: skip
RESEARCH = ["train_test_split_v1.json", "gt_usr_exposure_v1.json"] + [
    f"visual_concepts/{n}.txt"
    for n in ("accommodation_search", "bank_credit", "job_search_IT", "job_search_waiter_waitress")
]
RUN = {
    "u1": {"acc": 0.5, "it": -1, "bank": 2e-3, "wait": 0},
    "u2": {"acc": -7.125, "it": 3, "bank": -0.25, "wait": 1.5},
}


def _folder_target(layout: str, files: list[str]) -> tuple[Callable[[bytes], None], list[bytes]]:
    folder = WORK / f"{layout}_ok"
    shutil.copytree(DATA / f"{layout}_ok", folder)
    originals = {name: (folder / name).read_bytes() for name in files}

    def run(data: bytes) -> None:
        if not data:
            return
        name = files[data[0] % len(files)]
        path = folder / name
        path.write_bytes(data[1:])
        try:
            summarize(load_dataset(folder))
        except LtrError:
            pass
        finally:
            path.write_bytes(originals[name])

    return run, [bytes([i]) + originals[name] for i, name in enumerate(files)]


def _file_target(
    suffix: str, parse: Callable[[Path], object], seeds: list[bytes]
) -> tuple[Callable[[bytes], None], list[bytes]]:
    path = WORK / f"input{suffix}"

    def run(data: bytes) -> None:
        path.write_bytes(data)
        with contextlib.suppress(LtrError):
            parse(path)

    return run, seeds


def _spec(path: Path) -> object:
    return ModelSpec.from_dict(read_json(path), where=str(path))


def _csv_seed() -> bytes:
    rows = ["user,acc,bank,it,wait"] + [
        ",".join([u, *(repr(v[s]) for s in ("acc", "bank", "it", "wait"))]) for u, v in RUN.items()
    ]
    return "\r\n".join(rows).encode()


def target(name: str) -> tuple[Callable[[bytes], None], list[bytes]]:
    if name == "challenge":
        return _folder_target("challenge", CHALLENGE)
    if name == "research":
        return _folder_target("research", RESEARCH)
    if name == "json":
        return _file_target(".json", read_json, [json.dumps(RUN, indent=4).encode()])
    if name == "run-json":
        return _file_target(".json", read_run, [json.dumps(RUN).encode()])
    if name == "run-csv":
        return _file_target(".csv", read_run, [_csv_seed()])
    if name == "spec":
        seeds = [json.dumps(PRESETS[p].to_dict()).encode() for p in ("default", "ridge", "base")]
        return _file_target(".json", _spec, seeds)
    raise SystemExit(f"unknown target {name!r}: challenge, research, json, run-json, run-csv, spec")


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        raise SystemExit(__doc__)
    name = sys.argv.pop(1)
    run, seeds = target(name)
    corpus = ROOT / "benchmarks" / "results" / "fuzz" / name
    corpus.mkdir(parents=True, exist_ok=True)
    for i, seed in enumerate(seeds):
        (corpus / f"seed-{i}").write_bytes(seed)
    atheris.Setup([*sys.argv, str(corpus)], run)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
