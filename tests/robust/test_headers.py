"""Issue 14 item 7: no silent header rewrites (ORIGIN with NaN/Inf, invalid cell angles), NX=NY=NZ=0 refused."""

from __future__ import annotations

import mrcfile
import numpy as np
import pytest

from conftest import refused
from densharp.errors import DensharpWarning, MapFormatError
from densharp.io.maps import read_map


def _file(path, rng, origin=(0.0, 0.0, 0.0), angles=(90.0, 90.0, 90.0), nstart=(0, 0, 0)):
    with mrcfile.new(path, overwrite=True) as m:
        m.set_data(rng.normal(size=(8, 9, 10)).astype(np.float32))
        m.voxel_size = (1.0, 1.1, 0.9)
        m.header.origin.x, m.header.origin.y, m.header.origin.z = origin
        m.header.cellb.alpha, m.header.cellb.beta, m.header.cellb.gamma = angles
        m.header.nxstart, m.header.nystart, m.header.nzstart = nstart
    return path


@pytest.mark.parametrize(
    "origin, kept",
    [((10.0, 20.0, np.nan), (10.0, 20.0, 3 * 0.9)), ((np.nan,) * 3, (0.0, 2 * 1.1, 3 * 0.9)),
     ((np.inf, 5.0, -np.inf), (0.0, 5.0, 3 * 0.9))],
)  # fmt: skip
def test_non_finite_origin_refused_or_kept_with_the_numbers(capsys, tmp_path, rng, origin, kept):
    p = _file(tmp_path / "o.mrc", rng, origin=origin, nstart=(0, 2, 3))
    with pytest.raises(MapFormatError, match=r"ORIGIN \(.*\) Å has non-finite components.*--permissive"):
        read_map(p)
    with pytest.warns(DensharpWarning, match="non-finite components; using"):
        m = read_map(p, permissive=True)
    np.testing.assert_allclose(m.origin_xyz_A, kept, atol=1e-5)  # finite components kept, not zeroed
    refused(capsys, tmp_path, 2, "sharpen", p, "--method", "autob", "--resolution", 4, "-o", tmp_path / "x.mrc",
            contains=("ORIGIN", "nan" if np.isnan(origin).any() else "inf", "--permissive"))  # fmt: skip


@pytest.mark.parametrize("angles", [(0.0, 90.0, 90.0), (90.0, np.nan, 90.0), (90.0, 90.0, 180.0)])
def test_invalid_cell_angles_refused_or_warned(tmp_path, rng, angles):
    p = _file(tmp_path / "a.mrc", rng, angles=angles)
    with pytest.raises(MapFormatError, match=r"cell angles .* not valid.*--permissive"):
        read_map(p)
    with pytest.warns(DensharpWarning, match="invalid; assuming 90"):
        m = read_map(p, permissive=True)
    assert m.cell[3:] == (90.0, 90.0, 90.0)


def test_unset_cell_angles_warn(tmp_path, rng):
    p = _file(tmp_path / "a.mrc", rng, angles=(0.0, 0.0, 0.0))
    with pytest.warns(DensharpWarning, match=r"cell angles are unset \(0, 0, 0\); assuming 90"):
        m = read_map(p)
    assert m.cell[3:] == (90.0, 90.0, 90.0)


def test_zero_grid_refused(capsys, tmp_path, rng):
    p = _file(tmp_path / "z.mrc", rng)
    raw = bytearray(p.read_bytes())
    raw[0:12] = np.zeros(3, np.int32).tobytes()
    p.write_bytes(bytes(raw[:1024]))
    for cmd in (
        ["info", p],
        ["fsc", p, p],
        ["sharpen", p, "--method", "autob", "--resolution", 4, "-o", tmp_path / "x"],
    ):
        refused(capsys, tmp_path, 2, *cmd, contains=(str(p), "0×0×0"))
