"""Issue 14 item 8: evaluate keys every map by a unique name and refuses what it cannot score honestly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import gemmi
import numpy as np
import pytest

from conftest import refused, run_cli
from densharp.cli.evaluate import unique_map_names
from densharp.io.maps import read_map, write_map


def test_unique_names():
    assert unique_map_names([Path("a/x.mrc"), Path("b/x.mrc"), Path("x.v1.mrc"), Path("x.v2.mrc.gz")]) == [
        "a/x", "b/x", "x.v1", "x.v2",
    ]  # fmt: skip
    assert unique_map_names([Path("p/a/x.mrc"), Path("q/a/x.mrc")]) == ["p/a/x", "q/a/x"]
    assert unique_map_names([Path("autob.mrc"), Path("y.map")], reserved=("autob",)) == ["autob.mrc", "y"]


def test_colliding_stems_give_one_row_each(capsys, work):
    d = work["dir"]
    for sub in ("a", "b"):
        (d / sub).mkdir()
        shutil.copy(work["map"], d / sub / "x.mrc")
    shutil.copy(work["map"], d / "x.v1.mrc")
    shutil.copy(work["h1"], d / "x.v2.mrc")
    files = [d / "a" / "x.mrc", d / "b" / "x.mrc", d / "x.v1.mrc", d / "x.v2.mrc"]
    rc, _, err = run_cli(capsys, "evaluate", *files, "--target", work["target"], "--json", d / "e.json", "-q")
    assert rc == 0, err
    rows = json.loads((d / "e.json").read_text())["cases"][0]["methods"]
    assert list(rows) == ["a/x", "b/x", "x.v1", "x.v2"]
    assert rows["x.v1"]["rscc_mask"] != rows["x.v2"]["rscc_mask"]


def test_same_map_twice_refused(capsys, work):
    refused(capsys, work["dir"], 2, "evaluate", work["map"], work["map"], "--target", work["target"],
            contains=("given twice",))  # fmt: skip


def test_model_outside_the_box_refused(capsys, work):
    st = gemmi.read_structure(str(work["model"]))
    st[0].transform_pos_and_adp(gemmi.Transform(gemmi.Mat33(), gemmi.Vec3(400.0, 0.0, 0.0)))
    far = work["dir"] / "far.pdb"
    st.write_pdb(str(far))
    refused(capsys, work["dir"], 2, "evaluate", work["map"], "--structure", far, "--resolution", 3,
            contains=(str(far), "inside the map box", "different frames"))  # fmt: skip


def test_model_inside_the_box_is_scored(capsys, work):
    rc, out, err = run_cli(capsys, "evaluate", work["map"], "--structure", work["model"], "--resolution", 3, "-q")
    assert rc == 0, err
    assert "simulated from" in out


@pytest.mark.parametrize("value", [0.0, 7.5])
def test_constant_target_refused(capsys, work, value):
    t = read_map(work["target"])
    const = work["dir"] / "const.mrc"
    write_map(const, t.with_data(np.full(t.shape_zyx, value, np.float32)))
    refused(capsys, work["dir"], 2, "evaluate", work["map"], "--target", const, "--json", work["dir"] / "e.json",
            contains=(str(const), "constant map"))  # fmt: skip


def test_input_resolution_finer_than_nyquist_refused(capsys, work):
    refused(capsys, work["dir"], 2, "evaluate", "--target", work["target"], "--input", work["map"],
            "--input-resolution", 1.5, contains=("--input-resolution", "Nyquist"))  # fmt: skip
