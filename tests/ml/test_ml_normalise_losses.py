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
