"""CLI: ``densharp sharpen`` with learned models: exact header geometry, samples, domain fallback, bad input,
crystallographic MTZ input and many inputs in one call."""

from __future__ import annotations

import json
from pathlib import Path

import mrcfile
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from densharp.cli import main  # noqa: E402
from densharp.conditioning import prefilter_input  # noqa: E402
from densharp.io.maps import read_map, write_map  # noqa: E402
from infer_synth import blob_map, export_tiny, registry_folder, tiny_model  # noqa: E402

DATA = Path(__file__).parent.parent / "data"
HEADER_FIELDS = ("nx", "ny", "nz", "mapc", "mapr", "maps", "mx", "my", "mz", "nxstart", "nystart", "nzstart", "ispg")


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    d = tmp_path_factory.mktemp("weights")
    out = {}
    for name, model in {"unet": tiny_model("unet"), "vae": tiny_model("vae", perturb=True)}.items():
        p = d / f"{name}.safetensors"
        out[name + "_sha"] = export_tiny(model, p)
        out[name] = p
    return out


def run_cli(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def header(path: Path) -> dict:
    with mrcfile.open(path, permissive=True) as f:
        h = f.header
        d = {k: int(h[k]) for k in HEADER_FIELDS}
        d["cella"] = [float(h.cella[k]) for k in "xyz"]
        d["cellb"] = [float(h.cellb[k]) for k in ("alpha", "beta", "gamma")]
        d["origin"] = [float(h.origin[k]) for k in "xyz"]
    return d


MAPS = {
    "permuted_noncubic": dict(shape_zyx=(20, 24, 28), origin_xyz=(-7.5, 3.25, 11.0), axis_order_crs=(3, 1, 2)),
    "anisotropic_nstart": dict(shape_zyx=(18, 22, 26), voxel_xyz=(1.0, 1.1, 0.9), nstart_xyz=(3, -2, 4)),
    "voxel_083": dict(shape_zyx=(22, 20, 24), voxel_xyz=(0.83, 0.83, 0.83), axis_order_crs=(2, 3, 1)),
    "voxel_14": dict(shape_zyx=(16, 18, 14), voxel_xyz=(1.4, 1.4, 1.4), origin_xyz=(10.0, 0.0, -4.2)),
}


@pytest.mark.parametrize("kind", list(MAPS))
def test_output_header_overlays_the_input(capsys, tmp_path, weights, kind):
    src = tmp_path / "in.mrc"
    m = blob_map(**MAPS[kind])
    write_map(src, m)
    out = tmp_path / "out.mrc"
    rc, _, err = run_cli(capsys, "sharpen", src, "--weights", weights["unet"], "--resolution", 4, "-o", out, "-q")
    assert rc == 0, err
    assert header(out) == header(src)
    got = read_map(out)
    seen = prefilter_input(read_map(src), 4.0).data_zyx  # an identity model returns what it sees: the input at 4 Å
    np.testing.assert_allclose(got.data_zyx, seen, atol=3e-3 * float(np.abs(m.data_zyx).max()))
    rec = json.loads((tmp_path / "out.json").read_text())
    assert rec["method"] == "unet" and rec["model"]["sha256"] == weights["unet_sha"]
    assert rec["result"]["learned"]["grid"]["resampled"] == (kind != "permuted_noncubic")
    assert rec["peak_rss_MiB"] > 0 and "torch" in rec["provenance"]
    assert (tmp_path / "out.log").is_file()


def test_vae_samples_write_an_sd_map_on_the_same_grid(capsys, tmp_path, weights):
    src = tmp_path / "in.mrc"
    write_map(src, blob_map(**MAPS["permuted_noncubic"]))
    out = tmp_path / "v.mrc"
    rc, _, err = run_cli(
        capsys, "sharpen", src, "--weights", weights["vae"], "--samples", 8, "--resolution", 4, "-o", out, "-q"
    )
    assert rc == 0, err
    sd = tmp_path / "v_sd.mrc"
    assert header(sd) == header(src) == header(out)
    assert float(read_map(sd).data_zyx.min()) >= 0.0
    rec = json.loads((tmp_path / "v.json").read_text())
    assert rec["method"] == "vae" and "standard deviation across 8 VAE samples" in rec["sd_map"]["meaning"]


def test_outside_the_domain_falls_back_unless_forced(capsys, tmp_path, weights):
    src = tmp_path / "in.mrc"
    write_map(src, blob_map((32, 32, 32), voxel_xyz=(2.0, 2.0, 2.0)))
    out = tmp_path / "a.mrc"
    rc, _, err = run_cli(
        capsys, "sharpen", src, "--weights", weights["unet"], "--resolution", 10, "--fit-low", 20, "-o", out
    )
    assert rc == 0, err
    assert "falling back to autob" in err
    rec = json.loads((tmp_path / "a.json").read_text())
    assert rec["method"] == "autob" and rec["fallback"]["to"] == "autob"
    assert "resolution 10" in rec["fallback"]["reasons"][0] and rec["domain"]["inside"] is False
    assert "falling back" in (tmp_path / "a.log").read_text()
    rc, _, err = run_cli(
        capsys, "sharpen", src, "--weights", weights["unet"], "--resolution", 10, "--force", "-o", tmp_path / "b.mrc"
    )
    assert rc == 0, err
    rec = json.loads((tmp_path / "b.json").read_text())
    assert rec["method"] == "unet" and rec["domain"]["forced"] is True and "fallback" not in rec


def _registry(tmp_path, weights, sha=None):
    return registry_folder(tmp_path / "registry", {"unet-em": (weights["unet"], sha or weights["unet_sha"])})


def test_default_method_uses_shipped_unet_when_present(capsys, tmp_path, weights, monkeypatch):
    src = tmp_path / "in.mrc"
    write_map(src, blob_map((24, 24, 24)))
    monkeypatch.setenv("DENSHARP_WEIGHTS_DIR", str(registry_folder(tmp_path / "empty_registry", {})))
    rc, _, err = run_cli(capsys, "sharpen", src, "--resolution", 4, "-o", tmp_path / "none.mrc", "-q")
    assert rc == 0, err
    rec = json.loads((tmp_path / "none.json").read_text())
    assert rec["method"] == "autob" and "no shipped model" in rec["method_choice"]["how"]
    monkeypatch.setenv("DENSHARP_WEIGHTS_DIR", str(_registry(tmp_path, weights)))
    rc, _, err = run_cli(capsys, "sharpen", src, "--resolution", 4, "-o", tmp_path / "dflt.mrc", "-q")
    assert rc == 0, err
    rec = json.loads((tmp_path / "dflt.json").read_text())
    assert rec["method"] == "unet" and rec["model"]["name"] == "unet-em"


def test_half_maps_through_the_model_report_processed_fsc(capsys, tmp_path, weights):
    a = blob_map((24, 24, 24), seed=1)
    rng = np.random.default_rng(0)
    for k in (1, 2):
        noise = rng.normal(0, 0.05, a.shape_zyx).astype(np.float32)
        write_map(tmp_path / f"h{k}.mrc", a.with_data(a.data_zyx + noise))
    out = tmp_path / "post.mrc"
    rc, _, err = run_cli(
        capsys, "sharpen", "--half-maps", tmp_path / "h1.mrc", tmp_path / "h2.mrc", "--weights", weights["unet"],
        "--resolution", 4, "-o", out, "-q",
    )  # fmt: skip
    assert rc == 0, err
    rec = json.loads((tmp_path / "post.json").read_text())
    assert rec["method"] == "unet" and "mean of the two half maps" in rec["result"]["input"]
    h1, h2 = read_map(tmp_path / "h1.mrc"), read_map(tmp_path / "h2.mrc")
    mean = prefilter_input(h1.with_data(0.5 * (h1.data_zyx + h2.data_zyx)), 4.0).data_zyx  # the model runs on the mean
    # an identity model returns its (prefiltered) input; the do-no-harm projection's gains, measured inside the
    # molecule mask, differ from 1 by a few 1e-4 (masking mixes the prefilter's edge into coarser shells)
    np.testing.assert_allclose(read_map(out).data_zyx, mean, atol=5e-4)


# ------------------------------------------------------------------------------------------- crystallography
@pytest.fixture(scope="module")
def mtz_file(tmp_path_factory):
    from densharp.simulate.crystal import simulate_crystal
    from synth import globule_structure

    sim = simulate_crystal(globule_structure(150, 7.0, seed=2), 2.8, np.random.default_rng(0), voxel_size_A=1.0)
    p = tmp_path_factory.mktemp("mtz") / "data.mtz"
    sim.mtz.write_to_file(str(p))
    return p


def test_mtz_input_routes_xray_to_classical_unless_forced(capsys, tmp_path, weights, mtz_file):
    import gemmi

    mtz = gemmi.read_mtz_file(str(mtz_file))
    out = tmp_path / "x.ccp4"
    rc, _, err = run_cli(capsys, "sharpen", mtz_file, "--weights", weights["unet"], "-o", out)
    assert rc == 0, err
    rec = json.loads((tmp_path / "x.json").read_text())
    assert rec["method"] == "autob" and "xray" in rec["fallback"]["reasons"][0]
    assert rec["mtz"]["columns"] == ["FWT", "PHWT"]
    rc, _, err = run_cli(
        capsys, "sharpen", mtz_file, "--weights", weights["unet"], "--force", "-o", tmp_path / "f.ccp4",
        "--mtz-out", tmp_path / "f.mtz",
    )  # fmt: skip
    assert rc == 0, err
    coef = gemmi.read_mtz_file(str(tmp_path / "f.mtz"))
    rec = json.loads((tmp_path / "f.json").read_text())
    assert rec["method"] == "unet" and rec["result"]["learned"]["periodic"] is True
    # the coefficients reach the target resolution; the measured ones are kept unchanged
    d_t = rec["result"]["learned"]["d_target_A"]
    assert coef.column_labels()[-2:] == ["FWT", "PHWT"] and coef.resolution_high() == pytest.approx(d_t, abs=0.05)
    assert rec["result"]["extrapolation"]["measured_kept"] == mtz.nreflections
    ccp4 = gemmi.read_ccp4_map(str(tmp_path / "f.ccp4"))
    assert ccp4.grid.unit_cell.parameters == pytest.approx(mtz.cell.parameters, rel=1e-5)
    assert ccp4.grid.spacegroup.number == 1 and ccp4.header_i32(17) == 1  # ISPG kept
    size = list(ccp4.grid.shape)
    cell_map = np.array(mtz.transform_f_phi_to_map("FWT", "PHWT", exact_size=size), copy=False)
    np.testing.assert_allclose(np.array(ccp4.grid, copy=False), cell_map, atol=1e-4 * float(np.abs(cell_map).max()))
    again = np.array(coef.transform_f_phi_to_map("FWT", "PHWT", exact_size=size), copy=False)
    assert np.corrcoef(again.ravel(), cell_map.ravel())[0, 1] > 0.999


# ------------------------------------------------------------------------------------------- bad input
def _bad(capsys, tmp_path, pattern, *argv):
    before = set(tmp_path.iterdir())
    rc, _, err = run_cli(capsys, "sharpen", *argv, "-o", tmp_path / "bad.mrc")
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert [ln for ln in lines if ln.startswith("error:")] == [lines[-1]] and pattern in lines[-1], err
    assert set(tmp_path.iterdir()) == before


def test_bad_inputs_one_line_exit_2_no_output(capsys, tmp_path, weights, mtz_file, monkeypatch):
    w = weights["unet"]
    src = tmp_path / "in.mrc"
    write_map(src, blob_map((24, 24, 24)))
    _bad(capsys, tmp_path, "columns are", mtz_file, "--columns", "FOO,BAR", "--weights", w)
    _bad(capsys, tmp_path, "not an MRC/CCP4 map", DATA / "not_a_map.mrc", "--weights", w, "--resolution", 4)
    write_map(tmp_path / "h2.mrc", blob_map((24, 24, 20)))
    _bad(capsys, tmp_path, "different grids", "--half-maps", src, tmp_path / "h2.mrc", "--weights", w)
    write_map(tmp_path / "mask.mrc", blob_map((20, 24, 24)).with_data(np.ones((20, 24, 24), np.float32)))
    _bad(capsys, tmp_path, "different grids", src, "--mask", tmp_path / "mask.mrc", "--weights", w, "--resolution", 4)
    _bad(capsys, tmp_path, "not found", src, "--weights", tmp_path / "nope.safetensors", "--resolution", 4)
    (tmp_path / "cut.safetensors").write_bytes(w.read_bytes()[:100])
    _bad(capsys, tmp_path, "cut.safetensors", src, "--weights", tmp_path / "cut.safetensors", "--resolution", 4)
    (tmp_path / "cut.safetensors").unlink()
    _bad(capsys, tmp_path, "--samples must be 1 or an even number", src, "--weights", w, "--samples", 2,
         "--resolution", 4)  # fmt: skip
    _bad(capsys, tmp_path, "needs a VAE", src, "--weights", w, "--samples", 8, "--resolution", 4)
    _bad(capsys, tmp_path, "needs the input's resolution (--resolution", src, "--weights", w)
    _bad(capsys, tmp_path, "--target-resolution 1 Å is finer than", src, "--weights", w, "--resolution", 4,
         "--target-resolution", 1)  # fmt: skip
    _bad(capsys, tmp_path, "--overlap must be in", src, "--weights", w, "--resolution", 4, "--overlap", 0.999)
    monkeypatch.setenv("DENSHARP_WEIGHTS_DIR", str(_registry(tmp_path, weights, sha="0" * 64)))
    _bad(capsys, tmp_path, "does not match the pinned", src, "--model", "unet-em", "--resolution", 4)


# ------------------------------------------------------------------------------------------- many inputs
def test_many_inputs_summary_and_exit_codes(capsys, tmp_path, weights, monkeypatch):
    for k in range(3):
        write_map(tmp_path / f"m{k}.mrc", blob_map((20, 20, 20), seed=k))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    w = weights["unet"]
    ins = [tmp_path / "m0.mrc", DATA / "not_a_map.mrc", tmp_path / "m1.mrc"]
    rc, out, err = run_cli(capsys, "sharpen", *ins, "--weights", w, "--resolution", 4, "--out-dir", out_dir, "-q")
    assert rc == 1
    assert sorted(p.name for p in out_dir.glob("*.mrc")) == ["m0_sharp.mrc", "m1_sharp.mrc"]
    table = out.strip().splitlines()
    assert table[0].split()[:5] == ["input", "method", "resolution_Å", "runtime_s", "status"]
    assert "error (input)" in table[2] and table[1].split()[1] == "unet"
    rc, out, _ = run_cli(capsys, "sharpen", DATA / "not_a_map.mrc", DATA / "truncated.mrc", "--resolution", 4,
                         "--out-dir", out_dir, "-q")  # fmt: skip
    assert rc == 2
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "1")
    monkeypatch.setenv("SLURM_ARRAY_TASK_COUNT", "2")
    shard_dir = tmp_path / "shard"
    shard_dir.mkdir()
    ins = [tmp_path / f"m{k}.mrc" for k in range(3)]
    rc, out, err = run_cli(capsys, "sharpen", *ins, "--resolution", 4, "--out-dir", shard_dir, "-q")
    assert rc == 0, err
    assert [p.name for p in shard_dir.glob("*.mrc")] == ["m1_sharp.mrc"] and "shard 1/2" in out


