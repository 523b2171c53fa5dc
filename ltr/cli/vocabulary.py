"""The names `--help` lists (presets, feature families, search spaces, ...), without importing
the libraries that define them.

`ltr --help` must start in a fraction of a second; the modules that define these names import
pandas, scikit-learn or Optuna. tests/test_cli_help.py checks that every name here equals the
library's, so the two cannot drift apart.
"""

from __future__ import annotations

#: ltr.models.PRESETS, in order.
PRESETS: tuple[str, ...] = (
    "base",
    "lgbm-lambdarank",
    "lgbm-lambdarank-pooled",
    "lgbm-regression",
    "lgbm-regression-pooled",
    "xgb-pairwise",
    "xgb-pairwise-pooled",
    "xgb-ndcg",
    "xgb-ndcg-pooled",
    "xgb-regression",
    "xgb-regression-pooled",
    "lgbm-pearson",
    "lgbm-pearson-pooled",
    "xgb-pearson",
    "xgb-pearson-pooled",
    "ridge",
    "ridge-pooled",
    "extra-trees",
    "extra-trees-pooled",
    "ridge-wide",
    "ridge-xgb",
    "default",
    "stacked",
    "stacked-cross",
)
#: ltr.models.COMPARE: what `ltr cv --compare` runs.
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
#: ltr.features.FAMILIES (keys).
FEATURE_FAMILIES: tuple[str, ...] = (
    "size",
    "freq",
    "count",
    "maxconf",
    "meanconf",
    "conf",
    "base",
    "posneg",
    "focal",
    "dist",
    "area",
    "embed",
)
#: ltr.tuning.space.SPACES (keys) and DEFAULT_SPACE.
SPACES: tuple[str, ...] = (
    "ensemble",
    "ridge",
    "xgb-regression",
    "lgbm-regression",
    "lgbm-pearson",
    "xgb-pearson",
    "extra-trees",
    "lgbm-lambdarank",
    "xgb-pairwise",
    "xgb-ndcg",
    "any",
)
DEFAULT_SPACE = "ensemble"
#: ltr.tuning.fidelity.PRUNERS and DEFAULT_PRUNER.
PRUNERS: tuple[str, ...] = ("halving", "hyperband", "median", "none")
DEFAULT_PRUNER = "halving"
#: ltr.tuning.rescore.RESCORE_FOLDS, RESCORE_REPEATS and RESCORE_SEED_OFFSET.
RESCORE_FOLDS = 5
RESCORE_REPEATS = 3
RESCORE_SEED_OFFSET = 1000
#: ltr.tuning.storage.DEFAULT_STORAGE and STORAGE_ENV.
DEFAULT_STORAGE = "sqlite:///ltr-studies.db"
STORAGE_ENV = "LTR_STORAGE"
#: ltr.tuning.studies.DEFAULT_PENALTY.
DEFAULT_PENALTY = 0.5
#: ltr.data.synthetic.MIN_USERS.
MIN_SYNTHETIC_USERS = 10
#: ltr.quickstart.MIN_USERS.
MIN_QUICKSTART_USERS = 166
