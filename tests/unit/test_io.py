from __future__ import annotations

import itertools
from pathlib import Path

import gemmi
import mrcfile
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from densharp.errors import DensharpWarning, MapFormatError, OutputExistsError
from densharp.io.maps import read_map, write_map
from densharp.volume import DensityMap, OriginSource

DATA = Path(__file__).parent.parent / "data"


def ramp_zyx() -> np.ndarray:
    z, y, x = np.meshgrid(np.arange(6), np.arange(8), np.arange(10), indexing="ij")
    return (100 * z + 10 * y + x).astype(np.float32)


def assert_same_geometry(a: DensityMap, b: DensityMap) -> None:
    assert a.shape_zyx == b.shape_zyx
    np.testing.assert_allclose(a.voxel_size_xyz_A, b.voxel_size_xyz_A, rtol=1e-6)
    np.testing.assert_allclose(a.origin_xyz_A, b.origin_xyz_A, rtol=1e-6, atol=1e-5)
    assert a.nstart_xyz == b.nstart_xyz
    assert a.axis_order_crs == b.axis_order_crs
    assert a.grid_sampling_xyz == b.grid_sampling_xyz
    np.testing.assert_allclose(a.cell, b.cell, rtol=1e-6)


def test_canonical_fixture_reads_as_made():
    m = read_map(DATA / "canonical.mrc")
    np.testing.assert_array_equal(m.data_zyx, ramp_zyx())
    assert m.voxel_size_xyz_A == pytest.approx((1.0, 1.2, 0.8))
    assert m.origin_xyz_A == pytest.approx((5.0, -3.0, 2.0))
    assert m.origin_source is OriginSource.ORIGIN


def test_permuted_file_reads_identically_to_its_canonical_twin():
    a = read_map(DATA / "canonical.mrc")
    b = read_map(DATA / "permuted_231.mrc")
    with mrcfile.open(DATA / "permuted_231.mrc") as f:  # the file really is stored permuted
        assert (int(f.header.mapc), int(f.header.mapr), int(f.header.maps)) == (2, 3, 1)
        assert f.data.shape != a.data_zyx.shape
    np.testing.assert_array_equal(a.data_zyx, b.data_zyx)
    np.testing.assert_allclose(a.voxel_size_xyz_A, b.voxel_size_xyz_A)
    np.testing.assert_allclose(a.origin_xyz_A, b.origin_xyz_A)


@pytest.mark.parametrize("name", ["canonical.mrc", "permuted_231.mrc", "nstart.ccp4"])
def test_axis_order_agrees_with_gemmi(name):
    m = read_map(DATA / name)
    g = gemmi.read_ccp4_map(str(DATA / name))
    g.setup(float("nan"), gemmi.MapSetup.ReorderOnly)
    np.testing.assert_array_equal(np.asarray(g.grid.array).T, m.data_zyx)


def test_nstart_fixture_gives_origin_from_nstart():
    m = read_map(DATA / "nstart.ccp4")
    assert m.nstart_xyz == (3, -2, 4)
    assert m.origin_xyz_A == pytest.approx((3.0, -2.4, 3.2))
    assert m.origin_source is OriginSource.NSTART


def test_gzip_fixture_reads_like_plain():
    a = read_map(DATA / "canonical.mrc")
    b = read_map(DATA / "canonical.mrc.gz")
    np.testing.assert_array_equal(a.data_zyx, b.data_zyx)
    assert_same_geometry(a, b)


def test_truncated_file_is_refused_with_a_clear_message():
    with pytest.raises(MapFormatError, match="truncated"):
        read_map(DATA / "truncated.mrc")


def test_text_file_is_not_a_map():
    with pytest.raises(MapFormatError, match="not an MRC/CCP4 map"):
        read_map(DATA / "not_a_map.mrc")


def test_origin_and_nstart_both_set_and_disagreeing_warns(tmp_path):
    m = DensityMap(ramp_zyx(), (1.0, 1.0, 1.0), origin_xyz_A=(10.0, 0.0, 0.0), nstart_xyz=(2, 0, 0))
    write_map(tmp_path / "both.mrc", m)
    with pytest.warns(DensharpWarning, match="disagree"):
        r = read_map(tmp_path / "both.mrc")
    assert r.origin_xyz_A == pytest.approx((10.0, 0.0, 0.0))


def test_nan_refused_strict_and_replaced_permissive(tmp_path):
    d = ramp_zyx()
    d[1, 2, 3] = np.nan
    d[0, 0, 0] = np.inf
    with mrcfile.new(tmp_path / "nan.mrc") as f:
        f.set_data(d)
        f.voxel_size = 1.0
    with pytest.raises(MapFormatError, match="NaN or infinite"):
        read_map(tmp_path / "nan.mrc")
    with pytest.warns(DensharpWarning, match="non-finite"):
        m = read_map(tmp_path / "nan.mrc", permissive=True)
    assert np.isfinite(m.data_zyx).all()


def test_write_refuses_existing_output(tmp_path):
    m = DensityMap(ramp_zyx(), (1.0, 1.0, 1.0))
    write_map(tmp_path / "a.mrc", m)
    with pytest.raises(OutputExistsError, match="--overwrite"):
        write_map(tmp_path / "a.mrc", m)
    write_map(tmp_path / "a.mrc", m, overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["a.mrc"]  # no temporaries left


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    # 2+ voxels per axis: a grid with an axis of 1 is a 2-D image, refused as a volume (issue 14, item 3)
    shape=st.tuples(st.integers(2, 9), st.integers(2, 9), st.integers(2, 9)),
    voxel=st.tuples(*[st.floats(0.3, 5.0)] * 3),
    origin=st.tuples(*[st.floats(-500, 500)] * 3),
    nstart=st.tuples(*[st.integers(-50, 50)] * 3),
    order=st.sampled_from(list(itertools.permutations((1, 2, 3)))),
    use_nstart=st.booleans(),
    gz=st.booleans(),
)
def test_read_write_round_trip(tmp_path, shape, voxel, origin, nstart, order, use_nstart, gz):
    rng = np.random.default_rng(0)
    data = rng.normal(size=shape).astype(np.float32)
    if use_nstart:
        origin = tuple(n * v for n, v in zip(nstart, voxel))
    else:
        nstart = (0, 0, 0)  # ORIGIN and a disagreeing NSTART would (rightly) warn
    m = DensityMap(
        data,
        voxel,
        origin_xyz_A=origin,
        nstart_xyz=nstart,
        axis_order_crs=order,
        origin_source=OriginSource.NSTART if use_nstart else OriginSource.ORIGIN,
    )
    path = tmp_path / ("m.mrc.gz" if gz else "m.mrc")
    write_map(path, m, overwrite=True)
    r = read_map(path)
    np.testing.assert_array_equal(r.data_zyx, data)
    # header floats are float32: geometry agrees to float32 precision
    np.testing.assert_allclose(r.voxel_size_xyz_A, m.voxel_size_xyz_A, rtol=1e-6)
    np.testing.assert_allclose(r.origin_xyz_A, m.origin_xyz_A, rtol=1e-6, atol=1e-4)
    assert r.nstart_xyz == m.nstart_xyz
    assert r.axis_order_crs == m.axis_order_crs
