"""A deliberately plain implementation of `featurize`: one Python loop over detections, dicts.

It shares only the column list (`feature_columns`) with the vectorised code and recomputes
every value from the definitions, so the tests can check the fast version against it, and the
benchmark can report how much the vectorisation buys. Far too slow for real use.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ltr.data.dataset import Dataset
from ltr.features.config import (
    FeatureConfig,
    active_families,
    concept_vocabulary,
    feature_columns,
    quantile_label,
    threshold_label,
)
from ltr.features.matrix import FeatureMatrix
from ltr.features.vocabulary import Vocabulary
from ltr.situations import SITUATIONS


def _quantile(ordered: list[float], q: float) -> float:
    """Linear interpolation between order statistics (numpy's default method)."""
    pos = q * (len(ordered) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (pos - lo) * (ordered[hi] - ordered[lo])


def _div(a: float, b: float) -> float:
    return a / b if b else 0.0


def _user_features(
    images: set[str],
    detections: list[tuple[str, str, float, float]],
    ratings: dict[str, dict[str, float]],
    focal: dict[str, dict[str, float]],
    concepts: list[str],
    config: FeatureConfig,
    components: dict[str, list[float]],
) -> dict[str, float]:
    """Every feature of one profile, from its images and (image, concept, conf, area) list.

    `components` maps a concept to its loadings on the ``embed`` components (the fit is
    checked on its own against numpy's SVD: `embedding_reference`)."""
    out: dict[str, float] = {}
    by_image: dict[str, list[tuple[str, float, float]]] = {}
    count: dict[str, int] = {}
    conf_total: dict[str, float] = {}
    conf_max: dict[str, float] = {}
    shown_in: dict[str, set[str]] = {}
    for image, concept, conf, area in detections:
        by_image.setdefault(image, []).append((concept, conf, area))
        count[concept] = count.get(concept, 0) + 1
        conf_total[concept] = conf_total.get(concept, 0.0) + conf
        conf_max[concept] = max(conf_max.get(concept, 0.0), conf)
        shown_in.setdefault(concept, set()).add(image)
    n_images = len(images | set(by_image))
    n_det_images = len(by_image)

    out["n_images"] = float(n_images)
    out["n_det_images"] = float(n_det_images)
    out["n_detections"] = float(len(detections))
    out["det_per_image"] = _div(len(detections), n_det_images)
    out["n_concepts"] = float(len(count))
    for j in range(config.embed_dim):
        out[f"embed{j + 1}"] = sum(
            math.log1p(len(shown)) * components[c][j] for c, shown in shown_in.items()
        )
    for c in concepts:
        out[f"freq:{c}"] = _div(len(shown_in.get(c, ())), n_images)
        out[f"count:{c}"] = float(count.get(c, 0))
        out[f"maxconf:{c}"] = conf_max.get(c, 0.0)
        out[f"meanconf:{c}"] = _div(conf_total.get(c, 0.0), count.get(c, 0))

    areas = [area for _, _, _, area in detections if not math.isnan(area)]
    out["box_area_mean"] = _div(sum(areas), len(areas))
    for s in SITUATIONS:
        conf_sum = pos = neg = focal_sum = area_sum = 0.0
        image_scores = []
        for found in by_image.values():
            score = 0.0
            for concept, conf, area in found:
                value = ratings[concept][s] * conf
                score += value
                conf_sum += value
                if value > 0:
                    pos += value
                else:
                    neg += value
                focal_sum += focal[concept][s] * conf
                if not math.isnan(area):
                    area_sum += value * area
            image_scores.append(score)
        out[f"conf_sum:{s}"] = conf_sum
        out[f"conf_mean:{s}"] = _div(conf_sum, n_det_images)
        out[f"pos_sum:{s}"] = pos
        out[f"neg_sum:{s}"] = neg
        out[f"pos_mean:{s}"] = _div(pos, n_det_images)
        out[f"neg_mean:{s}"] = _div(neg, n_det_images)
        out[f"focal_sum:{s}"] = focal_sum
        out[f"focal_mean:{s}"] = _div(focal_sum, n_det_images)
        out[f"area_sum:{s}"] = area_sum
        out[f"area_mean:{s}"] = _div(area_sum, n_det_images)

        for t in config.thresholds:
            per_image = []
            for found in by_image.values():
                best: dict[str, float] = {}
                for concept, conf, _ in found:
                    if conf >= t:
                        best[concept] = max(best.get(concept, 0.0), conf)
                if best:
                    per_image.append(sum(ratings[c][s] * m for c, m in best.items()))
            out[f"base@{threshold_label(t)}:{s}"] = _div(sum(per_image), len(per_image))

        n = len(image_scores)
        mean = _div(sum(image_scores), n)
        out[f"img_std:{s}"] = math.sqrt(_div(sum((x - mean) ** 2 for x in image_scores), n))
        ordered = sorted(image_scores)
        out[f"img_min:{s}"] = ordered[0] if n else 0.0
        out[f"img_max:{s}"] = ordered[-1] if n else 0.0
        for q in config.quantiles:
            out[f"img_{quantile_label(q)}:{s}"] = _quantile(ordered, q) if n else 0.0
        out[f"img_negshare:{s}"] = _div(sum(1 for x in image_scores if x < 0), n)
    return out


def image_counts_reference(dataset: Dataset) -> dict[str, dict[str, int]]:
    """``{user: {concept: images showing it}}`` over every split, one detection at a time."""
    shown: dict[str, dict[str, set[str]]] = {}
    detections = dataset.detections
    for user, image, concept in zip(
        detections["user"], detections["image"], detections["concept"], strict=True
    ):
        shown.setdefault(user, {}).setdefault(concept, set()).add(image)
    return {u: {c: len(images) for c, images in by_c.items()} for u, by_c in shown.items()}


def embedding_reference(dataset: Dataset, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top `k` right singular vectors (sign: largest |loading| positive) and singular values
    of the ``users x concepts`` matrix log(1 + images showing the concept), by numpy's SVD."""
    concepts = list(concept_vocabulary(dataset))
    counts = image_counts_reference(dataset)
    rows = np.array(
        [[math.log1p(by_c.get(c, 0)) for c in concepts] for by_c in counts.values()]
    ).reshape(len(counts), len(concepts))
    _, values, vt = np.linalg.svd(rows, full_matrices=False)
    top = vt[:k].copy()
    for row in top:
        peak = int(np.argmax(np.abs(row)))
        row *= 1.0 if row[peak] >= 0 else -1.0
    return top, values[:k]


def featurize_reference(
    dataset: Dataset, split: str | None, config: FeatureConfig | None = None
) -> FeatureMatrix:
    """Same result as `ltr.features.featurize`, computed one detection at a time."""
    config = config or FeatureConfig()
    if split is None:
        users = list(dataset.users["user"])
        detections, image_rows = dataset.detections, dataset.images
    else:
        users = list(dataset.split_users(split))
        detections, image_rows = dataset.split_detections(split), dataset.split_images(split)
    concepts = list(concept_vocabulary(dataset))
    # The embedding is data-derived state: its fit is checked apart (`embedding_reference`),
    # here only how a profile is projected on it.
    embedding = Vocabulary.from_dataset(dataset).embedding
    assert embedding is not None
    components = {c: list(embedding[:, j]) for j, c in enumerate(concepts)}
    ratings = {c: {s: 0.0 for s in SITUATIONS} for c in concepts}
    for concept, row in dataset.ratings.iterrows():
        ratings[str(concept)] = {s: float(row[s]) for s in SITUATIONS}
    top = max((abs(r) for by_s in ratings.values() for r in by_s.values()), default=0.0)
    k = config.focal_k_factor * top
    focal = {
        c: {s: r / (1.0 - abs(r) / k) ** config.focal_gamma if top else r for s, r in by_s.items()}
        for c, by_s in ratings.items()
    }

    images: dict[str, set[str]] = {u: set() for u in users}
    for user, image in zip(image_rows["user"], image_rows["image"], strict=True):
        images[user].add(image)
    found: dict[str, list[tuple[str, str, float, float]]] = {u: [] for u in users}
    for user, image, concept, conf, x0, y0, x1, y1 in zip(
        detections["user"],
        detections["image"],
        detections["concept"],
        detections["confidence"],
        detections["x0"],
        detections["y0"],
        detections["x1"],
        detections["y1"],
        strict=True,
    ):
        area = (x1 - x0) * (y1 - y0)  # NaN without a box
        found[user].append((image, concept, float(conf), float(area)))

    columns = feature_columns(pd.Index(concepts), dataset.has_boxes, config)
    names = list(columns["name"])
    rows = np.zeros((len(users), len(names)))
    for i, user in enumerate(users):
        values = _user_features(
            images[user], found[user], ratings, focal, concepts, config, components
        )
        rows[i] = [values[name] for name in names]
    assert active_families(dataset.has_boxes, config) == list(pd.unique(columns["family"]))
    return FeatureMatrix(
        users=pd.Index(users, name="user"), values=sp.csr_matrix(rows), columns=columns
    )
