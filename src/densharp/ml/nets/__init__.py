"""Network registry: ``build_model(name, **kwargs)`` for ``"unet"``, ``"vae"`` (ours) and ``"report-vae"``.

Every model takes ``forward(x, cond=None, target=None, ...)`` with ``x`` (N, C, D, H, W) = (N, C, z, y, x) and
has ``predict(x, cond)`` for deterministic inference, ``name`` (its registry key) and ``config`` (a frozen
dataclass; ``dataclasses.asdict(config)`` rebuilds it through ``build_model``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from torch import nn

from densharp.errors import InputError
from densharp.ml.nets.cvae import CVAE3d, CVAE3dConfig
from densharp.ml.nets.report_vae import ReportVAE, ReportVAEConfig
from densharp.ml.nets.unet3d import UNet3d, UNet3dConfig

#: options removed from a network since weights were shipped with them: accepted only at the value they had
REMOVED_OPTIONS: dict[str, dict[str, Any]] = {"vae": {"spatial_latent": False, "latent_gate": False}}

#: registry name -> (model class, config class)
MODELS: dict[str, tuple[type[nn.Module], type]] = {
    "unet": (UNet3d, UNet3dConfig),
    "vae": (CVAE3d, CVAE3dConfig),
    "report-vae": (ReportVAE, ReportVAEConfig),
}


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered network from its name and config fields.

    Raises
    ------
    InputError
        Unknown name, unknown config field, or an invalid value.
    """
    if name not in MODELS:
        raise InputError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    model_cls, cfg_cls = MODELS[name]
    for key, value in REMOVED_OPTIONS.get(name, {}).items():
        if key in kwargs:
            if kwargs[key] != value:
                raise InputError(
                    f"model {name!r}: option {key}={kwargs[key]!r} was removed; only {value!r} is supported"
                )
            kwargs = {k: v for k, v in kwargs.items() if k != key}
    try:
        cfg = cfg_cls(**kwargs)
    except TypeError as exc:
        raise InputError(
            f"model {name!r}: bad config ({exc}); fields are {[f.name for f in dataclasses.fields(cfg_cls)]}"
        ) from exc
    return model_cls(cfg)


def model_kwargs(model: nn.Module) -> dict[str, Any]:
    """Config fields of a registered model as plain Python types (tuples become lists), for checkpoints/JSON."""
    model = getattr(model, "module", model)  # unwrap DistributedDataParallel
    cfg: Any = model.config
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(cfg).items()}


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


__all__ = [
    "MODELS",
    "CVAE3d",
    "CVAE3dConfig",
    "ReportVAE",
    "ReportVAEConfig",
    "UNet3d",
    "UNet3dConfig",
    "build_model",
    "count_parameters",
    "model_kwargs",
]
