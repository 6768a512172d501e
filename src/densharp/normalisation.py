"""Normalisation of density for a learned model, written once for training and inference alike.

A model records which :class:`NormKind` it was trained with; training and inference both call
:func:`norm_stats` on the same thing (the whole input map, or for the legacy kind one patch/tile), apply
:func:`normalise` to the input (and in training the target) and :func:`denormalise` to the prediction, so the output
comes back in the input's units and offset.

- ``robust-map`` (current): one offset and scale per **map**, robust to masked solvent (a box that is 98 % exact
  zeros), to the box size and to post-processing. The map is low-passed at 10 Å; the *offset* is the median of the
  voxels in its lowest 30 % (the solvent level: 0 in a masked map); the *molecule* is where the smooth map rises
  above a quarter of its 99.9th percentile (relative to the offset); the *scale* is the RMS of ``x - offset`` over
  the molecule. Both are computed in float64, so a map ×10⁶ + 10³ normalises to the same values.
- ``zscore-patch`` (legacy weights): mean and SD of each training patch / inference tile. Degenerate in masked
  boxes (a tile of zeros and a few voxels of density is blown up), which is why it was replaced.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.fft

from densharp.errors import InputError
from densharp.fourier import frequency_grid_invA, lowpass_filter_values
from densharp.volume import DensityMap

#: low-pass (Å) of the smooth map that finds solvent and molecule
SMOOTH_A = 10.0
#: fraction of the smooth map's voxels (lowest first) whose median is the solvent level
SOLVENT_QUANTILE = 0.3
#: molecule = smooth map above this fraction of its robust maximum (99.9th percentile), relative to the offset
MOLECULE_LEVEL = 0.25


class NormKind(str, enum.Enum):
    """How a model's input is normalised (recorded in its weights)."""

    ROBUST_MAP = "robust-map"
    ZSCORE_PATCH = "zscore-patch"

    @classmethod
    def parse(cls, value: Any) -> NormKind:
        """A kind from its recorded form (legacy records ``{"kind": "zscore", ...}`` are per-patch z-scores)."""
        if isinstance(value, NormKind):
            return value
        if isinstance(value, dict):
            value = value.get("kind")
        if value in ("zscore", None):
            return cls.ZSCORE_PATCH
        try:
            return cls(value)
        except ValueError:
            raise InputError(f"unknown normalisation {value!r}; known: {', '.join(k.value for k in cls)}") from None

    @property
    def per_map(self) -> bool:
        """True when the statistics come from the whole map (else from each patch / tile)."""
        return self is NormKind.ROBUST_MAP


@dataclass(frozen=True)
class NormStats:
    """Offset and scale (map units) of one normalisation: ``(x - offset) / scale``."""

    offset: float
    scale: float

    def to_dict(self) -> dict[str, float]:
        """JSON-ready form."""
        return {"offset": self.offset, "scale": self.scale}


def norm_stats(
    data_zyx: np.ndarray,
    kind: NormKind | str,
    voxel_size_xyz_A: tuple[float, float, float] = (1.0, 1.0, 1.0),
    angles_deg: tuple[float, float, float] | None = None,
) -> NormStats:
    """Offset and scale of ``data_zyx`` under ``kind`` (see the module docstring).

    ``voxel_size_xyz_A`` and, for a map on a non-orthogonal cell, ``angles_deg`` (the cell angles,
    :func:`densharp.fourier.grid_angles_deg`) set the frequencies of the 10 Å smoothing.

    Raises
    ------
    InputError
        Non-finite values, or a map without contrast (constant, or no molecule above the solvent).
    """
    kind = NormKind.parse(kind)
    x = np.asarray(data_zyx, dtype=np.float64)
    if not np.isfinite(x).all():
        raise InputError("map has non-finite values; cannot normalise it")
    if kind is NormKind.ZSCORE_PATCH:
        mean, sd = float(x.mean()), float(x.std())
        return NormStats(mean, sd if sd > 0 else 1.0)
    return _robust_stats(x, voxel_size_xyz_A, angles_deg)


def _robust_stats(
    x: np.ndarray,
    voxel_size_xyz_A: tuple[float, float, float],
    angles_deg: tuple[float, float, float] | None = None,
) -> NormStats:
    centre = float(np.median(x))
    span = float(np.max(np.abs(x - centre)))
    if span == 0.0:
        raise InputError("map is constant; there is nothing to normalise or sharpen")
    # work relative to the median and the largest deviation: the FFT then sees O(1) values whatever the units
    y = (x - centre) / span
    s = frequency_grid_invA(y.shape, voxel_size_xyz_A, angles_deg)  # type: ignore[arg-type]
    smooth = scipy.fft.irfftn(scipy.fft.rfftn(y) * lowpass_filter_values(s, SMOOTH_A), s=y.shape)
    flat = smooth.ravel()
    solvent = flat <= np.quantile(flat, SOLVENT_QUANTILE)
    offset = float(np.median(y.ravel()[solvent]))
    base = float(np.median(flat[solvent]))
    top = float(np.quantile(flat, 0.999))
    if top - base <= 1e-9:
        raise InputError("map has no density above its solvent level; there is nothing to normalise or sharpen")
    molecule = flat >= base + MOLECULE_LEVEL * (top - base)
    dev = y.ravel()[molecule] - offset
    scale = float(np.sqrt(np.mean(dev * dev)))
    if not scale > 0:
        raise InputError("map has no contrast inside the molecule; there is nothing to normalise or sharpen")
    return NormStats(offset=centre + offset * span, scale=scale * span)


def normalise(data_zyx: np.ndarray, stats: NormStats) -> np.ndarray:
    """``(data - offset) / scale`` as float32 (computed in float64)."""
    return ((np.asarray(data_zyx, dtype=np.float64) - stats.offset) / stats.scale).astype(np.float32)


def denormalise(data_zyx: np.ndarray, stats: NormStats) -> np.ndarray:
    """``data * scale + offset`` as float32 (inverse of :func:`normalise`)."""
    return (np.asarray(data_zyx, dtype=np.float64) * stats.scale + stats.offset).astype(np.float32)


def map_norm_stats(m: DensityMap, kind: NormKind | str) -> NormStats:
    """:func:`norm_stats` of a whole map, with its voxel size and (sheared cells) its cell angles."""
    from densharp.fourier import grid_angles_deg

    return norm_stats(m.data_zyx, kind, m.voxel_size_xyz_A, grid_angles_deg(m))
