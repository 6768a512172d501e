from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from densharp.ml.nets import build_model  # noqa: E402


@pytest.mark.parametrize("shape", [(16, 16, 16), (16, 24, 32)])
def test_spatial_latent_vae_shapes_kl_and_samples(shape):
    torch.manual_seed(0)
    m = build_model("vae", base_channels=4, latent_dim=3, spatial_latent=True, encoder_depth=2)
    x = torch.randn(2, 1, *shape)
    cond = torch.randn(2, 3)
    m.train()
    pred, kl = m(x, cond, target=x + 0.1)
    assert pred.shape == x.shape and float(kl.detach()) >= 0
    mu, _ = m.prior_net(x, cond)
    assert mu.shape == (2, 3, shape[0] // 4, shape[1] // 4, shape[2] // 4)  # a latent grid, not a vector
    m.eval()
    mean, sd = m.sample(x, cond, n=3)
    assert mean.shape == x.shape and float(sd.min()) >= 0
    # zero-initialised head: an untrained VAE is the identity whatever the latent
    torch.testing.assert_close(mean, x)


def test_global_latent_is_still_the_default():
    m = build_model("vae", base_channels=4, latent_dim=3)
    mu, _ = m.prior_net(torch.randn(1, 1, 16, 16, 16), torch.randn(1, 3))
    assert mu.shape == (1, 3)
