"""Training checkpoints (``.pt``) and exported weights (``.safetensors``).

Checkpoints hold plain Python types and tensors only, so ``torch.load(path, weights_only=True)`` (the default
since torch 2.6) reads them, and :func:`load_checkpoint` rebuilds the network from ``model_name`` +
``model_kwargs``. Weights files are safetensors (no pickle) whose string metadata is the model card
(:mod:`densharp.ml.registry`); :func:`load_weights` checks the card's pinned sha256 before using them.
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from densharp import __version__
from densharp.conditioning import ConditioningRule
from densharp.errors import CheckpointError, InputError
from densharp.io.atomic import atomic_path
from densharp.ml.nets import MODELS, build_model, model_kwargs
from densharp.ml.registry import WEIGHTS_FORMAT, ModelCard, read_safetensors_metadata
from densharp.modality import Modality
from densharp.normalisation import NormKind

#: bump when the checkpoint layout changes incompatibly
FORMAT_VERSION = 1


def plain(obj: Any) -> Any:
    """Convert to types ``torch.load(weights_only=True)`` and JSON accept (numpy scalars, tuples, Paths, enums)."""
    if isinstance(obj, torch.Tensor) or obj is None:
        return obj
    if isinstance(obj, enum.Enum):
        return plain(obj.value)
    if isinstance(obj, str):
        return str(obj)  # str subclasses (TorchVersion, str enums) are not safe-loadable
    if isinstance(obj, bool):
        return bool(obj)
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, Mapping):
        return {str(k) if not isinstance(k, int) else k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if hasattr(obj, "__dataclass_fields__"):
        import dataclasses

        return plain(dataclasses.asdict(obj))
    raise TypeError(f"cannot store {type(obj).__name__} in a checkpoint; convert it to plain Python types")


def save_checkpoint(
    path: str | os.PathLike[str],
    model: nn.Module,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    step: int = 0,
    epoch: int = 0,
    best_val: Mapping[str, Any] | None = None,
    train_config: Any = None,
    normalisation: Mapping[str, Any] | None = None,
    voxel_size_A: float | None = None,
    patch_size_zyx: Sequence[int] | None = None,
    resolution_range_A: Sequence[float] | None = None,
    data_manifest: Mapping[str, Any] | None = None,
    seed: int | None = None,
    argv: Sequence[str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Write a training checkpoint atomically (temporary file + ``os.replace``).

    ``model`` may be wrapped in DistributedDataParallel; the bare module's ``state_dict`` is saved, on CPU.
    Everything else is converted to plain Python types (see :func:`plain`).
    """
    bare = getattr(model, "module", model)
    ckpt = {
        "format_version": FORMAT_VERSION,
        "package_version": str(__version__),
        "torch_version": str(torch.__version__),
        "python_version": sys.version.split()[0],
        "model_name": bare.name,
        "model_kwargs": model_kwargs(bare),
        "state_dict": {k: v.detach().cpu() for k, v in bare.state_dict().items()},
        "optimizer_state": optimizer.state_dict() if optimizer is not None else None,
        "step": int(step),
        "epoch": int(epoch),
        "best_val": plain(dict(best_val)) if best_val is not None else None,
        "train_config": plain(train_config),
        "normalisation": plain(dict(normalisation)) if normalisation is not None else None,
        "voxel_size_A": None if voxel_size_A is None else float(voxel_size_A),
        "patch_size_zyx": None if patch_size_zyx is None else [int(s) for s in patch_size_zyx],
        "resolution_range_A": None if resolution_range_A is None else [float(r) for r in resolution_range_A],
        "data_manifest": plain(dict(data_manifest)) if data_manifest is not None else None,
        "seed": None if seed is None else int(seed),
        "argv": list(argv) if argv is not None else list(sys.argv),
        "extra": plain(dict(extra)) if extra is not None else None,
    }
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)


def read_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint dict safely (``weights_only=True``) and check its format version."""
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError as exc:
        raise CheckpointError(f"{path}: checkpoint not found") from exc
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError... for damaged files
        raise CheckpointError(f"{path}: not a readable densharp checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(ckpt, dict) or "format_version" not in ckpt:
        raise CheckpointError(f"{path}: not a densharp checkpoint (no format_version)")
    if ckpt["format_version"] != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {ckpt['format_version']} but this densharp reads {FORMAT_VERSION}; "
            "use the densharp version that wrote it"
        )
    return ckpt


def load_checkpoint(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the network of a checkpoint and load its weights.

    Returns
    -------
    (model, ckpt)
        The model (on CPU, in eval mode) and the checkpoint dict.

    Raises
    ------
    CheckpointError
        Unreadable file, wrong format version, unknown architecture or weights that do not fit it.
    """
    ckpt = read_checkpoint(path, map_location)
    model = _rebuild(ckpt.get("model_name"), ckpt.get("model_kwargs"), ckpt.get("state_dict"), str(path))
    return model, ckpt


