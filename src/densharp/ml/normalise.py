"""Z-score normalisation of density maps, recorded so it can be inverted (training and inference alike).

The statistics of the *input* map (over the whole box or a mask) are applied to both input and target in
training, and inverted on the prediction at inference, so the model's output comes back in the input's units.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from densharp.errors import InputError


def zscore_stats(data_zyx: np.ndarray, mask_zyx: np.ndarray | None = None) -> dict[str, Any]:
    """Mean and SD of a (z, y, x) map, over the voxels where ``mask_zyx`` is true if given.

    Returns a plain-Python record ``{"kind": "zscore", "mean": float, "sd": float, "over": "map"|"mask"}``
    suitable for checkpoints and JSON.

    Raises
    ------
    InputError
        Empty mask, mask shape mismatch, non-finite values or a constant map (SD 0).
    """
    data = np.asarray(data_zyx)
    if mask_zyx is not None:
        mask = np.asarray(mask_zyx, dtype=bool)
        if mask.shape != data.shape:
            raise InputError(f"normalisation mask shape {mask.shape} differs from map shape {data.shape}")
        vals = data[mask]
        if vals.size == 0:
            raise InputError("normalisation mask selects no voxel; use a larger mask or none")
    else:
        vals = data.ravel()
    mean = float(np.mean(vals, dtype=np.float64))
    sd = float(np.std(vals, dtype=np.float64))
    if not (np.isfinite(mean) and np.isfinite(sd)):
        raise InputError("map has non-finite values; cannot z-score normalise it")
    if sd <= 0.0:
        raise InputError("map is constant (SD 0); cannot z-score normalise it")
    return {"kind": "zscore", "mean": mean, "sd": sd, "over": "map" if mask_zyx is None else "mask"}


def apply_zscore(data_zyx: np.ndarray, stats: dict[str, Any]) -> np.ndarray:
    """``(data - mean) / sd`` as float32."""
    _check(stats)
    return ((np.asarray(data_zyx, dtype=np.float64) - stats["mean"]) / stats["sd"]).astype(np.float32)


def invert_zscore(data_zyx: np.ndarray, stats: dict[str, Any]) -> np.ndarray:
    """``data * sd + mean`` as float32 (inverse of :func:`apply_zscore`)."""
    _check(stats)
    return (np.asarray(data_zyx, dtype=np.float64) * stats["sd"] + stats["mean"]).astype(np.float32)


def _check(stats: dict[str, Any]) -> None:
    if stats.get("kind") != "zscore":
        raise InputError(f"unknown normalisation kind {stats.get('kind')!r}; expected 'zscore'")
