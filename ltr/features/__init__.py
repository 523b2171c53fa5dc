"""Per-user features of photo profiles, computed once and shared by every model.

from ltr.features import FeatureConfig, featurize
matrix = featurize(dataset, "train", FeatureConfig(families=("conf", "base")))
"""

from __future__ import annotations

from ltr.features.config import FAMILIES, FeatureConfig, concept_vocabulary, feature_columns
from ltr.features.matrix import FeatureMatrix
from ltr.features.profile import featurize
from ltr.features.vocabulary import Vocabulary

__all__ = [
    "FAMILIES",
    "FeatureConfig",
    "FeatureMatrix",
    "Vocabulary",
    "concept_vocabulary",
    "feature_columns",
    "featurize",
]
