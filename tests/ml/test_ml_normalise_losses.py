import numpy as np
import pytest

torch = pytest.importorskip("torch")

from densharp.errors import InputError  # noqa: E402
from densharp.ml.losses import pearson_per_patch, sharpening_loss  # noqa: E402
from densharp.ml.normalise import apply_zscore, invert_zscore, zscore_stats  # noqa: E402


def test_zscore_round_trip_and_mask():
    x = np.random.default_rng(0).normal(5.0, 3.0, size=(6, 5, 4)).astype(np.float32)
    s = zscore_stats(x)
    z = apply_zscore(x, s)
    assert abs(z.mean()) < 1e-5 and z.std() == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(invert_zscore(z, s), x, atol=1e-5)
    mask = np.zeros(x.shape, bool)
    mask[:2] = True
    sm = zscore_stats(x, mask)
    assert sm["over"] == "mask" and sm["mean"] == pytest.approx(float(x[:2].mean()), rel=1e-5)
    with pytest.raises(InputError):
        zscore_stats(np.ones((3, 3, 3)))
    with pytest.raises(InputError):
        zscore_stats(x, np.zeros(x.shape, bool))


def test_losses():
    t = torch.randn(3, 1, 4, 4, 4)
    assert torch.allclose(pearson_per_patch(t, 2 * t + 1), torch.ones(3), atol=1e-5)
    loss, parts = sharpening_loss(t, t, torch.tensor(0.5), beta=2.0)
    assert parts["recon"] == 0 and parts["corr"] == pytest.approx(0, abs=1e-5) and float(loss) == pytest.approx(1.0)
    _, parts_mse = sharpening_loss(t, t + 1, recon="mse")
    assert parts_mse["recon"] == pytest.approx(1.0)
    with pytest.raises(InputError):
        sharpening_loss(t, t, recon="huber")
