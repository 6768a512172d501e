"""densharp: sharpen 3D density maps (cryo-EM and X-ray) and measure the result.

The public API is curated here; nothing heavy (torch, matplotlib) is imported.
"""

from __future__ import annotations

__version__ = "0.1.0"

from densharp.errors import (
    CheckpointError,
    DensharpError,
    GeometryMismatchError,
    InputError,
    MapFormatError,
    OutputExistsError,
)
from densharp.optional import ml_available
from densharp.volume import DensityMap

__all__ = [
    "CheckpointError",
    "DensharpError",
    "DensityMap",
    "GeometryMismatchError",
    "InputError",
    "MapFormatError",
    "OutputExistsError",
    "__version__",
    "ml_available",
]
