"""Fourier toolkit: the one place that knows about spectral indexing.

Every frequency is in 1/Å, computed from the real voxel sizes along each axis (anisotropic voxels are
respected, never averaged). Transforms are real-to-complex (``rfftn``) over the map's own box, so filters are
exact circular convolutions: integer periodic shifts commute with them, and a filter of ones is the identity.

Sheared grids. A crystallographic map on a non-orthogonal cell samples the cell along its fractional axes: voxel
``(i, j, k)`` lies at ``i·a/nx + j·b/ny + k·c/nz`` (lattice vectors ``a, b, c``), and the box's edges are the
vectors ``A = nx·vx·â`` etc. (the whole cell for a cell map). The rfft coefficient with (wrapped) indices
``(kz, ky, kx)`` is then the plane wave of Miller indices ``(h, k, l) = (kx, ky, kz)`` of that box lattice, and its
spatial frequency is the reciprocal-lattice vector ``s = Fᵀ·(h, k, l)`` (``F`` the fractionalisation matrix of the
box), so ``|s|² = hᵀ G* h`` with ``G*`` the reciprocal metric tensor, not ``(h/A)² + (k/B)² + (l/C)²``. Every
function here that takes a :class:`DensityMap` uses the angles of its cell (:func:`grid_angles_deg`); the
array-level functions take them as ``angles_deg`` (``None``: orthogonal axes, the original formulas, unchanged to
the bit).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import scipy.fft

from densharp.volume import DensityMap


def fft_workers() -> int:
    """Threads for scipy.fft: the cores this process may use (respects CPU affinity)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


def rfft_map(data_zyx: np.ndarray) -> np.ndarray:
    """Real-to-complex FFT of a (z, y, x) array (complex64 for float32 input)."""
    return scipy.fft.rfftn(data_zyx, workers=fft_workers())


def irfft_map(f: np.ndarray, shape_zyx: tuple[int, int, int]) -> np.ndarray:
    """Inverse of :func:`rfft_map`, returning float32 of ``shape_zyx``."""
    return scipy.fft.irfftn(f, s=shape_zyx, workers=fft_workers()).astype(np.float32, copy=False)


Angles = tuple[float, float, float]

#: cell angles within this (degrees) of 90° count as orthogonal: the orthogonal formulas are used, bit for bit
ORTHOGONAL_TOL_DEG = 1e-6


def is_sheared(angles_deg: Angles | None) -> bool:
    """True when ``angles_deg`` (alpha, beta, gamma) are given and one differs from 90° (:data:`ORTHOGONAL_TOL_DEG`)."""
    return angles_deg is not None and any(abs(float(a) - 90.0) > ORTHOGONAL_TOL_DEG for a in angles_deg)


def grid_angles_deg(m: DensityMap) -> Angles | None:
    """The angles (alpha, beta, gamma, degrees) between the map's grid axes; ``None`` when they are all 90°.

    A map's grid axes run along its cell axes (MRC convention), so these are the cell angles. Pass the result as
    ``angles_deg`` to the array-level functions of this module.
    """
    if m.cell_A_deg is None:
        return None
    angles = (float(m.cell_A_deg[3]), float(m.cell_A_deg[4]), float(m.cell_A_deg[5]))
    return angles if is_sheared(angles) else None


def unit_cell_matrices(angles_deg: Angles) -> tuple[np.ndarray, np.ndarray]:
    """``(O, F)`` of a cell with unit edges and ``angles_deg``: orthogonalisation and fractionalisation (3×3).

    The PDB/gemmi convention: ``a`` along x, ``b`` in the xy plane. ``O``'s columns are the unit lattice vectors;
    for a box with edges ``L = (A, B, C)`` (Å) the matrices are ``O·diag(L)`` and ``diag(1/L)·F``.

    Raises
    ------
    InputError
        A degenerate cell (angles that span no volume).
    """
    from densharp.errors import InputError

    ca, cb, cg = (float(np.cos(np.radians(a))) for a in angles_deg)
    sg = float(np.sin(np.radians(angles_deg[2])))
    vol2 = 1.0 - ca * ca - cb * cb - cg * cg + 2.0 * ca * cb * cg
    if not (vol2 > 1e-9 and sg > 1e-9):
        raise InputError(f"cell angles {tuple(float(a) for a in angles_deg)}° span no volume (degenerate cell)")
    o = np.array(
        [[1.0, cg, cb], [0.0, sg, (ca - cb * cg) / sg], [0.0, 0.0, float(np.sqrt(vol2)) / sg]], dtype=np.float64
    )
    return o, np.linalg.inv(o)


