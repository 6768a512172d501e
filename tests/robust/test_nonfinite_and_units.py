"""Issue 14 item 2: non-finite output is impossible, and sharpening does not depend on a map's units or offset."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from conftest import refused, run_cli, snapshot
from densharp.filters.sharpen import sharpen_autob, sharpen_fixed_b, sharpen_half_maps
from densharp.io.maps import read_map, write_map
from densharp.metrics.rscc import rscc
from densharp.volume import DensityMap


def _strict_json(text: str):
    def no_constants(name):
        raise AssertionError(f"JSON contains {name}")

    return json.loads(text, parse_constant=no_constants)


def test_bfactor_without_resolution_on_fine_voxels_is_finite_and_capped(capsys, tmp_path, rng):
    # 0.5 Å voxels, B 150, no --resolution: exp(B s²/4) reaches e^56 at the corner; the gain is capped at 100x
    d = rng.normal(size=(32, 30, 28)).astype(np.float32)
    src = tmp_path / "fine.mrc"
    write_map(src, DensityMap(d, (0.5, 0.5, 0.5)))
    out = tmp_path / "out.mrc"
    rc, _, err = run_cli(capsys, "sharpen", src, "--method", "bfactor", "--b-factor", -150, "-o", out, "-q")
    assert rc == 0, err
    o = read_map(out).data_zyx
    assert np.isfinite(o).all()
    assert o.std() <= 100.0 * d.std() * 1.001
    notes = json.loads((tmp_path / "out.json").read_text())["result"]["notes"]
    assert any("capped at 100×" in n for n in notes)


@pytest.mark.parametrize("b", ["nan", "inf", "-inf", "1e9"])
def test_non_finite_or_absurd_bfactor_refused(capsys, work, b):
    refused(
        capsys, work["dir"], 2, "sharpen", work["map"], "--method", "bfactor", f"--b-factor={b}",
        "--resolution", 3.5, "-o", work["dir"] / "o.mrc", contains=("--b-factor", "Å²"),
    )  # fmt: skip


def test_simulate_bfactor_nan_refused(capsys, work):
    refused(
        capsys, work["dir"], 2, "simulate", work["model"], "-o", work["dir"] / "s.mrc", "--resolution", 4,
        "--b-factor", "nan", contains=("--b-factor", "finite"),
    )  # fmt: skip


@pytest.mark.parametrize("kind", ["one_voxel_1e30", "all_times_1e18"])
@pytest.mark.parametrize("method", ["autob", "bfactor"])
def test_huge_values_never_give_non_finite_output(capsys, tmp_path, blurred_35A, kind, method):
    d = blurred_35A.data_zyx.astype(np.float64)
    if kind == "one_voxel_1e30":
        d = d.copy()
        d[10, 11, 12] = 1e30
    else:
        d = d * 1e18
    src = tmp_path / "huge.mrc"
    write_map(src, blurred_35A.with_data(d.astype(np.float32)))
    out = tmp_path / "out.mrc"
    extra = ["--b-factor", -80] if method == "bfactor" else []
    rc, _, err = run_cli(capsys, "sharpen", src, "--method", method, *extra, "--resolution", 3.5, "-o", out, "-q")
    assert rc == 0, err
    o = read_map(out).data_zyx
    assert np.isfinite(o).all()
    if kind == "all_times_1e18":  # the same result in other units
        ref = (sharpen_autob(blurred_35A, 3.5) if method == "autob" else sharpen_fixed_b(blurred_35A, 80, 3.5)).map
        assert rscc(o, ref.data_zyx) > 0.999


@pytest.mark.parametrize("method", ["autob", "bfactor", "fsc"])
def test_units_and_offset_do_not_change_the_result(blurred_35A, half_maps, method):
    """A map ×10⁶ + 10³ sharpens to the same map ×10⁶ + 10³ (correlation ≥ 0.999, and the affine map holds)."""

    def affine(m: DensityMap) -> DensityMap:
        return m.with_data((m.data_zyx.astype(np.float64) * 1e6 + 1e3).astype(np.float32))

    if method == "autob":
        a, b = sharpen_autob(blurred_35A, 3.5).map, sharpen_autob(affine(blurred_35A), 3.5).map
    elif method == "bfactor":
        a, b = sharpen_fixed_b(blurred_35A, 80, 3.5).map, sharpen_fixed_b(affine(blurred_35A), 80, 3.5).map
    else:
        a = sharpen_half_maps(*half_maps).map
        b = sharpen_half_maps(affine(half_maps[0]), affine(half_maps[1])).map
    assert rscc(a, b) >= 0.999
    back = (b.data_zyx.astype(np.float64) - 1e3) / 1e6
    assert np.abs(back - a.data_zyx).max() <= 1e-3 * np.abs(a.data_zyx).max()


def test_units_and_offset_through_the_cli(capsys, work, tmp_path, blurred_35A):
    src = tmp_path / "scaled.mrc"
    write_map(src, blurred_35A.with_data((blurred_35A.data_zyx.astype(np.float64) * 1e6 + 1e3).astype(np.float32)))
    for inp, out in ((work["map"], "a.mrc"), (src, "b.mrc")):
        rc, _, err = run_cli(capsys, "sharpen", inp, "--method", "autob", "--resolution", 3.5, "-o", tmp_path / out)
        assert rc == 0, err
    assert rscc(read_map(tmp_path / "a.mrc"), read_map(tmp_path / "b.mrc")) >= 0.999


def test_fsc_and_compare_json_never_hold_nan_or_infinity(capsys, tmp_path, blurred_35A, rng):
    # an unrelated noise map: the FSC is below both thresholds from the first shell (resolution = inf)
    a = tmp_path / "a.mrc"
    b = tmp_path / "b.mrc"
    write_map(a, blurred_35A)
    write_map(b, blurred_35A.with_data(rng.normal(size=blurred_35A.shape_zyx).astype(np.float32)))
    for cmd in ("fsc", "compare"):
        rc, out, err = run_cli(capsys, cmd, a, b, "--json")
        assert rc == 0, err
        rec = _strict_json(out)
        for k in ("d_fsc05_A", "d_fsc0143_A"):
            v = rec[k]
            assert v is None or math.isfinite(v)
            if v is None:
                assert k in rec["null_values"] and any(k in n for n in rec["notes"])


def test_json_writer_replaces_non_finite_numbers(tmp_path):
    from densharp.io.atomic import json_text, write_json_atomic

    rec = _strict_json(json_text({"a": float("nan"), "b": [1.0, float("inf")], "c": np.float32("-inf")}))
    assert rec["a"] is None and rec["b"] == [1.0, None] and rec["c"] is None
    assert rec["null_values"] == {"a": "nan", "b[1]": "inf", "c": "-inf"}
    write_json_atomic(tmp_path / "x.json", {"v": float("nan")})
    assert _strict_json((tmp_path / "x.json").read_text())["v"] is None
    assert snapshot(tmp_path).keys() == {"x.json"}
