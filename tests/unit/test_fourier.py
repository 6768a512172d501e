from __future__ import annotations

import numpy as np
import pytest

from densharp.fourier import (
    apply_bfactor,
    apply_radial_filter,
    frequency_grid_invA,
    lowpass,
    resolution_shells,
    rfft_map,
    shell_amplitudes,
)
from densharp.volume import DensityMap


def noise_map(shape=(20, 18, 16), voxel=(1.0, 1.1, 0.9), seed=0) -> DensityMap:
    rng = np.random.default_rng(seed)
    return DensityMap(rng.normal(size=shape).astype(np.float32), voxel, origin_xyz_A=(3.0, -4.0, 5.0))


def test_frequency_grid_uses_each_axis_voxel():
    s = frequency_grid_invA((10, 10, 10), (1.0, 2.0, 4.0))
    # first non-zero sample along x, y, z: 1/(n v)
    assert s[0, 0, 1] == pytest.approx(1 / 10.0)
    assert s[0, 1, 0] == pytest.approx(1 / 20.0)
    assert s[1, 0, 0] == pytest.approx(1 / 40.0)


def test_b_then_minus_b_is_identity_within_band(atom_map):
    m = lowpass(atom_map, 3.0)
    # float32 rounding in the box corners (|s| up to 0.9/Å) is amplified by exp(B s²/4): keep B moderate
    for b in (40.0, -40.0):
        back = apply_bfactor(apply_bfactor(m, b), -b)
        np.testing.assert_allclose(back.data_zyx, m.data_zyx, atol=1e-3 * float(np.abs(m.data_zyx).max()))


def test_zero_b_and_unit_filter_are_identities():
    m = noise_map()
    np.testing.assert_allclose(apply_bfactor(m, 0.0).data_zyx, m.data_zyx, atol=1e-5)
    np.testing.assert_allclose(apply_radial_filter(m, lambda s: np.ones_like(s)).data_zyx, m.data_zyx, atol=1e-5)


def test_filter_commutes_with_integer_periodic_shift():
    m = noise_map()
    shifted = m.with_data(np.roll(m.data_zyx, (3, -2, 5), axis=(0, 1, 2)))
    a = np.roll(lowpass(m, 4.0).data_zyx, (3, -2, 5), axis=(0, 1, 2))
    b = lowpass(shifted, 4.0).data_zyx
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_filter_keeps_geometry():
    m = noise_map()
    out = apply_bfactor(m, -50.0)
    assert out.geometry_dict() == m.geometry_dict()


def test_parseval_over_shells():
    # with shells reaching the corner of the box, shell sums of |F|^2 add up to N * sum(x^2)
    m = noise_map(shape=(12, 10, 14))
    shells = resolution_shells(m.shape_zyx, m.voxel_size_xyz_A, max_invA=10.0)
    f = rfft_map(m.data_zyx)
    total = shells.sum(np.abs(f) ** 2).sum()
    assert total == pytest.approx(m.data_zyx.size * float((m.data_zyx.astype(np.float64) ** 2).sum()), rel=1e-5)


def test_shell_amplitudes_follow_b(atom_map):
    s, a0 = shell_amplitudes(lowpass(atom_map, 2.5))
    _, a1 = shell_amplitudes(lowpass(apply_bfactor(atom_map, 60.0), 2.5))
    sel = (s > 0.05) & (s < 0.38)
    ratio = a1[sel] / a0[sel]
    np.testing.assert_allclose(ratio, np.exp(-60.0 * s[sel] ** 2 / 4), rtol=0.02)


def test_lowpass_removes_everything_beyond_the_edge():
    m = noise_map()
    out = lowpass(m, 4.0, edge_width_invA=0.02)
    s = frequency_grid_invA(m.shape_zyx, m.voxel_size_xyz_A)
    f = np.abs(rfft_map(out.data_zyx))
    assert f[s > 0.25 + 0.02 + 1e-6].max() < 1e-3 * f.max()
