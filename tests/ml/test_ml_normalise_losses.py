import numpy as np
import pytest

torch = pytest.importorskip("torch")

from densharp.errors import InputError  # noqa: E402
from densharp.ml.losses import pearson_per_patch, sharpening_loss  # noqa: E402


def test_losses():
    t = torch.randn(3, 1, 4, 4, 4)
    assert torch.allclose(pearson_per_patch(t, 2 * t + 1), torch.ones(3), atol=1e-5)
    loss, parts = sharpening_loss(t, t, torch.tensor(0.5), beta=2.0)
    assert parts["recon"] == 0 and parts["corr"] == pytest.approx(0, abs=1e-5) and float(loss) == pytest.approx(1.0)
    _, parts_mse = sharpening_loss(t, t + 1, recon="mse")
    assert parts_mse["recon"] == pytest.approx(1.0)
    with pytest.raises(InputError):
        sharpening_loss(t, t, recon="huber")
    assert np.isfinite(float(loss))


def test_extrapolation_band_loss_scores_only_the_band():
    """0 when the band matches, ~1 when the prediction lacks it, blind to what lies outside it; has gradients."""
    import torch

    from densharp.ml.losses import extrapolation_band_loss

    g = torch.Generator().manual_seed(0)
    target = torch.randn(2, 1, 24, 20, 16, generator=g)
    cond = torch.tensor([[1 / 4.0, 1 / 2.5, 1.0], [1 / 3.0, 1 / 2.2, 1.0]])

    def band_of(x, keep):
        f = torch.fft.rfftn(x, dim=(-3, -2, -1))
        fz, fy, fx = torch.fft.fftfreq(24), torch.fft.fftfreq(20), torch.fft.rfftfreq(16)
        s = torch.sqrt(fz[:, None, None] ** 2 + fy[None, :, None] ** 2 + fx[None, None, :] ** 2)
        out = []
        for i in range(x.shape[0]):
            inside = (s > cond[i, 0]) & (s <= cond[i, 1])
            m = inside if keep else ~inside
            out.append(torch.fft.irfftn(f[i] * m, s=(24, 20, 16), dim=(-3, -2, -1)))
        return torch.stack(out)

    assert float(extrapolation_band_loss(target, target, cond)) < 2e-3
    without = band_of(target, keep=False)  # everything but the band
    assert abs(float(extrapolation_band_loss(without, target, cond)) - 1.0) < 1e-2
    # what lies outside the band does not count: the band alone scores as the whole
    only = band_of(target, keep=True)
    assert float(extrapolation_band_loss(only * 3.0, target, cond)) < 2e-3
    assert float(extrapolation_band_loss(-target, target, cond)) > 1.99
    pred = without.clone().requires_grad_(True)
    extrapolation_band_loss(pred, target, cond).backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all()


def test_band_weight_is_checked_and_reaches_the_loss():
    import pytest
    import torch

    from densharp.errors import InputError
    from densharp.ml.nets import build_model
    from densharp.ml.train import TrainConfig

    with pytest.raises(InputError, match="band_weight"):
        TrainConfig(model_name="vae", band_weight=1.0)
    cfg = TrainConfig(model_name="unet", band_weight=0.5)
    assert cfg.loss_settings.band_weight == 0.5
    model = build_model("unet", base_channels=8, depth=2)
    x = torch.randn(1, 1, 16, 16, 16)
    cond = torch.tensor([[1 / 4.0, 1 / 2.5, 1.0]])
    _, parts = model.training_loss(model, x, cond, x * 1.5, cfg.loss_settings, 0)
    _, plain = model.training_loss(model, x, cond, x * 1.5, TrainConfig(model_name="unet").loss_settings, 0)
    assert "band" in parts and "band" not in plain
    assert abs(parts["loss"] - (plain["loss"] + 0.5 * parts["band"])) < 1e-5


def test_extrapolation_band_loss_has_finite_gradients_on_empty_targets():
    """A solvent patch (target without power in the band) scores 1 and must not send NaN gradients back."""
    import torch

    from densharp.ml.losses import extrapolation_band_loss

    target = torch.zeros(2, 1, 16, 16, 16)
    target[1] = torch.randn(1, 16, 16, 16, generator=torch.Generator().manual_seed(1))
    pred = torch.zeros(2, 1, 16, 16, 16, requires_grad=True)
    cond = torch.tensor([[1 / 4.0, 1 / 2.5, 1.0], [1 / 4.0, 1 / 2.5, 1.0]])
    loss = extrapolation_band_loss(pred, target, cond)
    loss.backward()
    assert abs(float(loss.detach()) - 0.5) < 1e-3  # patch 0: 1 - 1 (nothing to score), patch 1: 1 - 0
    assert pred.grad is not None and torch.isfinite(pred.grad).all()