def _axis_frequencies(
    shape_zyx: tuple[int, int, int], voxel_size_xyz_A: tuple[float, float, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-axis frequencies ``k/(n·v)`` (1/Å), broadcastable (z, y, x), on the rfft half grid."""
    nz, ny, nx = shape_zyx
    vx, vy, vz = voxel_size_xyz_A
    sz = scipy.fft.fftfreq(nz, d=vz).reshape(-1, 1, 1)
    sy = scipy.fft.fftfreq(ny, d=vy).reshape(1, -1, 1)
    sx = scipy.fft.rfftfreq(nx, d=vx).reshape(1, 1, -1)
    return sz, sy, sx


def _nyquist_planes(
    shape_zyx: tuple[int, int, int], u_zyx: tuple[np.ndarray, np.ndarray, np.ndarray]
) -> list[tuple[tuple[slice, ...], list[list[np.ndarray]]]]:
    """The Nyquist planes of a sheared half grid and the aliases every coefficient on them stands for.

    A coefficient at index ``n/2`` (even ``n``) is the sum of the waves ``+n/2`` and ``-n/2``; on an orthogonal grid
    both have one |s|, on a sheared one they do not (the cross terms of the metric change sign). Returns, per plane,
    its slice of the half grid and the per-axis frequency vectors of every alias (each Nyquist component ±),
    restricted to the plane, so callers can pick one alias consistently.
    """
    import itertools

    nyq = [n // 2 if n % 2 == 0 else None for n in shape_zyx]
    nyq[2] = shape_zyx[2] // 2 if shape_zyx[2] % 2 == 0 else None  # rfft: the last column when nx is even
    even = [a for a in range(3) if nyq[a] is not None]
    flipped = []
    for a in range(3):
        v = np.array(u_zyx[a], dtype=np.float64)
        if nyq[a] is not None:
            v.reshape(-1)[nyq[a]] *= -1.0
        flipped.append(v)
    planes = []
    for a in even:
        sl = [slice(None)] * 3
        k = int(nyq[a])  # type: ignore[arg-type]  # set for every axis in `even`
        sl[a] = slice(k, k + 1)
        aliases = []
        for flips in itertools.product((False, True), repeat=len(even)):
            vs = list(u_zyx)
            for b, flip in zip(even, flips):
                if flip:
                    vs[b] = flipped[b]
            vs[a] = vs[a][tuple(sl)]
            aliases.append(vs)
        planes.append((tuple(sl), aliases))
    return planes


def _metric_s2(g: np.ndarray, sz: np.ndarray, sy: np.ndarray, sx: np.ndarray) -> np.ndarray:
    """``uᵀ G u`` for broadcastable per-axis frequencies ``u = (sx, sy, sz)`` (one full-size array at a time)."""
    s2 = g[0, 0] * sx * sx + g[1, 1] * sy * sy + 2.0 * g[0, 1] * sx * sy
    s2 = s2 + g[2, 2] * sz * sz
    s2 += 2.0 * g[0, 2] * sx * sz
    s2 += 2.0 * g[1, 2] * sy * sz
    return s2


def frequency_components_invA(
    shape_zyx: tuple[int, int, int],
    voxel_size_xyz_A: tuple[float, float, float],
    angles_deg: Angles | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Broadcastable spatial-frequency components (sz, sy, sx) in 1/Å on the rfft half grid.

    With ``angles_deg`` (the grid axes' cell angles, not all 90°) the components are Cartesian, in the
    orthogonal frame of :func:`unit_cell_matrices` (x along the grid's x axis, y in its xy plane), and each is a
    full half-grid array; on the Nyquist planes they are those of the alias with the smaller ``|s|``
    (:func:`frequency_grid_invA`). Without, they are the per-axis frequencies ``k/(n·v)``, broadcastable (the
    original formula).
    """
    sz, sy, sx = _axis_frequencies(shape_zyx, voxel_size_xyz_A)
    if not is_sheared(angles_deg):
        return sz, sy, sx
    assert angles_deg is not None
    _, f = unit_cell_matrices(angles_deg)

    def cartesian(uz: np.ndarray, uy: np.ndarray, ux: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # s = Fᵀ·(h/A, k/B, l/C); F is upper triangular, so x depends on h only, y on h and k
        return f[0, 2] * ux + f[1, 2] * uy + f[2, 2] * uz, f[0, 1] * ux + f[1, 1] * uy, f[0, 0] * ux

    shape = (shape_zyx[0], shape_zyx[1], shape_zyx[2] // 2 + 1)
    cz, cy, cx = (np.broadcast_to(c, shape).copy() for c in cartesian(sz, sy, sx))
    for sl, aliases in _nyquist_planes(shape_zyx, (sz, sy, sx)):
        plane = cz[sl].shape
        best = cz[sl] ** 2 + cy[sl] ** 2 + cx[sl] ** 2  # aliases[0] is the coefficient's own (fftfreq) alias
        for uz, uy, ux in aliases[1:]:
            az, ay, ax = (np.broadcast_to(c, plane) for c in cartesian(uz, uy, ux))
            n2 = az * az + ay * ay + ax * ax
            better = n2 < best * (1.0 - 1e-12)
            best = np.where(better, n2, best)
            cz[sl] = np.where(better, az, cz[sl])
            cy[sl] = np.where(better, ay, cy[sl])
            cx[sl] = np.where(better, ax, cx[sl])
    return cz, cy, cx


def frequency_grid_invA(
    shape_zyx: tuple[int, int, int],
    voxel_size_xyz_A: tuple[float, float, float],
    angles_deg: Angles | None = None,
) -> np.ndarray:
    """|s| in 1/Å at every point of the rfft half grid of a (z, y, x) box (float64).

    ``angles_deg``: the cell angles (alpha, beta, gamma) between the grid's axes, for a map on a non-orthogonal
    cell; ``|s|`` is then the length of the reciprocal-lattice vector of the coefficient's Miller indices (module
    docstring). ``None`` (or 90° angles): orthogonal axes.

    On a sheared grid a coefficient on a Nyquist plane (index ``n/2``, even ``n``) stands for two waves (``±n/2``)
    of different ``|s|``; it gets the smaller, which gives Hermitian partners one value (a real filter stays real,
    and B then −B is the identity there too). These frequencies are past the isotropic Nyquist limit.
    """
    sz, sy, sx = _axis_frequencies(shape_zyx, voxel_size_xyz_A)
    if not is_sheared(angles_deg):
        return np.sqrt(sz * sz + sy * sy + sx * sx)
    assert angles_deg is not None
    # |s|² = uᵀ G*_unit u with u = (h/A, k/B, l/C), G*_unit the reciprocal metric of the cell with unit edges
    o, _ = unit_cell_matrices(angles_deg)
    g = np.linalg.inv(o.T @ o)
    s2 = _metric_s2(g, sz, sy, sx)
    for sl, aliases in _nyquist_planes(shape_zyx, (sz, sy, sx)):
        best = s2[sl]
        for uz, uy, ux in aliases:
            best = np.minimum(best, _metric_s2(g, uz, uy, ux))
        s2[sl] = best
    np.maximum(s2, 0.0, out=s2)
    return np.sqrt(s2, out=s2)


def map_frequency_grid_invA(m: DensityMap) -> np.ndarray:
    """|s| in 1/Å on the rfft half grid of ``m`` (its cell's angles respected): :func:`frequency_grid_invA`."""
    return frequency_grid_invA(m.shape_zyx, m.voxel_size_xyz_A, grid_angles_deg(m))


def nyquist_invA(voxel_size_xyz_A: tuple[float, float, float]) -> float:
    """The isotropic Nyquist frequency (1/Å) of a grid, orthogonal or sheared: ``1 / (2·max voxel)``.

    The rfft grid holds the Miller indices ``|h| ≤ nx/2``, ``|k| ≤ ny/2``, ``|l| ≤ nz/2`` of the box lattice, and
    ``h = s·A`` (``A`` the box edge vector along x, of length ``nx·vx``), so the set of frequencies it holds is the
    intersection of three slabs ``|s·Â| ≤ 1/(2·vx)`` (and likewise for y, z), whatever the angles between them.
    The largest sphere inside that parallelepiped touches the nearest face: radius ``min 1/(2·v)``. Sheared grids
    therefore have the Nyquist limit of an orthogonal grid with the same voxel lengths (``DensityMap.nyquist_A``).
    """
    return 0.5 / max(voxel_size_xyz_A)


def corner_frequency_invA(
    shape_zyx: tuple[int, int, int], voxel_size_xyz_A: tuple[float, float, float], angles_deg: Angles | None = None
) -> float:
    """Largest |s| (1/Å) at the corners of the Fourier box: ``0.5·sqrt(Σ 1/v²)`` for orthogonal axes.

    For a sheared grid, the largest of the corner vectors ``Fᵀ·(±1/(2vx), ±1/(2vy), ±1/(2vz))`` (``|s|`` is
    convex, so a corner holds the maximum over the box). ``shape_zyx`` is unused (the bound is that of an even box).
    """
    del shape_zyx
    vx, vy, vz = voxel_size_xyz_A
    if not is_sheared(angles_deg):
        return 0.5 * float(np.sqrt(1 / vx**2 + 1 / vy**2 + 1 / vz**2))
    assert angles_deg is not None
    _, f = unit_cell_matrices(angles_deg)
    u = np.array([[0.5 / vx * sx, 0.5 / vy * sy, 0.5 / vz] for sx in (1, -1) for sy in (1, -1)])
    return float(np.max(np.linalg.norm(u @ f, axis=1)))


def shell_width_invA(
    shape_zyx: tuple[int, int, int], voxel_size_xyz_A: tuple[float, float, float], angles_deg: Angles | None = None
) -> float:
    """Width of the resolution shells: one reciprocal-lattice spacing of the box's coarsest direction (1/Å).

    Orthogonal: ``1 / (shortest box edge)``. Sheared: the longest reciprocal basis vector of the box lattice,
    ``max |A*|, |B*|, |C*|`` (``|A*| = 1 / d(100)``, the spacing of the box's (100) planes), which is
    ``1/(shortest edge)`` again when the angles are 90°.
    """
    nz, ny, nx = shape_zyx
    vx, vy, vz = voxel_size_xyz_A
    if not is_sheared(angles_deg):
        return 1.0 / min(nx * vx, ny * vy, nz * vz)
    assert angles_deg is not None
    _, f = unit_cell_matrices(angles_deg)
    edges = np.array([nx * vx, ny * vy, nz * vz])
    return float(np.max(np.linalg.norm(f, axis=1) / edges))


@dataclass(frozen=True)
class Shells:
    """Resolution shells of equal width in 1/Å over an rfft half grid.

    Shell ``k`` holds the coefficients with ``(k - 1/2)·width <= |s| < (k + 1/2)·width``, so shell 0 is the
    origin term and shell centres are ``k·width``.

    Attributes
    ----------
    index
        Shell index of every rfft coefficient (``-1`` beyond the last shell).
    centres_invA
        Shell centres in 1/Å.
    width_invA
        Shell width in 1/Å.
    weights
        Multiplicity of every coefficient (2 for the half-grid columns that stand for two Hermitian
        partners, 1 for the self-conjugate planes), so sums over the half grid equal sums over the full grid.
    """

    index: np.ndarray
    centres_invA: np.ndarray
    width_invA: float
    weights: np.ndarray

    @property
    def n(self) -> int:
        """Number of shells."""
        return len(self.centres_invA)

    @property
    def resolution_A(self) -> np.ndarray:
        """Shell centres as resolutions in Å (``inf`` for the origin shell)."""
        with np.errstate(divide="ignore"):
            return 1.0 / self.centres_invA

    def sum(self, values: np.ndarray) -> np.ndarray:
        """Sum ``values`` (half-grid array, real) per shell, counting Hermitian partners."""
        ok = self.index >= 0
        return np.bincount(self.index[ok], weights=(values * self.weights)[ok].astype(np.float64), minlength=self.n)[
            : self.n
        ]

    def count(self) -> np.ndarray:
        """Number of Fourier coefficients (full grid) per shell."""
        return self.sum(np.ones(self.index.shape))


def resolution_shells(
    shape_zyx: tuple[int, int, int],
    voxel_size_xyz_A: tuple[float, float, float],
    max_invA: float | None = None,
    angles_deg: Angles | None = None,
) -> Shells:
    """Shells of width 1/(shortest box edge in Å) from 0 up to ``max_invA`` (default: isotropic Nyquist).

    The width is that of the coarsest Fourier sampling (:func:`shell_width_invA`), so every shell has samples in
    every direction; the default upper limit is the Nyquist frequency of the coarsest voxel
    (:func:`nyquist_invA`), the finest resolution supported in every direction. ``angles_deg``: the grid axes' cell
    angles for a sheared grid (:func:`frequency_grid_invA`); a map's own shells are :func:`map_resolution_shells`.
    """
    nx = shape_zyx[2]
    vx, vy, vz = voxel_size_xyz_A
    width = shell_width_invA(shape_zyx, voxel_size_xyz_A, angles_deg)
    top = 0.5 / max(vx, vy, vz) if max_invA is None else float(max_invA)
    n = max(1, int(np.floor(top / width + 1e-9)) + 1)
    s = frequency_grid_invA(shape_zyx, voxel_size_xyz_A, angles_deg)
    idx = np.floor(s / width + 0.5).astype(np.int64)
    idx[idx >= n] = -1
    weights = np.full(s.shape, 2.0, dtype=np.float32)
    weights[..., 0] = 1.0
    if nx % 2 == 0:
        weights[..., -1] = 1.0
    return Shells(index=idx, centres_invA=np.arange(n, dtype=np.float64) * width, width_invA=width, weights=weights)


def map_resolution_shells(m: DensityMap, max_invA: float | None = None) -> Shells:
    """:func:`resolution_shells` of ``m``'s grid, its cell's angles respected.

    These are the shells every map-level function uses (FSC, Guinier fit, shell filters, consistency).
    """
    return resolution_shells(m.shape_zyx, m.voxel_size_xyz_A, max_invA=max_invA, angles_deg=grid_angles_deg(m))


def apply_bfactor(m: DensityMap, b_A2: float) -> DensityMap:
    """Multiply the map's Fourier coefficients by ``exp(-B s² / 4)``.

    Positive ``b_A2`` blurs, negative sharpens; B then −B is the identity (to float precision).
    """
    return apply_radial_filter(m, lambda s: np.exp(-b_A2 * s * s / 4.0))


def lowpass_filter_values(s_invA: np.ndarray, d_min_A: float, edge_width_invA: float | None = None) -> np.ndarray:
    """Soft low-pass transfer function: 1 below ``1/d_min``, a raised-cosine edge above it, 0 beyond.

    The edge starts at ``1/d_min`` and ends ``edge_width_invA`` later (default ``0.1/d_min``), so frequencies
    up to the stated resolution pass untouched.
    """
    cut = 1.0 / d_min_A
    w = 0.1 * cut if edge_width_invA is None else edge_width_invA
    t = np.clip((s_invA - cut) / max(w, 1e-12), 0.0, 1.0)
    return 0.5 * (1.0 + np.cos(np.pi * t))


def lowpass(m: DensityMap, d_min_A: float, edge_width_invA: float | None = None) -> DensityMap:
    """Low-pass ``m`` at ``d_min_A`` with a soft raised-cosine edge (see :func:`lowpass_filter_values`)."""
    return apply_radial_filter(m, lambda s: lowpass_filter_values(s, d_min_A, edge_width_invA))


def centred_for_fft(data_zyx: np.ndarray) -> tuple[np.ndarray, float, float]:
    """``(y, offset, scale)`` with ``data = scale·y + offset``: mean removed (in float64) and scaled to |y| ≤ 1.

    Filtering ``y`` instead of the data makes every linear filter independent of the map's units and offset
    (a map ×10⁶ + 10³ filters to the same map ×10⁶ + 10³) and keeps float32 FFTs far from overflow, whatever the
    magnitudes (values up to float32's limit). ``y`` is float32 (z, y, x).
    """
    lo = float(np.min(data_zyx))
    hi = float(np.max(data_zyx))
    offset = float(np.mean(data_zyx, dtype=np.float64))
    scale = max(hi - offset, offset - lo)
    if not (np.isfinite(scale) and scale > 0):
        scale = 1.0
    y = np.subtract(data_zyx, offset, dtype=np.float64) if data_zyx.size < (1 << 22) else None
    if y is None:  # large maps: stay in float32 (the subtraction of a float32 mean is exact to float32 precision)
        y32 = np.subtract(data_zyx, np.float32(offset), dtype=np.float32)
        y32 *= np.float32(1.0 / scale)
        return y32, float(np.float32(offset)), scale
    y *= 1.0 / scale
    return y.astype(np.float32), offset, scale


def restore_centred(y: np.ndarray, offset: float, scale: float, dc_gain: float, what: str = "the map") -> np.ndarray:
    """Inverse of :func:`centred_for_fft` after a filter with gain ``dc_gain`` at s = 0: ``scale·y + dc_gain·offset``.

    Raises
    ------
    InputError
        The result does not fit float32 (|values| ≥ 3·10³⁸): the map's values are too large for this filter.
    """
    from densharp.errors import InputError

    peak = float(np.max(np.abs(y))) * scale + abs(dc_gain * offset) if y.size else 0.0
    if not np.isfinite(peak) or peak >= float(np.finfo(np.float32).max):
        raise InputError(
            f"{what}: filtered values would reach {peak:.3g}, beyond float32's range; rescale the map "
            "(its values are far larger than any density)"
        )
    out = y.astype(np.float32, copy=False) * np.float32(scale)
    out += np.float32(dc_gain * offset)
    return out


def apply_radial_filter(m: DensityMap, fn) -> DensityMap:  # type: ignore[no-untyped-def]
    """Multiply Fourier coefficients by ``fn(|s| in 1/Å)`` and return the filtered map on the same grid.

    ``|s|`` respects the map's cell (:func:`map_frequency_grid_invA`): a radial filter of a sheared cell map is
    the same filter applied to every reflection by its d-spacing.

    The transform runs on the mean-removed, rescaled map (:func:`centred_for_fft`); the mean is put back times
    ``fn(0)``, so the result does not depend on the map's offset or units.
    """
    y, offset, scale = centred_for_fft(m.data_zyx)
    f = rfft_map(y)
    del y
    s = map_frequency_grid_invA(m)
    g = np.asarray(fn(s), dtype=np.float32)
    del s
    dc = float(g.flat[0]) if g.ndim else float(g)
    f *= g
    del g
    return m.with_data(restore_centred(irfft_map(f, m.shape_zyx), offset, scale, dc, _name(m)))


def apply_shell_filter(m: DensityMap, shells: Shells, gain: np.ndarray, beyond: float = 0.0) -> DensityMap:
    """Multiply every Fourier coefficient in shell ``k`` by ``gain[k]`` (``beyond`` past the last shell).

    Offset- and unit-independent like :func:`apply_radial_filter` (the mean is restored times ``gain[0]``).
    """
    y, offset, scale = centred_for_fft(m.data_zyx)
    f = rfft_map(y)
    del y
    g = np.append(np.asarray(gain, dtype=np.float32), np.float32(beyond))
    f *= g[shells.index]  # index -1 picks ``beyond``
    dc = float(g[shells.index.flat[0]])
    return m.with_data(restore_centred(irfft_map(f, m.shape_zyx), offset, scale, dc, _name(m)))


def _name(m: DensityMap) -> str:
    return m.source.path if m.source is not None else "the map"


def shell_amplitudes(m: DensityMap, shells: Shells | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged Fourier amplitude per shell: ``(shell centres in 1/Å, mean |F|)``."""
    shells = shells or map_resolution_shells(m)
    y, offset, scale = centred_for_fft(m.data_zyx)
    f = rfft_map(y)
    f.flat[0] = offset * y.size / scale  # the mean's term, exact, without its FFT round-off in the other shells
    amp = shells.sum(np.abs(f)) * scale / np.maximum(shells.count(), 1)
    return shells.centres_invA, amp


def fourier_resample(data_zyx: np.ndarray, shape_zyx: tuple[int, int, int]) -> np.ndarray:
    """Resample a periodic (z, y, x) array to ``shape_zyx`` by cropping or zero-padding its spectrum.

    Values are scaled so the mean is kept. Even-size Nyquist planes are halved and mirrored (scipy.signal.resample
    convention), so up- then down-sampling returns the input. Periodic, so it suits unit cells too.
    """
    import scipy.signal

    out = np.asarray(data_zyx, dtype=np.float64)
    for axis, n_new in enumerate(shape_zyx):
        if out.shape[axis] != int(n_new):
            out = scipy.signal.resample(out, int(n_new), axis=axis)
    return out.astype(np.float32)
