from __future__ import annotations

import json

import gemmi
import numpy as np
import pytest

from densharp.io.mtz import write_mtz
from densharp.simulate.crystal import (
    CoefficientKind,
    CrystalOptions,
    cell_grid_size,
    count_symmetry_clashes,
    kappa_from_fom,
    place_in_cell,
    simulate_crystal,
)

#: X-ray scattering at s = 0 (electrons) of the elements in the synthetic models
Z = {"C": 6, "N": 7, "O": 8, "S": 16}


def _globule():
    from synth import globule_structure

    return globule_structure(400, 11.0, seed=0)


def _quiet(**kw) -> CrystalOptions:
    """Options with every reflection listed and no waters or alternate conformations (clean comparisons)."""
    base = {
        "margin_A": 14.0,
        "waters_per_residue_range": (0.0, 0.0),
        "alt_conformation_fraction_range": (0.0, 0.0),
        "low_resolution_cut_range_A": (1e4, 1e4),
        "low_resolution_missing_range": (0.0, 0.0),
    }
    base.update(kw)
    return CrystalOptions(**base)


def _coefficients(mtz: gemmi.Mtz, f: str, phi: str) -> np.ndarray:
    amp = np.asarray(mtz.column_with_label(f).array, dtype=np.float64)
    return amp * np.exp(1j * np.radians(np.asarray(mtz.column_with_label(phi).array, dtype=np.float64)))


def _cc(a: np.ndarray, b: np.ndarray, sel: np.ndarray) -> float:
    ok = sel & np.isfinite(a) & np.isfinite(b)
    return float(
        np.real(np.sum(a[ok] * np.conj(b[ok]))) / np.sqrt(np.sum(np.abs(a[ok]) ** 2) * np.sum(np.abs(b[ok]) ** 2))
    )


def _in_spacegroup(st: gemmi.Structure, cell: tuple[float, ...], sg: str) -> gemmi.Structure:
    out = st.clone()
    out.cell = gemmi.UnitCell(*cell)
    out.spacegroup_hm = gemmi.SpaceGroup(sg).xhm()
    return out


# ----------------------------------------------------------------------------------------------- P1 boxes
def test_p1_box_map_is_periodic_and_molecule_straddles_faces(helix):
    x = simulate_crystal(helix, 2.5, np.random.default_rng(1))
    d = x.map.data_zyx
    sd = float(d.std())
    assert x.meta["cell_source"] == "P1 box" and x.map.spacegroup == 1 and x.mtz.spacegroup.hm == "P 1"
    assert x.map.grid_sampling_xyz == x.map.shape_xyz and all(n % 2 == 0 for n in x.map.shape_xyz)
    ax = {0: 2, 1: 1, 2: 0}[x.meta["face_axis"]]  # x axis is array axis 2
    for a in range(3):
        across = np.abs(np.take(d, 0, axis=a) - np.take(d, -1, axis=a)).mean()
        inside = np.mean(
            [np.abs(np.take(d, k, axis=a) - np.take(d, k + 1, axis=a)).mean() for k in range(d.shape[a] - 1)]
        )
        assert across < 1.5 * inside + 1e-6 * sd
    face = np.concatenate([np.take(d, 0, axis=ax).ravel(), np.take(d, -1, axis=ax).ravel()])
    assert face.max() > 2 * sd
    json.dumps(x.meta, allow_nan=False)  # every drawn parameter, JSON-ready


def test_mtz_columns_fom_falls_and_reflections_go_missing(helix, tmp_path):
    x = simulate_crystal(helix, 2.0, np.random.default_rng(2), missing_fraction_range=(0.1, 0.1))
    mtz = x.mtz
    for label in ("FP", "SIGFP", "FWT", "PHWT", "FOM", "FC_ALL", "PHIC_ALL", "DELFWT", "PHDELWT", "F_TRUE", "PHI_TRUE"):
        assert mtz.column_with_label(label) is not None, label
    fp = np.asarray(mtz.column_with_label("FP").array)
    assert 0.8 < np.isfinite(fp).mean() < 0.95  # 10 % at random, some low-resolution overloads
    assert x.meta["reflections_observed"] == int(np.isfinite(fp).sum())
    fom = np.asarray(mtz.column_with_label("FOM").array)
    res = 1 / np.sqrt(mtz.make_1_d2_array())
    assert np.nanmean(fom[res > 5]) > np.nanmean(fom[res < 2.5])
    p = tmp_path / "x.mtz"
    write_mtz(p, mtz)
    assert gemmi.read_mtz_file(str(p)).nreflections == mtz.nreflections


