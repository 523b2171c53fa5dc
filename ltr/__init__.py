"""ltr: learning-to-rank for photo profiles in the ImageCLEFaware situations.

The library is usable without the CLI; `ltr.cli` is a thin Typer layer over it.
"""

from ltr.situations import SITUATIONS

__version__ = "0.1.0"

__all__ = ["SITUATIONS", "__version__"]
