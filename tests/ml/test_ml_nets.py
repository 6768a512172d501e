import pytest

torch = pytest.importorskip("torch")

from densharp.errors import InputError  # noqa: E402
from densharp.ml.nets import MODELS, build_model, count_parameters, model_kwargs  # noqa: E402

torch.set_num_threads(1)

SHAPE_TABLE = [
    # (name, kwargs, input shape (N, C, z, y, x))
    ("unet", {"base_channels": 4, "depth": 1}, (2, 1, 8, 6, 4)),
    ("unet", {"base_channels": 4, "depth": 2}, (1, 1, 16, 8, 12)),
    ("unet", {"base_channels": 8, "depth": 3, "cond_dim": 0}, (1, 1, 16, 16, 24)),
    ("unet", {"in_channels": 2, "out_channels": 1, "residual": False, "base_channels": 4, "depth": 2}, (1, 2, 8, 8, 8)),
    ("vae", {"base_channels": 4, "depth": 2, "latent_dim": 6, "encoder_channels": 4}, (2, 1, 16, 12, 8)),
    ("vae", {"base_channels": 4, "depth": 1, "latent_dim": 2, "encoder_depth": 1}, (1, 1, 6, 4, 2)),
    ("report-vae", {"base_channels": 4, "depth": 2, "input_size_zyx": (16, 12, 8), "latent_dim": 8}, (2, 1, 16, 12, 8)),
    ("report-vae", {"base_channels": 4, "depth": 3, "input_size_zyx": [16, 16, 16]}, (1, 1, 16, 16, 16)),
]


def _out(o):
    return o[0] if isinstance(o, tuple) else o


@pytest.mark.parametrize(("name", "kwargs", "shape"), SHAPE_TABLE)
def test_output_shape(name, kwargs, shape):
    torch.manual_seed(0)
    model = build_model(name, **kwargs)
    x = torch.randn(shape)
    cond = torch.rand(shape[0], 3)
    out_c = kwargs.get("out_channels", shape[1])
    out = _out(model(x, cond if kwargs.get("cond_dim", 3) else None))
    assert out.shape == (shape[0], out_c, *shape[2:])
    pred = model.eval().predict(x, cond if kwargs.get("cond_dim", 3) else None)
    assert pred.shape == out.shape
    assert count_parameters(model) > 0
    # the stored kwargs rebuild the same architecture
    rebuilt = build_model(name, **model_kwargs(model))
    assert count_parameters(rebuilt) == count_parameters(model)


@pytest.mark.parametrize(
    ("name", "kwargs", "shape"),
    [
        ("unet", {"base_channels": 4, "depth": 2}, (1, 1, 16, 16, 6)),
        ("unet", {"base_channels": 4, "depth": 3}, (1, 1, 4, 8, 8)),
        ("unet", {"base_channels": 4, "depth": 1}, (1, 2, 8, 8, 8)),
        ("unet", {"base_channels": 4, "depth": 1}, (1, 8, 8, 8)),
        ("vae", {"base_channels": 4, "depth": 2}, (1, 1, 12, 10, 8)),
        ("report-vae", {"base_channels": 4, "depth": 2, "input_size_zyx": (16, 16, 16)}, (1, 1, 16, 16, 8)),
    ],
)
def test_bad_sizes_raise(name, kwargs, shape):
    model = build_model(name, **kwargs)
    with pytest.raises(InputError):
        model(torch.randn(shape), None)


def test_bad_config_raises():
    with pytest.raises(InputError):
        build_model("unet", depth=0)
    with pytest.raises(InputError):
        build_model("unet", in_channels=2, out_channels=1)
    with pytest.raises(InputError):
        build_model("unet", nonsense=1)
    with pytest.raises(InputError):
        build_model("report-vae", input_size_zyx=(20, 16, 16))
    with pytest.raises(InputError):
        build_model("diffusion")
    with pytest.raises(InputError):
        build_model("unet", base_channels=4, depth=1)(torch.randn(2, 1, 8, 8, 8), torch.randn(2, 4))


@pytest.mark.parametrize("name", ["unet", "vae"])
def test_untrained_residual_net_is_identity(name):
    torch.manual_seed(1)
    model = build_model(name, base_channels=4, depth=2)
    x = torch.randn(2, 1, 8, 12, 16)
    cond = torch.rand(2, 3)
    y = torch.randn_like(x)
    assert torch.equal(_out(model(x, cond)), x)
    assert torch.equal(_out(model(x, cond, y)), x)
    assert torch.equal(model.eval().predict(x, cond), x)


def test_cvae_sample_mean_and_sd():
    torch.manual_seed(2)
    model = build_model("vae", base_channels=4, depth=2, latent_dim=3).eval()
    x = torch.randn(2, 1, 8, 8, 8)
    cond = torch.rand(2, 3)
    mean, sd = model.sample(x, cond, n=4)
    assert torch.equal(mean, x) and torch.all(sd == 0)  # identity head: every sample is the input
    torch.nn.init.normal_(model.head.weight, std=0.1)
    g = torch.Generator().manual_seed(0)
    mean, sd = model.sample(x, cond, n=4, generator=g)
    assert mean.shape == sd.shape == x.shape and torch.all(sd >= 0) and sd.max() > 0
    mean2, sd2 = model.sample(x, cond, n=4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(mean, mean2) and torch.equal(sd, sd2)


def test_cvae_kl_and_free_bits():
    torch.manual_seed(3)
    model = build_model("vae", base_channels=4, depth=1, latent_dim=4)
    x, y = torch.randn(2, 1, 8, 8, 8), torch.randn(2, 1, 8, 8, 8)
    _, kl = model(x, torch.rand(2, 3), y)
    kl = kl.detach()
    assert kl.ndim == 0 and kl >= 0
    _, kl_fb = model(x, torch.rand(2, 3), y, free_bits=10.0)
    assert kl_fb.item() == pytest.approx(40.0)
    _, kl_none = model(x, torch.rand(2, 3))
    assert kl_none == 0


def test_registry_names():
    assert set(MODELS) == {"unet", "vae", "report-vae"}
