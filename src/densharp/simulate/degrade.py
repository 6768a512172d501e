"""Input degradations for training pairs, each drawn from a range by a :class:`numpy.random.Generator`.

All functions are pure: they take arrays or :class:`~densharp.volume.DensityMap` and return new ones.

- **global B** (:func:`densharp.fourier.apply_bfactor`): ``exp(-B s²/4)`` on every Fourier coefficient, the
  overall fall-off of a real reconstruction.
- **resolution cut** (:func:`densharp.fourier.lowpass`): raised-cosine edge starting at ``1/d``.
- **local B** (:func:`local_bfactor_blend`): a few copies blurred with increasing B, blended voxel by voxel with
  weights from a smooth random field, so resolution varies smoothly across the box (flexible periphery, rigid core).
- **half-map noise** (:func:`half_map_noise`): two independent draws of coloured Gaussian noise whose power per
  shell is ``N(s) = S(s)·(1 - FSC(s))/FSC(s)`` for the signal power ``S(s)`` and a target half-map FSC curve that
  falls through 0.143 at ``1/d`` (:func:`target_fsc`). Then ``SNR = S/N = FSC/(1 - FSC)`` and the FSC between the
  two half maps is the target curve, so the stated resolution is the one an FSC-0.143 measurement gives.
- **rotations** (:func:`random_rotation`): uniform on SO(3) (normalised Gaussian quaternion).
- **voxel sizes** (:func:`draw_uniform`) around the model grid, and random crops (see ``pairs.random_patch``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

import numpy as np

from densharp.fourier import Shells, frequency_grid_invA, irfft_map, resolution_shells, rfft_map
from densharp.volume import DensityMap

#: the FSC threshold that defines the stated resolution of simulated half maps
FSC_THRESHOLD = 0.143


@dataclass(frozen=True)
class RadialGrid:
    """Fast radial filters on an rfft half grid of isotropic voxels.

    ``|s|`` is quantised to ``n_bins`` bins between 0 and the corner frequency, so a radial filter is a table
    lookup (``values[index]``) instead of transcendental functions on every coefficient. The index depends only on
    the box shape; frequencies scale as ``1/voxel``.
    """

    index: np.ndarray  # int32 bin of every rfft coefficient
    s_unit: np.ndarray  # bin centres in 1/voxel

    def filter(self, fn, voxel_A: float) -> np.ndarray:  # type: ignore[no-untyped-def]
        """``fn(|s| in 1/Å)`` evaluated per bin and gathered onto the grid (float32)."""
        return np.asarray(fn(self.s_unit / voxel_A), dtype=np.float32)[self.index]


@functools.lru_cache(maxsize=8)
def radial_grid(shape_zyx: tuple[int, int, int], n_bins: int = 4096) -> RadialGrid:
    """Cached :class:`RadialGrid` for a box shape (isotropic voxels)."""
    s = frequency_grid_invA(shape_zyx, (1.0, 1.0, 1.0))
    top = float(s.max()) * (1 + 1e-6)
    idx = np.minimum((s / top * n_bins).astype(np.int32), n_bins - 1)
    centres = (np.arange(n_bins) + 0.5) * top / n_bins
    return RadialGrid(index=idx, s_unit=centres)


@functools.lru_cache(maxsize=8)
def _unit_shells(shape_zyx: tuple[int, int, int]) -> Shells:
    top = float(np.max(frequency_grid_invA(shape_zyx, (1.0, 1.0, 1.0))))
    return resolution_shells(shape_zyx, (1.0, 1.0, 1.0), max_invA=top)


def shells_for(shape_zyx: tuple[int, int, int], voxel_xyz_A: tuple[float, float, float]) -> Shells:
    """Resolution shells up to the box corner (cached by shape when voxels are isotropic)."""
    v = voxel_xyz_A
    if max(v) - min(v) <= 1e-9 * max(v):
        u = _unit_shells(tuple(int(n) for n in shape_zyx))  # type: ignore[arg-type]
        return replace(u, centres_invA=u.centres_invA / v[0], width_invA=u.width_invA / v[0])
    top = float(np.max(frequency_grid_invA(shape_zyx, voxel_xyz_A)))
    return resolution_shells(shape_zyx, voxel_xyz_A, max_invA=top)


def draw_uniform(rng: np.random.Generator, lo_hi: tuple[float, float]) -> float:
    """One draw from ``U(lo, hi)`` as a Python float (``lo == hi`` returns it without using the generator)."""
    lo, hi = float(lo_hi[0]), float(lo_hi[1])
    return lo if hi <= lo else float(rng.uniform(lo, hi))


def draw_log_uniform(rng: np.random.Generator, lo_hi: tuple[float, float]) -> float:
    """One draw, uniform in ``log`` between ``lo`` and ``hi`` (both > 0)."""
    lo, hi = float(lo_hi[0]), float(lo_hi[1])
    return lo if hi <= lo else float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly distributed 3×3 rotation matrix."""
    q = rng.standard_normal(4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def target_fsc(s_invA: np.ndarray, d_A: float, steepness: float = 8.0) -> np.ndarray:
    """A half-map FSC curve that is ~1 at low frequency and falls through 0.143 at ``s = 1/d``.

    ``FSC(s) = 1 / (1 + exp(k·(s·d - 1) + ln(1/0.143 - 1)))``; larger ``steepness`` k gives a sharper fall.
    """
    z = steepness * (np.asarray(s_invA) * d_A - 1.0) + np.log(1.0 / FSC_THRESHOLD - 1.0)
    return 1.0 / (1.0 + np.exp(np.clip(z, -50, 50)))


def smooth_random_field(
    rng: np.random.Generator, shape_zyx: tuple[int, int, int], voxel_xyz_A: tuple[float, float, float], length_A: float
) -> np.ndarray:
    """A smooth random field in [0, 1] over a (z, y, x) box, varying on the scale ``length_A``.

    Random coefficients on a coarse lattice (spacing ``length_A``, one extra node beyond each face) are spread
    with Gaussian bumps of width ``length_A/2`` along each axis (separable, so it costs three small tensor
    products), then rescaled to [0, 1].
    """
    bases = []
    for n, v in zip(shape_zyx, voxel_xyz_A[::-1]):
        pos = np.arange(n) * v
        nodes = np.arange(-length_A, n * v + 2 * length_A, length_A)
        bases.append(np.exp(-0.5 * ((pos[:, None] - nodes[None, :]) / (0.5 * length_A)) ** 2))
    coef = rng.standard_normal(tuple(b.shape[1] for b in bases))
    g = np.einsum("ai,ijk->ajk", bases[0], coef)
    g = np.einsum("bj,ajk->abk", bases[1], g)
    g = np.einsum("ck,abk->abc", bases[2], g)
    lo, hi = float(g.min()), float(g.max())
    return ((g - lo) / max(hi - lo, 1e-12)).astype(np.float32)


def local_bfactor_blend(
    f_signal: np.ndarray,
    bfilters: list[np.ndarray],
    shape_zyx: tuple[int, int, int],
    weight_field: np.ndarray,
    crop: tuple[slice, ...] | None = None,
) -> np.ndarray:
    """Blend copies of a signal blurred by ``bfilters`` (ascending B) with a field in [0, 1] (0 → first copy).

    ``f_signal`` is the signal's rfft on a (padded) box of ``shape_zyx``; ``bfilters[k]`` is the Fourier
    multiplier ``exp(-B_k s²/4)`` of level ``k`` on that grid. The per-voxel B is linear in the field, interpolated
    between the two nearest levels. ``crop`` selects the region returned (and the field must have that shape).
    Returns the float32 blend.
    """
    n = len(bfilters)
    sl = crop if crop is not None else tuple(slice(None) for _ in range(3))
    if n == 1:
        return np.ascontiguousarray(irfft_map(f_signal * bfilters[0], shape_zyx)[sl])
    pos = np.clip(weight_field, 0.0, 1.0) * (n - 1)
    out = np.zeros(weight_field.shape, dtype=np.float32)
    for k, filt in enumerate(bfilters):
        w = np.clip(1.0 - np.abs(pos - k), 0.0, 1.0)  # hat function: linear interpolation between levels
        if not np.any(w > 0):
            continue
        out += w * irfft_map(f_signal * filt, shape_zyx)[sl]
    return out


def shell_power(f: np.ndarray, shells: Shells) -> np.ndarray:
    """Mean ``|F|²`` per shell (full-grid count)."""
    return shells.sum(np.abs(f) ** 2) / np.maximum(shells.count(), 1)


def half_map_noise(
    f_signal: np.ndarray,
    shape_zyx: tuple[int, int, int],
    voxel_xyz_A: tuple[float, float, float],
    d_A: float,
    rng: np.random.Generator,
    steepness: float = 8.0,
    fsc_floor: float = 1e-3,
    f_reference: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two independent coloured-noise spectra for half maps that cross FSC 0.143 at ``d_A``.

    Parameters
    ----------
    f_signal
        rfft of the noiseless signal (defines ``S(s)``).
    shape_zyx, voxel_xyz_A
        Grid of the signal.
    d_A
        Resolution (Å) where the half-map FSC should cross 0.143.
    rng
        Random generator (two draws of complex Gaussian coefficients).
    steepness
        Steepness of the target FSC curve (see :func:`target_fsc`).
    fsc_floor
        Smallest target FSC used (caps the noise-to-signal ratio at ``1/fsc_floor``).
    f_reference
        rfft (same grid) whose power defines ``S(s)`` instead of ``f_signal``: used for boxes that are mostly
        solvent, whose noise should match the molecule's (then the stated FSC holds for the molecule, not the box).

    Returns
    -------
    noise1, noise2, target_curve
        rfft-shaped complex noise arrays and the target FSC per shell.
    """
    shells = resolution_shells(
        shape_zyx, voxel_xyz_A, max_invA=float(np.max(frequency_grid_invA(shape_zyx, voxel_xyz_A)))
    )
    s_pow = shell_power(f_signal if f_reference is None else f_reference, shells)
    fsc_t = np.clip(target_fsc(shells.centres_invA, d_A, steepness), fsc_floor, 1.0 - 1e-6)
    n_pow = s_pow * (1.0 - fsc_t) / fsc_t
    n_pow[0] = 0.0  # leave the mean alone
    sigma = np.sqrt(np.append(n_pow, 0.0) / 2.0).astype(np.float32)[shells.index]
    out = []
    for _ in range(2):
        re = rng.standard_normal(f_signal.shape, dtype=np.float32)
        im = rng.standard_normal(f_signal.shape, dtype=np.float32)
        out.append((re + 1j * im) * sigma)
    return out[0], out[1], fsc_t


def radial_spectrum(m: DensityMap, shells: Shells | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged amplitude ``(s in 1/Å, mean |F|)`` of a map (wrapper for plots and tests)."""
    from densharp.fourier import shell_amplitudes

    return shell_amplitudes(m, shells)


def add_half_map_noise(
    m: DensityMap,
    d_A: float,
    rng: np.random.Generator,
    steepness: float = 8.0,
    cut_factor: float | None = None,
) -> tuple[DensityMap, DensityMap, DensityMap]:
    """Two noisy half maps of ``m`` whose FSC crosses 0.143 at ``d_A``, and their average.

    Parameters
    ----------
    m
        Noiseless map (its spectrum shapes the noise); band-limit it no finer than Nyquist.
    d_A
        Resolution (Å) of the FSC-0.143 crossing.
    rng
        Random generator.
    steepness
        Steepness of the target FSC curve.
    cut_factor
        If given, the average is low-passed at ``cut_factor·d_A`` (soft edge); the half maps never are.

    Returns
    -------
    full, half1, half2
        Maps on ``m``'s grid.
    """
    from densharp.fourier import lowpass_filter_values

    f = rfft_map(m.data_zyx)
    n1, n2, _ = half_map_noise(f, m.shape_zyx, m.voxel_size_xyz_A, d_A, rng, steepness=steepness)
    h1 = irfft_map(f + n1, m.shape_zyx)
    h2 = irfft_map(f + n2, m.shape_zyx)
    favg = f + 0.5 * (n1 + n2)
    if cut_factor is not None:
        s = frequency_grid_invA(m.shape_zyx, m.voxel_size_xyz_A)
        favg *= lowpass_filter_values(s, cut_factor * d_A).astype(np.float32)
    return m.with_data(irfft_map(favg, m.shape_zyx)), m.with_data(h1), m.with_data(h2)


# ----------------------------------------------------------------------------------------------- real-map post-processing
def anisotropic_bfactor_filter(
    shape_zyx: tuple[int, int, int], voxel_xyz_A: tuple[float, float, float], b_A2: float, direction_xyz: np.ndarray
) -> np.ndarray:
    """Fourier multiplier ``exp(-B (s·u)² / 4)``: a blur of ``b_A2`` along the unit vector ``u`` only.

    What preferred particle orientations do to a reconstruction: resolution is lower along one direction.
    """
    from densharp.fourier import frequency_components_invA

    sz, sy, sx = frequency_components_invA(shape_zyx, voxel_xyz_A)
    u = np.asarray(direction_xyz, dtype=np.float64)
    u = u / np.linalg.norm(u)
    proj = sx * u[0] + sy * u[1] + sz * u[2]
    return np.exp(-b_A2 * proj * proj / 4.0).astype(np.float32)


def flatten_spectrum(f: np.ndarray, shells: Shells, d_A: float, s_ref_invA: float = 0.1) -> np.ndarray:
    """Shell gains that make the radially averaged amplitude flat from ``s_ref`` to ``1/d``.

    The gain at ``1/d`` is held beyond it. This is what automatic sharpening and many deposited post-processed
    maps do to a spectrum. Returns the gain per rfft coefficient (float32), to multiply ``f`` by.
    """
    amp = shells.sum(np.abs(f)) / np.maximum(shells.count(), 1)
    s = shells.centres_invA
    ref = float(np.interp(s_ref_invA, s, amp))
    gain = np.where(amp > 0, ref / np.maximum(amp, 1e-30), 1.0)
    gain[s < s_ref_invA] = 1.0
    k_d = int(np.searchsorted(s, 1.0 / d_A))
    if k_d < len(gain):
        gain[k_d:] = gain[max(k_d - 1, 0)]
    return np.append(gain, gain[-1]).astype(np.float32)[shells.index]


def low_resolution_gain(
    s_invA: np.ndarray, gain: float, s_lo_invA: float = 1 / 15.0, s_hi_invA: float = 1 / 8.0
) -> np.ndarray:
    """Multiplier ``gain`` below ``s_lo``, rising smoothly to 1 at ``s_hi`` (the mean is kept).

    Weaker low-resolution terms: solvent (ice, bulk solvent) lowers the molecule's contrast in real maps compared
    with a vacuum simulation.
    """
    t = np.clip((np.asarray(s_invA) - s_lo_invA) / (s_hi_invA - s_lo_invA), 0.0, 1.0)
    g = gain + (1.0 - gain) * 0.5 * (1.0 - np.cos(np.pi * t))
    g = np.asarray(g, dtype=np.float32)
    g.flat[0] = 1.0
    return g


def solvent_mask_from_density(
    density_zyx: np.ndarray, voxel_xyz_A: tuple[float, float, float], dilate_A: float, soft_edge_A: float
) -> np.ndarray:
    """A molecule mask like deposited maps' solvent masks.

    Density above 10 % of its maximum, dilated by ``dilate_A``, with a raised-cosine edge of ``soft_edge_A``
    (0: hard).
    """
    from scipy import ndimage

    binary = density_zyx > 0.1 * float(density_zyx.max())
    if not binary.any():
        return np.ones(density_zyx.shape, np.float32)
    dist = ndimage.distance_transform_edt(~binary, sampling=tuple(voxel_xyz_A[::-1]))
    if soft_edge_A <= 0:
        return (dist <= dilate_A).astype(np.float32)
    t = np.clip((dist - dilate_A) / soft_edge_A, 0.0, 1.0)
    return (0.5 * (1.0 + np.cos(np.pi * t))).astype(np.float32)
