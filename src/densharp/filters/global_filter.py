"""The best global isotropic linear filter, fitted with the target known: an oracle upper bound for global sharpening.

For every resolution shell ``k`` the gain that minimises ``Σ |g_k F_in - F_t|²`` over the shell is

    g_k = Re Σ (F_in · conj F_t) / Σ |F_in|²

so no filter that multiplies each shell by one number (B-factor sharpening, FSC weighting, low-pass, any
combination) can get closer to the target in the least-squares sense. It needs the target, so it is a reference
for evaluation only, never a sharpening method for real data.
"""

from __future__ import annotations

import numpy as np

from densharp.fourier import Shells, apply_shell_filter, resolution_shells, rfft_map
from densharp.volume import DensityMap


def corner_shells(m: DensityMap) -> Shells:
    """Shells of the usual width that reach the corners of the Fourier box, so every coefficient has a shell."""
    vx, vy, vz = m.voxel_size_xyz_A
    s_max = 0.5 * float(np.sqrt(1 / vx**2 + 1 / vy**2 + 1 / vz**2))
    width = 1.0 / min(n * v for n, v in zip(m.shape_xyz, m.voxel_size_xyz_A))
    return resolution_shells(m.shape_zyx, m.voxel_size_xyz_A, max_invA=s_max + 2 * width)


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
