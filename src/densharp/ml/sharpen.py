"""Learned sharpening of a whole map: resample to the model's voxel, tile, predict, and come back on the input grid.

Pure computation (no file I/O). The steps of :func:`sharpen_learned`:

1. **Resample** the map to the model's (isotropic) voxel size when they differ by more than 0.1 %: Fourier
   resampling (crop or zero-pad the spectrum) to ``n' = round(n · v / v_model)`` voxels per axis, so the box
   extent is kept exactly and the voxel used is ``extent / n'`` (within half a voxel over the box of the model's).
   Fourier resampling is periodic, so it suits crystallographic cells too.
2. **Normalise and condition as in training** (:func:`densharp.ml.data.make_item`): every tile (the model's
   training patch size) is z-scored with its *own* mean and SD, and the conditioning vector is
   :func:`~densharp.ml.data.cond_vector` ``(d_input, d_target, voxel)``; the prediction is de-normalised with the
   same tile statistics, then the tiles are blended (Gaussian weights, :func:`~densharp.ml.tiling.sliding_window`).
3. **VAE samples**: ``samples > 1`` draws latents from the prior per tile (``CVAE3d.sample``); the output is the
   mean and the per-voxel SD across draws (SD blended across tiles with the same weights, in the map's units).
4. **Resample back** to the input grid. What the resampled grid cannot carry (frequencies beyond the model grid's
   Nyquist) is added back from the input: ``out = back(pred) + (x - back(forward(x)))``; so an identity model
   returns the input exactly on any grid.
5. **Mask**: tiles wholly outside the mask are skipped and the output is ``w·pred + (1 - w)·input`` with the
   (soft) mask ``w``, so voxels outside the mask keep the input.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from densharp.errors import InputError
from densharp.volume import DensityMap

#: finest target resolution used in training when none is given (PairConfig.d_target_min_A)
D_TARGET_MIN_A = 2.0
#: relative voxel-size difference below which no resampling is done
VOXEL_RTOL = 1e-3


@dataclass(frozen=True)
class LearnedResult:
    """Output of :func:`sharpen_learned`: the map (input grid), the per-voxel SD (VAE, ``samples > 1``), metadata."""

    map: DensityMap
    sd: DensityMap | None
    meta: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------- models
def load_model(name_or_path: str | os.PathLike[str]) -> tuple[Any, dict[str, Any]]:
    """Load a registered shipped model by name, or a ``.safetensors`` weights file by path.

    Returns ``(model, meta)`` with the weights metadata (``architecture``, ``voxel_size_A``, ``patch_size_zyx``,
    ``training_domain``, ``sha256``...) plus ``name`` (registry name or file path).

    Raises
    ------
    InputError
        Unknown registry name.
    CheckpointError
        Missing, damaged or mismatched (sha256) weights file.
    """
    from densharp.ml.checkpoint import load_shipped, load_weights

    text = os.fspath(name_or_path)
    if isinstance(name_or_path, Path) or text.endswith(".safetensors") or os.sep in text:
        model, meta = load_weights(text)
    else:
        model, meta = load_shipped(text)
    meta = dict(meta)
    meta["name"] = text
    return model, meta


def model_voxel_A(meta: dict[str, Any]) -> float:
    """The model's training voxel size (Å) from its metadata."""
    v = meta.get("voxel_size_A")
    if not v:
        rng = (meta.get("training_domain") or {}).get("voxel_range_A")
        if rng:
            return float(np.mean(rng))
        raise InputError("the model's metadata has no voxel_size_A; re-export the weights with it")
    return float(v)


