"""Learned sharpening of a whole map: to the model's grid, normalise, tile, predict, and back onto the input grid.

Pure computation (no file I/O). What a model is asked follows its card (:mod:`densharp.ml.registry`), whose rules
are the ones training used (:mod:`densharp.conditioning`, :mod:`densharp.normalisation`). The steps of
:func:`sharpen_learned`:

1. **Grid**: an input whose voxels lie inside the model's trained voxel range and agree within 5 % (crystal cells:
   15 %, as in training) runs as it is;
   any other (anisotropic, finer or coarser) is Fourier-resampled (spectrum crop / zero-pad, periodic) to the rule's
   grid voxel, keeping the box extent exactly (the voxel used is ``extent / n'`` per axis).
2. **Input filter and normalisation as in training**: the map is low-passed at ``d_input``; a ``robust-map``
   model normalises it once with the whole map's statistics, a legacy ``zscore-patch`` model each tile.
3. **Conditioning**: ``[1/d_input, 1/d_target, voxel]``; the default target is the rule's, a target finer than
   the rule's finest is refused.
4. **Tiling**: Gaussian-blended tiles of the training patch size (periodic for unit cells); a VAE with
   ``samples > 1`` returns the mean and per-voxel SD of its draws, blended in the same pass.
5. **Output**: de-normalised, low-passed at ``d_target`` (nothing beyond the target survives), resampled back
   onto the input grid; with a (soft) mask ``w``, ``w·output + (1 - w)·input``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from densharp.conditioning import cond_vector, prefilter_input
from densharp.errors import InputError
from densharp.fourier import fourier_resample, lowpass
from densharp.ml.registry import ModelCard
from densharp.modality import Modality
from densharp.normalisation import NormKind, denormalise, map_norm_stats, norm_stats, normalise
from densharp.volume import DensityMap

#: relative voxel-size spread a map may have and still run on its own grid, by modality: cryo-EM models are trained
#: on isotropic voxels; crystal cells are gridded cell/n per axis on FFT-friendly sizes, up to ~15 % apart, in
#: training too. Beyond it, or outside the trained voxel range, the map is resampled
VOXEL_RTOL = {Modality.EM: 0.05, Modality.XRAY: 0.15}


@dataclass(frozen=True)
class LoadedModel:
    """A network with its card and the sha256 of the weights it was loaded from."""

    card: ModelCard
    module: nn.Module
    sha256: str


def load_model(card: ModelCard) -> LoadedModel:
    """Load the card's weights (sha256 checked against the pinned one for shipped models).

    Raises
    ------
    CheckpointError
        Missing, damaged or mismatched weights.
    """
    from densharp.ml.checkpoint import load_weights

    module, sha = load_weights(card)
    return LoadedModel(card=card, module=module, sha256=sha)


@dataclass(frozen=True)
class LearnedResult:
    """Output of :func:`sharpen_learned`: the map (input grid), the per-voxel SD (VAE, ``samples > 1``), metadata."""

    map: DensityMap
    sd: DensityMap | None
    meta: dict[str, Any] = field(default_factory=dict)


def model_grid(
    m: DensityMap, card: ModelCard, d_input_A: float
) -> tuple[tuple[int, int, int], tuple[float, float, float], bool]:
    """``(shape_zyx, voxel_xyz_A, resampled)`` of the grid the model runs on for map ``m`` (conditioning rule).

    The box extent is kept exactly, so a resampled grid's voxel is ``extent / n'`` per axis (within half a voxel
    over the box of the rule's); the model is conditioned on their mean.
    """
    vox = np.asarray(m.voxel_size_zyx_A)
    lo, hi = card.conditioning.voxel_range(d_input_A)
    near_isotropic = float(np.ptp(vox)) <= VOXEL_RTOL[card.modality] * float(vox.max())
    if near_isotropic and lo * (1 - 1e-3) <= float(vox.min()) and float(vox.max()) <= hi * (1 + 1e-3):
        return m.shape_zyx, m.voxel_size_xyz_A, False
    v = card.conditioning.grid_voxel_A(d_input_A, float(vox.max()))
    shape = tuple(max(1, round(n * vv / v)) for n, vv in zip(m.shape_zyx, vox))
    used_zyx = [n * vv / nn for n, vv, nn in zip(m.shape_zyx, vox, shape)]
    return shape, (used_zyx[2], used_zyx[1], used_zyx[0]), True  # type: ignore[return-value]


def target_resolution_A(card: ModelCard, d_input_A: float, voxel_A: float, d_target_A: float | None) -> float:
    """The target resolution to condition on: the rule's default, or ``d_target_A`` if allowed.

    Raises
    ------
    InputError
        ``d_target_A`` finer than the rule's finest target on this grid, or coarser than the input.
    """
    rule = card.conditioning
    if d_target_A is None:
        return rule.default_target_A(d_input_A, voxel_A)
    finest = rule.finest_target_A(voxel_A)
    if d_target_A < finest - 1e-6:
        raise InputError(
            f"target resolution `d_target_A` {d_target_A:g} Å is finer than {card.name} supports ({finest:g} Å "
            f"on its {voxel_A:.3g} Å grid); ask for {finest:g} Å or coarser"
        )
    if d_target_A > d_input_A + 1e-6:
        raise InputError(
            f"target resolution `d_target_A` {d_target_A:g} Å is coarser than the input's {d_input_A:g} Å; a "
            "sharpening target lies between the finest supported and the input resolution"
        )
    return float(d_target_A)


def _predictor(
    loaded: LoadedModel, cond: np.ndarray, device: torch.device, precision: str, samples: int, seed: int
) -> Any:
    """``predict(tiles) -> {"map"[, "sd"]}`` for the tiler: tensors on ``device``, autocast, numpy back."""
    from densharp.ml.infer import autocast

    model: Any = loaded.module.to(device).eval()  # a densharp network: predict(), sample() (VAE)
    per_tile = not loaded.card.normalisation.per_map
    cond_t = torch.as_tensor(cond, dtype=torch.float32, device=device)[None]
    gen = None
    if samples > 1:
        gen = torch.Generator(device=device)
        gen.manual_seed(int(seed))

    def predict(tiles: np.ndarray) -> dict[str, np.ndarray]:
        stats = [norm_stats(t[0], NormKind.ZSCORE_PATCH) for t in tiles] if per_tile else None
        x = tiles if stats is None else np.stack([normalise(t, s) for t, s in zip(tiles, stats)])
        xt = torch.from_numpy(np.ascontiguousarray(x)).to(device)
        c = cond_t.expand(xt.shape[0], -1)
        with torch.inference_mode(), autocast(device, precision):
            if samples > 1:
                y, sd = model.sample(xt, c, n=samples, generator=gen)
                out = {"map": y.float().cpu().numpy(), "sd": sd.float().cpu().numpy()}
            else:
                out = {"map": model.predict(xt, c).float().cpu().numpy()}
        if stats is not None:
            out["map"] = np.stack([denormalise(y, s) for y, s in zip(out["map"], stats)])
            if "sd" in out:
                out["sd"] = np.stack([sd * np.float32(s.scale) for sd, s in zip(out["sd"], stats)])
        return out

    return predict


def sharpen_learned(
    m: DensityMap,
    loaded: LoadedModel,
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
    """Sharpen ``m`` with a learned model; the result lies on ``m``'s exact grid (see the module docstring).

    Parameters
    ----------
    m
        Input map (orthogonal box).
    loaded
        From :func:`load_model`.
    d_input_A
        Resolution of the input (Å).
    d_target_A
        Resolution to condition the output on (Å); default from the model's rule.
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
        Non-orthogonal cell, bad resolutions, a target the model does not support, a mask on another grid,
        ``samples > 1`` with a model that cannot sample, or a map without contrast.
    """
    from densharp.ml.infer import resolve_device, resolve_precision
    from densharp.ml.tiling import sliding_window

    t0 = time.perf_counter()
    card = loaded.card
    if not m.is_orthogonal and not periodic:
        raise InputError("learned sharpening of a non-orthogonal cell needs the whole periodic cell (MTZ input)")
    if not (np.isfinite(d_input_A) and d_input_A > 0):
        raise InputError(f"input resolution `d_input_A` must be a positive number of Å, got {d_input_A}")
    if samples < 1:
        raise InputError(f"`samples` must be >= 1, got {samples}")
    if samples > 1 and not hasattr(loaded.module, "sample"):
        raise InputError(f"`samples` {samples} needs a VAE model; {card.name} is a {card.architecture!r} model")
    dev = resolve_device(device)
    prec = resolve_precision(precision, dev)

    shape = m.shape_zyx
    grid_shape, vox_grid, resample = model_grid(m, card, d_input_A)
    v_used = float(np.mean(vox_grid))
    d_t = target_resolution_A(card, d_input_A, v_used, d_target_A)
    on_grid = m
    if resample:  # the same box (or cell, angles kept) on the model's grid
        x_grid = fourier_resample(m.data_zyx, grid_shape)
        on_grid = replace(m, data_zyx=x_grid, voxel_size_xyz_A=vox_grid, sampling_xyz=grid_shape[::-1], source=None)
    model_in_map = prefilter_input(on_grid, d_input_A)
    model_in = model_in_map.data_zyx
    stats = map_norm_stats(model_in_map, card.normalisation) if card.normalisation.per_map else None
    w = None
    if mask_zyx is not None:
        w = np.clip(np.asarray(mask_zyx, dtype=np.float32), 0.0, 1.0)
        if w.shape != shape:
            raise InputError(f"mask shape {w.shape} (z,y,x) differs from the map's {shape}; resample the mask")
        if not (w > 0).any():
            raise InputError("mask is empty (all zero); give a mask that covers the molecule")
    w_grid = None if w is None else (_resample_mask(w, grid_shape) if resample else w)
    tiles_over = w_grid > 0 if w_grid is not None else _support(m.data_zyx, grid_shape, card.patch_zyx)

    cond = cond_vector(d_input_A, d_t, v_used)
    predict = _predictor(loaded, cond, dev, prec, samples, seed)  # VAE draws use their own seeded generator
    tiled = sliding_window(
        model_in if stats is None else normalise(model_in, stats),
        predict,
        card.patch_zyx,
        overlap=overlap,
        batch_size=batch_size,
        mask_zyx=tiles_over,
        periodic=periodic,
        progress=progress,
    )
    pred = tiled.outputs["map"]
    sd_grid = tiled.outputs.get("sd")
    if stats is not None:
        pred = denormalise(pred, stats)
        sd_grid = None if sd_grid is None else sd_grid * np.float32(stats.scale)
    pred = lowpass(on_grid.with_data(pred), d_t).data_zyx
    out = fourier_resample(pred, shape) if resample else pred
    sd = None
    if sd_grid is not None:
        sd = np.maximum(fourier_resample(sd_grid, shape) if resample else sd_grid, 0.0)
    if w is not None:
        out = w * out + (1.0 - w) * m.data_zyx
        if sd is not None:
            sd = w * sd
    meta = {
        "model": card.name,
        "architecture": card.architecture,
        "sha256": loaded.sha256,
        "grid": {
            "resampled": bool(resample),
            "shape_zyx": list(grid_shape),
            "voxel_A": round(v_used, 6),
            "voxel_xyz_A": [round(v, 6) for v in vox_grid],
            "method": "fourier (spectrum crop/zero-pad)" if resample else "input grid",
        },
        "normalisation": {"kind": card.normalisation.value, **(stats.to_dict() if stats else {"over": "each tile"})},
        "cond": [float(c) for c in cond],
        "d_input_A": float(d_input_A),
        "d_target_A": float(d_t),
        "d_target_default": d_target_A is None,
        "patch_zyx": list(card.patch_zyx),
        "tiles": tiled.n_tiles,
        "overlap": overlap,
        "batch_size": batch_size,
        "periodic": bool(periodic),
        "samples": int(samples),
        "seed": int(seed),
        "device": str(dev),
        "precision": prec,
        "masked": w is not None,
        "runtime_s": round(time.perf_counter() - t0, 3),
    }
    return LearnedResult(
        map=m.with_data(out.astype(np.float32)),
        sd=None if sd is None else m.with_data(sd.astype(np.float32)),
        meta=meta,
    )


def _support(
    data_zyx: np.ndarray, grid_shape: tuple[int, int, int], patch_zyx: tuple[int, int, int]
) -> np.ndarray | None:
    """Where a masked map holds density, on the model grid; ``None`` for a map without flat masked solvent.

    Tiles wholly in solvent that was masked flat (exactly one value) are skipped, which saves most of the work on
    a deposited masked map. The region is the non-flat voxels grown by a quarter tile, so every tile touching
    density still runs.
    """
    flat_value = float(np.median(data_zyx))
    support = data_zyx != np.float32(flat_value)
    if support.mean() > 0.5:  # an unmasked map: run every tile
        return None
    from scipy import ndimage

    grow = max(1, min(patch_zyx) // 4)
    support = ndimage.binary_dilation(support, iterations=grow)
    if support.shape != tuple(grid_shape):
        support = _resample_mask(support.astype(np.float32), grid_shape) > 0
    return support


def _resample_mask(mask: np.ndarray, shape_zyx: tuple[int, int, int]) -> np.ndarray:
    """Linear resampling of a (soft) mask by voxel centres (no ringing), values in [0, 1]."""
    from scipy.ndimage import map_coordinates

    coords = [(np.arange(n_new) + 0.5) * (n_old / n_new) - 0.5 for n_old, n_new in zip(mask.shape, shape_zyx)]
    grid = np.meshgrid(*coords, indexing="ij")
    out = map_coordinates(mask.astype(np.float32), grid, order=1, mode="nearest")
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def predict_patch(module: Any, case: dict[str, Any], normalisation: NormKind) -> np.ndarray:
    """A network's output (map units) for one validation patch, normalised as the model is trained.

    A per-map model uses the case's ``norm_box`` statistics (those of its whole simulated box, as at inference);
    a per-patch model, or a case without them, the patch's own z-score.
    """
    x = np.asarray(case["input"], dtype=np.float32)
    stats = case.get("norm_box") if normalisation.per_map else None
    if stats is None:
        stats = norm_stats(x, NormKind.ZSCORE_PATCH)
    dev = next(module.parameters()).device
    xt = torch.from_numpy(normalise(x, stats))[None, None].to(dev)
    cond = torch.from_numpy(cond_vector(case["d_input_A"], case["d_target_A"], case["voxel_size_A"]))[None].to(dev)
    was_training = module.training
    module.eval()
    with torch.inference_mode():
        y = module.predict(xt, cond).float()[0, 0].cpu().numpy()
    module.train(was_training)
    return denormalise(y, stats)
