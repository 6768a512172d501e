"""Inference helpers: device and precision choice, a model-backed predictor for the tiler, whole-map prediction."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from densharp.errors import InputError
from densharp.ml.normalise import apply_zscore, invert_zscore, zscore_stats
from densharp.ml.tiling import sliding_window


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` -> ``cuda`` when available else ``cpu``; otherwise the named device (checked)."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {device!r} requested but CUDA is not available; use --device cpu")
    return dev


def bf16_supported(device: torch.device) -> bool:
    """Whether bf16 autocast is fast on this device (CPU: AVX512_BF16/AMX via oneDNN; CUDA: compute >= 8.0)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def resolve_precision(precision: str, device: torch.device) -> str:
    """``"auto"`` -> ``"bf16"`` where supported else ``"fp32"``; ``"fp16"`` only on CUDA. Returns the choice."""
    if precision == "auto":
        return "bf16" if bf16_supported(device) else "fp32"
    if precision not in ("fp32", "bf16", "fp16"):
        raise InputError(f"unknown precision {precision!r}; choose fp32, bf16, fp16 (CUDA) or auto")
    if precision == "fp16" and device.type != "cuda":
        raise InputError("fp16 needs a CUDA device; use bf16 or fp32 on CPU")
    return precision


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager[Any]:
    """Autocast context for ``precision`` (``nullcontext`` for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def model_predictor(
    model: nn.Module, cond: Sequence[float] | np.ndarray | None, device: str = "auto", precision: str = "fp32"
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Wrap a registered network as a ``predict`` function for :func:`densharp.ml.tiling.sliding_window`.

    The model is moved to ``device`` and put in eval mode; each call runs ``model.predict(x, cond)`` on a
    (B, 1, z, y, x) float32 tensor under autocast and returns float32 of the same shape.
    """
    dev = resolve_device(device)
    prec = resolve_precision(precision, dev)
    model = model.to(dev).eval()
    cond_t = None if cond is None else torch.as_tensor(np.asarray(cond, dtype=np.float32), device=dev)[None]

    def predict(x: torch.Tensor) -> torch.Tensor:
        c = None if cond_t is None else cond_t.expand(x.shape[0], -1)
        with autocast(dev, prec):
            return model.predict(x.to(dev), c).float()

    return predict


def predict_map(
    volume_zyx: np.ndarray,
    model: nn.Module,
    cond: Sequence[float] | np.ndarray | None,
    patch_zyx: int | Sequence[int] = 64,
    *,
    overlap: float = 0.25,
    batch_size: int = 4,
    mask_zyx: np.ndarray | None = None,
    periodic: bool = False,
    device: str = "auto",
    precision: str = "fp32",
    progress: Any = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Normalise a whole (z, y, x) map, run the model tile by tile, and undo the normalisation.

    The z-score uses the map's statistics (over ``mask_zyx`` if given), as in training. Returns the float32
    prediction (z, y, x) and the normalisation record.
    """
    stats = zscore_stats(volume_zyx, mask_zyx)
    predict = model_predictor(model, cond, device, precision)
    out = sliding_window(
        apply_zscore(volume_zyx, stats),
        predict,
        patch_zyx,
        overlap=overlap,
        batch_size=batch_size,
        mask_zyx=mask_zyx,
        periodic=periodic,
        device=str(resolve_device(device)),
        progress=progress,
    )
    return invert_zscore(out, stats), stats
