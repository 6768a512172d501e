"""Simple map statistics for ``densharp info`` and sidecars."""

from __future__ import annotations

from typing import Any

import numpy as np

from densharp.volume import DensityMap


def map_statistics(m: DensityMap) -> dict[str, Any]:
    """Min, max, mean, rms deviation, and the fraction of voxels above mean + 3·sd."""
    d = m.data_zyx.astype(np.float64)
    mean = float(d.mean())
    sd = float(d.std())
    return {
        "min": float(d.min()),
        "max": float(d.max()),
        "mean": mean,
        "sd": sd,
        "fraction_above_3sd": float(np.mean(d > mean + 3 * sd)) if sd > 0 else 0.0,
    }
