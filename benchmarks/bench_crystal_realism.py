"""Crystal realism: do simulated 2mFo-DFc maps look like real ones, on the features a network can see?

Compares simulated cells (``densharp.simulate.crystal.simulate_crystal``) of a few corpus structures with the real
2mFo-DFc (or experimental) maps of the X-ray cases in the realdata folder (``--realdata DIR`` or
``$DENSHARP_REALDATA``; used for checking only, nothing from it is copied or trained on). For every map:

- **amplitude profile**: RMS ``|F|`` of the map coefficients per resolution shell divided by that of the 10-6 Å
  shell (the low-resolution contrast a map without bulk solvent gets wrong: its terms beyond 10 Å are 2-3× too
  strong);
- **solvent**: the map on a grid of ``d/3`` over the whole cell, the protein region (Refmac solvent mask of the
  model's protein atoms, symmetry mates included) and the deep solvent (farther than 5 Å from every protein atom):
  ``sd_solv`` = SD in the deep solvent / SD in the protein (flatness), ``gap`` = (mean protein - mean solvent) /
  SD in the protein (contrast of the flat level);
- **map-model agreement**: the complex correlation per shell between the map coefficients and the model's
  atoms-only structure factors (``F_c`` of the case's own model, waters included; for a simulated cell the
  model with errors that phased it), the σA/FOM-like quantity a network sees as "how much the map differs from a
  clean model map", and the mean FOM where the file has one.

The simulated rows are refinement maps (the default kind), an experimental-phasing map and, for reference, the
former simulation (no bulk solvent, no measurement model, von Mises phase errors: ``old``).

Run:  python benchmarks/bench_crystal_realism.py --realdata /work/realdata --corpus /work/corpus
      (about a minute on one core; ``--seed`` changes the simulated draws)

Result (seed 0), summarised (the full tables are in docs/simulation_xray.md):

    shell / feature                real 2mFo-DFc (5 cases)   simulated refinement   experimental   former sim
    |F| 20-10 Å / 10-6 Å           1.22-1.51                 1.16-1.28 (1.72)       1.13-1.26      1.98
    |F| >20 Å / 10-6 Å             0.88-1.14                 0.58-1.22 (3.09)       0.58-0.98      7.82
    gap (protein - solvent) / SD   -0.00-0.08                0.01-0.09 (0.24)       -0.02-0.02     0.86
    SD deep solvent / SD protein   0.30-0.36 (0.11 at 3 Å)   0.15-0.32              0.61-0.72      0.53
    CC with model F_c, 20-6 Å      0.69-0.88                 0.61-0.85              0.59-0.69      0.87-0.96
    CC with model F_c, 6-2 Å       0.79-0.93                 0.78-0.93              0.42-0.68      0.52-0.81
    mean FOM                       0.69-0.74                 0.72-0.82              0.46-0.61      0.58
    (in brackets: one packed cell with 67 % solvent and k_sol 0.31)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import gemmi
import numpy as np

SHELLS_A: tuple[tuple[float, float], ...] = (
    (1e9, 20.0),
    (20.0, 10.0),
    (10.0, 6.0),
    (6.0, 4.0),
    (4.0, 3.0),
    (3.0, 2.5),
    (2.5, 2.0),
    (2.0, 1.4),
)
SHELL_NAMES = [">20", "20-10", "10-6", "6-4", "4-3", "3-2.5", "2.5-2", "<2"]
REF_SHELL = 2  # 10-6 Å

#: real cases (folder name) with 2mFo-DFc coefficients and a model
REAL_CASES = (
    "xtal_5a3h_cel5a_1p8A",
    "xtal_rnasa_3gmp_1p85A",
    "xtal_2vtq_cdk2_1p9A",
    "xtal_4hg7_mdm2_1p6A",
    "xtal_3io0_etub_3p0A",
)
#: corpus structures with a real crystal cell, at (about) their deposited resolution; two without a cell (packed
#: crystal or P1 box, as drawn)
SIM_CASES: tuple[tuple[str, float], ...] = (
    ("1GBT", 2.0),
    ("1FKI", 2.2),
    ("4ZHL", 2.06),
    ("3PWP", 2.69),
    ("2cviA", 2.5),
    ("3lqcA", 2.2),
)


# ----------------------------------------------------------------------------------------------- measurements
def _keyed(hkl: np.ndarray) -> np.ndarray:
    h = np.asarray(hkl, dtype=np.int64) + 1024
    return (h[:, 0] * 2048 + h[:, 1]) * 2048 + h[:, 2]


def mtz_coefficients(mtz: gemmi.Mtz, f: str, phi: str) -> tuple[np.ndarray, np.ndarray]:
    """``(hkl, F)`` of columns ``f``/``phi`` in gemmi's asymmetric unit (finite rows only)."""
    src = np.column_stack(
        [
            np.asarray(mtz.make_miller_array(), dtype=np.float32),
            np.asarray(mtz.column_with_label(f).array, dtype=np.float32),
            np.asarray(mtz.column_with_label(phi).array, dtype=np.float32),
        ]
    )
    src = src[np.all(np.isfinite(src), axis=1)]
    out = gemmi.Mtz(with_base=True)
    out.spacegroup = mtz.spacegroup
    out.set_cell_for_all(mtz.cell)
    out.add_dataset("x")
    out.add_column("F", "F")
    out.add_column("PHI", "P")
    out.set_data(src)
    out.ensure_asu()
    hkl = np.asarray(out.make_miller_array(), dtype=np.int32)
    amp = np.asarray(out.column_with_label("F").array, dtype=np.float64)
    ph = np.radians(np.asarray(out.column_with_label("PHI").array, dtype=np.float64))
    return hkl, amp * np.exp(1j * ph)


