"""Models: one interface (`ProfileModel`), several back-ends and two formulations."""

from ltr.models.interface import ProfileModel
from ltr.models.registry import COMPARE, PRESETS, build_model, preset
from ltr.models.spec import ModelSpec

__all__ = ["COMPARE", "PRESETS", "ModelSpec", "ProfileModel", "build_model", "preset"]
