"""Property test over 1,200 random MRC headers (issue 14 'done when'): permuted MAPC/MAPR/MAPS, NSTART/ORIGIN
combinations (either, both agreeing, both disagreeing), anisotropic voxels, non-cubic grids, MX ≠ NX sub-boxes,
integer and float modes, gzip. A single bright voxel is put in the file; its Cartesian position (Å) must be the
one the header defines after read, after read → write → read (geometry identical), and after a classical sharpen.

A seeded loop (not hypothesis) keeps it deterministic and fast (~10 s for all cases on one core).
"""

from __future__ import annotations

import itertools
import os
import warnings

import mrcfile
import numpy as np
import pytest

from densharp.errors import DensharpWarning
from densharp.filters.sharpen import sharpen_fixed_b
from densharp.io.maps import read_map, write_map

N_CASES = 1200
PERMS = list(itertools.permutations((1, 2, 3)))


def _random_header(rng: np.random.Generator) -> dict:
    crs = PERMS[int(rng.integers(6))]
    n_crs = tuple(int(v) for v in rng.integers(2, 13, 3))  # NX, NY, NZ (columns, rows, sections), non-cubic
    n_xyz = [0, 0, 0]
    for file_axis, axis in enumerate(crs):
        n_xyz[axis - 1] = n_crs[file_axis]
    # MX/MY/MZ along x, y, z: the grid itself or a larger cell sampling (a crystallographic sub-box)
    m_xyz = [n if rng.random() < 0.7 else n + int(rng.integers(1, 40)) for n in n_xyz]
    voxel = rng.uniform(0.3, 3.0, 3)  # anisotropic
    cella = np.float32(np.asarray(m_xyz) * voxel)
    kind = ["nstart", "origin", "agree", "disagree"][int(rng.integers(4))]
    nstart_crs = [0, 0, 0]
    origin = (0.0, 0.0, 0.0)
    if kind in ("nstart", "agree", "disagree"):
        nstart_crs = [int(v) for v in rng.integers(-60, 60, 3)]
        if not any(nstart_crs):
            nstart_crs[0] = 7
    if kind in ("origin", "disagree"):
        origin = tuple(float(np.float32(v)) for v in rng.uniform(-400, 400, 3))
    if kind == "agree":
        nst_xyz = [nstart_crs[crs.index(k + 1)] for k in range(3)]
        origin = tuple(float(np.float32(n * c / m)) for n, c, m in zip(nst_xyz, cella, m_xyz))
    return {
        "crs": crs,
        "n_crs": n_crs,
        "m_xyz": m_xyz,
        "cella": cella,
        "nstart_crs": nstart_crs,
        "origin": origin,
        "kind": kind,
        "mode": [np.float32, np.int16, np.int8][int(rng.choice(3, p=[0.8, 0.15, 0.05]))],
        "bright_src": tuple(int(rng.integers(0, n)) for n in n_crs[::-1]),  # (section, row, column)
        "gz": rng.random() < 0.1,
    }


def _write_raw(path, h, rng) -> None:
    nx, ny, nz = h["n_crs"]
    data = rng.normal(0, 1, (nz, ny, nx))
    data[h["bright_src"]] = 100.0
    with mrcfile.new(path, overwrite=True, compression="gzip" if h["gz"] else None) as m:
        m.set_data(data.astype(h["mode"]))
        hd = m.header
        hd.mapc, hd.mapr, hd.maps = h["crs"]
        hd.mx, hd.my, hd.mz = h["m_xyz"]
        hd.cella.x, hd.cella.y, hd.cella.z = h["cella"]
        hd.nxstart, hd.nystart, hd.nzstart = h["nstart_crs"]
        hd.origin.x, hd.origin.y, hd.origin.z = h["origin"]


def _expected_xyz(h) -> np.ndarray:
    """Where the header puts the bright voxel (Å), by the MRC2014 rules densharp documents."""
    crs = h["crs"]
    s, r, c = h["bright_src"]
    idx_file = (c, r, s)  # column, row, section
    voxel = np.asarray(h["cella"], np.float64) / np.asarray(h["m_xyz"])
    idx_xyz = np.array([idx_file[crs.index(k + 1)] for k in range(3)], np.float64)
    nst_xyz = np.array([h["nstart_crs"][crs.index(k + 1)] for k in range(3)], np.float64)
    origin = np.asarray(h["origin"], np.float64)
    if np.any(origin != 0):
        return origin + idx_xyz * voxel
    return (nst_xyz + idx_xyz) * voxel


