from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from densharp.fourier import lowpass
from densharp.metrics.fsc import FSCCurve, fsc_curve, fsc_weights_cref, full_map_fsc
from densharp.metrics.rscc import rscc
from densharp.volume import DensityMap


def noise(seed: int, shape=(32, 30, 28), voxel=(1.0, 1.1, 0.9)) -> DensityMap:
    rng = np.random.default_rng(seed)
    return DensityMap(rng.normal(size=shape).astype(np.float32), voxel, origin_xyz_A=(1.0, 2.0, 3.0))


def test_fsc_of_a_map_with_itself_is_one(atom_map):
    c = fsc_curve(atom_map, atom_map)
    np.testing.assert_allclose(c.fsc[c.n_coeffs > 0], 1.0, atol=1e-6)


def test_fsc_is_symmetric(atom_map, blurred_35A):
    a = fsc_curve(atom_map, blurred_35A).fsc
    b = fsc_curve(blurred_35A, atom_map).fsc
    np.testing.assert_allclose(a, b, atol=1e-7)


def test_fsc_of_independent_noise_is_near_zero():
    c = fsc_curve(noise(1), noise(2))
    k = slice(2, None)
    assert np.all(np.abs(c.fsc[k]) < 3.0 / np.sqrt(c.n_coeffs[k]))


def test_fsc_resolution_interpolates_the_crossing():
    s = np.array([0.0, 0.1, 0.2, 0.3, 0.4])
    c = FSCCurve(s, np.array([1.0, 0.9, 0.5, 0.1, 0.0]), np.ones(5, int) * 100)
    assert c.resolution_at(0.5) == pytest.approx(1 / 0.2)  # 0.5 is not below 0.5: crossing at shell 0.2
    assert c.resolution_at(0.3) == pytest.approx(1 / 0.25)
    assert c.crosses(0.143)
    assert not c.crosses(-0.5) and c.resolution_at(-0.5) == pytest.approx(1 / 0.4)


def test_fsc_dict_round_trip(atom_map):
    c = fsc_curve(atom_map, lowpass(atom_map, 4.0))
    d = FSCCurve.from_dict(c.to_dict())
    np.testing.assert_allclose(d.fsc, c.fsc, atol=1e-6)


def test_full_map_correction_and_cref():
    f = np.array([0.0, 0.143, 0.5, 1.0])
    np.testing.assert_allclose(full_map_fsc(f), 2 * f / (1 + f))
    np.testing.assert_allclose(fsc_weights_cref(f), np.sqrt(2 * f / (1 + f)))
    assert fsc_weights_cref(np.array([-0.2]))[0] == 0.0


@settings(max_examples=30, deadline=None)
@given(a=st.floats(0.01, 100.0), b=st.floats(-100.0, 100.0))
def test_rscc_is_invariant_to_positive_affine_maps(a, b):
    x, y = noise(3, shape=(8, 7, 6)), noise(4, shape=(8, 7, 6))
    y = y.with_data(x.data_zyx + y.data_zyx)
    mask = np.zeros(x.shape_zyx, np.float32)
    mask[2:6, 1:6, 1:5] = 1.0
    for m in (None, mask):
        # float64 arrays: the invariance is exact maths, float32 storage would add rounding of b
        xd, yd = x.data_zyx.astype(np.float64), y.data_zyx.astype(np.float64)
        assert rscc(a * xd + b, yd, m) == pytest.approx(rscc(xd, yd, m), abs=1e-9)


def test_rscc_of_map_with_itself_is_one_and_with_negative_is_minus_one(atom_map):
    assert rscc(atom_map, atom_map) == pytest.approx(1.0)
    assert rscc(atom_map, atom_map.with_data(-atom_map.data_zyx)) == pytest.approx(-1.0)


def test_gaussian_blob_fsc_matches_analytic_b():
    # a Gaussian blob exp(-r²/2σ²) has |F| ∝ exp(-2π²σ²s²) = exp(-B s²/4) with B = 8π²σ²
    shape, vox = (48, 48, 48), (1.0, 1.0, 1.0)
    z, y, x = np.meshgrid(*[np.arange(n) - n // 2 for n in shape], indexing="ij")
    sigma = 1.5
    blob = DensityMap(np.exp(-(x**2 + y**2 + z**2) / (2 * sigma**2)).astype(np.float32), vox)
    from densharp.fourier import shell_amplitudes

    s, amp = shell_amplitudes(blob)
    sel = (s > 0.05) & (s < 0.3)
    b_fit = -4 * np.polyfit(s[sel] ** 2, np.log(amp[sel]), 1)[0]
    assert b_fit == pytest.approx(8 * np.pi**2 * sigma**2, rel=0.02)
