"""densharp: sharpen 3D density maps (cryo-EM and X-ray) and measure the result.

The public API is curated here and loaded lazily, so ``import densharp`` stays light (no torch, matplotlib or
gemmi until a verb that needs them is used)::

    import densharp

    m = densharp.read_map("map.mrc")
    out = densharp.sharpen_map(m, 3.4)                       # what `densharp sharpen map.mrc --resolution 3.4` does
    densharp.write_map("map_sharp.mrc", out.map)
    print(densharp.rscc(out.map, target), densharp.fsc_curve(out.map, target).resolution_at(0.143))
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

from densharp.errors import (
    CheckpointError,
    DensharpError,
    GeometryMismatchError,
    InputError,
    MapFormatError,
    OutputExistsError,
)
from densharp.volume import DensityMap

#: public name -> module it lives in (imported on first use)
_LAZY: dict[str, str] = {
    "read_map": "densharp.io.maps",
    "write_map": "densharp.io.maps",
    "read_mtz": "densharp.io.mtz",
    "SharpenInputs": "densharp.sharpening",
    "SharpenOptions": "densharp.sharpening",
    "SharpenPlan": "densharp.sharpening",
    "SharpenOutcome": "densharp.sharpening",
    "plan_sharpen": "densharp.sharpening",
    "run_sharpen": "densharp.sharpening",
    "sharpen_map": "densharp.sharpening",
    "sharpen_mtz": "densharp.sharpening",
    "fsc_curve": "densharp.metrics.fsc",
    "rscc": "densharp.metrics.rscc",
    "consistency_check": "densharp.metrics.consistency",
    "lowpass": "densharp.fourier",
    "apply_bfactor": "densharp.fourier",
    "simulate_map": "densharp.simulate.density",
    "load_structure": "densharp.simulate.structure",
    "Modality": "densharp.modality",
    "shipped_cards": "densharp.ml.registry",
}

__all__ = [
    "CheckpointError",
    "DensharpError",
    "DensityMap",
    "GeometryMismatchError",
    "InputError",
    "MapFormatError",
    "OutputExistsError",
    "__version__",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    """Import a public verb on first use (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'densharp' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
