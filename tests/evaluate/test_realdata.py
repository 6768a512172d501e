"""Real-data scoring (densharp.evaluate.realdata, densharp.metrics.consistency) on tiny synthetic stand-in cases.

Each test builds its own case folder (case.json + a small map or MTZ + a tiny model) in tmp_path, laid out like
the folders fetch_real.py builds; the real files are never read.
"""

from __future__ import annotations

import json

import gemmi
import numpy as np
import pytest

from bench_loader import load_benchmark  # tests/ is on pytest's pythonpath
from densharp.errors import InputError
from densharp.evaluate.realdata import (
    RealCase,
    coefficient_map,
    coefficients_mtz,
    find_cases,
    load_cases,
    model_mask,
    molecule_sections,
    score_em_case,
    score_xray_case,
    sharpened_bfactors,
    super_resolution_A,
    write_truncated_mtz,
    xray_mode,
)
from densharp.fourier import apply_bfactor, irfft_map, lowpass, rfft_map
from densharp.io.maps import write_map
from densharp.io.mtz import mtz_map, read_mtz
from densharp.metrics.consistency import amplitude_ratio, consistency_check, em_band_A
from densharp.volume import DensityMap
from synth import density_map, helix_structure

VOXEL_XYZ = (0.9, 1.1, 1.0)
SHAPE_ZYX = (36, 32, 40)
ORIGIN_XYZ = (100.0, -50.0, 20.0)  # a zone-like map: its position is in the MRC ORIGIN field
D_EM = 4.0


def _em_model() -> gemmi.Structure:
    centre = np.asarray(ORIGIN_XYZ) + np.array([40 * 0.9, 32 * 1.1, 10.0]) / 2
    return helix_structure(16, seed=2, b_iso=30.0, center=tuple(centre))


