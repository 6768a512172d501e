"""Masks: soft molecule masks from a threshold or from a mask map, with edges measured in Å.

Distances are Cartesian. On an orthogonal grid they come from scipy's exact Euclidean distance transform with
each axis' own voxel size (anisotropy-aware). On a sheared grid (a non-orthogonal cell map, whose voxels lie along
the cell's fractional axes) a per-axis distance transform would be wrong by up to ~30 % (γ = 120°), so the
distance of every voxel to the nearest voxel of the region is found exactly in Cartesian space
(:func:`distance_from_region_A`: a k-d tree of the region's border voxels, orthogonalised with the cell's matrix,
and for a map of the whole cell their periodic images, since a cell map wraps around).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from densharp.errors import InputError
from densharp.fourier import Angles, grid_angles_deg, lowpass, unit_cell_matrices
from densharp.volume import DensityMap

#: voxels queried per k-d tree call (bounds the memory of the sheared-grid distance)
_QUERY_CHUNK = 1 << 18


def distance_from_region_A(
    region_zyx: np.ndarray,
    voxel_size_xyz_A: tuple[float, float, float],
    angles_deg: Angles | None = None,
    periodic: bool = False,
    max_A: float | None = None,
) -> np.ndarray:
    """Cartesian distance (Å, float64, z y x) of every voxel to the nearest voxel of ``region_zyx`` (0 inside).

    Parameters
    ----------
    region_zyx
        Boolean (z, y, x) array, not all false.
    voxel_size_xyz_A
        Voxel lengths along the grid axes (Å).
    angles_deg
        Cell angles (alpha, beta, gamma) between the grid axes; ``None``: orthogonal (scipy's exact transform).
    periodic
        The grid is a whole cell that wraps around (distances across the cell edge count); sheared grids only.
    max_A
        Distances beyond this may be returned as ``inf`` (sheared grids: the search stops there).
    """
    region = np.asarray(region_zyx, dtype=bool)
    if angles_deg is None:
        return ndimage.distance_transform_edt(~region, sampling=tuple(reversed(voxel_size_xyz_A)))
    from scipy.spatial import cKDTree

    o, f = unit_cell_matrices(angles_deg)
    vx, vy, vz = voxel_size_xyz_A
    # position (Å) of voxel (i, j, k) (x, y, z indices): O·(i·vx, j·vy, k·vz)
    step = o * np.array([vx, vy, vz])  # columns: the Cartesian step along each grid axis
    # the nearest region voxel of an outside voxel is on the region's border (a voxel with an outside neighbour
    # among its 26), so the tree holds only those
    if periodic:
        inner = region.copy()
        for dz in (-1, 0, 1):
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    if dz or dy or dx:
                        inner &= np.roll(region, (dz, dy, dx), axis=(0, 1, 2))
    else:
        inner = ndimage.binary_erosion(region, structure=np.ones((3, 3, 3), bool), border_value=1)
    kz, ky, kx = np.nonzero(region & ~inner)
    pts = np.stack([kx, ky, kz], axis=1).astype(np.float64) @ step.T
    reach = float(max_A) if max_A is not None and np.isfinite(max_A) else float("inf")
    if periodic:
        n_xyz = np.array(region.shape[::-1], dtype=np.float64)
        edges = step * n_xyz  # columns: the cell's lattice vectors
        # images within ``reach`` of the cell: fractional margin reach·|a*| (|a*| = 1/plane spacing) per axis
        recip = np.linalg.norm(f, axis=1) / (n_xyz * np.array([vx, vy, vz]))
        span = np.full(3, 1) if not np.isfinite(reach) else np.ceil(reach * recip).astype(int)
        frac = np.stack([kx, ky, kz], axis=1) / n_xyz
        parts = []
        for sx in range(-span[0], span[0] + 1):
            for sy in range(-span[1], span[1] + 1):
                for sz in range(-span[2], span[2] + 1):
                    shift = np.array([sx, sy, sz], dtype=np.float64)
                    g = frac + shift
                    keep = np.all((g >= -reach * recip - 1e-9) & (g <= 1 + reach * recip + 1e-9), axis=1)
                    parts.append(pts[keep] + edges @ shift)
        pts = np.concatenate(parts)
    tree = cKDTree(pts)
    dist = np.zeros(region.shape, dtype=np.float64)
    oz, oy, ox = np.nonzero(~region)
    for i in range(0, oz.size, _QUERY_CHUNK):
        q = np.stack([ox[i : i + _QUERY_CHUNK], oy[i : i + _QUERY_CHUNK], oz[i : i + _QUERY_CHUNK]], axis=1)
        d, _ = tree.query(q.astype(np.float64) @ step.T, k=1, distance_upper_bound=reach)
        dist[oz[i : i + _QUERY_CHUNK], oy[i : i + _QUERY_CHUNK], ox[i : i + _QUERY_CHUNK]] = d
    return dist


def map_distance_from_region_A(m: DensityMap, region_zyx: np.ndarray, max_A: float | None = None) -> np.ndarray:
    """:func:`distance_from_region_A` on ``m``'s grid: its voxel size and cell angles.

    Periodic for a sheared map of the whole cell (grid = cell sampling). Orthogonal maps keep scipy's (non-periodic) transform, exactly as before sheared cells were supported.
    """
    angles = grid_angles_deg(m)
    periodic = angles is not None and tuple(m.grid_sampling_xyz) == tuple(m.shape_xyz)
    return distance_from_region_A(region_zyx, m.voxel_size_xyz_A, angles, periodic=periodic, max_A=max_A)


def soft_mask_from_threshold(
    m: DensityMap,
    threshold: float,
    dilate_A: float = 3.0,
    soft_edge_A: float = 5.0,
    lowpass_A: float | None = None,
) -> np.ndarray:
    """Soft (z, y, x) mask in [0, 1]: voxels at or above ``threshold``, dilated, with a raised-cosine edge.

    Distances are Cartesian, in Å (each axis' own voxel size, and a sheared cell's angles:
    :func:`map_distance_from_region_A`), so anisotropic and sheared maps get round edges.

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
    dist = map_distance_from_region_A(m, binary, max_A=dilate_A + max(soft_edge_A, 1e-6))
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
