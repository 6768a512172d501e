"""Measured reflections are kept, the model only adds reflections beyond them, and the result is symmetric."""

from __future__ import annotations

import gemmi
import numpy as np
import pytest

from densharp.reflections import DEFAULT_GAIN, coefficients_map, extend_coefficients, gain_at
from densharp.volume import DensityMap, OriginSource
from synth import globule_structure


@pytest.fixture(scope="module")
def p212121():
    """Coefficients to 2.5 Å of a small structure in P2₁2₁2₁ (cell 30 × 34 × 38 Å) and a grid for its cell."""
    st = globule_structure(120, 6.0, seed=4)
    st.cell = gemmi.UnitCell(30, 34, 38, 90, 90, 90)
    st.spacegroup_hm = "P 21 21 21"
    dc = gemmi.DensityCalculatorX()
    dc.d_min = 1.2
    dc.set_grid_cell_and_spacegroup(st)
    dc.put_model_density_on_grid(st[0])
    asu = gemmi.transform_map_to_f_phi(dc.grid, half_l=True).prepare_asu_data(dmin=2.5)
    f = np.asarray(asu.value_array)
    from densharp.io.mtz import coefficients_to_mtz

    mtz = coefficients_to_mtz(np.asarray(asu.miller_array), np.abs(f), np.degrees(np.angle(f)), st.cell,
                              gemmi.SpaceGroup("P 21 21 21"))  # fmt: skip
    n = (36, 40, 44)  # even, compatible with the 2-fold screw axes
    like = DensityMap(np.zeros(n[::-1], np.float32), (30 / n[0], 34 / n[1], 38 / n[2]), sampling_xyz=n,
                      cell_A_deg=(30, 34, 38, 90, 90, 90), spacegroup=19, origin_source=OriginSource.NSTART)  # fmt: skip
    return mtz, like


def test_measured_reflections_are_kept_and_the_model_fills_only_beyond(p212121):
    mtz, like = p212121
    rng = np.random.default_rng(0)
    predicted = like.with_data(rng.normal(size=like.shape_zyx).astype(np.float32))  # not even symmetric
    out, info = extend_coefficients(mtz, ("FWT", "PHWT"), predicted, 2.5, 1.8)
    assert info["measured_kept"] == mtz.nreflections and info["extrapolated_added"] > 0
    d = out.make_d_array()
    assert d.min() >= 1.8 - 1e-3 and out.spacegroup.hm == "P 21 21 21"
    m_in = coefficients_map(mtz, like)
    m_out = coefficients_map(out, like)
    from densharp.metrics.consistency import consistency_check

    chk = consistency_check(m_out, m_in, 2.5)  # every shell the data measured
    assert chk.fsc_min > 0.9999
    # the output is symmetric: averaging over the space group's operations changes nothing
    g = gemmi.FloatGrid(np.ascontiguousarray(m_out.data_zyx.T), gemmi.UnitCell(*like.cell), gemmi.SpaceGroup(19))
    before = np.array(g, copy=True)
    g.symmetrize_avg()
    assert np.abs(np.array(g) - before).max() < 1e-4 * np.abs(before).max()


def test_gain_table_and_refusals(p212121):
    mtz, like = p212121
    assert gain_at(np.array([1.0, 1.5, 2.0, 3.0]), DEFAULT_GAIN).tolist() == [0.5, 0.375, 0.25, 0.25]
    from densharp.errors import InputError

    with pytest.raises(InputError, match="nothing to extrapolate"):
        extend_coefficients(mtz, ("FWT", "PHWT"), like, 2.5, 2.5)
