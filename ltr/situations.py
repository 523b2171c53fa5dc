"""Canonical situation codes and the names the data files use for them."""

from __future__ import annotations

#: The four situations, in the canonical column order used everywhere in ltr.
SITUATIONS: tuple[str, ...] = ("acc", "bank", "it", "wait")

#: Long names of the research layout (`gt_usr_exposure_v1.json`, `visual_concepts/*.txt`).
RESEARCH_NAMES: dict[str, str] = {
    "accommodation_search": "acc",
    "bank_credit": "bank",
    "job_search_IT": "it",
    "job_search_waiter_waitress": "wait",
}

#: Human-readable descriptions for tables and reports.
DESCRIPTIONS: dict[str, str] = {
    "acc": "accommodation search",
    "bank": "bank loan",
    "it": "job in IT",
    "wait": "job as waiter/waitress",
}