def _bright_xyz(m) -> np.ndarray:
    z, y, x = np.unravel_index(int(np.argmax(m.data_zyx)), m.shape_zyx)
    return np.asarray(m.origin_xyz_A) + np.array([x, y, z]) * np.asarray(m.voxel_size_xyz_A)


def _read(path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DensharpWarning)
        m = read_map(path)
    return m, [w for w in caught if issubclass(w.category, DensharpWarning)]


def _geometry(m) -> tuple:
    return (m.shape_zyx, m.voxel_size_xyz_A, m.origin_xyz_A, m.nstart_xyz, m.grid_sampling_xyz, m.cell,
            m.spacegroup, m.axis_order_crs, m.origin_source)  # fmt: skip


HEADER_FIELDS = ("nx", "ny", "nz", "mapc", "mapr", "maps", "mx", "my", "mz", "nxstart", "nystart", "nzstart", "cella",
                 "cellb", "origin", "ispg")  # fmt: skip


def _header_fields(path) -> dict:
    with mrcfile.open(path) as f:
        return {k: f.header[k].tolist() for k in HEADER_FIELDS}


@pytest.fixture
def fast_dir(tmp_path, monkeypatch):
    """A RAM folder when there is one, and no fsync: this test is about geometry, not durability."""
    import shutil
    import tempfile
    from pathlib import Path

    from densharp.io import atomic

    monkeypatch.setattr(atomic, "_fsync_file", lambda path: None)
    monkeypatch.setattr(atomic, "_fsync_dir", lambda folder: None)
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    d = Path(tempfile.mkdtemp(dir=shm, prefix="densharp-prop-"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("block", range(4))
def test_random_headers_keep_geometry_and_density_position(fast_dir, block):
    tmp_path = fast_dir
    rng = np.random.default_rng(1000 + block)
    kinds: dict[str, int] = {}
    for i in range(N_CASES // 4):
        h = _random_header(rng)
        kinds[h["kind"]] = kinds.get(h["kind"], 0) + 1
        src = tmp_path / ("in.mrc.gz" if h["gz"] else "in.mrc")
        _write_raw(src, h, rng)
        ctx = f"case {block}/{i}: {h}"

        m, warns = _read(src)
        expect = _expected_xyz(h)
        tol = 1e-5 * (1.0 + np.abs(expect))
        assert np.all(np.abs(_bright_xyz(m) - expect) <= tol), ctx
        assert bool(warns) == (h["kind"] == "disagree"), ctx  # a warning exactly when ORIGIN and NSTART disagree

        out = tmp_path / ("out.mrc.gz" if h["gz"] else "out.mrc")
        write_map(out, m, overwrite=True)
        m2, _ = _read(out)
        assert _geometry(m2) == _geometry(m), ctx
        np.testing.assert_array_equal(m2.data_zyx, m.data_zyx)
        want, got = _header_fields(src), _header_fields(out)
        for k in ("nx", "ny", "nz", "mapc", "mapr", "maps", "mx", "my", "mz", "nxstart", "nystart", "nzstart",
                  "cella", "ispg"):  # fmt: skip
            assert want[k] == got[k], (k, ctx)
        if h["kind"] != "nstart":
            assert want["origin"] == got["origin"], ctx

        sharp = sharpen_fixed_b(m2, 30.0, None).map
        assert _geometry(sharp)[:9] == _geometry(m2)[:9], ctx
        assert np.all(np.abs(_bright_xyz(sharp) - expect) <= tol), ctx
    assert set(kinds) == {"nstart", "origin", "agree", "disagree"}


def test_random_headers_through_the_sharpen_command(fast_dir, capsys):
    from densharp.cli import main

    rng = np.random.default_rng(7)
    for i in range(12):
        h = _random_header(rng)
        h["gz"] = False
        if h["kind"] == "disagree":  # covered above; keep the console free of the (expected) warning
            h["kind"], h["nstart_crs"] = "origin", [0, 0, 0]
        src = fast_dir / f"in{i}.mrc"
        _write_raw(src, h, rng)
        out = fast_dir / f"out{i}.mrc"
        rc = main(["sharpen", str(src), "--method", "bfactor", "--b-factor", "-30", "-o", str(out), "-q"])
        _, err = capsys.readouterr()
        assert rc == 0, err
        want, got = _header_fields(src), _header_fields(out)
        for k in ("nx", "ny", "nz", "mapc", "mapr", "maps", "mx", "my", "mz", "nxstart", "nystart", "nzstart",
                  "cella", "origin"):  # fmt: skip
            assert want[k] == got[k], (k, h)
        m, _ = _read(out)
        expect = _expected_xyz(h)
        assert np.all(np.abs(_bright_xyz(m) - expect) <= 1e-5 * (1.0 + np.abs(expect))), h
