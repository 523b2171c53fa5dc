"""Data layer: file layouts in, one normalised `Dataset` out."""

from ltr.data.dataset import BOX_COLUMNS, DETECTION_COLUMNS, Dataset
from ltr.data.loading import detect_layout, load_dataset

__all__ = ["BOX_COLUMNS", "DETECTION_COLUMNS", "Dataset", "detect_layout", "load_dataset"]