def model_in_cell(
    st: gemmi.Structure, cell: gemmi.UnitCell, sg: gemmi.SpaceGroup, protein_only: bool
) -> gemmi.Structure:
    """First model of ``st`` without hydrogens (and without waters when ``protein_only``) in ``cell``/``sg``."""
    out = st.clone()
    out.remove_hydrogens()
    if protein_only:
        out.remove_waters()
    out.remove_empty_chains()
    out.cell = cell
    out.spacegroup_hm = sg.xhm()
    while len(out) > 1:
        del out[1]
    return out


def shell_stats(
    hkl: np.ndarray, f: np.ndarray, cell: gemmi.UnitCell, fc_hkl: np.ndarray, fc: np.ndarray
) -> dict[str, list[float | None]]:
    """Per shell: RMS |F| relative to the 10-6 Å shell, and the complex correlation of ``f`` with ``fc``."""
    d = 1.0 / np.sqrt(cell.calculate_1_d2_array(np.asarray(hkl, dtype=np.int32)))
    kf = _keyed(hkl)
    kc = _keyed(fc_hkl)
    order = np.argsort(kc)
    pos = np.clip(np.searchsorted(kc, kf, sorter=order), 0, len(kc) - 1)
    idx = order[pos]
    found = kc[idx] == kf
    fcm = np.where(found, fc[idx], np.nan)
    rms, cc = [], []
    for hi, lo in SHELLS_A:
        sel = (d < hi) & (d >= lo) & np.isfinite(f)
        if sel.sum() < 10:
            rms.append(None)
            cc.append(None)
            continue
        rms.append(float(np.sqrt(np.mean(np.abs(f[sel]) ** 2))))
        both = sel & found
        if both.sum() < 10:
            cc.append(None)
            continue
        a, b = f[both], fcm[both]
        cc.append(float(np.real(np.sum(a * np.conj(b))) / np.sqrt(np.sum(np.abs(a) ** 2) * np.sum(np.abs(b) ** 2))))
    ref = rms[REF_SHELL]
    rel = [None if (r is None or not ref) else r / ref for r in rms]
    return {"amp_rel": rel, "cc_model": cc}


