"""Fourier toolkit: the one place that knows about spectral indexing.

Every frequency is in 1/Å, computed from the real voxel sizes along each axis (anisotropic voxels are
respected, never averaged). Transforms are real-to-complex (``rfftn``) over the map's own box, so filters are
exact circular convolutions: integer periodic shifts commute with them, and a filter of ones is the identity.
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


def frequency_components_invA(
    shape_zyx: tuple[int, int, int], voxel_size_xyz_A: tuple[float, float, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Broadcastable spatial-frequency components (sz, sy, sx) in 1/Å on the rfft half grid."""
    nz, ny, nx = shape_zyx
    vx, vy, vz = voxel_size_xyz_A
    sz = scipy.fft.fftfreq(nz, d=vz).reshape(-1, 1, 1)
    sy = scipy.fft.fftfreq(ny, d=vy).reshape(1, -1, 1)
    sx = scipy.fft.rfftfreq(nx, d=vx).reshape(1, 1, -1)
    return sz, sy, sx


def frequency_grid_invA(shape_zyx: tuple[int, int, int], voxel_size_xyz_A: tuple[float, float, float]) -> np.ndarray:
    """|s| in 1/Å at every point of the rfft half grid of a (z, y, x) box."""
    sz, sy, sx = frequency_components_invA(shape_zyx, voxel_size_xyz_A)
    return np.sqrt(sz * sz + sy * sy + sx * sx)


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
) -> Shells:
    """Shells of width 1/(shortest box edge in Å) from 0 up to ``max_invA`` (default: isotropic Nyquist).

    The width is that of the coarsest Fourier sampling, so every shell has samples in every direction; the
    default upper limit is the Nyquist frequency of the coarsest voxel, the finest resolution supported along
    all three axes.
    """
    nz, ny, nx = shape_zyx
    vx, vy, vz = voxel_size_xyz_A
    width = 1.0 / min(nx * vx, ny * vy, nz * vz)
    top = 0.5 / max(vx, vy, vz) if max_invA is None else float(max_invA)
    n = max(1, int(np.floor(top / width + 1e-9)) + 1)
    s = frequency_grid_invA(shape_zyx, voxel_size_xyz_A)
    idx = np.floor(s / width + 0.5).astype(np.int64)
    idx[idx >= n] = -1
    weights = np.full(s.shape, 2.0, dtype=np.float32)
    weights[..., 0] = 1.0
    if nx % 2 == 0:
        weights[..., -1] = 1.0
    return Shells(index=idx, centres_invA=np.arange(n, dtype=np.float64) * width, width_invA=width, weights=weights)


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

    The transform runs on the mean-removed, rescaled map (:func:`centred_for_fft`); the mean is put back times
    ``fn(0)``, so the result does not depend on the map's offset or units.
    """
    y, offset, scale = centred_for_fft(m.data_zyx)
    f = rfft_map(y)
    del y
    s = frequency_grid_invA(m.shape_zyx, m.voxel_size_xyz_A)
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
    shells = shells or resolution_shells(m.shape_zyx, m.voxel_size_xyz_A)
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
