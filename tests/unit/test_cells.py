"""Non-orthogonal (sheared) cells: every spectral function on the cell's reciprocal lattice, grids that suit the
space group, masks measured in Cartesian space, and classical sharpening of C2 and P6₅22 MTZ input.

The reference throughout is gemmi: its d-spacing of every reflection (``UnitCell.calculate_1_d2``) and its own
transform of map coefficients (``Mtz.transform_f_phi_to_map``). Orthogonal maps must come out bit-identical to the
formulas densharp used before sheared cells were supported (per-axis frequencies ``k/(n·v)``).
"""

from __future__ import annotations

from pathlib import Path

import gemmi
import numpy as np
import pytest
import scipy.fft
from scipy import ndimage

from densharp.errors import InputError
from densharp.filters.bfactor import guinier_fit
from densharp.filters.global_filter import apply_global_filter, corner_shells
from densharp.filters.masks import auto_molecule_mask, distance_from_region_A, soft_mask_from_threshold
from densharp.filters.sharpen import check_orthogonal, sharpen_autob, sharpen_fixed_b
from densharp.fourier import (
    apply_bfactor,
    apply_radial_filter,
    corner_frequency_invA,
    frequency_components_invA,
    frequency_grid_invA,
    grid_angles_deg,
    lowpass,
    map_resolution_shells,
    resolution_shells,
    rfft_map,
    shell_amplitudes,
    unit_cell_matrices,
)
from densharp.io.mtz import (
    cell_grid_size,
    check_mtz_cell,
    coefficients_to_mtz,
    map_to_mtz,
    mtz_map,
    read_mtz,
    symmetric_axes,
    write_mtz,
)
from densharp.metrics.consistency import consistency_check
from densharp.metrics.fsc import fsc_curve
from densharp.normalisation import NormKind, map_norm_stats, norm_stats
from densharp.volume import DensityMap

MONOCLINIC = (41.0, 33.0, 37.0, 90.0, 105.0, 90.0)
HEXAGONAL = (36.0, 36.0, 44.0, 90.0, 90.0, 120.0)
TRICLINIC = (30.0, 34.0, 38.0, 75.0, 82.0, 104.0)
#: the real crystals whose MTZs densharp could not sharpen (cell, space group)
REAL_CELLS = {
    "P 43 21 2": (79.344, 79.344, 37.81, 90.0, 90.0, 90.0),  # HEWL
    "P 65 2 2": (71.45, 71.45, 104.204, 90.0, 90.0, 120.0),  # MDM2 4hg7
    "C 1 2 1": (107.19, 90.61, 70.59, 90.0, 110.57, 90.0),  # ARP/wARP
    "P 1 21 1": (75.61, 111.95, 102.31, 90.0, 100.81, 90.0),  # GH97
}


