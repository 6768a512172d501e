"""Tiny synthetic models for simulation tests (built in code; no files, no network)."""

from __future__ import annotations

import math

import gemmi
import numpy as np
import pytest

#: backbone-ish atoms per residue: (name, element, radius offset Å, angle offset rad, z offset Å)
_ATOMS = [
    ("N", "N", 1.6, -0.45, -0.6),
    ("CA", "C", 2.3, 0.0, 0.0),
    ("C", "C", 1.7, 0.45, 0.6),
    ("O", "O", 2.9, 0.6, 1.1),
    ("CB", "C", 3.4, 0.1, -0.3),
]


def helix_structure(n_res: int = 12, seed: int = 0, b_range: tuple[float, float] = (15.0, 40.0)) -> gemmi.Structure:
    """A short alpha-helix-like chain (5 atoms per residue, 1.5 Å rise, 100° per residue) around the origin+offset."""
    rng = np.random.default_rng(seed)
    st = gemmi.Structure()
    st.name = "helix"
    model = gemmi.Model("1")
    chain = gemmi.Chain("A")
    for i in range(n_res):
        res = gemmi.Residue()
        res.name = "ALA"
        res.seqid = gemmi.SeqId(i + 1, " ")
        res.entity_type = gemmi.EntityType.Polymer
        phi = math.radians(100.0 * i)
        for name, el, r, dphi, dz in _ATOMS:
            a = gemmi.Atom()
            a.name = name
            a.element = gemmi.Element(el)
            a.pos = gemmi.Position(
                12.0 + r * math.cos(phi + dphi), -7.0 + r * math.sin(phi + dphi), 30.0 + 1.5 * i + dz
            )
            a.occ = 1.0
            a.b_iso = float(rng.uniform(*b_range))
            res.add_atom(a)
        chain.add_residue(res)
    model.add_chain(chain)
    st.add_model(model)
    st.setup_entities()
    return st


@pytest.fixture
def helix() -> gemmi.Structure:
    return helix_structure()


PDB_MESSY = """\
MODEL        1
ATOM      1  N   ALA A   1      11.104   6.134  -6.504  1.00 30.00           N
ATOM      2  CA AALA A   1      11.639   6.071  -5.147  0.60 30.00           C
ATOM      3  CA BALA A   1      11.700   6.100  -5.100  0.40 30.00           C
ATOM      4  C   ALA A   1      13.140   5.766  -5.084  1.00 30.00           C
ATOM      5  O   ALA A   1      13.702   5.447  -6.135  1.00 30.00           O
ATOM      6  H   ALA A   1      10.500   6.700  -7.000  1.00 30.00           H
ATOM      7  N   GLY A   2      13.780   5.853  -3.920  1.00 30.00           N
ATOM      8  CA  GLY A   2      15.210   5.620  -3.800  1.00 30.00           C
HETATM    9  O   HOH A 101      20.000  20.000  20.000  1.00 30.00           O
ENDMDL
MODEL        2
ATOM      1  N   ALA A   1      11.104   6.134  -6.504  1.00 30.00           N
ENDMDL
END
"""


@pytest.fixture
def messy_pdb(tmp_path):
    p = tmp_path / "messy.pdb"
    p.write_text(PDB_MESSY)
    return p


@pytest.fixture
def messy_text() -> str:
    return PDB_MESSY


@pytest.fixture(scope="session")
def helix_factory():
    return helix_structure
