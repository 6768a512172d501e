"""Issue 14 item 3: particle stacks, 2-D images and volume stacks are identified and never treated as volumes."""

from __future__ import annotations

import json

import mrcfile
import numpy as np
import pytest

from conftest import refused, run_cli
from densharp.errors import DensharpWarning, MapFormatError
from densharp.io.maps import MapKind, read_map, read_map_header


def _write(path, data, ispg=None, stack=False, mz=None):
    with mrcfile.new(path, overwrite=True) as m:
        m.set_data(data.astype(np.float32))
        if stack:
            m.set_image_stack()
        if ispg is not None:
            m.header.ispg = ispg
        m.voxel_size = 1.2
        if mz is not None:
            m.header.mz = mz
    return path


@pytest.fixture
def odd_files(tmp_path, rng):
    d = rng.normal(size=(10, 16, 18))
    return {
        "mrcs": (_write(tmp_path / "particles.mrcs", d, stack=True), MapKind.IMAGE_STACK, "image stack"),
        "mrcs_ispg1": (_write(tmp_path / "p1.mrcs", d, ispg=1), MapKind.IMAGE_STACK, ".mrcs suffix"),
        "ispg0": (_write(tmp_path / "stack0.mrc", d, ispg=0, mz=1), MapKind.IMAGE_STACK, "ISPG 0"),
        "nz1": (_write(tmp_path / "micrograph.mrc", d[:1], ispg=1), MapKind.IMAGE, "2-D image"),
        "nz1_2d": (_write(tmp_path / "image2d.mrc", d[0]), MapKind.IMAGE, "2-D image"),
        "volstack": (_write(tmp_path / "vols.mrc", np.stack([d, d])), MapKind.VOLUME_STACK, "stack of 2 volumes"),
    }


CASES = ["mrcs", "mrcs_ispg1", "ispg0", "nz1", "nz1_2d", "volstack"]


@pytest.mark.parametrize("case", CASES)
def test_reader_identifies_what_the_file_holds(odd_files, case):
    path, kind, _ = odd_files[case]
    assert read_map_header(path).kind is kind
    with pytest.raises(MapFormatError, match=r"not (a 3-D|one) volume"):
        read_map(path)


@pytest.mark.parametrize("case", CASES)
def test_info_calls_them_what_they_are(capsys, odd_files, case):
    path, kind, words = odd_files[case]
    rc, out, err = run_cli(capsys, "info", path, "--json")
    assert rc == 0, err
    rec = json.loads(out)
    assert rec["kind"] == kind.value
    assert words in rec["description"] or words in " ".join(rec["warnings"])
    rc, out, _ = run_cli(capsys, "info", path)
    assert f"kind              {kind.value}: " in out


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("command", ["sharpen", "fsc", "compare", "evaluate"])
def test_every_volume_command_refuses_them(capsys, work, odd_files, case, command):
    path, _, _ = odd_files[case]
    d = work["dir"]
    argv = {
        "sharpen": ["sharpen", path, "--method", "autob", "--resolution", 4, "-o", d / "o.mrc"],
        "fsc": ["fsc", path, work["map"], "--csv", d / "f.csv"],
        "compare": ["compare", work["map"], path],
        "evaluate": ["evaluate", path, "--target", work["target"], "--json", d / "e.json"],
    }[command]
    line = refused(capsys, d, 2, *argv, contains=(str(path),))
    assert "volume" in line
    if case in ("mrcs", "ispg0", "mrcs_ispg1"):
        assert "--permissive" in line and "set_volume" in line  # the fix for a volume whose writer left ISPG 0


def test_permissive_reads_an_ispg0_volume_as_a_volume(odd_files):
    path, _, _ = odd_files["ispg0"]
    with pytest.warns(DensharpWarning) as caught:
        m = read_map(path, permissive=True)
    assert any("reading it as one volume" in str(w.message) for w in caught)
    assert m.shape_zyx == (10, 16, 18)
    assert m.spacegroup == 1  # written back as a volume
    assert np.allclose(m.voxel_size_xyz_A, (1.2, 1.2, 1.2), rtol=1e-5)


def test_an_ispg0_volume_with_mz_equal_nz_is_a_volume(tmp_path, rng):
    """Chimera and older EMDB maps: ISPG 0 but MZ = NZ (a real deposited map, HCN4 EMD-0093, is written so)."""
    path = _write(tmp_path / "chimera.mrc", rng.normal(size=(10, 16, 18)), ispg=0)
    assert read_map_header(path).kind is MapKind.VOLUME
    m = read_map(path)
    assert m.shape_zyx == (10, 16, 18) and m.spacegroup == 0  # the file's convention is written back
    assert np.allclose(m.voxel_size_xyz_A, (1.2, 1.2, 1.2), rtol=1e-5)
