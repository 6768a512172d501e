from __future__ import annotations

import gzip

import numpy as np
import pytest

from densharp.errors import InputError
from densharp.simulate.structure import ASSIGNED_B_RANGE_A2, load_structure


def _atoms(st):
    return [cra.atom for cra in st[0].all()]


def test_cleaning_removes_h_waters_altlocs_models(messy_pdb):
    st, rec = load_structure(messy_pdb)
    atoms = _atoms(st)
    assert len(st) == 1
    assert rec["models_in_file"] == 2
    assert not any(a.is_hydrogen() for a in atoms)
    assert all(r.name != "HOH" for ch in st[0] for r in ch)
    cas = [a for a in atoms if a.name == "CA"]
    assert len(cas) == 2 and all(a.occ == 1.0 for a in cas)
    assert rec["removed_water_sites"] == 1 and rec["removed_altloc_sites"] == 1
    assert rec["atoms"] == 6


def test_equal_bfactors_are_replaced_reproducibly(tmp_path):
    text = "".join(
        f"ATOM  {i + 1:5d}  CA  ALA A{i + 1:4d}    {3.8 * i:8.3f}{np.sin(i) * 4:8.3f}{np.cos(i) * 4:8.3f}  1.00100.00           C\n"
        for i in range(30)
    )
    p = tmp_path / "ts50.pdb.gz"
    p.write_bytes(gzip.compress(text.encode()))
    st1, rec = load_structure(p, seed=3)
    st2, _ = load_structure(p, seed=3)
    b1 = np.array([a.b_iso for a in _atoms(st1)])
    assert rec["bfactors"].startswith("assigned") and rec["bfactor_in_file_A2"] == 100.0
    assert np.ptp(b1) > 10 and b1.min() >= ASSIGNED_B_RANGE_A2[0] * 0.5 and b1.max() <= ASSIGNED_B_RANGE_A2[1] * 1.5
    np.testing.assert_array_equal(b1, [a.b_iso for a in _atoms(st2)])


def test_malformed_charge_columns_are_cut(tmp_path):
    line = "ATOM      1  N   THR    -5       5.488  12.163  -8.750  1.00 59.19      1CSU 150\n"
    line2 = "ATOM      2  CA  THR    -5       6.488  12.163  -8.750  1.00 59.19      1CSU 150\n"
    p = tmp_path / "theseus.pdb"
    p.write_text(line + line2)
    _st, rec = load_structure(p)
    assert rec["lines_cut_to_78"] is True
    assert rec["atoms"] == 2


def test_missing_file_is_input_error(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_structure(tmp_path / "nope.pdb")