def test_many_inputs_in_two_processes(capsys, tmp_path, weights):
    for k in range(2):
        write_map(tmp_path / f"p{k}.mrc", blob_map((16, 16, 16), seed=k))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    rc, out, err = run_cli(
        capsys, "sharpen", tmp_path / "p0.mrc", tmp_path / "p1.mrc", "--weights", weights["unet"],
        "--resolution", 4, "--out-dir", out_dir, "--jobs", 2, "--threads", 2, "-q",
    )  # fmt: skip
    assert rc == 0, err + out
    assert sorted(p.name for p in out_dir.glob("*.json")) == ["p0_sharp.json", "p1_sharp.json"]
    assert out.count(" ok") == 2


def test_mtz_input_uses_shipped_xray_model_when_registered(capsys, tmp_path, weights, mtz_file, monkeypatch):
    xw = tmp_path / "xray.safetensors"
    sha = export_tiny(tiny_model("unet"), xw, modality="xray", res_range=(1.8, 4.0), voxel_range=(0.72, 1.0))
    em = {"unet-em": (weights["unet"], weights["unet_sha"])}
    monkeypatch.setenv("DENSHARP_WEIGHTS_DIR", str(registry_folder(tmp_path / "reg_em", em)))
    # only the cryo-EM model: MTZ input goes the classical way
    rc, _, err = run_cli(capsys, "sharpen", mtz_file, "-o", tmp_path / "em.ccp4", "-q")
    assert rc == 0, err
    rec = json.loads((tmp_path / "em.json").read_text())
    assert rec["method"] == "autob"
    # an X-ray model registered: MTZ input goes through it
    both = em | {"unet-xray": (xw, sha)}
    monkeypatch.setenv("DENSHARP_WEIGHTS_DIR", str(registry_folder(tmp_path / "reg_both", both)))
    rc, _, err = run_cli(capsys, "sharpen", mtz_file, "-o", tmp_path / "xr.ccp4", "-q")
    assert rc == 0, err
    rec = json.loads((tmp_path / "xr.json").read_text())
    assert rec["method"] == "unet" and rec["model"]["name"] == "unet-xray" and "fallback" not in rec
    assert "unet-xray" in rec["method_choice"]["how"]
    # a map input still uses the cryo-EM default
    src = tmp_path / "in.mrc"
    write_map(src, blob_map((24, 24, 24)))
    rc, _, err = run_cli(capsys, "sharpen", src, "--resolution", 4, "-o", tmp_path / "m.mrc", "-q")
    assert rc == 0, err
    assert json.loads((tmp_path / "m.json").read_text())["model"]["name"] == "unet-em"