def solvent_stats(hkl: np.ndarray, f: np.ndarray, protein: gemmi.Structure, d_min_A: float) -> dict[str, float]:
    """Flatness and level of the deep solvent relative to the protein in the map of ``f`` (see module docstring)."""
    from densharp.simulate.crystal import cell_grid_size, coefficients_map

    cell = protein.cell
    sg = protein.find_spacegroup()
    size = cell_grid_size(cell, sg, d_min_A / 3.0)
    m = coefficients_map(hkl, f, cell, sg, size).data_zyx

    def mask(
        radii: gemmi.AtomicRadiiSet, constant_r: float = 0.0, probe: float = 1.0, shrink: float = 0.8
    ) -> np.ndarray:
        g = gemmi.FloatGrid()
        g.spacegroup = sg
        g.set_unit_cell(cell)
        g.set_size(*size)
        sm = gemmi.SolventMasker(radii, constant_r)
        sm.rprobe = probe
        sm.rshrink = shrink
        sm.put_mask_on_float_grid(g, protein[0])
        return np.ascontiguousarray(np.array(g, copy=False).T)

    solvent_mask = mask(gemmi.AtomicRadiiSet.Refmac)  # 1 in solvent
    deep = mask(gemmi.AtomicRadiiSet.Constant, 5.0, 0.0, 0.0) > 0.5
    prot = solvent_mask < 0.5
    sd_p = float(m[prot].std())
    return {
        "solvent_fraction": float(solvent_mask.mean()),
        "sd_solv": float(m[deep].std()) / sd_p if deep.any() else float("nan"),
        "gap": float(m[prot].mean() - m[deep].mean()) / sd_p if deep.any() else float("nan"),
    }


def measure(
    name: str, hkl: np.ndarray, f: np.ndarray, model: gemmi.Structure, d_min_A: float, fom: float | None
) -> dict[str, Any]:
    """All the measurements of one map (coefficients ``f`` at ``hkl``) against its model."""
    from densharp.simulate.crystal import atom_structure_factors

    cell = model.cell
    sg = model.find_spacegroup()
    full = model_in_cell(model, cell, sg, protein_only=False)
    fc_hkl, fc = atom_structure_factors(full, d_min_A * 0.98)
    row: dict[str, Any] = {"name": name, "d_A": d_min_A, "spacegroup": sg.xhm(), "fom": fom}
    row.update(shell_stats(hkl, f, cell, fc_hkl, fc))
    row.update(solvent_stats(hkl, f, model_in_cell(model, cell, sg, protein_only=True), d_min_A))
    return row


# ----------------------------------------------------------------------------------------------- the two sources
def real_rows(root: Path) -> list[dict[str, Any]]:
    from densharp.evaluate.realdata import read_case

    rows = []
    for folder in REAL_CASES:
        p = root / folder
        if not (p / "case.json").is_file():
            print(f"  (skipped {folder}: not in {root})", file=sys.stderr)
            continue
        case = read_case(p)
        mtz = gemmi.read_mtz_file(str(case.path("mtz")))
        f_lab, p_lab = case.labels["f"], case.labels["phi"]
        hkl, f = mtz_coefficients(mtz, f_lab, p_lab)
        st = gemmi.read_structure(str(case.path("model")))
        st.setup_entities()
        fom_col = mtz.column_with_label("FOM")
        fom = float(np.nanmean(np.asarray(fom_col.array))) if fom_col is not None else None
        d = float(mtz.resolution_high())
        st.cell = mtz.cell
        st.spacegroup_hm = mtz.spacegroup.xhm()
        rows.append(measure(f"real {case.name.removeprefix('xtal_')}", hkl, f, st, d, fom))
    return rows


