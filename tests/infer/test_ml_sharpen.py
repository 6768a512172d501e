"""Library: sharpen_learned keeps the input grid, is the identity for an identity model, masks, samples, tiles."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from infer_synth import blob_map, export_tiny, tiny_model  # noqa: E402

from densharp.errors import InputError  # noqa: E402
from densharp.metrics.rscc import rscc  # noqa: E402
from densharp.ml.sharpen import check_domain, default_target_A, load_model, sharpen_learned  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def unet(tmp_path_factory):
    p = tmp_path_factory.mktemp("w") / "unet.safetensors"
    export_tiny(tiny_model("unet"), p)
    return load_model(p)


@pytest.fixture(scope="module")
def vae(tmp_path_factory):
    p = tmp_path_factory.mktemp("w") / "vae.safetensors"
    export_tiny(tiny_model("vae", perturb=True), p)
    return load_model(p)


def test_identity_model_reproduces_the_input_on_its_own_grid(unet):
    model, meta = unet
    m = blob_map((20, 24, 28), origin_xyz=(-7.5, 3.25, 11.0), axis_order_crs=(3, 1, 2), nstart_xyz=(2, -3, 5))
    r = sharpen_learned(m, model, meta, 4.0)
    assert r.map.geometry_dict() == m.geometry_dict()
    np.testing.assert_allclose(r.map.data_zyx, m.data_zyx, atol=1e-5 * float(np.abs(m.data_zyx).max()))
    assert r.sd is None
    assert not r.meta["resampled"] and r.meta["tiles"] == 8
    assert r.meta["d_target_A"] == pytest.approx(default_target_A(4.0, 1.0))


@pytest.mark.parametrize("voxel", [(0.83, 0.83, 0.83), (1.4, 1.4, 1.4), (1.0, 1.1, 0.9)])
def test_resampling_path_returns_the_input_grid(unet, voxel):
    model, meta = unet
    m = blob_map((18, 22, 26), voxel_xyz=voxel, origin_xyz=(5.0, -3.0, 2.0))
    r = sharpen_learned(m, model, meta, 4.0)
    assert r.meta["resampled"]
    assert r.map.geometry_dict() == m.geometry_dict()
    np.testing.assert_allclose(r.map.data_zyx, m.data_zyx, atol=1e-4 * float(np.abs(m.data_zyx).max()))


def test_mask_protects_outside_and_skips_tiles(tmp_path):
    model = tiny_model("unet", perturb=True)
    p = tmp_path / "w.safetensors"
    export_tiny(model, p)
    model, meta = load_model(p)
    m = blob_map((24, 24, 40))
    mask = np.zeros(m.shape_zyx, np.float32)
    mask[4:14, 4:14, 4:14] = 1.0
    full = sharpen_learned(m, model, meta, 4.0)
    r = sharpen_learned(m, model, meta, 4.0, mask_zyx=mask)
    out = mask == 0
    np.testing.assert_array_equal(r.map.data_zyx[out], m.data_zyx[out])
    assert not np.allclose(r.map.data_zyx[~out], m.data_zyx[~out])
    assert r.meta["tiles"] < full.meta["tiles"]


def test_vae_samples_give_mean_and_nonnegative_sd(vae, unet):
    model, meta = vae
    m = blob_map((20, 20, 24), voxel_xyz=(0.9, 0.9, 0.9))
    r = sharpen_learned(m, model, meta, 4.0, samples=4, seed=3)
    assert r.sd is not None and r.sd.geometry_dict() == m.geometry_dict()
    assert float(r.sd.data_zyx.min()) >= 0.0 and float(r.sd.data_zyx.max()) > 0.0
    again = sharpen_learned(m, model, meta, 4.0, samples=4, seed=3)
    np.testing.assert_array_equal(again.map.data_zyx, r.map.data_zyx)
    with pytest.raises(InputError, match="needs a VAE"):
        sharpen_learned(m, *unet, 4.0, samples=2)


def test_target_finer_than_the_model_supports_is_refused(unet):
    with pytest.raises(InputError, match="finer than this model supports"):
        sharpen_learned(blob_map(), *unet, 4.0, d_target_A=1.5)


def test_check_domain_reasons(unet):
    _, meta = unet
    assert check_domain(meta, "cryo-em", 4.0, (1.0, 1.0, 1.0)) == []
    assert "resolution 10" in check_domain(meta, "cryo-em", 10.0, (1.0, 1.0, 1.0))[0]
    assert "x-ray" in check_domain(meta, "x-ray", 4.0, (1.0, 1.0, 1.0))[0]
    assert "voxel size" in check_domain(meta, "cryo-em", 4.0, (2.5, 1.0, 1.0))[0]


# ------------------------------------------------------------------------------------------- crystal cells
class _Smooth(torch.nn.Module):
    """A fixed, linear, mean-preserving smoothing 'model' (replicate padding): a non-identity predictor."""

    name = "smooth"

    def __init__(self) -> None:
        super().__init__()
        g = torch.exp(-0.5 * (torch.arange(5.0) - 2) ** 2)
        k = g[:, None, None] * g[None, :, None] * g[None, None, :]
        self.register_buffer("k", (k / k.sum())[None, None])

    def predict(self, x, cond=None):
        return torch.nn.functional.conv3d(torch.nn.functional.pad(x, (2,) * 6, mode="replicate"), self.k)


@pytest.fixture(scope="module")
def cell_map():
    import gemmi

    from densharp.simulate.crystal import simulate_crystal
    from synth import globule_structure

    st = globule_structure(150, 7.0, seed=2)
    sim = simulate_crystal(st, 2.5, np.random.default_rng(0), voxel_size_A=1.0)
    assert sim.mtz.spacegroup.hm == gemmi.SpaceGroup("P 1").hm and sim.map.is_orthogonal
    return sim.map


def test_crystal_cell_identity_with_periodic_tiling(unet, cell_map):
    model, meta = unet
    r = sharpen_learned(cell_map, model, meta, 2.8, periodic=True)
    assert r.map.geometry_dict() == cell_map.geometry_dict()
    scale = float(np.abs(cell_map.data_zyx).max())
    np.testing.assert_allclose(r.map.data_zyx, cell_map.data_zyx, atol=1e-4 * scale)


def test_periodic_tiling_leaves_no_seam_at_the_cell_edges(cell_map):
    from scipy.ndimage import convolve

    model = _Smooth()
    meta = {"voxel_size_A": float(np.mean(cell_map.voxel_size_xyz_A)), "patch_size_zyx": [16, 16, 16]}
    r = sharpen_learned(cell_map, model, meta, 2.8, periodic=True, overlap=0.5)
    ref = convolve(cell_map.data_zyx.astype(np.float64), model.k[0, 0].numpy().astype(np.float64), mode="wrap")
    edge = np.zeros(cell_map.shape_zyx, bool)
    for ax in range(3):
        sl = [slice(None)] * 3
        sl[ax] = np.r_[0:3, cell_map.shape_zyx[ax] - 3 : cell_map.shape_zyx[ax]]
        edge[tuple(sl)] = True
    r_edge = rscc(r.map.data_zyx, ref.astype(np.float32), edge.astype(np.float32))
    r_int = rscc(r.map.data_zyx, ref.astype(np.float32), (~edge).astype(np.float32))
    assert r_int > 0.95
    assert abs(r_edge - r_int) < 0.02


def test_non_orthogonal_map_is_refused(unet):
    m = replace(blob_map(), cell_A_deg=(28.0, 24.0, 20.0, 90.0, 100.0, 90.0))
    with pytest.raises(InputError, match="orthogonal"):
        sharpen_learned(m, *unet, 4.0)


def test_bf16_autocast_runs_and_stays_close(unet):
    model, meta = unet
    m = blob_map((16, 20, 24))
    r = sharpen_learned(m, model, meta, 4.0, precision="bf16")
    assert r.meta["precision"] == "bf16"
    np.testing.assert_allclose(r.map.data_zyx, m.data_zyx, atol=2e-2 * float(np.abs(m.data_zyx).max()))