def _rebuild(name: Any, kwargs: Any, state_dict: Any, where: str) -> nn.Module:
    if name not in MODELS:
        raise CheckpointError(f"{where}: unknown architecture {name!r}; this densharp knows {', '.join(MODELS)}")
    try:
        model = build_model(name, **(kwargs or {}))
    except InputError as exc:
        raise CheckpointError(f"{where}: cannot rebuild {name!r} from its stored config: {exc}") from exc
    try:
        model.load_state_dict(state_dict)
    except (RuntimeError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()
        raise CheckpointError(
            f"{where}: weights do not fit architecture {name!r}: {first[0] if first else exc}"
        ) from exc
    return model.eval()


def export_weights(
    ckpt: Mapping[str, Any] | str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    modality: str | Modality | None = None,
    dtype: torch.dtype = torch.float32,
    extra_metadata: Mapping[str, str] | None = None,
) -> str:
    """Write a checkpoint's weights as safetensors with string metadata; return the file's sha256 (hex).

    The metadata is what a :class:`~densharp.ml.registry.ModelCard` is read from: ``format``,
    ``format_version``, ``architecture``, ``model_kwargs``, ``modality``, ``patch_size_zyx``,
    ``resolution_range_A``, ``normalisation``, ``pair_config`` and ``conditioning`` (the rule derived from it),
    ``package_version``, ``torch_version``, ``step``, plus ``extra_metadata``. ``modality`` defaults to the
    checkpoint's data modality. ``dtype`` may be ``torch.bfloat16`` to halve the file.
    """
    from safetensors.torch import save_file

    if not isinstance(ckpt, Mapping):
        ckpt = read_checkpoint(ckpt)
    manifest = ckpt.get("data_manifest") or {}
    pair_cfg = dict(manifest.get("pair_config") or {})
    mod = Modality.parse(modality or manifest.get("modality") or "em")
    rule = ConditioningRule.from_pair_config(pair_cfg) if pair_cfg else ConditioningRule()
    metadata = {
        "format": WEIGHTS_FORMAT,
        "format_version": str(FORMAT_VERSION),
        "architecture": str(ckpt["model_name"]),
        "model_kwargs": json.dumps(ckpt["model_kwargs"], sort_keys=True),
        "modality": mod.value,
        "patch_size_zyx": json.dumps(ckpt.get("patch_size_zyx")),
        "resolution_range_A": json.dumps(ckpt.get("resolution_range_A")),
        "normalisation": json.dumps(NormKind.parse(ckpt.get("normalisation")).value),
        "pair_config": json.dumps(pair_cfg, sort_keys=True),
        "conditioning": json.dumps(rule.to_dict(), sort_keys=True),
        "package_version": str(__version__),
        "torch_version": str(torch.__version__),
        "step": str(ckpt.get("step", "")),
    }
    best_metrics = (ckpt.get("best_val") or {}).get("metrics") or {}
    gain = sorted((float(k[len("xgain_u") :]), float(v)) for k, v in best_metrics.items() if k.startswith("xgain_u"))
    if gain:  # X-ray models: the measured gain of their extrapolation (densharp.reflections)
        metadata["extrapolation_gain"] = json.dumps(gain)
    metadata.update({str(k): str(v) for k, v in (extra_metadata or {}).items()})
    tensors = {
        k: v.detach().to("cpu", dtype if v.is_floating_point() else v.dtype).contiguous().clone()
        for k, v in ckpt["state_dict"].items()
    }
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load_weights(card: ModelCard) -> tuple[nn.Module, str]:
    """Build the card's network and load its weights (CPU, eval mode); return ``(model, sha256 of the file)``.

    Raises
    ------
    CheckpointError
        Missing file, sha256 different from the card's pinned one, or weights that do not fit the architecture.
    """
    try:
        from safetensors.torch import load as load_bytes
    except ImportError:
        raise CheckpointError(
            "learned models need the safetensors package: pip install 'densharp[ml]' (or pip install safetensors)"
        ) from None
    try:
        data = Path(card.path).read_bytes()
    except FileNotFoundError as exc:
        raise CheckpointError(f"{card.name}: weights file {card.path} not found; reinstall densharp") from exc
    digest = hashlib.sha256(data).hexdigest()
    if card.sha256 is not None and digest != card.sha256.lower():
        raise CheckpointError(
            f"{card.name}: sha256 {digest[:16]}… does not match the pinned {card.sha256[:16]}…; "
            "the file is damaged or not the one expected; reinstall or re-export it"
        )
    meta = read_safetensors_metadata(data, card.name)
    if meta.get("format_version") not in (None, str(FORMAT_VERSION)):
        raise CheckpointError(f"{card.name}: weights format {meta.get('format_version')}, expected {FORMAT_VERSION}")
    try:
        tensors = load_bytes(data)
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise CheckpointError(f"{card.name}: damaged weights file ({exc}); re-export or reinstall it") from exc
    state = {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}
    return _rebuild(card.architecture, card.model_kwargs, state, card.name), digest
