"""Quality probes: does a candidate model help the default ensemble?

    python benchmarks/member_probes.py                       # aware2023 under ../shared/data
    python benchmarks/member_probes.py --data PATH --seed 0 --candidates knn,lgbm-pearson-avg3

The default's members are fitted once per fold (their held-out scores and in-sample spreads,
exactly as `EnsembleModel` standardises them); every candidate is then scored three ways on the
same folds: alone, added to the default as a fifth equal-weight member, and in place of one
member. Differences are against the default, with the corrected resampled t-test. The figures of
docs/results.md ("A last round: other penalties, other members") are this script's output on
both real sets, seed 0. Prints a markdown table and writes JSON to
benchmarks/results/member_probes.json (git-ignored).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from run_metadata import write_report

from ltr.cv import fold_indices
from ltr.data import Dataset, load_dataset
from ltr.features import FeatureMatrix
from ltr.metrics import pearson_columns
from ltr.models import PRESETS, build_model
from ltr.models.formulation import concept_blocks
from ltr.models.interface import aligned_labels
from ltr.models.learners import RidgeLearner, block_scales
from ltr.models.registry import DEFAULT_FAMILIES
from ltr.situations import SITUATIONS
from ltr.stats import corrected_t_test

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "aware2023"


@dataclass(frozen=True)
class Fold:
    """One fold: the data, and (held-out scores, in-sample center, in-sample scale) per member."""

    train: np.ndarray
    held: np.ndarray
    members: list[tuple[np.ndarray, np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Probe:
    """What a candidate sees of one fold."""

    features: FeatureMatrix
    labels: pd.DataFrame
    y: np.ndarray
    dataset: Dataset
    train: np.ndarray
    held: np.ndarray


#: (held-out scores, training users' in-sample scores), each users x situations.
Scores = tuple[np.ndarray, np.ndarray]


def standardised(held: np.ndarray, center: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return (held - center) / np.where(scale > 0, scale, 1.0)


def fold_score(scores: np.ndarray, truth: np.ndarray) -> float:
    """A fold's mean Pearson over the situations, as `ltr.cv` scores it (undefined = 0)."""
    return float(np.nan_to_num(pearson_columns(scores, truth), nan=0.0).mean())


def default_folds(
    features: FeatureMatrix, labels: pd.DataFrame, seed: int, folds: int, repeats: int
) -> list[Fold]:
    """The default's members on every fold, seeded as `ltr cv --seed SEED` seeds them."""
    spec = PRESETS["default"].with_seed(seed)
    y = aligned_labels(features, labels)
    out = []
    for train, held in fold_indices(len(y), folds, repeats, seed):
        members = []
        for member_spec in spec.members:
            model = build_model(member_spec).fit(features.take(train), labels)
            inside = model.predict_array(features.take(train))
            members.append(
                (model.predict_array(features.take(held)), inside.mean(0), inside.std(0))
            )
        out.append(Fold(train, held, members))
    return out


# --------------------------------------------------------------------------- candidates
def ridge_design(probe: Probe) -> tuple[FeatureMatrix, np.ndarray, np.ndarray]:
    """The default ridge's view of the features: the columns, the dense matrix, the blocks."""
    view = probe.features.select(DEFAULT_FAMILIES)
    return view, view.dense(), concept_blocks(view)


def scaled(X: np.ndarray, blocks: np.ndarray, probe: Probe) -> np.ndarray:
    """X centred and block-scaled on the training users, as `RidgeLearner` does."""
    inside = X[probe.train]
    scaled_x: np.ndarray = (X - inside.mean(0)) / block_scales(inside.std(0), blocks)
    return scaled_x


def _ridge_per_situation(
    probe: Probe, design: Callable[[str, Any], np.ndarray], grid: Sequence[Any]
) -> Scores:
    """Ridge per situation on `design(situation, g)` (every user's scaled columns), g and the
    penalty chosen per situation by leave-one-out."""
    from sklearn.linear_model import RidgeCV

    held = np.zeros((len(probe.held), len(SITUATIONS)))
    fitted = np.zeros((len(probe.train), len(SITUATIONS)))
    for j, situation in enumerate(SITUATIONS):
        best = None
        for g in grid:
            Z = design(situation, g)
            model = RidgeCV(alphas=RidgeLearner.ALPHAS).fit(Z[probe.train], probe.y[probe.train, j])
            if best is None or model.best_score_ > best[0]:
                best = (model.best_score_, model, Z)
        _, model, Z = best
        held[:, j], fitted[:, j] = model.predict(Z[probe.held]), model.predict(Z[probe.train])
    return held, fitted


def concept_penalty(probe: Probe) -> Scores:
    """Ridge whose concept columns are scaled by 1/4 .. 4 against the aggregate columns (a
    second penalty for the concept blocks)."""
    view, X, blocks = ridge_design(probe)
    Z = scaled(X, blocks, probe)
    is_concept = view.columns["concept"].notna().to_numpy()

    def design(situation: str, g: float) -> np.ndarray:
        w = np.ones(len(is_concept))
        w[is_concept] = g
        return Z * w

    return _ridge_per_situation(probe, design, [0.25, 0.5, 1.0, 2.0, 4.0])