def model_patch(meta: dict[str, Any], model: Any) -> tuple[int, int, int]:
    """Tile size (z, y, x): the training patch from metadata, else 64 rounded to the network's size multiple."""
    p = meta.get("patch_size_zyx")
    if p:
        return (int(p[0]), int(p[1]), int(p[2]))
    mult = 2 ** int(getattr(getattr(model, "config", None), "depth", 3))
    n = max(mult, 64 // mult * mult)
    return (n, n, n)


def default_target_A(d_input_A: float, voxel_A: float) -> float:
    """Training's default target resolution: ``max(d_input/2, 2.0, 2.2·voxel)`` (simulate.pairs.PairConfig)."""
    return max(d_input_A / 2.0, D_TARGET_MIN_A, 2.2 * voxel_A)


def finest_target_A(meta: dict[str, Any]) -> float:
    """Finest target resolution the model supports: ``max(2.0, 2.2·voxel)`` unless the metadata says otherwise."""
    dom = meta.get("training_domain") or {}
    return float(dom.get("d_target_min_A") or max(D_TARGET_MIN_A, 2.2 * model_voxel_A(meta)))


def check_domain(meta: dict[str, Any], modality: str, d_input_A: float, voxel_size_xyz_A: Sequence[float]) -> list[str]:
    """Reasons the input lies outside the model's training domain (empty list when inside).

    Checks the modality (``"cryo-em"``/``"x-ray"``), the input resolution against ``resolution_range_A`` and
    every voxel size against ``voxel_range_A`` (missing metadata fields are not checked).
    """
    dom = meta.get("training_domain") or {}
    reasons: list[str] = []
    mod = dom.get("modality")
    if mod and modality and str(mod).lower() != str(modality).lower():
        reasons.append(f"input modality {modality} but the model was trained on {mod}")
    rr = dom.get("resolution_range_A")
    if rr and not (float(rr[0]) - 1e-6 <= d_input_A <= float(rr[1]) + 1e-6):
        reasons.append(f"resolution {d_input_A:.3g} Å outside the model's {float(rr[0]):g}–{float(rr[1]):g} Å")
    vr = dom.get("voxel_range_A")
    if vr:
        bad = [v for v in voxel_size_xyz_A if not float(vr[0]) - 1e-6 <= v <= float(vr[1]) + 1e-6]
        if bad:
            vs = "/".join(f"{v:.4g}" for v in voxel_size_xyz_A)
            reasons.append(f"voxel size {vs} Å outside the model's {float(vr[0]):g}–{float(vr[1]):g} Å")
    return reasons


# ----------------------------------------------------------------------------------------------- resampling
def fourier_resample(data_zyx: np.ndarray, shape_zyx: Sequence[int]) -> np.ndarray:
    """Resample a periodic (z, y, x) array to ``shape_zyx`` by cropping or zero-padding its spectrum.

    Values are scaled so the mean is kept. Even-size Nyquist planes are halved and mirrored (scipy.signal.resample
    convention), so up- then down-sampling returns the input.
    """
    import scipy.signal

    out = np.asarray(data_zyx, dtype=np.float64)
    for axis, n_new in enumerate(shape_zyx):
        if out.shape[axis] != int(n_new):
            out = scipy.signal.resample(out, int(n_new), axis=axis)
    return out.astype(np.float32)


def _resample_mask(mask: np.ndarray, shape_zyx: Sequence[int]) -> np.ndarray:
    """Linear resampling of a (soft) mask by voxel centres (no ringing), values in [0, 1]."""
    from scipy.ndimage import map_coordinates

    coords = [(np.arange(n_new) + 0.5) * (n_old / n_new) - 0.5 for n_old, n_new in zip(mask.shape, shape_zyx)]
    grid = np.meshgrid(*coords, indexing="ij")
    out = map_coordinates(mask.astype(np.float32), grid, order=1, mode="nearest")
    return np.clip(out, 0.0, 1.0).astype(np.float32)


# ----------------------------------------------------------------------------------------------- inference
def _tile_predictor(
    model: Any,
    cond: np.ndarray,
    device: Any,
    precision: str,
    samples: int,
    seed: int,
    sd_tiles: list[np.ndarray],
) -> Callable[[Any], Any]:
    """``predict`` for sliding_window: per-tile z-score (training convention), model, de-normalise.

    With ``samples > 1`` (VAE) the de-normalised SD tiles are appended to ``sd_tiles`` in call order.
    """
    import torch

    from densharp.ml.infer import autocast

    cond_t = torch.as_tensor(cond, dtype=torch.float32, device=device)[None]
    gen = None
    if samples > 1:
        gen = torch.Generator(device=device)
        gen.manual_seed(int(seed))

    def predict(x: Any) -> Any:
        x = x.to(device, torch.float32)
        flat = x.reshape(x.shape[0], -1).double()
        mean = flat.mean(dim=1)
        sd = flat.std(dim=1, unbiased=False)
        sd = torch.where(sd > 0, sd, torch.ones_like(sd))
        shape = (-1, 1, 1, 1, 1)
        mean_t, sd_t = mean.float().reshape(shape), sd.float().reshape(shape)
        xn = (x - mean_t) / sd_t
        c = cond_t.expand(x.shape[0], -1)
        with autocast(device, precision):
            if samples > 1:
                y, s = model.sample(xn, c, n=samples, generator=gen)
                sd_tiles.append((s.float() * sd_t).cpu().numpy())
            else:
                y = model.predict(xn, c)
        return y.float() * sd_t + mean_t

    return predict


def sharpen_learned(
    m: DensityMap,
    model: Any,
    meta: dict[str, Any],
    d_input_A: float,
    d_target_A: float | None = None,
    mask_zyx: np.ndarray | None = None,
    samples: int = 1,
    device: str = "cpu",
    precision: str = "fp32",
    overlap: float = 0.25,
    batch_size: int = 4,
    periodic: bool = False,
    progress: Any = None,
    seed: int = 0,
) -> LearnedResult:
    """Sharpen ``m`` with a learned model; the result lies on ``m``'s exact grid (see module docstring).

    Parameters
    ----------
    m
        Input map (orthogonal box; anisotropic voxels are resampled to the model's isotropic voxel).
    model, meta
        From :func:`load_model` (``meta`` needs ``voxel_size_A``; ``patch_size_zyx`` sets the tile size).
    d_input_A
        Resolution of the input (Å).
    d_target_A
        Resolution to condition the output on; default as in training, ``max(d_input/2, 2.0, 2.2·voxel)``.
    mask_zyx
        Optional (soft) mask on ``m``'s grid: tiles wholly outside are skipped, outside voxels keep the input.
    samples
        VAE only: number of latent draws; ``> 1`` also returns the per-voxel SD.
    device, precision
        ``auto``/``cpu``/``cuda``; ``fp32``/``bf16`` (autocast).
    overlap, batch_size, periodic, progress
        Passed to :func:`~densharp.ml.tiling.sliding_window` (``periodic`` for crystallographic unit cells).
    seed
        Seed of the VAE latent draws.

    Raises
    ------
    InputError
        Non-orthogonal cell, bad resolutions, a target finer than the model supports, a mask on another grid,
        ``samples > 1`` with a model that cannot sample, or a constant map.
    """
    import torch

    from densharp.ml.data import cond_vector
    from densharp.ml.infer import resolve_device, resolve_precision
    from densharp.ml.tiling import sliding_window

    t0 = time.perf_counter()
    if not m.is_orthogonal:
        raise InputError("learned sharpening needs an orthogonal cell; this map's cell angles are not 90°")
    if not (np.isfinite(d_input_A) and d_input_A > 0):
        raise InputError(f"input resolution must be a positive number of Å, got {d_input_A}")
    if samples < 1:
        raise InputError(f"--samples must be >= 1, got {samples}")
    if samples > 1 and not hasattr(model, "sample"):
        raise InputError(f"--samples {samples} needs a VAE model; {meta.get('architecture', 'this model')} is not one")
    v_model = model_voxel_A(meta)
    finest = finest_target_A(meta)
    d_t = default_target_A(d_input_A, v_model) if d_target_A is None else float(d_target_A)
    if d_t < finest - 1e-6:
        raise InputError(
            f"target resolution {d_t:g} Å is finer than this model supports ({finest:g} Å at its "
            f"{v_model:g} Å voxel); give --target-resolution {finest:g} or coarser"
        )
    dev = resolve_device(device)
    prec = resolve_precision(precision, dev)
    prec_note = f"{prec} autocast" if samples > 1 and prec != "fp32" else prec

    x = m.data_zyx
    shape = m.shape_zyx
    vox_zyx = m.voxel_size_zyx_A
    new_shape = tuple(max(1, round(n * v / v_model)) for n, v in zip(shape, vox_zyx))
    resample = any(abs(v - v_model) > VOXEL_RTOL * v_model for v in vox_zyx)
    if resample:
        xr = fourier_resample(x, new_shape)
        vox_used = [n * v / nn for n, v, nn in zip(shape, vox_zyx, new_shape)]
    else:
        new_shape, xr, vox_used = shape, x, list(vox_zyx)
    if float(xr.max()) == float(xr.min()):
        raise InputError("map is constant; there is nothing to sharpen")
    w = None
    if mask_zyx is not None:
        w = np.clip(np.asarray(mask_zyx, dtype=np.float32), 0.0, 1.0)
        if w.shape != shape:
            raise InputError(f"mask shape {w.shape} (z,y,x) differs from the map's {shape}; resample the mask")
        if not (w > 0).any():
            raise InputError("mask is empty (all zero); give a mask that covers the molecule")
    w_r = None if w is None else (_resample_mask(w, new_shape) if resample else w)

    cond = cond_vector(d_input_A, d_t, float(np.mean(vox_used)))
    patch = model_patch(meta, model)
    model = model.to(dev).eval()
    sd_tiles: list[np.ndarray] = []
    predict = _tile_predictor(model, cond, dev, prec, samples, seed, sd_tiles)
    torch.manual_seed(int(seed))
    kw = dict(overlap=overlap, batch_size=batch_size, periodic=periodic, device=str(dev))
    mask_tiles = None if w_r is None else (w_r > 0)
    pred = sliding_window(xr, predict, patch, mask_zyx=mask_tiles, progress=progress, **kw)  # type: ignore[arg-type]
    sd_r = None
    if samples > 1:
        it = iter(sd_tiles)
        # same corners in the same order: blend the stored SD tiles with the same weights (0 where skipped)
        sd_r = sliding_window(
            np.zeros_like(xr),
            lambda t: next(it),
            patch,
            mask_zyx=mask_tiles,
            **kw,  # type: ignore[arg-type]
        )
        sd_r = np.maximum(sd_r, 0.0)

    if resample:
        back = fourier_resample(pred, shape)
        residual = x - fourier_resample(xr, shape)  # what the model grid cannot carry, kept from the input
        out = back + residual
        sd = None if sd_r is None else np.maximum(fourier_resample(sd_r, shape), 0.0)
    else:
        out, sd = pred, sd_r
    if w is not None:
        out = w * out + (1.0 - w) * x
        if sd is not None:
            sd = w * sd
    n_tiles = _count_tiles(new_shape, patch, overlap, periodic, mask_tiles)
    meta_out = {
        "model": meta.get("name"),
        "architecture": meta.get("architecture"),
        "sha256": meta.get("sha256"),
        "model_voxel_A": v_model,
        "resampled": bool(resample),
        "resampling": (
            {
                "method": "fourier (spectrum crop/zero-pad), beyond-grid content kept from the input",
                "grid_zyx": list(new_shape),
                "voxel_zyx_A": [round(v, 6) for v in vox_used],
            }
            if resample
            else None
        ),
        "normalisation": "z-score per tile (tile mean and SD), as in training",
        "cond": [float(c) for c in cond],
        "d_input_A": float(d_input_A),
        "d_target_A": float(d_t),
        "d_target_default": d_target_A is None,
        "patch_zyx": list(patch),
        "tiles": n_tiles,
        "overlap": overlap,
        "batch_size": batch_size,
        "periodic": bool(periodic),
        "samples": int(samples),
        "seed": int(seed),
        "device": str(dev),
        "precision": prec_note,
        "masked": w is not None,
        "runtime_s": round(time.perf_counter() - t0, 3),
    }
    return LearnedResult(
        map=m.with_data(out.astype(np.float32)),
        sd=None if sd is None else m.with_data(sd.astype(np.float32)),
        meta=meta_out,
    )


def _count_tiles(
    shape: Sequence[int], patch: Sequence[int], overlap: float, periodic: bool, mask: np.ndarray | None
) -> int:
    import itertools

    from densharp.ml.tiling import window_starts

    work = [max(n, p) if not periodic else n for n, p in zip(shape, patch)]
    starts = [window_starts(n, p, overlap, periodic) for n, p in zip(work, patch)]
    if mask is None:
        return int(np.prod([len(s) for s in starts]))
    n = 0
    for c in itertools.product(*starts):
        if periodic:
            idx = np.ix_(*[(a + np.arange(p)) % s for a, p, s in zip(c, patch, shape)])
        else:
            idx = tuple(slice(a, a + p) for a, p in zip(c, patch))
        n += bool(mask[idx].any())
    return n
