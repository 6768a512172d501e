from __future__ import annotations

import numpy as np
import pytest

from densharp.metrics.fsc import fsc_curve
from densharp.simulate.degrade import add_half_map_noise
from densharp.simulate.density import PreparedModel, simulate_map
from densharp.simulate.pairs import PairConfig, make_pair, random_patch

SMALL = PairConfig(box_zyx=(40, 36, 32), padding_A=8.0)


@pytest.fixture(scope="module")
def prepared(helix_factory):
    return PreparedModel(helix_factory(n_res=16))


def test_pair_is_reproducible_from_seed_and_index(prepared):
    a = make_pair(prepared, SMALL, seed=7, index=3)
    b = make_pair(prepared, SMALL, seed=7, index=3)
    c = make_pair(prepared, SMALL, seed=7, index=4)
    for k in ("input", "target", "half1", "half2"):
        np.testing.assert_array_equal(getattr(a, k).data_zyx, getattr(b, k).data_zyx)
    assert a.meta == b.meta
    assert a.meta != c.meta
    assert a.input.same_grid(a.target) and a.half1.same_grid(a.half2)
    assert a.input.shape_zyx == (40, 36, 32)


@pytest.mark.parametrize("d", [3.0, 4.5, 6.0])
def test_half_map_fsc_crosses_at_requested_resolution(prepared, d):
    cfg = PairConfig(
        d_input_range_A=(d, d), voxel_size_range_A=(1.0, 1.0), box_zyx=(48, 48, 48), rotate=False, solvent_fraction=0.0
    )
    got = []
    for i in range(2):
        p = make_pair(prepared, cfg, seed=1, index=i)
        got.append(fsc_curve(p.half1, p.half2).resolution_at(0.143))
    assert abs(np.mean(got) - d) < 0.1 * d, got


def test_half_maps_differ_only_by_noise(helix):
    m = simulate_map(helix, 1.0, None)
    rng = np.random.default_rng(0)
    _full, h1, h2 = add_half_map_noise(m, 4.0, rng)
    n1, n2 = h1.data_zyx - m.data_zyx, h2.data_zyx - m.data_zyx
    sig = m.data_zyx - m.data_zyx.mean()

    def corr(a, b):
        return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])

    assert abs(corr(n1, n2)) < 0.05
    assert abs(corr(n1, sig)) < 0.1 and abs(corr(h1.data_zyx - h2.data_zyx, sig)) < 0.1
    # the average of the halves is the noiseless map plus half-variance noise: unbiased
    avg = 0.5 * (h1.data_zyx + h2.data_zyx)
    assert abs(float((avg - m.data_zyx).mean())) < 1e-3 * float(np.abs(m.data_zyx).max())
    assert corr(avg, m.data_zyx) > max(corr(h1.data_zyx, m.data_zyx), corr(h2.data_zyx, m.data_zyx))


def test_random_patch_cuts_same_location(prepared):
    p = make_pair(prepared, SMALL, seed=0, index=0)
    rng = np.random.default_rng(0)
    for frac in (0.0, 1.0):
        q = random_patch(p, (16, 16, 16), rng, solvent_fraction=frac)
        z, y, x = q.meta["patch_start_zyx"]
        for k in ("input", "target", "half1", "half2"):
            np.testing.assert_array_equal(
                getattr(q, k).data_zyx, getattr(p, k).data_zyx[z : z + 16, y : y + 16, x : x + 16]
            )
        assert q.input.same_grid(q.target)
    assert q.meta["patch_kind"] == "solvent"


def test_solvent_boxes_still_get_noise(prepared):
    cfg = PairConfig(box_zyx=(32, 32, 32), solvent_fraction=1.0)
    p = make_pair(prepared, cfg, seed=0, index=0)
    assert p.meta["is_solvent_box"]
    mol = make_pair(prepared, PairConfig(box_zyx=(32, 32, 32), solvent_fraction=0.0), seed=0, index=0)
    noise_solvent = float((p.half1.data_zyx - p.half2.data_zyx).std())
    noise_mol = float((mol.half1.data_zyx - mol.half2.data_zyx).std())
    assert noise_solvent > 0.1 * noise_mol


def _band_power_ratio(m, band_A, ref_band_A):
    """Mean Fourier power of ``m`` in the band (low, high Å) over that in the reference band."""
    from densharp.fourier import frequency_grid_invA, rfft_map

    s = frequency_grid_invA(m.shape_zyx, m.voxel_size_xyz_A)
    p = np.abs(rfft_map(m.data_zyx)) ** 2

    def mean_in(lo_A, hi_A):
        return float(p[(s > 1 / lo_A) & (s < 1 / hi_A)].mean())

    return mean_in(*band_A) / mean_in(*ref_band_A)


def test_fsc_weighting_last_survives_flattening(prepared):
    """Flattening after the C_ref weighting erases it; ``fsc_weight_last`` keeps the fall-off near d."""
    base = dict(
        d_input_range_A=(4.0, 4.0),
        voxel_size_range_A=(1.0, 1.0),
        box_zyx=(48, 48, 48),
        rotate=False,
        solvent_fraction=0.0,
        fsc_weight_fraction=1.0,
        flat_fraction=1.0,
        unfiltered_fraction=1.0,
        fsc_steepness_range=(5.0, 5.0),
    )
    first = make_pair(prepared, PairConfig(**base), seed=3, index=0)
    last = make_pair(prepared, PairConfig(**base, fsc_weight_last=True), seed=3, index=0)
    assert last.meta["post"]["fsc_weighted_last"] and "fsc_weighted_last" not in first.meta["post"]
    np.testing.assert_array_equal(first.target.data_zyx, last.target.data_zyx)

    # C_ref < 1 near d (the half-map FSC is falling to 0.143 there): power near d drops against 6-8 Å
    def band_ratio(m):
        return _band_power_ratio(m, (4.4, 4.0), (8.0, 6.0))

    assert band_ratio(last.input) < 0.8 * band_ratio(first.input)


def test_matched_post_processing_brings_the_input_spectrum_to_the_target(prepared):
    """``match_target_fraction``: the input sharpened by its whole B relative to the target has the target's fall-off."""
    base = dict(
        d_input_range_A=(3.0, 3.0),
        voxel_size_range_A=(1.0, 1.0),
        box_zyx=(48, 48, 48),
        rotate=False,
        solvent_fraction=0.0,
        b_global_range_A2=(80.0, 80.0),
        sharp_target=True,
        fsc_steepness_range=(30.0, 30.0),
    )
    raw = make_pair(prepared, PairConfig(**base), seed=5, index=0)
    matched = make_pair(prepared, PairConfig(**base, match_target_fraction=1.0, match_target_range=(1.0, 1.0)), 5, 0)
    assert matched.meta["post"]["matched_target_fraction"] == 1.0 and matched.meta["post"]["post_b_A2"] < -80

    def fall_off(m):
        return _band_power_ratio(m, (4.5, 3.6), (12.0, 8.0))

    t = fall_off(raw.target)
    assert abs(np.log(fall_off(matched.input) / t)) < 0.5 * abs(np.log(fall_off(raw.input) / t))