def test_kappa_inverts_fom():
    from scipy.special import i0, i1

    m = np.array([0.2, 0.5, 0.7, 0.9])
    k = kappa_from_fom(m)
    assert np.allclose(i1(k) / i0(k), m, atol=0.02)


def test_same_generator_same_crystal(helix):
    a = simulate_crystal(helix, 3.0, np.random.default_rng(5), target_d_min_A=2.5)
    b = simulate_crystal(helix, 3.0, np.random.default_rng(5), target_d_min_A=2.5)
    assert np.array_equal(a.map.data_zyx, b.map.data_zyx) and np.array_equal(a.target.data_zyx, b.target.data_zyx)
    assert a.meta == b.meta


# ----------------------------------------------------------------------------------------------- symmetry
@pytest.mark.parametrize(
    "sg, cell",
    [
        ("P 43 21 2", (36.0, 36.0, 44.0, 90, 90, 90)),
        ("P 1 21 1", (30.0, 26.0, 40.0, 90, 104.0, 90)),
        ("P 65 2 2", (34.0, 34.0, 60.0, 90, 90, 120)),
    ],
)
def test_space_group_map_is_symmetric_and_mtz_is_its_asu(helix, sg, cell):
    st = _in_spacegroup(helix, cell, sg)
    x = simulate_crystal(st, 3.0, np.random.default_rng(0), target_d_min_A=2.5)
    group = gemmi.SpaceGroup(sg)
    assert x.meta["cell_source"] == "CRYST1" and x.mtz.spacegroup.hm == group.hm
    assert x.map.spacegroup == group.number and x.map.cell == pytest.approx(cell)
    hkl = np.asarray(x.mtz.make_miller_array())
    asu = gemmi.ReciprocalAsu(group)
    assert all(asu.is_in(list(map(int, h))) for h in hkl)  # one reflection per orbit
    for m in (x.map, x.target):
        g = gemmi.FloatGrid(np.ascontiguousarray(m.data_zyx.T), gemmi.UnitCell(*cell), group)
        before = np.array(g, copy=True)
        g.symmetrize_avg()  # gemmi refuses a grid that does not fit the space group
        assert np.abs(np.array(g) - before).max() < 1e-4 * before.std()
    # the map is the P1-expanded whole cell: a symmetry operator maps it onto itself
    op = group.operations().sym_ops[1]
    nx, ny, nz = x.map.shape_xyz
    idx = np.stack(np.meshgrid(np.arange(nx), np.arange(ny), np.arange(nz), indexing="ij"), -1).reshape(-1, 3)
    f = idx / np.array([nx, ny, nz])
    img = (f @ (np.asarray(op.rot) / gemmi.Op.DEN).T + np.asarray(op.tran) / gemmi.Op.DEN) * np.array([nx, ny, nz])
    j = np.mod(np.rint(img).astype(int), [nx, ny, nz])
    d = x.map.data_zyx
    assert np.allclose(d[idx[:, 2], idx[:, 1], idx[:, 0]], d[j[:, 2], j[:, 1], j[:, 0]], atol=1e-4 * d.std())


def test_grid_sizes_suit_the_space_group():
    for sg, cell in [("P 43 21 2", (40.3, 40.3, 81.3, 90, 90, 90)), ("P 65 2 2", (71.45, 71.45, 104.2, 90, 90, 120)),
                     ("I 21 3", (173.4, 173.4, 173.4, 90, 90, 90)), ("C 1 2 1", (107.2, 90.6, 70.6, 90, 110.6, 90))]:  # fmt: skip
        group = gemmi.SpaceGroup(sg)
        uc = gemmi.UnitCell(*cell)
        n = cell_grid_size(uc, group, 0.8)
        assert all(k % 2 == 0 for k in n) and all(e / k <= 0.8 + 1e-9 for e, k in zip(cell[:3], n))
        assert all(e / k > 0.8 * 0.8 for e, k in zip(cell[:3], n))  # not much finer than asked
        g = gemmi.FloatGrid(*n)
        g.set_unit_cell(uc)
        g.spacegroup = group
        g.symmetrize_avg()  # raises for an incompatible grid


