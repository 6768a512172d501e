"""Read an atomic model and clean it deliberately for simulation.

What a simulated target contains is a choice, recorded per structure in a small dict:

- first model only (NMR ensembles, multi-model files);
- hydrogens removed (cryo-EM/X-ray maps at 1.5-8 Å do not resolve them, and most files lack them);
- waters removed (their placement is model- and resolution-dependent; the net should not learn to invent them);
- first alternate conformation kept, the others removed;
- ligands, ions and nucleic acids kept (they are real density);
- B-factors replaced when the file carries none (all equal, e.g. TS50 files with B = 100 everywhere): a seeded,
  smooth distribution from 15 Å² at the centroid to 60 Å² at the surface, so simulated maps have the usual
  core-to-surface fall-off.

Malformed PDB charge columns (theseus examples) are repaired by cutting every line to 78 columns.
"""

from __future__ import annotations

import bz2
import gzip
import logging
import os
from pathlib import Path
from typing import Any

import gemmi
import numpy as np

from densharp.errors import InputError

log = logging.getLogger(__name__)

#: bumped whenever cleaning changes, so cached cleaned files (corpus) are rebuilt
CLEANING_VERSION = 2

#: B-factor range (Å²) assigned from the centroid outwards when a file has no usable B-factors
ASSIGNED_B_RANGE_A2: tuple[float, float] = (15.0, 60.0)


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    name = path.name.lower()
    if name.endswith(".gz"):
        raw = gzip.decompress(raw)
    elif name.endswith(".bz2"):
        raw = bz2.decompress(raw)
    return raw.decode("utf-8", errors="replace")


def _is_cif(path: Path, text: str) -> bool:
    name = path.name.lower()
    for suf in (".gz", ".bz2"):
        if name.endswith(suf):
            name = name[: -len(suf)]
    if name.endswith((".cif", ".mmcif")):
        return True
    if name.endswith((".pdb", ".ent")):
        return False
    return text.lstrip().startswith("data_")


def read_structure_text(text: str, is_cif: bool, name: str = "") -> tuple[gemmi.Structure, bool]:
    """Parse PDB or mmCIF text; return ``(structure, was_cut_to_78)``.

    A PDB text gemmi rejects is retried with every line cut to 78 columns (drops malformed charge fields).
    """
    if is_cif:
        doc = gemmi.cif.read_string(text)
        st = gemmi.make_structure_from_block(doc[0])
        return st, False
    try:
        return gemmi.read_pdb_string(text), False
    except (RuntimeError, ValueError) as exc:
        log.debug("%s: gemmi rejected the PDB text (%s); retrying with lines cut to 78 columns", name, exc)
        cut = "\n".join(line[:78] for line in text.splitlines())
        return gemmi.read_pdb_string(cut), True


