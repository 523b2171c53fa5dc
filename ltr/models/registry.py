"""Named models (presets) and the factory that turns a spec into a model object."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType

from ltr.errors import LtrError
from ltr.models.baseline_model import BaselineModel
from ltr.models.ensemble import EnsembleModel
from ltr.models.formulation import PerSituationModel, PooledModel
from ltr.models.interface import ProfileModel
from ltr.models.learners import LEARNERS
from ltr.models.spec import ModelSpec


def build_model(spec: ModelSpec, *, threads: int = 1) -> ProfileModel:
    """An untrained model for a spec.

    Args:
        spec: What to build: a back-end, an ensemble or BASE, with its settings.
        threads: Threads per learner.

    Returns:
        The model; `ProfileModel.fit` trains it.

    Raises:
        LtrError: The spec names an unknown learner.

    Example:
        >>> model = build_model(preset("ridge"))
        >>> type(model).__name__, model.spec.formulation
        ('PerSituationModel', 'per-situation')
    """
    if spec.learner == "ensemble":
        return EnsembleModel(spec, threads=threads, build_member=build_model)
    if spec.learner == "base":
        return BaselineModel(spec, threads=threads)
    if spec.learner not in LEARNERS:
        known = ", ".join(["base", "ensemble", *LEARNERS])
        raise LtrError(f"unknown learner {spec.learner!r} (known: {known})")
    if spec.formulation == "pooled":
        return PooledModel(spec, threads=threads)
    return PerSituationModel(spec, threads=threads)


#: Feature families the learned presets use. Per-concept max/mean confidence and box areas
#: added nothing to ridge alone in cross-validation on either real data set (docs/results.md).
#: ``embed`` (low-rank concept embedding): default model, 5-fold x 3, seed 0, +0.0045 on aware2023
#: (corrected 95% interval +0.0010..+0.0081, 14 of 15 folds), +0.0007 on lervup2021
#: (-0.0039..+0.0053); the gain comes through the XGBoost member.
DEFAULT_FAMILIES: tuple[str, ...] = (
    "size",
    "freq",
    "count",
    "conf",
    "base",
    "posneg",
    "focal",
    "dist",
    "embed",
)
#: The default families plus per-concept max/mean confidence and box areas: ridge on these is
#: no better alone, but its errors differ from the default ridge's, which helps an ensemble.
WIDE_FAMILIES: tuple[str, ...] = (*DEFAULT_FAMILIES, "maxconf", "meanconf", "area")
#: Options of the learned-stacking presets: one set of weights for the four situations, half
#: way to equal weights (per-situation, unshrunk weights lost to fixed ones in CV).
STACKED_OPTIONS: dict[str, object] = {"share": True, "shrink": 0.5}


def _presets() -> dict[str, ModelSpec]:
    presets = {"base": ModelSpec("base", families=("base",))}
    for key in LEARNERS:
        presets[key] = ModelSpec(key, families=DEFAULT_FAMILIES)
        presets[f"{key}-pooled"] = ModelSpec(key, formulation="pooled", families=DEFAULT_FAMILIES)
    presets["ridge-wide"] = ModelSpec("ridge", families=WIDE_FAMILIES)
    # The former default: block-scaled ridge (twice the weight) + XGBoost regression.
    presets["ridge-xgb"] = ModelSpec(
        "ensemble",
        members=(presets["ridge"], presets["xgb-regression"]),
        weights=(2.0, 1.0),
    )
    four = (
        presets["ridge"],
        presets["ridge-wide"],
        presets["lgbm-pearson"],
        presets["extra-trees"],
    )
    # The default: four members whose errors differ (two ridges on different features, boosting
    # of the Pearson correlation itself, a multi-output extra-trees forest), equal fixed
    # weights. Chosen on seed-0 repeated CV: the Pearson booster in place of XGBoost regression
    # +0.0012 / +0.0017 on aware2023 / lervup2021 at half the time; fixed equal weights did as
    # well as or better than weights learned by stacking, at a sixth of the cost (docs/results.md,
    # "Ensembles and stacking"). Measured on fresh seeds in its summary.
    presets["default"] = ModelSpec("ensemble", members=four, weights=(1.0, 1.0, 1.0, 1.0))
    # The same members with weights learned on inner out-of-fold scores, and with a
    # cross-situation second level on top.
    presets["stacked"] = ModelSpec("ensemble", members=four, params=STACKED_OPTIONS)
    presets["stacked-cross"] = ModelSpec(
        "ensemble", members=four, params={**STACKED_OPTIONS, "cross": True}
    )
    # Seeded the way the commands seed them (`--seed 0`: members get 0, 1, ...), so a preset
    # used from Python gives the numbers `ltr cv/train` print.
    return {name: spec.with_seed(0) for name, spec in presets.items()}


#: Models selectable by name (`ltr cv --model NAME`, `ltr train --model NAME`); read-only,
#: and every spec is deeply immutable, so no caller can change a preset for the others.
PRESETS: Mapping[str, ModelSpec] = MappingProxyType(_presets())

#: The models `ltr cv --compare` puts side by side.
COMPARE: tuple[str, ...] = (
    "base",
    "ridge",
    "ridge-pooled",
    "ridge-wide",
    "lgbm-regression",
    "lgbm-regression-pooled",
    "lgbm-lambdarank",
    "lgbm-lambdarank-pooled",
    "lgbm-pearson",
    "lgbm-pearson-pooled",
    "xgb-pairwise",
    "xgb-ndcg",
    "xgb-pearson",
    "xgb-regression",
    "extra-trees",
    "ridge-xgb",
    "stacked",
    "default",
)


def preset(name: str) -> ModelSpec:
    """A named model spec, as ``ltr cv --model NAME`` uses it.

    Specs are immutable: change a copy with `dataclasses.replace` or `ModelSpec.merged`.

    Args:
        name: A key of `PRESETS`, e.g. ``default``, ``ridge``, ``lgbm-pearson-pooled``.

    Returns:
        The preset's spec, seeded as the commands seed it (``--seed 0``).

    Raises:
        LtrError: `name` is not a preset (the message lists them).

    Example:
        >>> spec = preset("default")
        >>> spec.learner, [member.learner for member in spec.members], spec.weights
        ('ensemble', ['ridge', 'ridge', 'lgbm-pearson', 'extra-trees'], (1.0, 1.0, 1.0, 1.0))
    """
    if name not in PRESETS:
        raise LtrError(f"unknown model {name!r} (known: {', '.join(PRESETS)})")
    return dataclasses.replace(PRESETS[name])