def test_packed_crystal_has_symmetry_no_clashes_and_realistic_solvent():
    st = _globule()
    opts = CrystalOptions(pack_probability=1.0)
    xst, meta = place_in_cell(st, np.random.default_rng(3), opts, 1.0)
    assert meta["cell_source"] == "packed"
    sg = xst.find_spacegroup()
    assert sg.hm == gemmi.SpaceGroup(meta["spacegroup_packed"]).hm
    xyz = np.array([cra.atom.pos.tolist() for cra in xst[0].all()])
    assert count_symmetry_clashes(xyz, xst.cell, sg, 2.5) <= max(1, len(xyz) // 500)
    assert count_symmetry_clashes(xyz, xst.cell, sg, 8.0) > 0  # neighbours close by: a crystal, not a gas
    assert meta["solvent_fraction_target"] > 0.3 and meta["solvent_fraction_tight_estimate"] < 0.9


def test_cryst1_cell_checks(helix):
    st = _in_spacegroup(helix, (80.0, 80.0, 80.0, 90, 90, 90), "P 21 21 21")  # 60 atoms in 128 000 Å³ per copy
    _, meta = place_in_cell(st, np.random.default_rng(0), CrystalOptions(), 1.0)
    assert meta["cell_source"] == "CRYST1"
    _, meta = place_in_cell(st, np.random.default_rng(0), CrystalOptions(cell_volume_per_atom_range_A3=(20, 90)), 1.0)
    assert meta["cell_source"] == "P1 box" and "volume per atom" in meta["cell_rejected"]
    _, meta = place_in_cell(st, np.random.default_rng(0), CrystalOptions(max_cell_voxels=1000), 1.0)
    assert "voxels" in meta["cell_rejected"]


# ----------------------------------------------------------------------------------------------- bulk solvent
def test_bulk_solvent_is_flat_at_its_level_and_lowers_low_resolution_contrast():
    st = _globule()
    out = {}
    for k_sol in (0.0, 0.35):
        x = simulate_crystal(
            st, 2.5, np.random.default_rng(1), target_d_min_A=2.5, options=_quiet(k_sol_range=(k_sol, k_sol))
        )
        cell = x.structure.cell
        # the map has no F000: put it back (atoms' electrons + the solvent's) to read absolute levels in e/Å³
        solvent_volume = (x.meta["solvent_fraction"] or 0.0) * cell.volume
        f000 = sum(Z[c.atom.element.name] * c.atom.occ for c in x.structure[0].all()) + k_sol * solvent_volume
        g = gemmi.FloatGrid()
        g.spacegroup = gemmi.SpaceGroup("P 1")
        g.set_unit_cell(cell)
        g.set_size(*x.map.shape_xyz)
        far = gemmi.SolventMasker(gemmi.AtomicRadiiSet.Constant, 5.0)
        far.rprobe = far.rshrink = 0.0
        far.put_mask_on_float_grid(g, x.structure[0])
        deep = np.array(g, copy=False).T > 0.5
        tgt = x.target.data_zyx + f000 / cell.volume
        mp = x.map.data_zyx + f000 / cell.volume
        d = np.asarray(x.mtz.make_d_array())
        f = np.asarray(x.mtz.column_with_label("F_TRUE").array)
        low = np.sqrt(np.mean(f[d > 10] ** 2)) / np.sqrt(np.mean(f[(d < 10) & (d > 5)] ** 2))
        out[k_sol] = (tgt[deep].mean(), tgt[deep].std(), tgt[~deep].std(), mp[deep].mean(), low)
        assert k_sol == 0 or 0.4 < x.meta["solvent_fraction"] < 0.9
    lvl0, _, _, _, low0 = out[0.0]
    lvl, sd, sd_prot, map_lvl, low = out[0.35]
    assert abs(lvl0) < 0.02 and abs(lvl - 0.35) < 0.03 and abs(map_lvl - 0.35) < 0.04  # flat, at k_sol
    assert sd < 0.15 * sd_prot
    assert low < 0.6 * low0  # the solvent cancels much of the molecule's low-resolution contrast


# ----------------------------------------------------------------------------------------------- coefficients
def test_refinement_map_beats_its_model_at_low_resolution_and_keeps_its_bias():
    st = _globule()
    better, bias = [], []
    for seed in (0, 1):
        opts = _quiet(misplaced_segment_probability=1.0, missing_residue_fraction_range=(0.1, 0.1))
        x = simulate_crystal(st, 2.5, np.random.default_rng(seed), target_d_min_A=2.5, options=opts)
        assert x.meta["kind"] == "refinement" and x.model is not None
        mtz = x.mtz
        d = np.asarray(mtz.make_d_array())
        true, fwt, fc = (
            _coefficients(mtz, *c) for c in (("F_TRUE", "PHI_TRUE"), ("FWT", "PHWT"), ("FC_ALL", "PHIC_ALL"))
        )
        low = d >= 3.5
        better.append(_cc(fwt, true, low) - _cc(fc, true, low))
        unit = np.ones(len(d), bool)

        def norm(a: np.ndarray) -> np.ndarray:
            return a / np.sqrt(np.nanmean(np.abs(a) ** 2))

        bias.append(_cc(norm(fwt) - norm(true), norm(fc) - norm(true), unit))  # the map's error follows the model's
        assert 0.5 < x.meta["mean_fom"] < 0.97 and all(0 < s < 1 for s in x.meta["sigmaa_shells"])
    assert min(better) > 0.005
    assert min(bias) > 0.2


def test_experimental_maps_are_poorer_than_refinement_maps():
    st = _globule()
    rscc = {}
    for kind in CoefficientKind:
        vals = []
        for seed in (0, 1):
            x = simulate_crystal(st, 2.5, np.random.default_rng(seed), target_d_min_A=2.5, options=_quiet(), kind=kind)
            assert x.meta["kind"] == kind.value
            vals.append(np.corrcoef(x.map.data_zyx.ravel(), x.target.data_zyx.ravel())[0, 1])
        rscc[kind] = np.mean(vals)
    assert rscc[CoefficientKind.REFINEMENT] > 0.75
    assert rscc[CoefficientKind.EXPERIMENTAL] < rscc[CoefficientKind.REFINEMENT] - 0.1


def test_measured_amplitudes_carry_noise_anisotropy_and_incompleteness():
    st = _globule()
    opts = _quiet(aniso_delta_b_range_A2=(30.0, 30.0), aniso_truncation_probability=1.0, i_over_sigma_dmin_range=(1.0, 1.0),
                  low_resolution_cut_range_A=(20.0, 20.0))  # fmt: skip
    x = simulate_crystal(st, 2.5, np.random.default_rng(4), options=opts)
    mtz = x.mtz
    d = np.asarray(mtz.make_d_array())
    assert d.max() <= 20.0 + 1e-6  # nothing beyond the beam stop
    fp = np.asarray(mtz.column_with_label("FP").array)
    sig = np.asarray(mtz.column_with_label("SIGFP").array)
    true = np.asarray(mtz.column_with_label("F_TRUE").array)
    ok = np.isfinite(fp)
    assert x.meta["aniso_truncation"] and ok[d < 2.8].mean() < ok[d > 4].mean()  # the weak directions are cut
    assert np.all(fp[ok] > 0) and np.all(sig[ok] > 0)
    rel = np.abs(fp[ok] - true[ok]) / true[ok]
    assert np.median(rel[d[ok] < 2.8]) > 2 * np.median(rel[d[ok] > 5])  # noise grows with resolution
    ev = x.meta["aniso_b_eigenvalues_A2"]
    assert abs(sum(ev)) < 0.01 and max(ev) - min(ev) > 1.0  # trace-free


def test_model_has_errors(helix):
    st = _globule()
    x = simulate_crystal(
        st, 3.0, np.random.default_rng(7), options=CrystalOptions(missing_residue_fraction_range=(0.1, 0.1))
    )
    m = x.meta["model"]
    assert 0.06 * 3.0 <= m["coordinate_error_rms_A"] <= 0.2 * 3.0 and m["missing_residues"] > 0
    n_true = sum(1 for c in x.structure[0].all() if c.atom.altloc in ("\0", "A"))
    n_model = sum(1 for _ in x.model[0].all())
    assert n_model < n_true


def test_a_model_too_large_for_the_grid_budget_is_cut_to_a_fragment():
    from synth import globule_structure

    st = globule_structure(900, 15.0, seed=2)
    opts = CrystalOptions(max_cell_voxels=20_000)
    xst, meta = place_in_cell(st, np.random.default_rng(0), opts, 1.0)
    assert meta["cropped_from_atoms"] == 900 and 0 < meta["cropped_to_atoms"] < 900
    assert sum(1 for _ in xst[0].all()) == meta["cropped_to_atoms"]
    _, meta = place_in_cell(st, np.random.default_rng(0), CrystalOptions(), 1.0)
    assert "cropped_from_atoms" not in meta
