from __future__ import annotations

import numpy as np
import pytest

from densharp.errors import GeometryMismatchError, InputError
from densharp.filters.bfactor import guinier_fit
from densharp.filters.fsc_weight import estimate_resolution, fsc_weighted_average
from densharp.filters.masks import auto_molecule_mask, mask_from_map, soft_mask_from_threshold
from densharp.filters.sharpen import sharpen_autob, sharpen_fixed_b, sharpen_half_maps
from densharp.fourier import lowpass
from densharp.metrics.rscc import rscc


def test_auto_b_recovers_a_known_extra_b_within_10_percent(atom_map, blurred_35A):
    b_ref = guinier_fit(lowpass(atom_map, 3.5), 3.5).b_A2
    b_blur = guinier_fit(blurred_35A, 3.5).b_A2
    assert b_blur - b_ref == pytest.approx(100.0, rel=0.10)


def test_auto_b_raises_masked_rscc_to_the_target(blurred_35A, target_2A):
    mask = auto_molecule_mask(target_2A)
    res = sharpen_autob(blurred_35A, 3.5)
    assert res.b_sharpen_A2 > 100
    assert rscc(res.map, target_2A, mask) > rscc(blurred_35A, target_2A, mask) + 0.02
    assert res.map.geometry_dict() == blurred_35A.geometry_dict()


def test_fixed_b_zero_without_lowpass_is_identity(blurred_35A):
    out = sharpen_fixed_b(blurred_35A, 0.0, None).map
    np.testing.assert_allclose(out.data_zyx, blurred_35A.data_zyx, atol=1e-5)


def test_half_map_resolution_estimate(half_maps):
    d, curve = estimate_resolution(*half_maps)
    assert 2.4 < d < 4.5
    assert curve.resolution_at(0.143) == d


def test_fsc_weight_of_identical_signal_halves_is_the_average(blurred_35A):
    # halves with FSC = 1 everywhere get weight 1: weighted average == plain average within Nyquist
    h = blurred_35A
    h2 = h.with_data(h.data_zyx * 1.0 + 0.0)
    from densharp.metrics.fsc import fsc_curve

    c = fsc_curve(h, h2)
    out = fsc_weighted_average(h, h2, c)
    ref = lowpass(h, h.nyquist_A, edge_width_invA=1e-9)
    np.testing.assert_allclose(out.data_zyx, ref.data_zyx, atol=1e-4 * float(np.abs(h.data_zyx).max()))


def test_half_map_postprocessing_improves_on_the_raw_average(half_maps, target_2A):
    mask = auto_molecule_mask(target_2A)
    h1, h2 = half_maps
    avg = h1.with_data(0.5 * (h1.data_zyx + h2.data_zyx))
    res = sharpen_half_maps(h1, h2)
    assert rscc(res.map, target_2A, mask) > rscc(avg, target_2A, mask)


def test_identical_half_maps_are_refused(blurred_35A):
    with pytest.raises(InputError, match="identical"):
        sharpen_half_maps(blurred_35A, blurred_35A)


def test_resolution_finer_than_nyquist_is_refused(blurred_35A):
    with pytest.raises(InputError, match="Nyquist"):
        sharpen_autob(blurred_35A, 1.5)


def test_threshold_mask_is_soft_and_in_range(target_2A):
    m = soft_mask_from_threshold(target_2A, float(target_2A.data_zyx.mean() + target_2A.data_zyx.std()))
    assert m.min() >= 0 and m.max() == pytest.approx(1.0)
    assert ((m > 0) & (m < 1)).mean() > 0  # has a soft edge


def test_mask_map_on_other_grid_is_refused(target_2A):
    other = target_2A.crop((0, 0, 0), (10, 10, 10))
    with pytest.raises(GeometryMismatchError, match="different grids"):
        mask_from_map(other, target_2A)


def test_pure_noise_half_maps_are_not_amplified_without_bound(blurred_35A):
    rng = np.random.default_rng(3)
    h1 = blurred_35A.with_data(rng.normal(size=blurred_35A.shape_zyx).astype(np.float32))
    h2 = blurred_35A.with_data(rng.normal(size=blurred_35A.shape_zyx).astype(np.float32))
    res = sharpen_half_maps(h1, h2, d_min_A=3.5)
    assert res.b_sharpen_A2 <= 4 * np.log(100) * 3.5**2 + 1e-6
    assert res.map.data_zyx.std() < 100 * h1.data_zyx.std()
    assert any("capped" in n or "negative" in n for n in res.notes) or res.b_sharpen_A2 < 225
