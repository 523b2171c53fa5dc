"""Data layer: file layouts in, one normalised `Dataset` out."""

from ltr.data.dataset import BOX_COLUMNS, DETECTION_COLUMNS, Dataset

__all__ = ["BOX_COLUMNS", "DETECTION_COLUMNS", "Dataset"]
