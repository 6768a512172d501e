from __future__ import annotations

import gemmi
import numpy as np

from densharp.io.mtz import write_mtz
from densharp.simulate.crystal import kappa_from_fom, simulate_crystal


def test_crystal_map_is_periodic_and_molecule_straddles_faces(helix):
    x = simulate_crystal(helix, 2.5, np.random.default_rng(1))
    d = x.map.data_zyx
    sd = float(d.std())
    assert x.map.cell_A_deg is not None and x.map.spacegroup == 1
    assert x.map.grid_sampling_xyz == x.map.shape_xyz
    ax = {0: 2, 1: 1, 2: 0}[x.meta["face_axis"]]  # x axis is array axis 2
    for a in range(3):
        across = np.abs(np.take(d, 0, axis=a) - np.take(d, -1, axis=a)).mean()
        inside = np.mean(
            [np.abs(np.take(d, k, axis=a) - np.take(d, k + 1, axis=a)).mean() for k in range(d.shape[a] - 1)]
        )
        assert across < 1.5 * inside + 1e-6 * sd
    # the molecule was shifted onto a face: there is real density on it
    face = np.concatenate([np.take(d, 0, axis=ax).ravel(), np.take(d, -1, axis=ax).ravel()])
    assert face.max() > 2 * sd
    # the map is exactly a Fourier series on the cell: a shift by one cell is the identity
    f = np.fft.rfftn(d)
    assert np.allclose(np.fft.irfftn(f, s=d.shape, axes=(0, 1, 2)), d, atol=1e-4 * np.abs(d).max())


def test_map_coefficients_have_phase_errors_and_missing_reflections(helix, tmp_path):
    x = simulate_crystal(helix, 2.0, np.random.default_rng(2), missing_fraction_range=(0.1, 0.1))
    mtz = x.mtz
    for label in ("FWT", "PHWT", "FOM", "FC", "PHIC"):
        assert mtz.column_with_label(label) is not None
    assert 0.85 < x.meta["reflections_written"] / x.meta["reflections"] < 0.95
    fom = mtz.column_with_label("FOM").array
    res = 1 / np.sqrt(mtz.make_1_d2_array())
    assert fom[res > 5].mean() > fom[res < 2.5].mean()
    p = tmp_path / "x.mtz"
    write_mtz(p, mtz)
    back = gemmi.read_mtz_file(str(p))
    assert back.nreflections == mtz.nreflections


def test_kappa_inverts_fom():
    from scipy.special import i0, i1

    m = np.array([0.2, 0.5, 0.7, 0.9])
    k = kappa_from_fom(m)
    assert np.allclose(i1(k) / i0(k), m, atol=0.02)
