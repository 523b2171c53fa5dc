"""The calibration table of the README: the synthetic data set's facts next to the real data's.

    python benchmarks/synthetic_calibration.py                       # default set vs aware2023
    python benchmarks/synthetic_calibration.py --users 5000 --seed 3 --real none

Facts over all splits: images per user, detections per image, confidence quantiles, concept
frequencies, ratings, labels (train), BASE (threshold fitted on train, scored on val when it has
labels, else in-sample on train) and, for the synthetic set, the noise ceiling on val.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ltr.baseline import base_scores, fit_base_threshold
from ltr.data import Dataset, load_dataset
from ltr.data.synthetic import generate_synthetic
from ltr.metrics import score_run

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "aware2023"


def facts(dataset: Dataset) -> dict[str, str]:
    det, images, ratings = dataset.detections, dataset.images, dataset.ratings.to_numpy()
    per_user = images.groupby(["split", "user"]).size()
    per_image = det.groupby(["split", "user", "image"]).size()
    shares = per_image.value_counts(normalize=True)
    concepts = det["concept"].value_counts(normalize=True)
    labels = dataset.split_labels("train")
    corr = labels.corr()
    split = "val" if dataset.has_labels("val") else "train"
    threshold = fit_base_threshold(dataset, "train")
    base = score_run(base_scores(dataset, split, threshold), dataset.split_labels(split))
    return {
        "images per user min/mean/max": (
            f"{per_user.min()} / {per_user.mean():.1f} / {per_user.max()}"
        ),
        "detections per image 1 / 2 / 3, max": (
            f"{shares.get(1, 0):.1%} / {shares.get(2, 0):.1%} / {shares.get(3, 0):.1%}, "
            f"{per_image.max()}"
        ),
        "confidence quantiles 10/50/90/99%": " / ".join(
            f"{q:.3f}" for q in np.quantile(det["confidence"], [0.1, 0.5, 0.9, 0.99])
        ),
        "most frequent concept; concepts occurring": (
            f"{concepts.iloc[0]:.1%}; {len(concepts)} of {len(dataset.ratings)}"
        ),
        "ratings range; exact zeros": (
            f"{ratings.min():.2f}..{ratings.max():.2f}; {(ratings == 0).mean():.0%}"
        ),
        "label sd (train)": f"{labels.std().min():.2f}-{labels.std().max():.2f}",
        "label corr acc-bank / acc-it / it-bank / wait-others": (
            f"{corr.loc['acc', 'bank']:.2f} / {corr.loc['acc', 'it']:.2f} / "
            f"{corr.loc['it', 'bank']:.2f} / "
            f"{corr.loc['wait', ['acc', 'bank', 'it']].min():.2f}.."
            f"{corr.loc['wait', ['acc', 'bank', 'it']].max():.2f}"
        ),
        "BASE mean Pearson": f"{base.official:.3f} ({split})",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--real", default=str(REAL), help="real data folder, or 'none'")
    args = parser.parse_args()
    synthetic = generate_synthetic(args.users, args.seed)
    generated = facts(synthetic.dataset)
    generated["noise ceiling (val)"] = f"{synthetic.noise_ceiling['val']['mean']:.3f}"
    columns = {f"synthetic ({args.users} users, seed {args.seed})": generated}
    if args.real != "none" and Path(args.real).is_dir():
        columns[f"real ({Path(args.real).name})"] = facts(load_dataset(args.real))
    names = list(columns)
    print("| fact | " + " | ".join(names) + " |")
    print("| --- | " + " | ".join("---" for _ in names) + " |")
    for fact in columns[names[0]]:
        print(f"| {fact} | " + " | ".join(columns[n].get(fact, "unknown") for n in names) + " |")


if __name__ == "__main__":
    main()
