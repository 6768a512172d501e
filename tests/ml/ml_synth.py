"""Test helpers: a tiny synthetic pair function (random Gaussian blobs, target blurred by a small B, input by a large
B) and the tiny training configuration the training tests share.

Not part of the package: the simulator (densharp.simulate) supplies the real pair function.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from densharp.fourier import apply_bfactor
from densharp.volume import DensityMap


def blob_pair(seed: int, index: int, size: int = 16, n_blobs: int = 6, voxel_size_A: float = 1.0) -> dict[str, Any]:
    """Deterministic in (seed, index): (size³) input/target float32 patches plus resolutions and voxel size."""
    rng = np.random.default_rng([seed, index])
    grid = np.zeros((size, size, size), dtype=np.float32)
    idx = rng.integers(0, size, size=(n_blobs, 3))
    grid[idx[:, 0], idx[:, 1], idx[:, 2]] = rng.uniform(0.5, 1.5, size=n_blobs)
    vox = (voxel_size_A,) * 3
    b_target, b_input = 5.0, float(rng.uniform(60.0, 120.0))
    target = apply_bfactor(DensityMap(grid, vox), b_target).data_zyx
    noisy = apply_bfactor(DensityMap(grid, vox), b_input).data_zyx
    noisy = noisy + rng.normal(0.0, 0.01, size=grid.shape).astype(np.float32)
    # d ≈ sqrt(B / 4) · π / ... a rough B -> resolution map, good enough for a conditioning signal
    return {
        "input": noisy.astype(np.float32),
        "target": target.astype(np.float32),
        "d_input_A": float(np.sqrt(b_input / 4.0)),
        "d_target_A": float(max(2.0 * voxel_size_A, np.sqrt(b_target / 4.0))),
        "voxel_size_A": voxel_size_A,
    }


#: the smallest networks worth training in tests, per registry name
TINY_MODEL_KWARGS: dict[str, dict[str, Any]] = {
    "unet": {"base_channels": 4, "depth": 2},
    "vae": {"base_channels": 4, "depth": 2, "encoder_channels": 4, "encoder_depth": 2, "latent_dim": 4},
    "report-vae": {"base_channels": 4, "depth": 2, "input_size_zyx": [16, 16, 16], "latent_dim": 8},
}


def tiny_train_config(name: str = "unet", **overrides: Any) -> Any:
    """A :class:`~densharp.ml.train.TrainConfig` for a tiny network on 16³ ``blob_pair`` patches, fp32 on CPU."""
    from densharp.ml.train import TrainConfig  # torch: imported only by tests that have it

    base: dict[str, Any] = {
        "model_name": name,
        "model_kwargs": TINY_MODEL_KWARGS[name],
        "patch_size_zyx": (16, 16, 16),
        "batch_size": 2,
        "total_steps": 4,
        "warmup_steps": 1,
        "precision": "fp32",
        "device": "cpu",
        "log_interval": 1,
        "eval_interval": 2,
        "ckpt_interval": 2,
        "lr": 3e-3,
    }
    base.update(overrides)
    return TrainConfig(**base)
