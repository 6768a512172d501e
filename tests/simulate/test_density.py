from __future__ import annotations

import numpy as np

from densharp.fourier import resolution_shells, shell_amplitudes
from densharp.simulate.density import PreparedModel, simulate_map


def test_whole_model_box_has_no_wraparound(helix):
    m = simulate_map(helix, 1.0, 3.0, padding_A=10.0)
    d = np.abs(m.data_zyx)
    faces = max(d[0].max(), d[-1].max(), d[:, 0].max(), d[:, -1].max(), d[:, :, 0].max(), d[:, :, -1].max())
    assert faces < 0.01 * d.max()


def test_origin_overlays_model_and_rotation(helix):
    pm = PreparedModel(helix)
    for rot in (None, np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])):
        m = simulate_map(pm, (1.0, 1.1, 0.9), 3.0, rotation=rot)
        xyz = pm.transformed_xyz_A(rot, pm.centroid_xyz_A)
        idx = np.round((xyz - np.array(m.origin_xyz_A)) / np.array(m.voxel_size_xyz_A)).astype(int)
        at_atoms = m.data_zyx[idx[:, 2], idx[:, 1], idx[:, 0]]
        assert at_atoms.mean() > 5 * m.data_zyx.std()


def test_crop_matches_whole_model_map(helix):
    pm = PreparedModel(helix)
    whole = simulate_map(pm, 1.0, 3.0, padding_A=10.0)
    # centre on a voxel of the whole map so both grids coincide
    c = np.asarray(whole.origin_xyz_A) + np.round(pm.xyz_A[20] - np.asarray(whole.origin_xyz_A))
    crop = simulate_map(pm, 1.0, 3.0, shape_zyx=(20, 18, 16), center_xyz_A=c)
    start = np.round(np.array(crop.origin_xyz_A) - np.array(whole.origin_xyz_A)).astype(int)
    ref = whole.data_zyx[start[2] : start[2] + 20, start[1] : start[1] + 18, start[0] : start[0] + 16]
    np.testing.assert_allclose(np.array(crop.origin_xyz_A) - np.array(whole.origin_xyz_A), start, atol=1e-6)
    assert np.corrcoef(ref.ravel(), crop.data_zyx.ravel())[0, 1] > 0.999


def test_extra_bfactor_recovered_from_spectra(helix):
    pm = PreparedModel(helix)
    b = 50.0
    m0 = simulate_map(pm, 1.0, None)
    m1 = simulate_map(pm, 1.0, None, b_extra_A2=b)
    shells = resolution_shells(m0.shape_zyx, m0.voxel_size_xyz_A)
    s, a0 = shell_amplitudes(m0, shells)
    _, a1 = shell_amplitudes(m1, shells)
    ok = (s > 0.05) & (s < 0.4) & (a0 > 0)
    # ratio of amplitudes = exp(-B s²/4): fit log ratio against s²/4
    slope = np.polyfit(s[ok] ** 2 / 4, np.log(a1[ok] / a0[ok]), 1)[0]
    assert abs(-slope - b) < 0.1 * b


def test_xray_modality_differs_but_overlays(helix):
    e = simulate_map(helix, 1.0, 3.0)
    x = simulate_map(helix, 1.0, 3.0, modality="xray")
    assert e.same_grid(x)
    assert np.corrcoef(e.data_zyx.ravel(), x.data_zyx.ravel())[0, 1] > 0.95
