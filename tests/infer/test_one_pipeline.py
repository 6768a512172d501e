"""One pipeline: ``densharp evaluate`` (and the benchmarks, through ``evaluate_case``) score exactly what
``densharp sharpen`` writes; MTZ input is gridded and conditioned as the X-ray model was trained."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from densharp.cli import main  # noqa: E402
from densharp.evaluate.case import evaluate_case  # noqa: E402
from densharp.fourier import lowpass  # noqa: E402
from densharp.io.maps import read_map, write_map  # noqa: E402
from infer_synth import blob_map, export_tiny, registry_folder, tiny_model  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def shipped_tiny(tmp_path, monkeypatch):
    w = tmp_path / "unet.safetensors"
    sha = export_tiny(tiny_model("unet", perturb=True), w)
    monkeypatch.setenv("DENSHARP_WEIGHTS_DIR", str(registry_folder(tmp_path / "reg", {"unet-em": (w, sha)})))
    return w


def test_evaluate_and_benchmarks_score_what_sharpen_writes(tmp_path, capsys, shipped_tiny):
    m = blob_map((32, 28, 24), voxel_xyz=(1.0, 1.0, 1.0), origin_xyz=(3.0, -2.0, 5.0))
    target = lowpass(m, 2.5)
    src, tgt = tmp_path / "in.mrc", tmp_path / "t.mrc"
    write_map(src, m)
    write_map(tgt, target)
    for method, name in (("autob", "autob"), (None, "default"), ("unet", "unet")):
        out = tmp_path / f"{name}_out.mrc"
        argv = ["sharpen", str(src), "--resolution", "4", "-o", str(out), "-q"]
        assert main(argv + (["--method", method] if method else [])) == 0
        j = tmp_path / f"{name}.json"
        rc = main(["evaluate", str(out), "--target", str(tgt), "--input", str(src), "--input-resolution", "4",
                   "--methods", name, "--json", str(j), "-q"])  # fmt: skip
        assert rc == 0, capsys.readouterr().err
        rec = json.loads(j.read_text())["cases"][0]["methods"]
        assert rec[f"{name}_out"]["rscc_mask"] == rec[name]["rscc_mask"]  # the same map, to the last digit
        case = evaluate_case("c", read_map(src), read_map(tgt), 4.0, [name], given_maps={"file": read_map(out)})
        assert case["methods"]["file"]["rscc_mask"] == case["methods"][name]["rscc_mask"]


def test_mtz_at_1p9_A_is_gridded_and_conditioned_as_in_training(tmp_path, capsys, monkeypatch):
    from densharp.simulate.crystal import simulate_crystal
    from synth import globule_structure

    w = tmp_path / "xray.safetensors"
    sha = export_tiny(tiny_model("unet"), w, modality="xray", res_range=(1.8, 4.0), voxel_range=(0.72, 1.0))
    monkeypatch.setenv("DENSHARP_WEIGHTS_DIR", str(registry_folder(tmp_path / "reg", {"unet-xray": (w, sha)})))
    sim = simulate_crystal(globule_structure(120, 7.0, seed=3), 1.9, np.random.default_rng(0), voxel_size_A=0.6)
    mtz = tmp_path / "d.mtz"
    sim.mtz.write_to_file(str(mtz))
    assert main(["sharpen", str(mtz), "-o", str(tmp_path / "o.ccp4"), "-q"]) == 0, capsys.readouterr().err
    learned = json.loads((tmp_path / "o.json").read_text())["result"]["learned"]
    # training: grid spacing min(1.0, d/2.5) = 0.76 Å, target max(d/2, 1.5, 2.2 x 0.76) = 1.67 Å, no resampling
    assert learned["grid"]["resampled"] is False and learned["grid"]["voxel_A"] == pytest.approx(0.76, abs=0.04)
    assert learned["d_target_A"] == pytest.approx(max(0.95, 1.5, 2.2 * learned["grid"]["voxel_A"]))
    assert learned["d_target_A"] == pytest.approx(1.67, abs=0.09)
    rc = main(["sharpen", str(mtz), "-o", str(tmp_path / "t.ccp4"), "--target-resolution", "1.7", "-q"])
    assert rc == 0, capsys.readouterr().err  # the trained target is accepted
    assert json.loads((tmp_path / "t.json").read_text())["result"]["learned"]["d_target_A"] == 1.7


@pytest.mark.parametrize(("cell", "sg_name"), [((41.0, 33.0, 37.0, 90.0, 105.0, 90.0), "C 1 2 1"),
                                               ((36.0, 36.0, 44.0, 90.0, 90.0, 120.0), "P 65 2 2")])  # fmt: skip
def test_learned_xray_on_sheared_cells_keeps_the_data_and_the_symmetry(tmp_path, capsys, monkeypatch, cell, sg_name):
    import gemmi

    from densharp.io.mtz import read_mtz
    from densharp.metrics.consistency import consistency_check
    from densharp.reflections import coefficients_map
    from unit.test_cells import mtz_file, symmetric_coefficients

    w = tmp_path / "xray.safetensors"
    sha = export_tiny(
        tiny_model("unet", perturb=True), w, modality="xray", res_range=(1.8, 4.0), voxel_range=(0.72, 1.0)
    )
    monkeypatch.setenv("DENSHARP_WEIGHTS_DIR", str(registry_folder(tmp_path / "reg", {"unet-xray": (w, sha)})))
    src = mtz_file(tmp_path, "d.mtz", cell, sg_name, *symmetric_coefficients(cell, sg_name, 3.0, b_A2=20.0))
    out = tmp_path / "o.ccp4"
    rc = main(["sharpen", str(src), "-o", str(out), "--mtz-out", str(tmp_path / "o.mtz"), "-q"])
    assert rc == 0, capsys.readouterr().err
    rec = json.loads((tmp_path / "o.json").read_text())
    assert rec["method"] == "unet" and rec["result"]["extrapolation"]["extrapolated_added"] > 0
    got = read_map(out)
    assert got.cell == pytest.approx(cell, rel=1e-5)
    inp = coefficients_map(read_mtz(src), got)
    assert consistency_check(got, inp, 3.0).fsc_min > 0.999  # the measured shells are the data's
    g = gemmi.FloatGrid(np.ascontiguousarray(got.data_zyx.T), gemmi.UnitCell(*cell), gemmi.SpaceGroup(sg_name))
    before = np.array(g, copy=True)
    g.symmetrize_avg()
    assert np.abs(np.array(g) - before).max() < 1e-4 * np.abs(before).max()  # and the output is symmetric