def rating_penalty(probe: Probe) -> Scores:
    """Ridge whose concept columns are weighted by |crowd rating| + tau: a prior that rated
    concepts matter more (tau = None: no weighting, among the choices)."""
    view, X, blocks = ridge_design(probe)
    Z = scaled(X, blocks, probe)
    is_concept = view.columns["concept"].notna().to_numpy()
    concepts = view.columns["concept"][is_concept].astype(str)

    def design(situation: str, tau: float | None) -> np.ndarray:
        w = np.ones(len(is_concept))
        if tau is not None:
            rating = probe.dataset.ratings[situation].reindex(concepts).fillna(0.0)
            size = rating.abs().to_numpy() + tau
            w[is_concept] = size / size.mean()
        return Z * w

    return _ridge_per_situation(probe, design, [None, 0.05, 0.2, 0.5, 1.0])


def shrunk_frequencies(probe: Probe) -> Scores:
    """Ridge whose concept frequencies are shrunk toward the population's, (k + m p0) / (n + m)
    for k of a profile's n images (small profiles' shares are noisy); m = 0 .. 20 by
    leave-one-out per situation."""
    view, X, blocks = ridge_design(probe)
    is_freq = (view.columns["family"] == "freq").to_numpy()
    images = X[:, view.names.get_loc("n_images")][:, None]
    counts = X[:, is_freq] * images
    prior = counts[probe.train].sum(0) / images[probe.train].sum()

    def design(situation: str, m: float) -> np.ndarray:
        shrunk = X.copy()
        shrunk[:, is_freq] = (counts + m * prior) / (images + m)
        return scaled(shrunk, blocks, probe)

    return _ridge_per_situation(probe, design, [0, 2, 5, 10, 20])


def spline_ridge(probe: Probe) -> Scores:
    """Ridge with 5-knot splines of every non-concept column added (a GAM-like linear model)."""
    from sklearn.linear_model import RidgeCV
    from sklearn.preprocessing import SplineTransformer

    _, X, blocks = ridge_design(probe)
    aggregates = X[:, blocks < 0]
    varies = aggregates[probe.train].std(0) > 0
    splines = SplineTransformer(n_knots=5, knots="quantile", extrapolation="linear")
    S = splines.fit(aggregates[probe.train][:, varies]).transform(aggregates[:, varies])
    X, blocks = np.hstack([X, S]), np.r_[blocks, np.full(S.shape[1], -1)]
    Z = scaled(X, blocks, probe)
    model = RidgeCV(alphas=RidgeLearner.ALPHAS, alpha_per_target=True)
    model.fit(Z[probe.train], probe.y[probe.train])
    return model.predict(Z[probe.held]), model.predict(Z[probe.train])


def residual_boosting(probe: Probe) -> Scores:
    """LightGBM regression started from ridge's out-of-fold scores (boosting the residuals)."""
    import lightgbm as lgb
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import KFold

    _, X, blocks = ridge_design(probe)
    Z = scaled(X, blocks, probe)
    Z_train, y_train = Z[probe.train], probe.y[probe.train]

    def ridge() -> RidgeCV:
        return RidgeCV(alphas=RidgeLearner.ALPHAS, alpha_per_target=True)

    start = np.zeros_like(y_train)
    for a, b in KFold(5, shuffle=True, random_state=0).split(Z_train):
        start[b] = ridge().fit(Z_train[a], y_train[a]).predict(Z_train[b])
    full = ridge().fit(Z_train, y_train)
    held, fitted = full.predict(Z[probe.held]), full.predict(Z_train)
    params = {
        "objective": "regression",
        "learning_rate": 0.02,
        "num_leaves": 8,
        "min_data_in_leaf": 10,
        "feature_fraction": 0.5,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "num_threads": 1,
        "verbose": -1,
    }
    for j in range(len(SITUATIONS)):
        target, init = np.ascontiguousarray(y_train[:, j]), np.ascontiguousarray(start[:, j])
        data = lgb.Dataset(X[probe.train], target, init_score=init)
        booster = lgb.train({**params, "seed": j}, data, 300)
        held[:, j] += booster.predict(X[probe.held])
        fitted[:, j] += booster.predict(X[probe.train])
    return held, fitted


def nearest_profiles(probe: Probe) -> Scores:
    """The 50 nearest training profiles (cosine on tf-idf concept frequencies), by distance."""
    from sklearn.neighbors import KNeighborsRegressor

    X = probe.features.select(["freq"]).dense()
    present = (X[probe.train] > 0).sum(0)
    X = X * (np.log((1 + len(probe.train)) / (1 + present)) + 1)
    X = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    model = KNeighborsRegressor(50, weights="distance", metric="cosine")
    model.fit(X[probe.train], probe.y[probe.train])
    return model.predict(X[probe.held]), model.predict(X[probe.train])


