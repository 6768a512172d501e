"""The best global isotropic linear filter, fitted with the target known: an oracle upper bound for global sharpening.

For every resolution shell ``k`` the gain that minimises ``Σ |g_k F_in - F_t|²`` over the shell is

    g_k = Re Σ (F_in · conj F_t) / Σ |F_in|²

so no filter that multiplies each shell by one number (B-factor sharpening, FSC weighting, low-pass, any
combination) can get closer to the target in the least-squares sense. It needs the target, so it is a reference
for evaluation only, never a sharpening method for real data.
"""

from __future__ import annotations

import numpy as np

from densharp.fourier import (
    Shells,
    apply_shell_filter,
    corner_frequency_invA,
    grid_angles_deg,
    map_resolution_shells,
    rfft_map,
    shell_width_invA,
)
from densharp.volume import DensityMap


def corner_shells(m: DensityMap) -> Shells:
    """Shells of the usual width that reach the corners of the Fourier box, so every coefficient has a shell.

    The corners and the width respect the map's cell (sheared grids, :func:`~densharp.fourier.corner_frequency_invA`).
    """
    angles = grid_angles_deg(m)
    s_max = corner_frequency_invA(m.shape_zyx, m.voxel_size_xyz_A, angles)
    width = shell_width_invA(m.shape_zyx, m.voxel_size_xyz_A, angles)
    return map_resolution_shells(m, max_invA=s_max + 2 * width)


def global_filter_gains(m: DensityMap, target: DensityMap, shells: Shells | None = None) -> tuple[Shells, np.ndarray]:
    """Least-squares gain per shell that maps ``m`` onto ``target`` (same grid); 0 where ``m`` has no power.

    Returns
    -------
    shells, gains
        The shells used (default :func:`corner_shells`) and one gain per shell.
    """
    m.check_same_grid(target, "the input and the target of the global filter")
    shells = shells or corner_shells(m)
    fi, ft = rfft_map(m.data_zyx), rfft_map(target.data_zyx)
    num = shells.sum((fi * np.conj(ft)).real)
    den = shells.sum(np.abs(fi) ** 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        gains = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
    return shells, gains


def apply_global_filter(m: DensityMap, target: DensityMap) -> DensityMap:
    """``m`` filtered by the oracle gains of :func:`global_filter_gains` (same grid as ``m``)."""
    shells, gains = global_filter_gains(m, target)
    return apply_shell_filter(m, shells, gains, beyond=0.0)
