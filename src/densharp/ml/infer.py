"""Device and precision choice for training and inference."""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from densharp.errors import InputError


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
