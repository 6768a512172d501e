"""keep_low_resolution: the input's coarse shells survive any output; the gain is measured where the mask says."""

from __future__ import annotations

import numpy as np

from densharp.filters.projection import keep_low_resolution
from densharp.fourier import lowpass, resolution_shells, rfft_map
from densharp.metrics.fsc import fsc_curve
from densharp.volume import DensityMap


def _blob(shape: tuple[int, int, int], centre: tuple[float, float, float], width: float) -> np.ndarray:
    z, y, x = np.indices(shape, dtype=np.float64)
    r2 = (z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2
    return np.exp(-0.5 * r2 / width**2)


def _maps(seed: int = 0) -> tuple[DensityMap, DensityMap]:
    rng = np.random.default_rng(seed)
    shape = (40, 36, 44)
    inp = DensityMap(rng.standard_normal(shape).astype(np.float32), (1.1, 1.0, 0.9), (3.0, -2.0, 5.0))
    inp = lowpass(inp, 3.0)
    out = inp.with_data(rng.standard_normal(shape).astype(np.float32))  # unrelated to the input
    return inp, out


def test_kept_shells_agree_with_the_input_and_fine_shells_are_the_output() -> None:
    inp, out = _maps()
    d = 4.0
    proj = keep_low_resolution(out, inp, 2.0 * d, 1.5 * d)
    assert proj.shape_zyx == inp.shape_zyx and proj.voxel_size_xyz_A == inp.voxel_size_xyz_A
    curve = fsc_curve(proj, inp)
    coarse = (curve.s_invA > 0) & (curve.s_invA < 1.0 / (2.0 * d) - 0.01)
    assert coarse.any() and np.all(curve.fsc[coarse] > 0.999)
    # beyond 1/(1.5 d) every coefficient is the output's
    shells = resolution_shells(inp.shape_zyx, inp.voxel_size_xyz_A)
    s_idx = np.append(shells.centres_invA, np.inf)[shells.index]
    fine = s_idx > 1.0 / (1.5 * d) + 0.02
    f_proj, f_out = rfft_map(proj.data_zyx.astype(np.float64)), rfft_map(out.data_zyx.astype(np.float64))
    assert np.allclose(f_proj[fine], f_out[fine], atol=1e-3 * np.abs(f_out).max())


def test_gain_is_measured_inside_the_mask() -> None:
    """A network that removes a micelle must not make the molecule's kept shells weaker (a real-map failure)."""
    shape = (48, 48, 48)
    molecule = _blob(shape, (24, 16, 24), 3.0)
    micelle = 3.0 * _blob(shape, (24, 34, 24), 4.0)
    inp = DensityMap((molecule + micelle).astype(np.float32), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0))
    out = inp.with_data((1.5 * molecule).astype(np.float32))  # molecule 1.5x, micelle gone
    mask = (_blob(shape, (24, 16, 24), 3.0) > 0.01).astype(np.float32)
    d = 4.0
    box = keep_low_resolution(out, inp, 3.0 * d, 2.0 * d)
    masked = keep_low_resolution(out, inp, 3.0 * d, 2.0 * d, gain_mask_zyx=mask)

    def coarse_molecule_amplitude(m: DensityMap) -> float:
        kept = lowpass(m.with_data(m.data_zyx * mask), 3.0 * d)
        return float(np.abs(kept.data_zyx).sum())

    ref = coarse_molecule_amplitude(inp)
    assert abs(coarse_molecule_amplitude(masked) / ref - 1.5) < 0.1
    assert coarse_molecule_amplitude(box) / ref < 1.2  # whole-box power: the micelle's loss drags the gain down
