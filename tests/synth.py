"""Tiny synthetic structures and maps for tests (no network, no corpus)."""

from __future__ import annotations

import gemmi
import numpy as np

from densharp.fourier import lowpass
from densharp.volume import DensityMap


def helix_structure(
    n_residues: int = 20, seed: int = 0, b_iso: float = 20.0, center=(0.0, 0.0, 0.0)
) -> gemmi.Structure:
    """A poly-Ala-like α-helix (N, CA, C, O, CB per residue) with small random jitter, as a gemmi.Structure."""
    rng = np.random.default_rng(seed)
    st = gemmi.Structure()
    st.cell = gemmi.UnitCell(1, 1, 1, 90, 90, 90)  # no crystal cell: simulation uses its own box
    model = gemmi.Model(1)
    chain = gemmi.Chain("A")
    # helix: 3.6 residues per turn, 1.5 Å rise, backbone atoms at radii ~1.6-2.3 Å
    atoms = [
        ("N", "N", 1.55, -0.9),
        ("CA", "C", 2.3, 0.0),
        ("C", "C", 1.65, 0.8),
        ("O", "O", 2.0, 1.4),
        ("CB", "C", 3.3, 0.2),
    ]
    for i in range(n_residues):
        res = gemmi.Residue()
        res.name = "ALA"
        res.seqid = gemmi.SeqId(i + 1, " ")
        for name, el, r, dphase in atoms:
            phi = np.deg2rad(100.0 * i) + dphase * 0.35
            z = 1.5 * i + 0.3 * dphase
            a = gemmi.Atom()
            a.name = name
            a.element = gemmi.Element(el)
            pos = np.array([r * np.cos(phi), r * np.sin(phi), z]) + rng.normal(0, 0.1, 3) + np.asarray(center)
            a.pos = gemmi.Position(*pos)
            a.b_iso = b_iso
            a.occ = 1.0
            res.add_atom(a)
        chain.add_residue(res)
    model.add_chain(chain)
    st.add_model(model)
    st.setup_entities()
    return st


def density_map(
    st: gemmi.Structure,
    voxel_size_xyz_A=(1.0, 1.0, 1.0),
    shape_zyx=(40, 36, 32),
    origin_xyz_A=(-16.0, -18.0, -6.0),
    d_min_A: float | None = None,
    b_extra_A2: float = 0.0,
) -> DensityMap:
    """Electron-scattering density of ``st`` on a given (possibly anisotropic) box, band-limited at ``d_min_A``.

    gemmi computes on a periodic unit cell equal to the box; the box is chosen large enough by the caller.
    """
    nz, ny, nx = shape_zyx
    vx, vy, vz = voxel_size_xyz_A
    ox, oy, oz = origin_xyz_A
    moved = st.clone()
    moved.cell = gemmi.UnitCell(nx * vx, ny * vy, nz * vz, 90, 90, 90)
    moved.spacegroup_hm = "P 1"
    for res in moved[0][0]:
        for a in res:
            a.pos = gemmi.Position(a.pos.x - ox, a.pos.y - oy, a.pos.z - oz)
    dc = gemmi.DensityCalculatorE()
    dc.blur = b_extra_A2
    # set the grid ourselves: put_model_density_on_grid() would resize it from d_min and rate
    dc.grid.set_unit_cell(moved.cell)
    dc.grid.set_size(nx, ny, nz)
    dc.grid.fill(0.0)
    dc.add_model_density_to_grid(moved[0])
    data_zyx = np.ascontiguousarray(np.asarray(dc.grid.array).T, dtype=np.float32)
    m = DensityMap(data_zyx, voxel_size_xyz_A, origin_xyz_A)
    return lowpass(m, d_min_A) if d_min_A else m


def globule_structure(
    n_atoms: int = 400, radius_A: float = 11.0, seed: int = 0, b_iso: float = 20.0
) -> gemmi.Structure:
    """A compact random cluster of C/N/O/S atoms at protein packing density (≥ 1.3 Å apart).

    Random atom positions follow Wilson statistics, so the spectrum falls like a protein's between 10 and 2 Å.
    """
    rng = np.random.default_rng(seed)
    pts: list[np.ndarray] = []
    while len(pts) < n_atoms:
        p = rng.uniform(-radius_A, radius_A, 3)
        if np.linalg.norm(p) > radius_A:
            continue
        if pts and np.min(np.linalg.norm(np.asarray(pts) - p, axis=1)) < 1.3:
            continue
        pts.append(p)
    st = gemmi.Structure()
    st.cell = gemmi.UnitCell(1, 1, 1, 90, 90, 90)
    model = gemmi.Model(1)
    chain = gemmi.Chain("A")
    elements = rng.choice(["C", "C", "C", "N", "O"], size=n_atoms)
    for i in range(0, n_atoms, 5):
        res = gemmi.Residue()
        res.name = "UNK"
        res.seqid = gemmi.SeqId(i // 5 + 1, " ")
        for j in range(i, min(i + 5, n_atoms)):
            a = gemmi.Atom()
            a.name = f"X{j - i}"
            a.element = gemmi.Element(str(elements[j]))
            a.pos = gemmi.Position(*pts[j])
            a.b_iso = b_iso
            a.occ = 1.0
            res.add_atom(a)
        chain.add_residue(res)
    model.add_chain(chain)
    st.add_model(model)
    return st
