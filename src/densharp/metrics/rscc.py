"""Real-space correlation coefficient (RSCC), over the box or inside a soft/binary mask."""

from __future__ import annotations

import numpy as np

from densharp.volume import DensityMap


def rscc(a: DensityMap | np.ndarray, b: DensityMap | np.ndarray, mask: np.ndarray | None = None) -> float:
    """Pearson correlation of two maps, weighted by ``mask`` (z, y, x weights in [0, 1]) when given.

    Invariant to ``a·x + b`` with ``a > 0``. Returns 0 when either map is constant inside the mask.
    """
    if isinstance(a, DensityMap) and isinstance(b, DensityMap):
        a.check_same_grid(b, "the two maps of an RSCC")
    x = np.asarray(a.data_zyx if isinstance(a, DensityMap) else a, dtype=np.float64)
    y = np.asarray(b.data_zyx if isinstance(b, DensityMap) else b, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"RSCC needs arrays of one shape, got {x.shape} and {y.shape}")
    w = np.ones_like(x) if mask is None else np.asarray(mask, dtype=np.float64)
    sw = w.sum()
    if sw <= 0:
        return 0.0
    mx = (w * x).sum() / sw
    my = (w * y).sum() / sw
    dx, dy = x - mx, y - my
    vx = (w * dx * dx).sum()
    vy = (w * dy * dy).sum()
    if vx <= 0 or vy <= 0:
        return 0.0
    return float((w * dx * dy).sum() / np.sqrt(vx * vy))
