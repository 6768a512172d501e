"""Library: sharpen_learned keeps the input grid, follows the model card's rules, masks, samples, tiles."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from densharp.conditioning import ConditioningRule, prefilter_input  # noqa: E402
from densharp.errors import InputError  # noqa: E402
from densharp.fourier import lowpass  # noqa: E402
from densharp.metrics.rscc import rscc  # noqa: E402
from densharp.ml.sharpen import LoadedModel, sharpen_learned  # noqa: E402
from densharp.modality import Modality  # noqa: E402
from infer_synth import blob_map, export_tiny, load_tiny, tiny_model  # noqa: E402


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
    return load_tiny(p)


@pytest.fixture(scope="module")
def vae(tmp_path_factory):
    p = tmp_path_factory.mktemp("w") / "vae.safetensors"
    export_tiny(tiny_model("vae", perturb=True), p)
    return load_tiny(p)


def _close(a, b, rel):
    np.testing.assert_allclose(a, b, atol=rel * float(np.abs(b).max()))


def test_identity_model_returns_the_input_at_its_resolution_on_its_own_grid(unet):
    m = blob_map((20, 24, 28), origin_xyz=(-7.5, 3.25, 11.0), axis_order_crs=(3, 1, 2), nstart_xyz=(2, -3, 5))
    r = sharpen_learned(m, unet, 4.0)
    assert r.map.geometry_dict() == m.geometry_dict()
    _close(r.map.data_zyx, prefilter_input(m, 4.0).data_zyx, 1e-5)  # what the model sees; an identity gives it back
    assert r.sd is None
    assert not r.meta["grid"]["resampled"] and r.meta["tiles"] == 8
    assert r.meta["d_target_A"] == pytest.approx(unet.card.conditioning.default_target_A(4.0, 1.0))
    assert r.meta["normalisation"]["kind"] == "robust-map"


@pytest.mark.parametrize("voxel", [(0.83, 0.83, 0.83), (1.4, 1.4, 1.4), (1.0, 1.1, 0.9)])
def test_any_voxel_is_resampled_to_the_model_grid_and_back(unet, voxel):
    m = blob_map((18, 22, 26), voxel_xyz=voxel, origin_xyz=(5.0, -3.0, 2.0))
    r = sharpen_learned(m, unet, 4.0)
    assert r.meta["grid"]["resampled"]
    lo, hi = unet.card.conditioning.voxel_range_A
    assert lo * 0.95 <= r.meta["grid"]["voxel_A"] <= hi * 1.05  # extent / n: within half a voxel over the box
    assert r.map.geometry_dict() == m.geometry_dict()
    _close(r.map.data_zyx, prefilter_input(m, 4.0).data_zyx, 2e-3)


def test_a_map_and_the_same_map_times_a_million_plus_an_offset_sharpen_alike(tmp_path):
    p = tmp_path / "w.safetensors"
    export_tiny(tiny_model("unet", perturb=True), p)
    model = load_tiny(p)
    m = blob_map((24, 24, 24))
    a = sharpen_learned(m, model, 4.0).map.data_zyx
    b = sharpen_learned(m.with_data(m.data_zyx * 1e6 + 1e3), model, 4.0).map.data_zyx
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.9999


def test_masked_box_gives_finite_bounded_tiles(tmp_path):
    p = tmp_path / "w.safetensors"
    export_tiny(tiny_model("unet", perturb=True), p)
    model = load_tiny(p)
    m = blob_map((32, 32, 32))
    d = np.zeros_like(m.data_zyx)
    d[12:18, 12:18, 12:18] = m.data_zyx[12:18, 12:18, 12:18]  # 99 % exact zeros, like a masked deposited map
    r = sharpen_learned(m.with_data(d), model, 4.0)
    assert np.isfinite(r.map.data_zyx).all()
    assert float(np.abs(r.map.data_zyx).max()) < 10 * float(np.abs(d).max())


def test_mask_protects_outside_and_skips_tiles(tmp_path):
    p = tmp_path / "w.safetensors"
    export_tiny(tiny_model("unet", perturb=True), p)
    model = load_tiny(p)
    m = blob_map((24, 24, 40))
    mask = np.zeros(m.shape_zyx, np.float32)
    mask[4:14, 4:14, 4:14] = 1.0
    full = sharpen_learned(m, model, 4.0)
    r = sharpen_learned(m, model, 4.0, mask_zyx=mask)
    out = mask == 0
    np.testing.assert_array_equal(r.map.data_zyx[out], m.data_zyx[out])
    assert not np.allclose(r.map.data_zyx[~out], m.data_zyx[~out])
    assert r.meta["tiles"] < full.meta["tiles"]


def test_vae_samples_give_mean_and_nonnegative_sd(vae, unet):
    m = blob_map((20, 20, 24), voxel_xyz=(0.9, 0.9, 0.9))
    r = sharpen_learned(m, vae, 4.0, samples=4, seed=3)
    assert r.sd is not None and r.sd.geometry_dict() == m.geometry_dict()
    assert float(r.sd.data_zyx.min()) >= 0.0 and float(r.sd.data_zyx.max()) > 0.0
    again = sharpen_learned(m, vae, 4.0, samples=4, seed=3)
    np.testing.assert_array_equal(again.map.data_zyx, r.map.data_zyx)
    with pytest.raises(InputError, match="needs a VAE"):
        sharpen_learned(m, unet, 4.0, samples=2)


def test_target_resolution_rules(unet):
    with pytest.raises(InputError, match="finer than"):
        sharpen_learned(blob_map(), unet, 4.0, d_target_A=1.5)
    with pytest.raises(InputError, match="coarser than the input"):
        sharpen_learned(blob_map(), unet, 4.0, d_target_A=100.0)


def test_nothing_beyond_the_target_survives(tmp_path):
    from densharp.fourier import frequency_grid_invA, rfft_map

    p = tmp_path / "w.safetensors"
    export_tiny(tiny_model("unet", perturb=True), p)
    model = load_tiny(p)
    m = blob_map((32, 32, 32))
    s = frequency_grid_invA(m.shape_zyx, m.voxel_size_xyz_A)
    for d_t in (2.5, 3.5):
        out = sharpen_learned(m, model, 4.0, d_target_A=d_t).map
        f = np.abs(rfft_map(out.data_zyx))
        assert float(f[s > 1.1 / d_t + 1e-6].max()) < 1e-3 * float(f.max())


def test_domain_reasons(unet):
    card = unet.card
    assert card.domain_reasons(Modality.EM, 4.0) == []
    assert "resolution 10" in card.domain_reasons(Modality.EM, 10.0)[0]
    assert "xray" in card.domain_reasons(Modality.XRAY, 4.0)[0]


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
    r = sharpen_learned(cell_map, unet, 2.8, periodic=True)
    assert r.map.geometry_dict() == cell_map.geometry_dict()
    _close(r.map.data_zyx, prefilter_input(cell_map, 2.8).data_zyx, 1e-4)


def test_periodic_tiling_leaves_no_seam_at_the_cell_edges(unet, cell_map):
    from scipy.ndimage import convolve

    v = float(np.mean(cell_map.voxel_size_xyz_A))
    card = replace(unet.card, patch_zyx=(16, 16, 16), conditioning=ConditioningRule(voxel_range_A=(v, v)))
    smooth = _Smooth()
    r = sharpen_learned(cell_map, LoadedModel(card, smooth, "0"), 2.8, d_target_A=2.8, periodic=True, overlap=0.5)
    seen = prefilter_input(cell_map, 2.8).data_zyx.astype(np.float64)
    ref = lowpass(cell_map.with_data(convolve(seen, smooth.k[0, 0].numpy().astype(np.float64), mode="wrap")), 2.8)
    edge = np.zeros(cell_map.shape_zyx, bool)
    for ax in range(3):
        sl = [slice(None)] * 3
        sl[ax] = np.r_[0:3, cell_map.shape_zyx[ax] - 3 : cell_map.shape_zyx[ax]]
        edge[tuple(sl)] = True
    r_edge = rscc(r.map.data_zyx, ref.data_zyx, edge.astype(np.float32))
    r_int = rscc(r.map.data_zyx, ref.data_zyx, (~edge).astype(np.float32))
    assert r_int > 0.95
    assert abs(r_edge - r_int) < 0.02


def test_non_orthogonal_map_is_refused(unet):
    m = replace(blob_map(), cell_A_deg=(28.0, 24.0, 20.0, 90.0, 100.0, 90.0))
    with pytest.raises(InputError, match="orthogonal"):
        sharpen_learned(m, unet, 4.0)


def test_bf16_autocast_runs_and_stays_close(unet):
    m = blob_map((16, 20, 24))
    r = sharpen_learned(m, unet, 4.0, precision="bf16")
    assert r.meta["precision"] == "bf16"
    _close(r.map.data_zyx, prefilter_input(m, 4.0).data_zyx, 2e-2)
