"""Masks: soft molecule masks from a threshold or from a mask map, with edges measured in Å (anisotropy-aware)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from densharp.errors import InputError
from densharp.fourier import lowpass
from densharp.volume import DensityMap


def soft_mask_from_threshold(
    m: DensityMap,
    threshold: float,
    dilate_A: float = 3.0,
    soft_edge_A: float = 5.0,
    lowpass_A: float | None = None,
) -> np.ndarray:
    """Soft (z, y, x) mask in [0, 1]: voxels at or above ``threshold``, dilated, with a raised-cosine edge.

    Distances are in Å using each axis' own voxel size, so anisotropic maps get round edges.

    Parameters
    ----------
    m
        The map to threshold.
    threshold
        Density level (in the map's units, after the optional low-pass).
    dilate_A
        Grow the binary region by this distance (Å) before the soft edge.
    soft_edge_A
        Width of the cosine fall-off from 1 to 0 (Å).
    lowpass_A
        Low-pass the map at this resolution first (smooths noise out of the mask).
    """
    src = lowpass(m, lowpass_A) if lowpass_A else m
    binary = src.data_zyx >= threshold
    if not binary.any():
        raise InputError(
            f"mask threshold {threshold:.4g} is above every voxel (max {float(src.data_zyx.max()):.4g}); "
            "lower --mask-threshold"
        )
    # distance (Å) of every voxel from the thresholded region
    dist = ndimage.distance_transform_edt(~binary, sampling=m.voxel_size_zyx_A)
    t = np.clip((dist - dilate_A) / max(soft_edge_A, 1e-6), 0.0, 1.0)
    return (0.5 * (1.0 + np.cos(np.pi * t))).astype(np.float32)


def auto_molecule_mask(m: DensityMap, dilate_A: float = 3.0, soft_edge_A: float = 5.0) -> np.ndarray:
    """Soft molecule mask found without user input.

    The map is low-passed at 10 Å (or twice Nyquist if coarser) and thresholded at mean + 1 sd of that smooth map;
    the region is dilated by ``dilate_A`` and given a ``soft_edge_A`` cosine edge.
    """
    smooth = lowpass(m, max(10.0, 2 * m.nyquist_A))
    d = smooth.data_zyx
    thr = float(d.mean() + d.std())
    return soft_mask_from_threshold(smooth, thr, dilate_A=dilate_A, soft_edge_A=soft_edge_A)


def mask_from_map(mask_map: DensityMap, like: DensityMap, name: str = "mask") -> np.ndarray:
    """Check a mask map against ``like`` (same grid, values in [0, 1]) and return its (z, y, x) weights."""
    like.check_same_grid(mask_map, f"the map and the {name}", fix="resample the mask onto the map's grid")
    d = mask_map.data_zyx
    lo, hi = float(d.min()), float(d.max())
    if lo < -1e-3 or hi > 1.0 + 1e-3:
        raise InputError(
            f"{name} values lie in [{lo:.4g}, {hi:.4g}], not [0, 1]; give a binary or soft mask "
            "(e.g. from relion_mask_create)"
        )
    if hi <= 0:
        raise InputError(f"{name} is empty (all zero); give a mask that covers the molecule")
    return np.clip(d, 0.0, 1.0).astype(np.float32)
