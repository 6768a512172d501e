"""CLI: every item of the bad-input catalogue gets one ``error:`` line, exit 2 and no output file."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import mrcfile
import numpy as np
import pytest

from densharp.cli import COMMANDS, main
from densharp.io.maps import read_map, write_map
from densharp.volume import DensityMap

DATA = Path(__file__).parent.parent / "data"


@pytest.fixture
def maps(tmp_path, blurred_35A, half_maps, target_2A):
    """Write the session maps with awkward geometry: permuted axes, anisotropic voxels, non-zero origin."""
    paths = {}
    for name, m in {"map": blurred_35A, "h1": half_maps[0], "h2": half_maps[1], "target": target_2A}.items():
        p = tmp_path / f"{name}.mrc"
        write_map(p, replace(m, axis_order_crs=(3, 1, 2)))
        paths[name] = p
    return paths


def run_cli(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_error_line(err: str, pattern: str) -> None:
    """The error is one ``error: ...`` line, the last one printed (info lines may precede it), naming the problem."""
    lines = err.strip().splitlines()
    assert [ln for ln in lines if ln.startswith("error:")] == [lines[-1]]
    assert pattern in lines[-1]


def only_inputs(tmp_path, *keep):
    return sorted(p.name for p in tmp_path.iterdir() if p.name not in keep)


def test_help_lists_every_command(capsys):
    rc, out, _ = run_cli(capsys, "--help")
    assert rc == 0
    for name in COMMANDS:
        assert name in out
        assert main([name, "--help"]) == 0
    capsys.readouterr()


def test_sharpen_keeps_the_input_header_geometry_exactly(capsys, tmp_path, maps):
    out = tmp_path / "out.mrc"
    rc, _, err = run_cli(capsys, "sharpen", maps["map"], "--resolution", 3.5, "--method", "autob", "-o", out, "-q")
    assert rc == 0, err
    with mrcfile.open(maps["map"]) as a, mrcfile.open(out) as b:
        for field in ("nx", "ny", "nz", "mapc", "mapr", "maps", "mx", "my", "mz", "nxstart", "nystart", "nzstart"):
            assert int(a.header[field]) == int(b.header[field]), field
        for field in ("cella", "cellb", "origin"):
            assert a.header[field].tolist() == b.header[field].tolist(), field
        assert a.data.shape == b.data.shape
    side = json.loads((tmp_path / "out.json").read_text())
    assert side["result"]["method"] == "autob"
    assert side["result"]["guinier_fit"]["b_A2"] > 100
    assert (tmp_path / "out.log").read_text().startswith("20")


def test_sharpen_half_maps_and_compare(capsys, tmp_path, maps):
    out = tmp_path / "post.mrc"
    rc, _, err = run_cli(capsys, "sharpen", "--half-maps", maps["h1"], maps["h2"], "--method", "fsc", "-o", out, "-q")
    assert rc == 0, err
    side = json.loads((tmp_path / "post.json").read_text())
    assert 2.4 < side["result"]["d_fsc0143_A"] < 4.5
    rc, out_text, _ = run_cli(capsys, "compare", out, maps["target"], "--json")
    assert rc == 0 and json.loads(out_text)["rscc_mask"] > 0.5


def test_fsc_writes_csv_and_png(capsys, tmp_path, maps):
    pytest.importorskip("matplotlib")
    rc, out, err = run_cli(
        capsys, "fsc", maps["h1"], maps["h2"], "--csv", tmp_path / "f.csv", "--png", tmp_path / "f.png", "--json"
    )
    assert rc == 0, err
    assert json.loads(out)["d_fsc0143_A"] > 2.0
    assert (tmp_path / "f.csv").read_text().startswith("s_invA,")
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"


def test_info_on_fixtures(capsys):
    rc, out, _ = run_cli(capsys, "info", DATA / "permuted_231.mrc", DATA / "nstart.ccp4", "--json")
    assert rc == 0
    recs = json.loads(out)
    assert recs[0]["axis_order_crs"] == [2, 3, 1]
    assert recs[1]["nstart_xyz"] == [3, -2, 4]


# ---------------------------------------------------------------- the bad-input catalogue
def write_raw(path: Path, data: np.ndarray, voxel: float = 1.0) -> Path:
    with mrcfile.new(path) as f:
        f.set_data(data.astype(np.float32))
        f.voxel_size = voxel
    return path


@pytest.mark.parametrize(
    "case, pattern",
    [
        ("missing", "file not found"),
        ("folder", "is a folder"),
        ("not_mrc", "not an MRC/CCP4 map"),
        ("truncated", "truncated"),
        ("nan", "NaN or infinite"),
        ("zeros", "constant map"),
        ("constant", "constant map"),
        ("empty", "file is empty"),
    ],
)
def test_bad_map_inputs(capsys, tmp_path, case, pattern):
    src = tmp_path / "in"
    src.mkdir()
    if case == "missing":
        path = src / "nope.mrc"
    elif case == "folder":
        path = src
    elif case == "not_mrc":
        path = DATA / "not_a_map.mrc"
    elif case == "truncated":
        path = DATA / "truncated.mrc"
    elif case == "nan":
        d = np.random.default_rng(0).normal(size=(8, 8, 8))
        d[2, 2, 2] = np.nan
        path = write_raw(src / "nan.mrc", d)
    elif case == "zeros":
        path = write_raw(src / "zeros.mrc", np.zeros((8, 8, 8)))
    elif case == "constant":
        path = write_raw(src / "const.mrc", np.full((8, 8, 8), 3.0))
    else:
        path = src / "empty.mrc"
        path.write_bytes(b"")
    out = tmp_path / "out.mrc"
    rc, _, err = run_cli(capsys, "sharpen", path, "--resolution", 4.0, "-o", out)
    assert rc == 2
    assert_one_error_line(err, pattern)
    assert only_inputs(tmp_path, "in") == []  # no output, no temporaries


@pytest.mark.parametrize(
    "change, pattern",
    [
        ("shape", "different grids: shape"),
        ("voxel", "different grids: voxel size"),
        ("origin", "different grids: origin"),
        ("identical", "identical"),
    ],
)
def test_bad_half_maps(capsys, tmp_path, maps, change, pattern):
    h1 = read_map(maps["h1"])
    if change == "shape":
        h2 = h1.crop((0, 0, 0), (40, 40, 40))
    elif change == "voxel":
        h2 = replace(read_map(maps["h2"]), voxel_size_xyz_A=(1.05, 1.1, 0.9), cell_A_deg=None)
    elif change == "origin":
        h2 = replace(read_map(maps["h2"]), origin_xyz_A=(0.0, 0.0, 0.0))
    else:
        h2 = h1
    p2 = tmp_path / "bad_h2.mrc"
    write_map(p2, h2)
    before = sorted(p.name for p in tmp_path.iterdir())
    rc, _, err = run_cli(capsys, "sharpen", "--half-maps", maps["h1"], p2, "-o", tmp_path / "post.mrc")
    assert rc == 2
    assert_one_error_line(err, pattern)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize(
    "res, pattern", [("1.0", "finer than the map's Nyquist"), ("0", "must be a positive"), ("-3", "must be a positive")]
)
def test_bad_resolution(capsys, tmp_path, maps, res, pattern):
    before = sorted(p.name for p in tmp_path.iterdir())
    rc, _, err = run_cli(capsys, "sharpen", maps["map"], "--resolution", res, "-o", tmp_path / "o.mrc")
    assert rc == 2 and pattern in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_unreadable_file(capsys, tmp_path, maps, monkeypatch):
    import os

    real_access = os.access
    # root can read any file, so simulate a permission problem at the check itself
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == maps["map"] else real_access(p, mode))
    rc, _, err = run_cli(capsys, "sharpen", maps["map"], "--resolution", 4.0, "-o", tmp_path / "o.mrc")
    assert rc == 2
    assert_one_error_line(err, "not readable")
    assert not (tmp_path / "o.mrc").exists()


def test_non_orthogonal_cell_is_refused(capsys, tmp_path, maps):
    m = read_map(maps["map"])
    a, b, c, *_ = m.cell
    write_map(tmp_path / "mono.mrc", replace(m, cell_A_deg=(a, b, c, 90.0, 101.5, 90.0)))
    rc, _, err = run_cli(capsys, "sharpen", tmp_path / "mono.mrc", "--resolution", 4.0, "-o", tmp_path / "o.mrc")
    assert rc == 2
    assert_one_error_line(err, "non-orthogonal cell")
    assert not (tmp_path / "o.mrc").exists()


def test_damaged_map_id_needs_permissive(capsys, tmp_path):
    raw = bytearray((DATA / "canonical.mrc").read_bytes())
    raw[208:212] = b"XXXX"  # the 'MAP ' identifier
    bad = tmp_path / "damaged.mrc"
    bad.write_bytes(bytes(raw))
    rc, _, err = run_cli(capsys, "info", bad)
    assert rc == 2 and "--permissive" in err
    rc, out, err = run_cli(capsys, "info", bad, "--permissive")
    assert rc == 0 and "warning" in (out + err)


def test_existing_output_is_refused_then_overwritten(capsys, tmp_path, maps):
    out = tmp_path / "o.mrc"
    out.write_bytes(b"keep me")
    rc, _, err = run_cli(capsys, "sharpen", maps["map"], "--resolution", 3.5, "-o", out)
    assert rc == 2 and "output exists" in err and "--overwrite" in err
    assert out.read_bytes() == b"keep me"
    assert not (tmp_path / "o.json").exists()
    rc, _, _ = run_cli(capsys, "sharpen", maps["map"], "--resolution", 3.5, "-o", out, "--overwrite", "-q")
    assert rc == 0 and read_map(out).shape_zyx == read_map(maps["map"]).shape_zyx


def test_missing_output_folder(capsys, tmp_path, maps):
    rc, _, err = run_cli(capsys, "sharpen", maps["map"], "--resolution", 3.5, "-o", tmp_path / "nodir" / "o.mrc")
    assert rc == 2 and "does not exist" in err and "mkdir" in err
    assert not (tmp_path / "nodir").exists()


def test_mask_on_another_grid_is_refused(capsys, tmp_path, maps):
    m = read_map(maps["map"])
    mask = DensityMap(np.ones((10, 10, 10), np.float32), m.voxel_size_xyz_A, m.origin_xyz_A)
    write_map(tmp_path / "mask.mrc", mask)
    rc, _, err = run_cli(
        capsys, "sharpen", maps["map"], "--resolution", 3.5, "--mask", tmp_path / "mask.mrc", "-o", tmp_path / "o.mrc"
    )
    assert rc == 2 and "different grids" in err
    assert not (tmp_path / "o.mrc").exists()


def test_usage_errors_exit_2(capsys, tmp_path, maps):
    assert main(["sharpen", "-o", str(tmp_path / "o.mrc")]) == 2  # no input
    assert main(["sharpen", str(maps["map"]), "-o", str(tmp_path / "o.mrc")]) == 2  # autob needs a resolution
    assert main(["sharpen", str(maps["map"]), "--method", "fsc", "-o", str(tmp_path / "o.mrc")]) == 2
    assert main(["nosuchcommand"]) == 2
    capsys.readouterr()
    assert not (tmp_path / "o.mrc").exists()