def _write_case(folder, kind: str, resolution, files: dict, labels=None, approx=None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rec = {
        "name": folder.name,
        "kind": kind,
        "resolution": resolution,
        "resolution_approx": approx,
        "flags": ["synthetic"],
        "labels": labels,
        "files": files,
        "molecule": "test helix",
    }
    (folder / "case.json").write_text(json.dumps(rec), encoding="utf-8")


@pytest.fixture(scope="module")
def em_root(tmp_path_factory):
    """Two EM cases (one with a fitted model, one without), one with a missing file, one non-case folder."""
    root = tmp_path_factory.mktemp("realdata")
    st = _em_model()
    m = density_map(st, VOXEL_XYZ, SHAPE_ZYX, ORIGIN_XYZ, d_min_A=D_EM, b_extra_A2=60.0)
    d = root / "em_helix"
    _write_case(d, "real_em", None, {"map": "helix.mrc", "model": "helix.pdb", "half1": None}, approx=D_EM)
    write_map(d / "helix.mrc", m)
    st.write_pdb(str(d / "helix.pdb"))
    d2 = root / "em_nomodel"
    _write_case(d2, "real_em", 5.0, {"map": "m.mrc"})
    write_map(d2 / "m.mrc", m)
    _write_case(root / "em_broken", "real_em", 3.0, {"map": "absent.mrc"})
    (root / "_downloads").mkdir()
    return root


@pytest.fixture(scope="module")
def xray_root(tmp_path_factory):
    """An X-ray case at 1.8 Å: simulated map coefficients (phase errors) of a helix in a P1 cell, and the model."""
    from densharp.simulate.crystal import simulate_crystal

    root = tmp_path_factory.mktemp("realxray")
    st = helix_structure(12, seed=4, b_iso=15.0, center=(12.0, 11.0, 5.0))
    st.cell = gemmi.UnitCell(24.0, 22.0, 26.0, 90, 90, 90)
    st.spacegroup_hm = "P 1"
    sim = simulate_crystal(st, 1.8, np.random.default_rng(0), missing_fraction_range=(0.0, 0.0))
    d = root / "xtal_helix_1p8A"
    _write_case(d, "real_xtal", 1.8, {"mtz": "helix.mtz", "model": "helix.pdb"}, labels={"f": "FWT", "phi": "PHWT"})
    sim.mtz.write_to_file(str(d / "helix.mtz"))
    st.write_pdb(str(d / "helix.pdb"))
    return root


# ----------------------------------------------------------------------------------------------- loading
def test_load_cases_reads_roles_and_reports_missing_files(em_root, xray_root):
    cases, skipped = find_cases(em_root)
    assert [c.name for c in cases] == ["em_helix", "em_nomodel"]
    helix = cases[0]
    assert helix.kind == "em" and helix.resolution_A == D_EM and helix.is_resolution_approx
    assert helix.has_model and not cases[1].has_model
    assert all(p.is_absolute() and p.is_file() for p in helix.files.values())
    assert set(helix.files) == {"map", "model"}  # null roles dropped
    assert "em_broken" in skipped and "absent.mrc" in skipped["em_broken"]
    assert [c.name for c in load_cases(em_root, kinds=("xray",))] == []
    assert [c.name for c in load_cases(em_root, names=["nomodel"])] == ["em_nomodel"]
    _, sk = find_cases(em_root, names=["nothing-like-this"])
    assert "nothing-like-this" in sk
    (x,) = load_cases(xray_root)
    assert x.kind == "xray" and x.labels == {"f": "FWT", "phi": "PHWT"} and xray_mode(x)[0] == "truncate"
    with pytest.raises(InputError):
        find_cases(em_root / "absent")


def test_xray_mode_choices():
    def case(res, files):
        return RealCase("c", "xray", res, False, (), {k: __file__ for k in files})

    assert xray_mode(case(1.9, ["mtz"]))[0] == "truncate"
    assert xray_mode(case(2.5, ["mtz"]))[0] == "own-data"
    assert xray_mode(case(3.4, ["mtz"]))[0] is None
    assert "map only" in xray_mode(case(1.7, ["map"]))[1]
    assert "phases" in xray_mode(case(1.5, ["mtz_obs"]))[1]


# ----------------------------------------------------------------------------------------------- consistency
@pytest.fixture(scope="module")
def em_map(em_root):
    from densharp.io.maps import read_map

    return read_map(em_root / "em_helix" / "helix.mrc")


def _random_phases(m: DensityMap, seed: int = 0) -> DensityMap:
    f = rfft_map(m.data_zyx)
    ph = np.exp(2j * np.pi * np.random.default_rng(seed).random(f.shape))
    return m.with_data(irfft_map(np.abs(f) * ph, m.shape_zyx))


def test_consistency_identity_filters_pass_and_destruction_fails(em_map):
    band = em_band_A(D_EM)
    same = consistency_check(em_map, em_map, band)
    assert same.fsc_min == pytest.approx(1.0, abs=1e-6) and same.is_consistent and same.n_shells >= 3
    assert consistency_check(apply_bfactor(em_map, -80.0), em_map, band).is_consistent  # a B-factor is a shell scale
    for bad in (em_map.with_data(-em_map.data_zyx), lowpass(em_map, 15.0), _random_phases(em_map)):
        # sign flip, a low-pass inside the band (shells coarser than 2d = 8 Å of this 35 Å box), new phases
        assert not consistency_check(bad, em_map, band).is_consistent
    with pytest.raises(InputError, match="too small"):
        consistency_check(em_map, em_map, 200.0)
    ar = amplitude_ratio(em_map, em_map)
    assert np.allclose(ar.ratio[np.isfinite(ar.ratio)], 1.0) and ar.band(np.inf, 8.0) == pytest.approx(1.0)


# ----------------------------------------------------------------------------------------------- cryo-EM scoring
def test_score_em_case_identity_and_destructive_outputs(em_root):
    (case,) = load_cases(em_root, names=["em_helix"])

    def same(m, d, t):
        return m, {"method_used": "identity"}

    def negated(m, d, t):
        return m.with_data(-m.data_zyx)

    def blurred(m, d, t):
        return lowpass(m, 15.0)

    def failing(m, d, t):
        raise RuntimeError("boom")

    def wrong_grid(m, d, t):
        return m.crop((1, 1, 1), (8, 8, 8))

    rec = score_em_case(case, {"same": same, "neg": negated, "lp15": blurred, "fail": failing, "grid": wrong_grid})
    json.dumps(rec)  # JSON-ready
    meths = rec["methods"]
    assert rec["d_super_A"] == pytest.approx(super_resolution_A(D_EM, VOXEL_XYZ), abs=1e-4)
    assert rec["model_atoms_in_box"] == 1.0
    inp = meths["input"]
    # the model superposes only because ORIGIN was honoured: the restore target must match the input well
    assert inp["rscc_restore"] > 0.8
    for key in ("input", "same"):
        r = meths[key]
        assert r["consistency"]["fsc_min"] == pytest.approx(1.0, abs=1e-6) and r["consistency"]["is_consistent"]
        assert all(v == pytest.approx(1.0, abs=1e-5) for v in r["amplitude_ratio"]["bands"].values())
        assert r["rscc_restore"] == pytest.approx(inp["rscc_restore"])
    assert meths["same"]["info"] == {"method_used": "identity"}
    for key in ("neg", "lp15"):
        assert not meths[key]["consistency"]["is_consistent"]
    assert meths["neg"]["rscc_restore"] == pytest.approx(-inp["rscc_restore"], abs=1e-6)
    assert "boom" in meths["fail"]["error"] and "grid" in meths["grid"]["error"]
    assert {"input", "same", "neg", "lp15", "model restore", "model super"} <= set(rec["slices"])


def test_score_em_case_without_model_is_model_free(em_root):
    (case,) = load_cases(em_root, names=["em_nomodel"])
    rec = score_em_case(case, {"same": lambda m, d, t: m}, keep_slices=False)
    r = rec["methods"]["same"]
    assert "rscc_restore" not in r and r["consistency"]["is_consistent"] and "slices" not in rec


def _one_atom(xyz) -> gemmi.Structure:
    st = gemmi.Structure()
    model = gemmi.Model(1)
    ch = gemmi.Chain("A")
    res = gemmi.Residue()
    res.name = "GLY"
    a = gemmi.Atom()
    a.name, a.element = "CA", gemmi.Element("C")
    a.pos = gemmi.Position(*xyz)
    res.add_atom(a)
    ch.add_residue(res)
    model.add_chain(ch)
    st.add_model(model)
    return st


def test_model_mask_is_exact_and_does_not_wrap(em_map):
    # one atom on a voxel centre just inside the low-x face of the box (x index 1, y index 15, z index 18)
    st = _one_atom((ORIGIN_XYZ[0] + 0.9, ORIGIN_XYZ[1] + 15 * 1.1, ORIGIN_XYZ[2] + 18.0))
    mask = model_mask(st, em_map, dilate_A=3.0, soft_edge_A=3.0)
    assert mask.shape == em_map.shape_zyx and mask[18, 15, 1] == 1.0
    # 4.5 Å away along x (5 voxels of 0.9 Å): halfway down the 3 Å cosine edge
    assert mask[18, 15, 6] == pytest.approx(0.5, abs=1e-5)
    assert mask[:, :, -8:].max() == 0.0  # nothing wrapped round to the far face
    # a crystal cell narrower than the mask's reach: the lattice translates of the atom fill the thin axis
    cell = DensityMap(
        np.zeros((30, 30, 8), np.float32), (0.5, 1.0, 1.0), sampling_xyz=(8, 30, 30), cell_A_deg=(4, 30, 30, 90, 90, 90)
    )
    thin = model_mask(_one_atom((0.0, 15.0, 15.0)), cell, periodic=True)
    assert thin[15, 15, :].min() == 1.0 and thin[15, 0, :].max() == 0.0
    sharp, shift = sharpened_bfactors(_em_model(), median_A2=20.0)
    assert shift == pytest.approx(10.0) and max(c.atom.b_iso for c in sharp[0].all()) == pytest.approx(20.0)
    sec = molecule_sections(em_map, np.asarray(ORIGIN_XYZ) + 15.0, 8.0)
    assert np.asarray(sec["xy"]).shape == (17, 19)  # ±8 Å: rows y (1.1 Å: ±8 voxels), columns x (0.9 Å: ±9)


# ----------------------------------------------------------------------------------------------- X-ray
def test_truncation_keeps_only_reflections_at_or_above_the_cut(xray_root, tmp_path):
    src = read_mtz(xray_root / "xtal_helix_1p8A" / "helix.mtz")
    info = write_truncated_mtz(src, tmp_path / "t.mtz", "FWT", "PHWT", 3.0)
    t = read_mtz(tmp_path / "t.mtz")
    d = np.asarray(t.make_d_array())
    assert [c.label for c in t.columns] == ["H", "K", "L", "FWT", "PHWT"]
    assert d.min() >= 3.0 - 1e-6 and t.spacegroup.hm == src.spacegroup.hm
    n_expected = int((np.asarray(src.make_d_array()) >= 3.0).sum())
    assert t.nreflections == n_expected == info["reflections"] < src.nreflections


def test_full_resolution_reference_lies_on_the_output_grid(xray_root):
    src = read_mtz(xray_root / "xtal_helix_1p8A" / "helix.mtz")
    out_like = mtz_map(coefficients_mtz(src, "FWT", "PHWT", 3.0), "FWT", "PHWT", 1.0)  # a 3 Å output's grid
    ref = coefficient_map(src, out_like)
    assert ref.same_grid(out_like) and ref.cell == out_like.cell and ref.shape_xyz == out_like.shape_xyz
    # on a grid fine enough for every reflection it is the map of all of them
    fine = mtz_map(src, "FWT", "PHWT", 0.6)
    assert np.corrcoef(coefficient_map(src, fine).data_zyx.ravel(), fine.data_zyx.ravel())[0, 1] > 0.99999
    # on the coarse grid: the reflections it can carry, none aliased
    assert 0.5 < np.corrcoef(ref.data_zyx.ravel(), lowpass(out_like, 3.0).data_zyx.ravel())[0, 1] < 0.999


def test_score_xray_case_identity_and_negated(xray_root, tmp_path):
    (case,) = load_cases(xray_root)

    def same(path, d):
        return mtz_map(read_mtz(path), "FWT", "PHWT", d / 3.0)

    def negated(path, d):
        m = same(path, d)
        return m.with_data(-m.data_zyx)

    rec = score_xray_case(case, {"same": same, "neg": negated}, cuts_A=(3.0,), workdir=tmp_path)
    json.dumps(rec)
    (run,) = rec["runs"]
    assert run["mtz"]["d_high_A"] >= 3.0 - 1e-3
    assert (tmp_path / "xtal_helix_1p8A_3A.mtz").is_file()
    r_in, r_same, r_neg = (run["methods"][k] for k in ("input", "same", "neg"))
    assert r_same["consistency"]["fsc_min"] == pytest.approx(1.0, abs=1e-5) and r_same["consistency"]["is_consistent"]
    assert all(v == pytest.approx(1.0, abs=1e-5) for v in r_same["amplitude_ratio"]["bands"].values() if v)
    assert not r_neg["consistency"]["is_consistent"]
    # the truncated map resembles the full-resolution one, but is not it
    assert 0.5 < r_in["rscc_data_full"] < 0.99 and r_same["rscc_data_full"] == pytest.approx(r_in["rscc_data_full"])
    assert r_in["rscc_model_super"] > 0.3 and r_in["d_fine_A"] >= 1.8
    assert {"input", "same", "neg"} <= set(rec["slices"])


def test_bench_real_runs_the_cli_on_stand_in_cases(em_root, xray_root, tmp_path, capsys):
    mod = load_benchmark("bench_real")
    out = tmp_path / "out"
    rc = mod.main(["--realdata", str(em_root), "--methods", "autob", "--out", str(out), "--no-figures"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "em_helix" in text and "summary" in text and "em_broken" in text
    run = json.loads((out / "bench_real.json").read_text())
    (helix,) = [c for c in run["cases"] if c["case"] == "em_helix"]
    assert helix["methods"]["autob"]["info"]["method_used"] == "autob"
    assert (out / "bench_real.csv").read_text().count("\n") >= 4


def test_bench_real_summary_pairs_each_output_with_the_input_on_its_own_grid():
    mod = load_benchmark("bench_real")
    # an output on a finer grid than the input row: its reference is harder, and so is the input's on that grid
    methods = {
        "input": {"rscc_data_full": 0.77, "rscc_model_super": 0.65},
        "default": {
            "rscc_data_full": 0.76,
            "rscc_model_super": 0.66,
            "input_on_this_grid": {"rscc_data_full": 0.72, "rscc_model_super": 0.62},
        },
    }
    rec = {"case": "x", "kind": "xray", "mode": "truncate", "runs": [{"d_A": 3.5, "methods": methods}]}
    table = mod.summary_table([rec], ["default"])
    assert "0.760 (+0.040, 1/1)" in table and "0.660 (+0.040, 1/1)" in table
    (row,) = [r for r in mod.csv_rows([rec]) if r["method"] == "default"]
    assert row["rscc_data_full_input_same_grid"] == 0.72


def test_bench_real_bands_of_an_unchanged_map_are_neutral(em_root, tmp_path, capsys):
    """The input as its own 'output': every ratio is 1 and swapping any band changes nothing."""
    import dataclasses

    from densharp.fourier import apply_bfactor
    from densharp.io.maps import read_map, write_map

    mod = load_benchmark("bench_real_bands")
    case = em_root / "em_helix"
    assert mod.main([str(case), str(case / "helix.mrc")]) == 0
    rows = [ln.split() for ln in capsys.readouterr().out.splitlines() if ln[:1] == " " and "-" in ln.split()[0]]
    assert len(rows) >= 8
    whole = None
    for r in rows:
        assert float(r[1]) == pytest.approx(1.0, abs=0.01) and float(r[2]) > 0
        whole = whole or float(r[3])
        assert float(r[3]) == pytest.approx(whole, abs=1e-4)
    m = read_map(case / "helix.mrc")
    sharp = tmp_path / "sharp.mrc"
    write_map(sharp, apply_bfactor(m, -50.0))  # a known sharpening: the ratio must rise with resolution
    assert mod.main([str(case), str(sharp)]) == 0
    rows = [ln.split() for ln in capsys.readouterr().out.splitlines() if ln[:1] == " " and "-" in ln.split()[0]]
    ratios = [float(r[1]) for r in rows if float(r[0].split("-")[1]) >= D_EM]  # the stand-in map ends at 4 Å
    assert len(ratios) == 8 and ratios == sorted(ratios) and ratios[-1] > 1.4 and ratios[0] < 0.8, ratios
    other = tmp_path / "shifted.mrc"
    write_map(other, dataclasses.replace(m, origin_xyz_A=(0.0, 0.0, 0.0)))  # same data, moved: not the case's grid
    assert mod.main([str(case), str(other)]) == 2
    assert "grid" in capsys.readouterr().err


def test_bench_xray_ceiling_gains_grow_with_the_true_reflections(xray_root, capsys):
    mod = load_benchmark("bench_xray_ceiling")
    assert mod.main(["--realdata", str(xray_root)]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("xtal_helix")]
    assert len(lines) == 2  # cut at 3.0 and 3.5 Å
    for ln in lines:
        gains = [float(t.strip("()")) for t in ln.split() if t.startswith("(")]
        assert 0 < gains[0] < gains[1] <= gains[2] + 1e-3, ln
    assert mod.main(["--realdata", str(xray_root), "--cases", "no-such-case"]) == 2


def test_bench_norm_scale_refuses_bad_factors_and_cases(em_root, capsys):
    mod = load_benchmark("bench_norm_scale")
    assert mod.main([str(em_root / "em_helix"), "--factors", "1,-2"]) == 2
    assert "positive" in capsys.readouterr().err
    assert mod.main([str(em_root / "em_nomodel")]) == 2
    assert "fitted model" in capsys.readouterr().err


def test_bench_real_headroom_oracles_bound_a_blurred_output(em_root, tmp_path, capsys):
    """The input as its own output mixes to itself; a blurred output is beaten by the input, and its oracles undo
    most of the blur (a per-shell gain can), so they score above it."""
    from densharp.fourier import apply_bfactor
    from densharp.io.maps import read_map, write_map

    mod = load_benchmark("bench_real_headroom")
    case = em_root / "em_helix"

    def run(path):
        assert mod.main([str(case), str(path)]) == 0
        lines = capsys.readouterr().out.splitlines()
        rows = {
            ln.split()[0]: [float(t) for t in ln.split()[1:]]
            for ln in lines
            if ln.split()[:1] in (["input"], ["output"])
        }
        (blend,) = [ln for ln in lines if ln.startswith("blend")]
        return rows, [float(t) for t in blend.split(":", 1)[1].split()[1::2]]

    rows, blend = run(case / "helix.mrc")
    assert rows["input"] == pytest.approx(rows["output"], abs=1e-4)
    assert len(blend) == 11 and max(blend) - min(blend) < 1e-4
    blurred = tmp_path / "blurred.mrc"
    write_map(blurred, apply_bfactor(read_map(case / "helix.mrc"), 150.0))
    rows, blend = run(blurred)
    assert rows["output"][0] < rows["input"][0] - 0.02
    assert rows["output"][1] > rows["output"][0] + 0.01 and rows["output"][2] > rows["output"][0] + 0.01
    assert blend[0] == pytest.approx(rows["input"][0], abs=1e-4) and blend[-1] == pytest.approx(
        rows["output"][0], abs=1e-4
    )
    assert mod.main([str(em_root / "em_nomodel"), str(blurred)]) == 2
