"""FSC weighting from half maps and resolution estimation (the gold-standard FSC at 0.143)."""

from __future__ import annotations

import numpy as np

from densharp.errors import InputError
from densharp.fourier import apply_shell_filter, map_resolution_shells
from densharp.metrics.fsc import FSCCurve, fsc_curve, fsc_weights_cref
from densharp.volume import DensityMap


def check_half_maps(h1: DensityMap, h2: DensityMap, names: tuple[str, str] = ("half map 1", "half map 2")) -> None:
    """Refuse half maps on different grids or identical ones (which would fake an FSC of 1 everywhere)."""
    h1.check_same_grid(h2, f"{names[0]} and {names[1]}", fix="give the two unfiltered half maps of one refinement")
    if np.array_equal(h1.data_zyx, h2.data_zyx):
        raise InputError(
            f"{names[0]} and {names[1]} are identical; give the two independent half maps "
            "(an FSC of a map with itself is 1 at every resolution)"
        )


def half_map_fsc(h1: DensityMap, h2: DensityMap, mask: np.ndarray | None = None) -> FSCCurve:
    """FSC between two half maps (checked to be on one grid and not identical)."""
    check_half_maps(h1, h2)
    return fsc_curve(h1, h2, mask=mask)


def estimate_resolution(h1: DensityMap, h2: DensityMap, mask: np.ndarray | None = None) -> tuple[float, FSCCurve]:
    """Resolution (Å) at which the half-map FSC falls below 0.143, and the curve.

    Raises
    ------
    InputError
        The FSC is below 0.143 from the first shell on (the halves share no signal).
    """
    curve = half_map_fsc(h1, h2, mask)
    d = curve.resolution_at(0.143)
    if not np.isfinite(d):
        raise InputError(
            "the half maps do not correlate (FSC < 0.143 at the lowest resolution); check they belong together"
        )
    return d, curve


def fsc_weighted_average(h1: DensityMap, h2: DensityMap, curve: FSCCurve) -> DensityMap:
    """Average of the half maps with every shell multiplied by ``C_ref = sqrt(2·FSC/(1+FSC))``.

    Shells beyond the curve's last shell (past the isotropic Nyquist) are set to zero.
    """
    avg = h1.with_data(0.5 * (h1.data_zyx + h2.data_zyx))
    shells = map_resolution_shells(h1)
    if shells.n != len(curve.fsc):
        raise InputError("FSC curve does not belong to these half maps (different number of shells)")
    return apply_shell_filter(avg, shells, fsc_weights_cref(curve.fsc), beyond=0.0)
