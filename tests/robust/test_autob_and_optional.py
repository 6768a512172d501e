"""Issue 14 item 11: auto-B never makes a map worse than it came in (well-resolved maps included), and a missing
optional dependency is named exactly."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from conftest import run_cli
from densharp.filters.ideal_spectrum import ideal_bfactor_A2
from densharp.filters.masks import auto_molecule_mask
from densharp.filters.sharpen import ResidualB, sharpen_autob
from densharp.fourier import lowpass
from densharp.io.maps import write_map
from densharp.metrics.rscc import rscc
from densharp.optional import ml_available, require_ml
from densharp.volume import DensityMap
from synth import density_map, globule_structure


@pytest.fixture(scope="module")
def well_resolved():
    """A 3 Å map on 0.83 Å voxels with only its atoms' own B (no extra blur) and mild noise, and its 2 Å target."""
    st = globule_structure(500, 12.0, seed=2, b_iso=30.0)
    atoms = density_map(st, (0.83, 0.83, 0.83), (48, 48, 48), (-20.0, -20.0, -20.0))
    target = lowpass(atoms, 2.0)
    rng = np.random.default_rng(4)
    clean = lowpass(atoms, 3.0)
    noise = lowpass(clean.with_data(rng.normal(0, 0.3 * clean.data_zyx.std(), clean.shape_zyx).astype(np.float32)), 2.7)
    return clean.with_data(clean.data_zyx + noise.data_zyx), target


def test_autob_does_not_degrade_a_well_resolved_map(well_resolved):
    m, target = well_resolved
    mask = auto_molecule_mask(target)
    base = rscc(m, target, mask)
    new = sharpen_autob(m, 3.0)
    old = sharpen_autob(m, 3.0, residual=ResidualB.ZERO)
    assert rscc(new.map, target, mask) >= base  # the rule this issue asks for
    assert rscc(old.map, target, mask) < base  # the former rule (flatten all of B) made it worse
    assert new.b_sharpen_A2 < old.b_sharpen_A2
    assert "ideal map" in new.to_dict()["rule"]


def test_autob_still_sharpens_a_blurred_map(blurred_35A, target_2A):
    mask = auto_molecule_mask(target_2A)
    res = sharpen_autob(blurred_35A, 3.5)
    assert res.b_sharpen_A2 > 50
    assert rscc(res.map, target_2A, mask) > rscc(blurred_35A, target_2A, mask) + 0.01


def test_autob_never_removes_content(blurred_35A):
    """Only the boost is low-passed: no frequency comes out weaker than it went in."""
    from densharp.fourier import shell_amplitudes

    res = sharpen_autob(blurred_35A, 4.0)
    _, a_in = shell_amplitudes(blurred_35A)
    _, a_out = shell_amplitudes(res.map)
    ok = a_in > 1e-6 * a_in.max()
    assert np.all(a_out[ok] >= a_in[ok] * (1 - 1e-4))


def test_ideal_b_table_is_sane():
    b = [ideal_bfactor_A2(d) for d in (2.5, 3.0, 4.0, 6.0, 8.0)]
    assert all(np.isfinite(b)) and 0 < b[0] < 100 and b[3] > b[1]


def test_autob_cli_records_the_rule(capsys, work, tmp_path):
    out = tmp_path / "o.mrc"
    rc, _, err = run_cli(capsys, "sharpen", work["map"], "--method", "autob", "--resolution", 3.5, "-o", out, "-q")
    assert rc == 0, err
    res = json.loads((tmp_path / "o.json").read_text())["result"]
    assert "residual_b_A2" in res and "ideal map" in res["rule"]


@pytest.mark.parametrize(
    "blocked, words",
    [(("safetensors",), "safetensors is not installed (torch is)"), (("torch",), "torch is not installed"),
     (("torch", "safetensors"), "torch and safetensors are not installed")],
)  # fmt: skip
def test_missing_ml_dependency_named_exactly(capsys, monkeypatch, tmp_path, blocked, words):
    for name in blocked:
        monkeypatch.setitem(sys.modules, name, None)
    ok, why = ml_available()
    assert not ok and words in why
    with pytest.raises(Exception, match="need the \\[ml\\] extra"):
        require_ml()
    rc, out, err = run_cli(capsys, "models")  # the cards are listed without torch, with what is missing
    assert rc == 0 and words in out and "unet-em" in out and "unexpected" not in err
    src = tmp_path / "in.mrc"
    write_map(src, DensityMap(np.random.default_rng(0).normal(size=(24, 24, 24)).astype(np.float32), (1.0,) * 3))
    rc, _, err = run_cli(capsys, "sharpen", src, "--method", "unet", "--resolution", 4, "-o", tmp_path / "u.mrc")
    assert rc == 2 and words in err and "unexpected" not in err and not (tmp_path / "u.mrc").exists()
    rc, _, err = run_cli(capsys, "sharpen", src, "--resolution", 4, "-o", tmp_path / "d.mrc", "-q")
    assert rc == 0, err  # the default falls back to the classical method and says why
    choice = json.loads((tmp_path / "d.json").read_text())["method_choice"]["how"]
    assert words in choice
    rc, _, err = run_cli(capsys, "train", "--arch", "unet", "--corpus", tmp_path, "-o", tmp_path / "run")
    assert rc == 2 and words in err and "unexpected" not in err
    assert not (tmp_path / "run").exists()