#: The families without a column per concept: profile size, rating-weighted sums, embedding.
AGGREGATE_FAMILIES = ("size", "conf", "base", "posneg", "focal", "dist", "embed")


def _preset_on(name: str, families: tuple[str, ...], seed: int) -> Callable[[Probe], Scores]:
    """A preset on other feature families."""
    return _preset_average(name, [seed], families)


def _preset_average(
    name: str, seeds: list[int], families: tuple[str, ...] | None = None
) -> Callable[[Probe], Scores]:
    spec = (
        PRESETS[name] if families is None else dataclasses.replace(PRESETS[name], families=families)
    )

    def scores(probe: Probe) -> Scores:
        held, fitted = 0.0, 0.0
        for seed in seeds:
            model = build_model(spec.with_seed(seed))
            model.fit(probe.features.take(probe.train), probe.labels)
            held = held + model.predict_array(probe.features.take(probe.held))
            fitted = fitted + model.predict_array(probe.features.take(probe.train))
        return np.asarray(held) / len(seeds), np.asarray(fitted) / len(seeds)

    return scores


#: name -> (scores of a fold, the default's member it replaces in "in place of").
CANDIDATES: dict[str, tuple[Callable[[Probe], Scores], int]] = {
    "concept-penalty": (concept_penalty, 0),
    "rating-penalty": (rating_penalty, 0),
    "shrunk-frequencies": (shrunk_frequencies, 0),
    "spline-ridge": (spline_ridge, 0),
    "residual-boosting": (residual_boosting, 0),
    "knn": (nearest_profiles, 0),
    "lgbm-pearson-avg3": (_preset_average("lgbm-pearson", [100, 117, 134]), 2),
    # the default's tree members without the per-concept columns, seeded as in the default
    "lgbm-pearson-aggregates": (_preset_on("lgbm-pearson", AGGREGATE_FAMILIES, 2), 2),
    "extra-trees-aggregates": (_preset_on("extra-trees", AGGREGATE_FAMILIES, 3), 3),
}


def probe(
    dataset: Dataset,
    candidates: dict[str, tuple[Callable[[Probe], Scores], int]],
    *,
    seed: int = 0,
    folds: int = 5,
    repeats: int = 3,
) -> dict[str, np.ndarray]:
    """Per-fold mean Pearson of the default and of every candidate (alone / added / in place)."""
    from ltr.workflow import training_set

    data = training_set(dataset)
    features, labels = data.features, data.labels
    y = aligned_labels(features, labels)
    results: dict[str, list[float]] = {"default": []}
    for fold in default_folds(features, labels, seed, folds, repeats):
        truth = y[fold.held]
        members = [standardised(*m) for m in fold.members]
        default = sum(members)
        results["default"].append(fold_score(default, truth))
        view = Probe(features, labels, y, dataset, fold.train, fold.held)
        for name, (scores, replaces) in candidates.items():
            held, fitted = scores(view)
            own = standardised(held, fitted.mean(0), fitted.std(0))
            for way, blend in (
                ("alone", held),
                ("added", default + own),
                ("in place", default - members[replaces] + own),
            ):
                results.setdefault(f"{name} {way}", []).append(fold_score(blend, truth))
    return {key: np.asarray(value) for key, value in results.items()}


def table(results: dict[str, np.ndarray], folds: int) -> tuple[str, list[dict]]:
    default = results["default"]
    lines = [
        "| variant | mean Pearson | vs default | p | folds better |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    rows = []
    for name, scores in results.items():
        row: dict = {"variant": name, "mean": float(scores.mean())}
        if name == "default":
            lines.append(f"| default | {scores.mean():.4f} | | | |")
        else:
            test = corrected_t_test(scores, default, folds=folds)
            row.update(
                difference=test.mean, p_value=test.p_value, better=int((scores > default).sum())
            )
            lines.append(
                f"| {name} | {scores.mean():.4f} | {test.mean:+.4f} | {test.p_value:.2f} "
                f"| {row['better']}/{len(scores)} |"
            )
        rows.append(row)
    return "\n".join(lines), rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--candidates", default=",".join(CANDIDATES))
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "member_probes.json"
    )
    args = parser.parse_args(argv)
    chosen = [name for name in args.candidates.split(",") if name]
    unknown = sorted(set(chosen) - set(CANDIDATES))
    if unknown:
        parser.error(f"unknown candidate(s) {', '.join(unknown)} (known: {', '.join(CANDIDATES)})")
    results = probe(
        load_dataset(args.data),
        {name: CANDIDATES[name] for name in chosen},
        seed=args.seed,
        folds=args.folds,
        repeats=args.repeats,
    )
    text, rows = table(results, args.folds)
    fields = {
        "data": str(args.data),
        "seed": args.seed,
        "folds": args.folds,
        "repeats": args.repeats,
    }
    write_report("member_probes", args.out, {**fields, "results": rows}, table=text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