def sim_rows(corpus: Path, seed: int) -> list[dict[str, Any]]:
    from densharp.simulate.crystal import CoefficientKind, CrystalOptions, simulate_crystal
    from densharp.simulate.crystal_pairs import CrystalConfig
    from densharp.simulate.structure import load_structure

    train_opts = CrystalOptions.from_config(CrystalConfig())
    old = CrystalOptions(
        k_sol_range=(0.0, 0.0),
        aniso_delta_b_range_A2=(0.0, 0.0),
        i_over_sigma_dmin_range=(1e4, 1e4),
        sigma_systematic_range=(0.0, 0.0),
        low_resolution_cut_range_A=(1e4, 1e4),
        low_resolution_missing_range=(0.0, 0.0),
        missing_fraction_range=(0.0, 0.15),
        aniso_truncation_probability=0.0,
        waters_per_residue_range=(0.0, 0.0),
        alt_conformation_fraction_range=(0.0, 0.0),
        fom_low_range=(0.85, 0.97),
        fom_high_range=(0.3, 0.6),
        pack_probability=0.0,
    )
    rows = []
    for k, (name, d) in enumerate(SIM_CASES):
        hits = sorted(corpus.glob(f"structures/*/{name}.cif.gz")) + sorted(corpus.glob(f"structures/*/{name}.pdb.gz"))
        if not hits:
            print(f"  (skipped {name}: not in the corpus)", file=sys.stderr)
            continue
        st, _ = load_structure(hits[0], seed=0)
        runs = [("sim", CoefficientKind.REFINEMENT, train_opts)]
        if k in (0, 3):
            runs.append(("sim-exp", CoefficientKind.EXPERIMENTAL, train_opts))
        if k == 0:
            runs.append(("old", CoefficientKind.EXPERIMENTAL, old))
        for label, kind, opts in runs:
            t0 = time.perf_counter()
            sim = simulate_crystal(st, d, np.random.default_rng([seed, k]), voxel_size_A=d / 3, options=opts, kind=kind)
            dt = time.perf_counter() - t0
            mtz = sim.mtz
            hkl, f = mtz_coefficients(mtz, "FWT", "PHWT")
            model = sim.model if sim.model is not None else sim.structure
            assert model is not None
            fom = float(np.nanmean(np.asarray(mtz.column_with_label("FOM").array)))
            row = measure(f"{label} {name} {sim.meta['cell_source']}", hkl, f, model, d, fom)
            row["seconds"] = dt
            rows.append(row)
    return rows


# ----------------------------------------------------------------------------------------------- printing
def _fmt(v: float | None, w: int = 6, p: int = 2) -> str:
    return f"{'-':>{w}s}" if v is None or not np.isfinite(v) else f"{v:{w}.{p}f}"


def print_tables(rows: list[dict[str, Any]]) -> None:
    print("amplitude per shell relative to 10-6 Å, solvent flatness and level (map on a d/3 grid)")
    head = f"{'map':34s} {'d Å':>5s} {'sg':>9s} " + " ".join(f"{s:>6s}" for s in SHELL_NAMES if s != "10-6")
    print(head + f" {'solv':>5s} {'sd_solv':>7s} {'gap':>5s}")
    for r in rows:
        amps = [a for i, a in enumerate(r["amp_rel"]) if i != REF_SHELL]
        print(
            f"{r['name']:34s} {r['d_A']:5.2f} {r['spacegroup']:>9s} "
            + " ".join(_fmt(a) for a in amps)
            + f" {r['solvent_fraction']:5.2f} {_fmt(r['sd_solv'], 7)} {_fmt(r['gap'], 5)}"
        )
    print()
    print("correlation of the map coefficients with the model's atoms-only F_c per shell; mean FOM")
    print(f"{'map':34s} " + " ".join(f"{s:>6s}" for s in SHELL_NAMES) + f" {'FOM':>5s}")
    for r in rows:
        print(f"{r['name']:34s} " + " ".join(_fmt(c) for c in r["cc_model"]) + f" {_fmt(r['fom'], 5)}")
    times = [r["seconds"] for r in rows if "seconds" in r]
    if times:
        print(f"\nsimulation time per cell: {', '.join(f'{t:.2f}' for t in times)} s")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--realdata", type=Path, default=os.environ.get("DENSHARP_REALDATA"))
    ap.add_argument("--corpus", type=Path, default=os.environ.get("DENSHARP_CORPUS"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.realdata is None or args.corpus is None:
        ap.error("give --realdata DIR and --corpus DIR (or set DENSHARP_REALDATA and DENSHARP_CORPUS)")
    rows = real_rows(args.realdata) + sim_rows(args.corpus, args.seed)
    print_tables(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
