"""Tiny models and awkward maps for the learned-sharpening tests (exported to tmp, never committed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from densharp.ml.checkpoint import export_weights
from densharp.ml.nets import build_model, model_kwargs
from densharp.volume import DensityMap, OriginSource


def tiny_model(arch: str = "unet", seed: int = 0, perturb: bool = False) -> torch.nn.Module:
    """A C=4, depth-2 U-Net or VAE; identity at init (zero head) unless ``perturb``."""
    torch.manual_seed(seed)
    kw: dict[str, Any] = {"base_channels": 4, "depth": 2, "film_hidden": 8}
    if arch == "vae":
        kw.update(latent_dim=2, encoder_channels=4, encoder_depth=2)
    model = build_model(arch, **kw)
    if perturb:
        with torch.no_grad():
            model.head.weight.normal_(0.0, 0.3)
            model.head.bias.zero_()
    return model.eval()


def export_tiny(
    model: torch.nn.Module,
    path: Path,
    patch: int = 16,
    modality: str = "em",
    res_range: tuple[float, float] = (2.5, 8.0),
    voxel_range: tuple[float, float] = (0.9, 1.2),
    normalisation: str = "robust-map",
) -> str:
    """Export ``model`` as densharp weights at ``path`` (its card as ``densharp train`` records it); the sha256."""
    if modality == "xray":
        pair = {"d_input_range_A": list(res_range), "voxel_A": voxel_range[1], "d_target_min_A": 1.5}
    else:
        pair = {"d_input_range_A": list(res_range), "voxel_size_range_A": list(voxel_range), "d_target_min_A": 2.0}
    ckpt = {
        "model_name": model.name,
        "model_kwargs": model_kwargs(model),
        "state_dict": model.state_dict(),
        "patch_size_zyx": [patch] * 3,
        "resolution_range_A": list(res_range),
        "normalisation": {"kind": normalisation},
        "data_manifest": {"modality": modality, "pair_config": pair},
    }
    return export_weights(ckpt, path)


def load_tiny(path: Path):
    """The :class:`~densharp.ml.sharpen.LoadedModel` of weights exported by :func:`export_tiny`."""
    from densharp.ml.registry import file_card
    from densharp.ml.sharpen import load_model

    return load_model(file_card(path))


def registry_folder(folder: Path, entries: dict[str, tuple[Path, str]]) -> Path:
    """A weights folder (for ``DENSHARP_WEIGHTS_DIR``) holding ``name -> (weights file, sha256)``."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    models = {}
    for name, (src, sha) in entries.items():
        (folder / f"{name}.safetensors").write_bytes(src.read_bytes())
        models[name] = {"file": f"{name}.safetensors", "sha256": sha}
    (folder / "registry.json").write_text(json.dumps({"models": models}))
    return folder


def blob_map(
    shape_zyx: tuple[int, int, int] = (20, 24, 28),
    voxel_xyz: tuple[float, float, float] = (1.0, 1.0, 1.0),
    origin_xyz: tuple[float, float, float] = (0.0, 0.0, 0.0),
    axis_order_crs: tuple[int, int, int] = (1, 2, 3),
    seed: int = 0,
    nstart_xyz: tuple[int, int, int] = (0, 0, 0),
) -> DensityMap:
    """Random Gaussian blobs plus a little noise on the given grid."""
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.meshgrid(*[np.arange(n, dtype=np.float32) for n in shape_zyx], indexing="ij")
    data = np.zeros(shape_zyx, np.float32)
    for _ in range(12):
        c = [rng.uniform(0.2 * n, 0.8 * n) for n in shape_zyx]
        data += np.exp(-((zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2) / (2 * 1.5**2))
    data += rng.normal(0, 0.02, shape_zyx).astype(np.float32)
    return DensityMap(
        data,
        voxel_xyz,
        origin_xyz,
        nstart_xyz=nstart_xyz,
        axis_order_crs=axis_order_crs,
        origin_source=OriginSource.ORIGIN,
    )