def clean_structure(st: gemmi.Structure, seed: int = 0) -> dict[str, Any]:
    """Clean ``st`` in place (see module docstring) and return the record of what was done.

    Parameters
    ----------
    st
        Structure to clean (modified in place).
    seed
        Seed for the B-factor assignment (only used when B-factors are replaced).
    """
    rec: dict[str, Any] = {"cleaning_version": CLEANING_VERSION, "models_in_file": len(st)}
    while len(st) > 1:
        del st[len(st) - 1]
    if len(st) == 0:
        rec["atoms"] = 0
        return rec
    model = st[0]
    n0 = model.count_atom_sites()
    h_before = sum(1 for cra in model.all() if cra.atom.is_hydrogen())
    st.remove_hydrogens()
    n_h = model.count_atom_sites()
    st.remove_waters()
    n_w = model.count_atom_sites()
    for cra in model.all():  # mark altloc atoms: the kept conformer gets full occupancy below
        cra.atom.flag = "a" if cra.atom.altloc != "\0" else "\0"
    st.remove_alternative_conformations()
    n_alt = model.count_atom_sites()
    st.remove_empty_chains()
    rec.update(
        {
            "atoms_in_file_model1": n0,
            "hydrogens_removed": int(h_before),
            "removed_hydrogen_sites": n0 - n_h,
            "removed_water_sites": n_h - n_w,
            "removed_altloc_sites": n_w - n_alt,
            "kept": "first model, first altloc (occupancy set to 1), ligands, ions, nucleic acids",
        }
    )
    # Altloc removal keeps the first conformer's occupancy (often 0.5); set kept altloc atoms to full occupancy.
    xyz = np.array([cra.atom.pos.tolist() for cra in model.all()], dtype=np.float64).reshape(-1, 3)
    bs = np.array([cra.atom.b_iso for cra in model.all()], dtype=np.float64)
    occ = np.array([cra.atom.occ for cra in model.all()], dtype=np.float64)
    rec["zero_occupancy_atoms"] = int(np.sum(occ <= 0))
    n_aniso = 0
    for cra in model.all():
        if cra.atom.flag == "a":
            cra.atom.occ = 1.0
            cra.atom.flag = "\0"
        cra.atom.altloc = "\0"
        if cra.atom.aniso.nonzero():
            # rotations move positions only; isotropic B keeps the simulated density rotation-consistent
            cra.atom.aniso = gemmi.SMat33f(0, 0, 0, 0, 0, 0)
            n_aniso += 1
    rec["anisotropic_adps_dropped"] = n_aniso
    if len(bs) and (np.ptp(bs) < 1e-3 or not np.all(np.isfinite(bs)) or bs.max() <= 0):
        new_b = assigned_bfactors_A2(xyz, seed)
        for cra, b in zip(model.all(), new_b):
            cra.atom.b_iso = float(b)
        rec["bfactors"] = f"assigned {ASSIGNED_B_RANGE_A2[0]:g}-{ASSIGNED_B_RANGE_A2[1]:g} Å² by distance from centroid"
        rec["bfactor_in_file_A2"] = float(bs[0]) if len(bs) else None
    else:
        rec["bfactors"] = "from file"
    rec["atoms"] = int(model.count_atom_sites())
    return rec


def assigned_bfactors_A2(xyz: np.ndarray, seed: int = 0) -> np.ndarray:
    """Realistic B-factors (Å²) for atoms at ``xyz`` (n, 3): 15 at the centroid rising to 60 at the rim, ±10 % noise."""
    if len(xyz) == 0:
        return np.zeros(0)
    r = np.linalg.norm(xyz - xyz.mean(axis=0), axis=1)
    t = r / max(float(np.percentile(r, 98)), 1e-6)
    lo, hi = ASSIGNED_B_RANGE_A2
    b = lo + (hi - lo) * np.clip(t, 0.0, 1.0) ** 2
    rng = np.random.default_rng(seed)
    return np.clip(b * (1.0 + 0.1 * rng.standard_normal(len(b))), lo * 0.5, hi * 1.5)


def load_structure(path: str | os.PathLike[str], seed: int = 0) -> tuple[gemmi.Structure, dict[str, Any]]:
    """Read a PDB/mmCIF file (optionally .gz/.bz2) and clean it for simulation.

    Returns
    -------
    structure, record
        The cleaned :class:`gemmi.Structure` (one model) and a JSON-ready dict of what was done.

    Raises
    ------
    InputError
        The file is missing or cannot be parsed as a structure.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: structure file not found; check the path")
    try:
        text = _read_text(p)
        st, cut = read_structure_text(text, _is_cif(p, text), str(p))
    except (RuntimeError, ValueError, OSError, EOFError) as exc:
        raise InputError(f"{p}: not a readable PDB/mmCIF model ({exc}); check the file format") from None
    rec = {"source_name": p.name, "lines_cut_to_78": cut}
    rec.update(clean_structure(st, seed=seed))
    if rec.get("atoms", 0) == 0:
        raise InputError(f"{p}: no atoms left after cleaning (first model, no H/waters); check the file")
    st.setup_entities()
    return st, rec


def structure_xyz_A(st: gemmi.Structure) -> np.ndarray:
    """Atom positions of the first model, shape (n, 3), Å, (x, y, z)."""
    return np.array([cra.atom.pos.tolist() for cra in st[0].all()], dtype=np.float64).reshape(-1, 3)