# ------------------------------------------------------------------------------------------------ helpers
def symmetric_coefficients(
    cell: tuple[float, ...], sg_name: str, d_min_A: float, b_A2: float = 0.0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(hkl, amplitude, phase_deg)`` of the ASU to ``d_min_A``: the coefficients of a random symmetric density.

    A random P1 grid is symmetrised by gemmi and transformed, so the phases obey the space group's restrictions;
    amplitudes fall off as ``exp(-B s²/4)`` (``s`` from gemmi's d-spacing) and are scaled to O(1).
    """
    uc, sg = gemmi.UnitCell(*cell), gemmi.SpaceGroup(sg_name)
    g = gemmi.FloatGrid()
    g.spacegroup, g.unit_cell = sg, uc
    g.set_size_from_spacing(d_min_A / 3.0, gemmi.GridSizeRounding.Up)
    arr = np.array(g, copy=False)
    arr[:] = np.random.default_rng(seed).normal(size=arr.shape)
    g.symmetrize_avg()
    asu = gemmi.transform_map_to_f_phi(g, half_l=True).prepare_asu_data(dmin=d_min_A)
    hkl = np.asarray(asu.miller_array)
    f = np.asarray(asu.value_array)
    s2 = uc.calculate_1_d2_array(hkl)
    amp = np.abs(f) * np.exp(-b_A2 * s2 / 4.0)
    return hkl, amp / amp.max(), np.degrees(np.angle(f))


def mtz_file(tmp_path: Path, name: str, cell, sg_name: str, hkl, amp, phase) -> Path:  # type: ignore[no-untyped-def]
    """Write the coefficients to ``tmp_path/name`` (FWT/PHWT) and return the path."""
    path = tmp_path / name
    write_mtz(path, coefficients_to_mtz(hkl, amp, phase, gemmi.UnitCell(*cell), gemmi.SpaceGroup(sg_name)))
    return path


def inv_d_invA(cell: tuple[float, ...], hkl: np.ndarray) -> np.ndarray:
    """gemmi's 1/d (1/Å) of each reflection."""
    return np.sqrt(gemmi.UnitCell(*cell).calculate_1_d2_array(np.asarray(hkl, dtype=np.int32)))


def rfft_miller(shape_zyx: tuple[int, int, int]) -> np.ndarray:
    """Miller indices (h, k, l) = (kx, ky, kz), wrapped as fftfreq does, of the rfft half grid, shape ``(*half, 3)``."""
    nz, ny, nx = shape_zyx
    kz = np.rint(scipy.fft.fftfreq(nz, 1.0 / nz)).astype(int)
    ky = np.rint(scipy.fft.fftfreq(ny, 1.0 / ny)).astype(int)
    kx = np.arange(nx // 2 + 1)
    gz, gy, gx = np.meshgrid(kz, ky, kx, indexing="ij")
    return np.stack([gx, gy, gz], axis=-1)


def grid_inv_d_invA(cell: tuple[float, ...], shape_zyx: tuple[int, int, int]) -> np.ndarray:
    """gemmi's 1/d at every rfft point; on Nyquist planes (index n/2 = ±n/2) the smaller of the aliases'."""
    hkl = rfft_miller(shape_zyx)
    n_xyz = np.array(shape_zyx[::-1])
    at_nyq = (np.abs(hkl) * 2 == n_xyz) & (n_xyz % 2 == 0)
    best = None
    for signs in np.ndindex(2, 2, 2):
        flip = np.where(at_nyq & (np.array(signs) == 1), -1, 1)
        v = inv_d_invA(cell, (hkl * flip).reshape(-1, 3)).reshape(hkl.shape[:-1])
        best = v if best is None else np.minimum(best, v)
    return best


def on_nyquist_plane(shape_zyx: tuple[int, int, int]) -> np.ndarray:
    """True at the rfft points with an index n/2 along an even axis."""
    hkl = rfft_miller(shape_zyx)
    n_xyz = np.array(shape_zyx[::-1])
    return np.any((np.abs(hkl) * 2 == n_xyz) & (n_xyz % 2 == 0), axis=-1)


def cell_map(cell: tuple[float, ...], shape_zyx=(30, 26, 28), seed: int = 0) -> DensityMap:  # type: ignore[no-untyped-def]
    """Random map of a whole sheared cell (grid = cell sampling)."""
    nz, ny, nx = shape_zyx
    data = np.random.default_rng(seed).normal(size=shape_zyx).astype(np.float32)
    return DensityMap(
        data, (cell[0] / nx, cell[1] / ny, cell[2] / nz), cell_A_deg=tuple(cell), sampling_xyz=(nx, ny, nz)
    )


# ------------------------------------------------------------------------------------------------ frequencies
@pytest.mark.parametrize("cell", [MONOCLINIC, HEXAGONAL, TRICLINIC])
@pytest.mark.parametrize("shape", [(14, 12, 10), (15, 13, 11)])
def test_frequency_grid_is_gemmi_reciprocal_length(cell, shape):
    vox = (cell[0] / shape[2], cell[1] / shape[1], cell[2] / shape[0])
    s = frequency_grid_invA(shape, vox, cell[3:])
    np.testing.assert_allclose(s, grid_inv_d_invA(cell, shape), rtol=1e-12, atol=1e-15)
    # Hermitian partners on the self-conjugate planes (kx = 0, and kx = nx/2 for even nx) get one value
    for col in {0, s.shape[2] - 1} if shape[2] % 2 == 0 else {0}:
        plane = s[:, :, col]
        partner = np.roll(plane[::-1, ::-1], (1, 1), axis=(0, 1))
        np.testing.assert_allclose(plane, partner, rtol=1e-12)
    # Cartesian components: s = Fᵀ·h in gemmi's orthogonal frame (on Nyquist planes: the nearer alias)
    sz, sy, sx = frequency_components_invA(shape, vox, cell[3:])
    np.testing.assert_allclose(np.sqrt(sx**2 + sy**2 + sz**2), s, rtol=1e-12, atol=1e-15)
    off = ~on_nyquist_plane(shape)
    s_ref = rfft_miller(shape)[off] @ np.array(gemmi.UnitCell(*cell).frac.mat)
    np.testing.assert_allclose(np.stack([sx[off], sy[off], sz[off]], 1), s_ref, atol=1e-14)
    # the orthogonal formula is badly wrong on these cells: the comparison discriminates
    assert np.abs(frequency_grid_invA(shape, vox) - s).max() > 0.05 * s.max()


def test_unit_cell_matrices_match_gemmi():
    for cell in (MONOCLINIC, HEXAGONAL, TRICLINIC):
        o, f = unit_cell_matrices(cell[3:])
        np.testing.assert_allclose(o * np.array(cell[:3]), np.array(gemmi.UnitCell(*cell).orth.mat), atol=1e-12)
        np.testing.assert_allclose(f @ o, np.eye(3), atol=1e-12)
    with pytest.raises(InputError, match="degenerate"):
        unit_cell_matrices((120.0, 120.0, 120.0))


@pytest.mark.parametrize("cell", [MONOCLINIC, HEXAGONAL, TRICLINIC])
def test_shells_group_reflections_by_gemmi_d(cell):
    m = cell_map(cell)
    shells = map_resolution_shells(m)
    uc = gemmi.UnitCell(*cell)
    # width: one reciprocal spacing of the coarsest direction; top: the isotropic Nyquist limit 1/(2·max voxel)
    width = max(1.0 / uc.calculate_d(list(e)) for e in np.eye(3, dtype=int))
    assert shells.width_invA == pytest.approx(width, rel=1e-12)
    assert shells.centres_invA[-1] <= 0.5 / max(m.voxel_size_xyz_A) + 1e-12
    s = grid_inv_d_invA(cell, m.shape_zyx)
    expect = np.floor(s / width + 0.5).astype(int)
    expect[expect >= shells.n] = -1
    tie = np.abs(s / width + 0.5 - np.rint(s / width + 0.5)) < 1e-9
    assert np.array_equal(shells.index[~tie], expect[~tie])


@pytest.mark.parametrize("cell", [MONOCLINIC, HEXAGONAL, TRICLINIC])
def test_isotropic_nyquist_of_a_sheared_grid_holds_every_reflection_inside_it(cell):
    # every reflection finer than 1/(2·max voxel) has |h| <= nx/2, |k| <= ny/2, |l| <= nz/2 (no aliasing)
    n_xyz = np.array([28, 26, 30])
    vox = np.array(cell[:3]) / n_xyz
    d_nyq = 2.0 * vox.max()
    hkl = np.asarray(gemmi.make_miller_array(gemmi.UnitCell(*cell), gemmi.SpaceGroup("P 1"), d_nyq * (1 + 1e-9)))
    assert np.all(np.abs(hkl) <= n_xyz // 2)
    # and the corner of the Fourier box is what gemmi says it is
    corners = [n_xyz // 2 * np.array(sg) for sg in ((1, 1, 1), (1, -1, 1), (1, 1, -1), (1, -1, -1))]
    c_max = float(inv_d_invA(cell, np.array(corners)).max())
    assert corner_frequency_invA((30, 26, 28), tuple(vox), cell[3:]) == pytest.approx(c_max, rel=1e-12)


# ------------------------------------------------------------------------------------------------ filters vs gemmi
@pytest.mark.parametrize(("cell", "sg_name"), [(MONOCLINIC, "C 1 2 1"), (HEXAGONAL, "P 65 2 2"), (TRICLINIC, "P 1")])
def test_lowpass_of_cell_map_equals_map_of_truncated_coefficients(tmp_path, cell, sg_name):
    hkl, amp, phase = symmetric_coefficients(cell, sg_name, 2.0, seed=1)
    m = mtz_map(read_mtz(mtz_file(tmp_path, "full.mtz", cell, sg_name, hkl, amp, phase)), "FWT", "PHWT", 0.7)
    assert grid_angles_deg(m) == pytest.approx(cell[3:])
    inv_d = inv_d_invA(cell, hkl)
    # a cut between two reflections near 3.1 Å, with the soft edge ending before the next one: a sharp cut at
    # gemmi's d
    u = np.unique(inv_d)
    i = int(np.searchsorted(u, 1 / 3.1))
    s_cut = 0.5 * (u[i - 1] + u[i])
    d_cut, edge = 1.0 / s_cut, 0.5 * (u[i] - s_cut)
    assert not np.any((inv_d >= s_cut) & (inv_d <= s_cut + edge))
    keep = inv_d < 1 / d_cut
    trunc = mtz_map(
        read_mtz(mtz_file(tmp_path, "cut.mtz", cell, sg_name, hkl[keep], amp[keep], phase[keep])), "FWT", "PHWT", 0.7
    )
    got = lowpass(m, d_cut, edge_width_invA=edge)
    scale = float(np.abs(trunc.data_zyx).max())
    np.testing.assert_allclose(got.data_zyx, trunc.data_zyx, atol=1e-5 * scale)
    # any radial filter is the same as weighting every reflection by its d: here a B-factor
    b = 25.0
    weighted = mtz_map(
        read_mtz(mtz_file(tmp_path, "b.mtz", cell, sg_name, hkl, amp * np.exp(-b * inv_d**2 / 4), phase)),
        "FWT",
        "PHWT",
        0.7,
    )
    np.testing.assert_allclose(apply_bfactor(m, b).data_zyx, weighted.data_zyx, atol=1e-5 * scale)
    # ignoring the angles (the former per-axis formula) would not pass: the comparison discriminates
    naive = DensityMap(m.data_zyx, m.voxel_size_xyz_A)
    assert np.abs(lowpass(naive, d_cut, edge_width_invA=edge).data_zyx - trunc.data_zyx).max() > 1e-2 * scale


def test_shell_amplitudes_of_cell_map_are_per_reflection_means(tmp_path):
    hkl, amp, phase = symmetric_coefficients(HEXAGONAL, "P 1", 2.5, seed=2)
    m = mtz_map(read_mtz(mtz_file(tmp_path, "p1.mtz", HEXAGONAL, "P 1", hkl, amp, phase)), "FWT", "PHWT", 0.8)
    shells = map_resolution_shells(m)
    _, a = shell_amplitudes(m, shells)
    inv_d = inv_d_invA(HEXAGONAL, hkl)
    # the full grid holds every reflection and its Friedel mate (P1), each with |FFT| = const·|F|: a shell's mean
    # is const·2·Σ|F| / count over the reflections gemmi's d puts in it
    k = np.floor(inv_d / shells.width_invA + 0.5).astype(int)
    sel = (k >= 1) & (k < shells.n - 1)
    for shell in (3, 6, 9):
        ref = amp[sel & (k == shell)].sum() * 2
        count = shells.count()[shell]
        ratio = a[shell] * count / ref
        if shell == 3:
            scale = ratio
        assert ratio == pytest.approx(scale, rel=1e-4)


def test_b_then_minus_b_and_fsc_of_itself_on_sheared_cells():
    for cell in (MONOCLINIC, HEXAGONAL, TRICLINIC):
        m = lowpass(cell_map(cell), 3.0)
        back = apply_bfactor(apply_bfactor(m, 40.0), -40.0)
        np.testing.assert_allclose(back.data_zyx, m.data_zyx, atol=1e-4 * float(np.abs(m.data_zyx).max()))
        noisy = cell_map(cell, seed=5)
        curve = fsc_curve(noisy, noisy)
        np.testing.assert_allclose(curve.fsc[1:], 1.0, atol=1e-6)
        assert len(curve.fsc) == map_resolution_shells(noisy).n
        other = fsc_curve(noisy, cell_map(cell, seed=6))
        assert np.all(np.abs(other.fsc[2:]) < 5.0 / np.sqrt(other.n_coeffs[2:]))


def test_guinier_fit_recovers_b_of_a_sheared_cell_map(tmp_path):
    b_true = 60.0
    # a flat ("Wilson") random density, blurred by B: the fit on the cell's d-spacings must find B
    hkl, amp, phase = symmetric_coefficients(MONOCLINIC, "C 1 2 1", 2.0, seed=3)
    inv_d = inv_d_invA(MONOCLINIC, hkl)
    amp = np.exp(-b_true * inv_d**2 / 4.0) * (1 + 0 * amp)
    m = mtz_map(read_mtz(mtz_file(tmp_path, "w.mtz", MONOCLINIC, "C 1 2 1", hkl, amp, phase)), "FWT", "PHWT", 0.67)
    fit = guinier_fit(m, 2.2)
    assert fit.b_A2 == pytest.approx(b_true, rel=0.01)
    assert fit.correlation < -0.999


def test_global_filter_consistency_and_normalisation_on_sheared_cells():
    m = lowpass(cell_map(HEXAGONAL), 3.0)
    shells = corner_shells(m)
    assert np.all(shells.index >= 0)  # every coefficient, corners included, has a shell
    np.testing.assert_allclose(apply_global_filter(m, m).data_zyx, m.data_zyx, atol=1e-5)
    chk = consistency_check(apply_bfactor(m, -30.0), m, 4.0)
    assert chk.is_consistent and chk.fsc_min > 0.999  # a B varies a little across a shell
    stats = map_norm_stats(m, NormKind.ROBUST_MAP)
    assert stats == norm_stats(m.data_zyx, NormKind.ROBUST_MAP, m.voxel_size_xyz_A, grid_angles_deg(m))


# ------------------------------------------------------------------------------------------------ orthogonal: unchanged
def old_frequency_grid(shape, vox):  # type: ignore[no-untyped-def]
    """The formula densharp used before sheared cells (per-axis frequencies)."""
    nz, ny, nx = shape
    sz = scipy.fft.fftfreq(nz, d=vox[2]).reshape(-1, 1, 1)
    sy = scipy.fft.fftfreq(ny, d=vox[1]).reshape(1, -1, 1)
    sx = scipy.fft.rfftfreq(nx, d=vox[0]).reshape(1, 1, -1)
    return np.sqrt(sz * sz + sy * sy + sx * sx)


def test_orthogonal_maps_are_bit_identical_to_the_former_formulas(atom_map):
    shape, vox = atom_map.shape_zyx, atom_map.voxel_size_xyz_A
    s_old = old_frequency_grid(shape, vox)
    for angles in (None, (90.0, 90.0, 90.0)):
        assert np.array_equal(frequency_grid_invA(shape, vox, angles), s_old)
        sh = resolution_shells(shape, vox, angles_deg=angles)
        width = 1.0 / min(n * v for n, v in zip(shape[::-1], vox))
        assert sh.width_invA == width
        old_idx = np.floor(s_old / width + 0.5).astype(np.int64)
        old_idx[old_idx >= sh.n] = -1
        assert np.array_equal(sh.index, old_idx)
    # a map with an explicit 90° cell filters exactly like the bare box
    with_cell = DensityMap(atom_map.data_zyx, vox, cell_A_deg=atom_map.cell)
    assert grid_angles_deg(with_cell) is None
    for fn in (lambda x: lowpass(x, 3.0), lambda x: apply_bfactor(x, -30.0)):
        assert np.array_equal(fn(with_cell).data_zyx, fn(atom_map).data_zyx)
    assert np.array_equal(shell_amplitudes(with_cell)[1], shell_amplitudes(atom_map)[1])
    assert np.array_equal(auto_molecule_mask(with_cell), auto_molecule_mask(atom_map))
    # and a radial filter is the former computation, to the bit
    from densharp.fourier import centred_for_fft, irfft_map, restore_centred

    y, off, sc = centred_for_fft(atom_map.data_zyx)
    f = rfft_map(y)
    f *= np.asarray(np.exp(30.0 * s_old**2 / 4.0), dtype=np.float32)
    old = restore_centred(irfft_map(f, shape), off, sc, 1.0)
    assert np.array_equal(apply_radial_filter(atom_map, lambda s: np.exp(30.0 * s**2 / 4.0)).data_zyx, old)


def test_orthogonal_p1_mtz_grid_is_the_former_one():
    import scipy.fft as sf

    rng = np.random.default_rng(0)
    for _ in range(200):
        edges = rng.uniform(8.0, 160.0, 3)
        voxel = float(rng.uniform(0.4, 1.5))
        old = []
        for e in edges:
            n = int(sf.next_fast_len(int(np.ceil(e / voxel - 1e-6))))
            old.append(n + n % 2)
        cell = gemmi.UnitCell(*edges, 90, 90, 90)
        assert cell_grid_size(cell, gemmi.SpaceGroup("P 1"), voxel) == tuple(old)
        assert cell_grid_size(cell, None, voxel) == tuple(old)


# ------------------------------------------------------------------------------------------------ grids for the space group
@pytest.mark.parametrize("sg_name", sorted(REAL_CELLS))
@pytest.mark.parametrize("voxel", [1.705 / 3, 1.14, 2.0 / 3, 0.93])
def test_cell_grid_suits_the_space_group(sg_name, voxel):
    cell, sg = gemmi.UnitCell(*REAL_CELLS[sg_name]), gemmi.SpaceGroup(sg_name)
    size = cell_grid_size(cell, sg, voxel)
    assert all(n % 2 == 0 for n in size)
    assert all(e / n <= voxel + 1e-9 for e, n in zip((cell.a, cell.b, cell.c), size))
    facs = sg.operations().find_grid_factors()
    assert all(n % f == 0 for n, f in zip(size, facs))
    for i, j in symmetric_axes(sg):
        assert size[i] == size[j]
    g = gemmi.FloatGrid()
    g.spacegroup, g.unit_cell = sg, cell
    g.set_size(*size)  # raises if gemmi finds the grid incompatible with the space group


def test_hewl_grid_that_gemmi_refused_is_fixed():
    # P4₃2₁2 needs c divisible by 4; at 1.14 Å densharp used to pick 70 × 70 × 34, which gemmi rejects
    cell, sg = gemmi.UnitCell(*REAL_CELLS["P 43 21 2"]), gemmi.SpaceGroup("P 43 21 2")
    g = gemmi.FloatGrid()
    g.spacegroup, g.unit_cell = sg, cell
    with pytest.raises(RuntimeError, match="not compatible"):
        g.set_size(70, 70, 34)
    assert cell_grid_size(cell, sg, 1.14) == (70, 70, 36)
    assert symmetric_axes(sg) == [(0, 1)]
    assert symmetric_axes(gemmi.SpaceGroup("P 1 21 1")) == []


@pytest.mark.parametrize("sg_name", sorted(REAL_CELLS))
def test_mtz_map_is_accepted_and_symmetric(tmp_path, sg_name):
    # the real cells, shrunk so the test stays small (same angles and symmetry)
    cell = tuple(v * 0.45 for v in REAL_CELLS[sg_name][:3]) + REAL_CELLS[sg_name][3:]
    hkl, amp, phase = symmetric_coefficients(cell, sg_name, 2.6, seed=4)
    mtz = read_mtz(mtz_file(tmp_path, "s.mtz", cell, sg_name, hkl, amp, phase))
    m = mtz_map(mtz, "FWT", "PHWT", 2.6 / 3)
    assert m.shape_xyz == cell_grid_size(mtz.cell, mtz.spacegroup, 2.6 / 3)
    assert m.cell == pytest.approx(cell, abs=1e-3) and m.spacegroup == gemmi.SpaceGroup(sg_name).number
    g = gemmi.FloatGrid(np.ascontiguousarray(m.data_zyx.T), mtz.cell, mtz.spacegroup)
    sym = g.clone()
    sym.symmetrize_avg()
    np.testing.assert_allclose(np.array(sym), np.array(g), atol=1e-5 * float(np.abs(m.data_zyx).max()))
    # back to coefficients: the same reflections, amplitudes and phases
    back = map_to_mtz(m, 2.6, mtz.spacegroup)
    got = {tuple(h): (f, p) for h, f, p in zip(back.make_miller_array(), back.column_with_label("FWT").array,
                                               back.column_with_label("PHWT").array)}  # fmt: skip
    assert len(got) == len(hkl)
    ref_amp = np.array([got[tuple(h)][0] for h in hkl])
    np.testing.assert_allclose(ref_amp, amp, atol=1e-4 * amp.max())
    dphi = np.array([got[tuple(h)][1] for h in hkl]) - np.mod(phase, 360)
    strong = amp > 0.05 * amp.max()
    assert np.all(np.abs((dphi[strong] + 180) % 360 - 180) < 0.1)


# ------------------------------------------------------------------------------------------------ cell checks
def test_check_mtz_cell_accepts_sheared_and_refuses_degenerate_cells():
    for sg_name, cell in REAL_CELLS.items():
        check_mtz_cell(coefficients_to_mtz(np.zeros((0, 3)), [], [], gemmi.UnitCell(*cell), gemmi.SpaceGroup(sg_name)))
    flat = coefficients_to_mtz(np.zeros((0, 3)), [], [], gemmi.UnitCell(30, 30, 30, 120, 120, 120), None)
    with pytest.raises(InputError, match="degenerate"):
        check_mtz_cell(flat, "flat.mtz")
    wrong = coefficients_to_mtz(
        np.zeros((0, 3)), [], [], gemmi.UnitCell(40, 40, 50, 90, 90, 90), gemmi.SpaceGroup("P 65 2 2")
    )
    with pytest.raises(InputError, match="metric of its space group"):
        check_mtz_cell(wrong, "wrong.mtz")


def test_sheared_map_input_is_refused_with_a_pointer_to_mtz():
    with pytest.raises(InputError, match="as MTZ"):
        check_orthogonal(cell_map(MONOCLINIC), "crystal.ccp4")


# ------------------------------------------------------------------------------------------------ masks
@pytest.mark.parametrize("angles", [(90.0, 105.0, 90.0), (90.0, 90.0, 120.0), (75.0, 82.0, 104.0)])
def test_sheared_distances_are_cartesian(angles):
    rng = np.random.default_rng(0)
    shape, vox = (10, 12, 14), (1.1, 0.9, 1.3)
    region = rng.random(shape) > 0.995
    o, _ = unit_cell_matrices(angles)
    step = o * np.array(vox)
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1).reshape(-1, 3)[:, ::-1]
    pos = idx @ step.T
    inside = pos[region.ravel()]
    brute = np.min(np.linalg.norm(pos[:, None] - inside[None], axis=2), axis=1).reshape(shape)
    np.testing.assert_allclose(distance_from_region_A(region, vox, angles), brute, atol=1e-9)
    # a whole cell wraps around: the nearest periodic image counts (beyond max_A: inf)
    lattice = step * np.array(shape[::-1])
    images = np.concatenate([inside + lattice @ np.array(n) for n in np.ndindex(3, 3, 3)]) - lattice.sum(axis=1)
    brute_p = np.min(np.linalg.norm(pos[:, None] - images[None], axis=2), axis=1).reshape(shape)
    got = distance_from_region_A(region, vox, angles, periodic=True, max_A=5.0)
    near = brute_p <= 5.0
    np.testing.assert_allclose(got[near], brute_p[near], atol=1e-9)
    assert np.all(np.isinf(got[~near]))


def test_cartesian_distance_reduces_to_scipy_on_orthogonal_axes():
    region = np.random.default_rng(1).random((12, 10, 14)) > 0.99
    vox = (1.0, 1.1, 0.9)
    edt = ndimage.distance_transform_edt(~region, sampling=vox[::-1])
    np.testing.assert_allclose(distance_from_region_A(region, vox, (90.0, 90.0, 90.0)), edt, atol=1e-9)
    assert np.array_equal(distance_from_region_A(region, vox), edt)


def test_soft_mask_on_a_sheared_cell_is_round_in_cartesian_space():
    cell = HEXAGONAL
    shape = (44, 36, 36)
    m = DensityMap(np.zeros(shape, np.float32), (1.0, 1.0, 1.0), cell_A_deg=cell, sampling_xyz=(36, 36, 44))
    data = np.zeros(shape, np.float32)
    data[0, 0, 0] = 1.0  # one voxel at the cell origin; the mask wraps around the cell's corners
    mask = soft_mask_from_threshold(m.with_data(data), 0.5, dilate_A=3.0, soft_edge_A=4.0)
    o, _ = unit_cell_matrices(cell[3:])
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1)[..., ::-1]
    frac = idx / np.array(shape[::-1])
    frac -= np.rint(frac)  # nearest image of the origin (a short cell vector suffices for this cell)
    r = np.linalg.norm((frac * np.array(cell[:3])) @ o.T, axis=-1)
    expect = 0.5 * (1 + np.cos(np.pi * np.clip((r - 3.0) / 4.0, 0, 1)))
    np.testing.assert_allclose(mask, expect, atol=1e-5)


# ------------------------------------------------------------------------------------------------ sharpening, CLI
def wilson_mtz(tmp_path: Path, name: str, cell, sg_name: str) -> Path:  # type: ignore[no-untyped-def]
    """Coefficients to 2 Å of a random symmetric density blurred by B = 50 Å²."""
    hkl, amp, phase = symmetric_coefficients(cell, sg_name, 2.0, b_A2=50.0, seed=7)
    return mtz_file(tmp_path, name, cell, sg_name, hkl, amp, phase)


@pytest.mark.parametrize(("cell", "sg_name"), [(MONOCLINIC, "C 1 2 1"), (HEXAGONAL, "P 65 2 2")])
def test_classical_sharpening_of_sheared_cells(tmp_path, cell, sg_name):
    mtz = read_mtz(wilson_mtz(tmp_path, "w.mtz", cell, sg_name))
    m = mtz_map(mtz, "FWT", "PHWT", 2.0 / 3)
    res = sharpen_autob(m, 2.0)
    assert res.guinier is not None and res.guinier.b_A2 == pytest.approx(50.0, abs=8.0)
    assert res.b_sharpen_A2 > 0
    fixed = sharpen_fixed_b(m, 30.0, 3.0)
    assert fixed.map.cell == m.cell and np.isfinite(fixed.map.data_zyx).all()


@pytest.mark.parametrize(("cell", "sg_name"), [(MONOCLINIC, "C 1 2 1"), (HEXAGONAL, "P 65 2 2")])
def test_cli_sharpens_sheared_mtz(tmp_path, cell, sg_name):
    from densharp.cli import main

    src = wilson_mtz(tmp_path, "in.mtz", cell, sg_name)
    sg = gemmi.SpaceGroup(sg_name)
    runs = {
        "autob.ccp4": ["--method", "autob"],
        "bfactor.ccp4": ["--method", "bfactor", "--b-factor", "-30", "--resolution", "3"],
    }
    for out, flags in runs.items():
        assert main(["sharpen", str(src), *flags, "-o", str(tmp_path / out)]) == 0
        ccp4 = gemmi.read_ccp4_map(str(tmp_path / out))
        assert ccp4.grid.spacegroup.number == sg.number
        uc = ccp4.grid.unit_cell
        assert (uc.a, uc.b, uc.c, uc.alpha, uc.beta, uc.gamma) == pytest.approx(cell, abs=1e-3)
        assert (tmp_path / out).with_suffix(".json").is_file()


def test_cli_autob_on_the_hewl_cell_at_3p5A(tmp_path):
    # at 3.5 Å (grid spacing 1.17 Å) densharp used to grid HEWL's P4₃2₁2 cell 70 × 70 × 34 and gemmi refused it
    from densharp.cli import main

    cell = REAL_CELLS["P 43 21 2"]
    hkl, amp, phase = symmetric_coefficients(cell, "P 43 21 2", 3.0, b_A2=40.0, seed=8)
    src = mtz_file(tmp_path, "hewl.mtz", cell, "P 43 21 2", hkl, amp, phase)
    out = tmp_path / "hewl.ccp4"
    assert main(["sharpen", str(src), "--method", "autob", "--resolution", "3.5", "-o", str(out)]) == 0
    grid = gemmi.read_ccp4_map(str(out)).grid
    assert grid.shape == (70, 70, 36) and grid.spacegroup.hm == "P 43 21 2"
