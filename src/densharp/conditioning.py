"""The training ↔ inference contract of a learned model: its grid, its target resolution and its conditioning.

Written once, here, and imported by the pair simulators (training), the model card (inference) and the tests, so
what a network is asked at inference is always something it was shown in training. A :class:`ConditioningRule`
is recorded with every set of weights (derived from the pair configuration that trained them).

- **grid voxel**: cryo-EM models are trained on voxels drawn from ``voxel_range_A`` with ``d_input`` at least
  ``target_voxel_factor`` voxels; an input voxel inside that range is used as it is, anything else is resampled to
  the nearest end. X-ray models are trained on the grid
  ``densharp sharpen`` puts map coefficients on, spacing ``min(voxel_range_A[1], d_input / d_per_voxel)``.
- **target resolution**: by default ``max(target_per_d · d_input, finest)``, with the finest target
  ``max(d_target_min_A, target_voxel_factor · voxel)`` (a margin below the grid's Nyquist).
- **conditioning vector**: ``[1/d_input, 1/d_target, voxel]`` (1/Å, 1/Å, Å).
- **input filter**: the network sees the input low-passed at ``d_input`` (:func:`prefilter_input`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from densharp.errors import InputError
from densharp.fourier import lowpass
from densharp.volume import DensityMap

#: X-ray grids: map coefficients to d are sampled at d / 2.5 (gemmi's and most programs' default oversampling)
XRAY_D_PER_VOXEL = 2.5
#: ... on even FFT-friendly sizes, so a cell's spacing comes out up to ~15 % finer than asked (training too)
XRAY_GRID_SLACK = 0.85

#: sharp model density, the target of cryo-EM sharpening: every atom's B lowered so the median is this (Å²) ...
TARGET_MEDIAN_B_A2 = 20.0
#: ... and no atom below this (Å²). Refined cryo-EM models' B-factors absorb the map's overall blur (medians of
#: 90-130 Å² are common), so density made with them would reward leaving a map blurred
TARGET_MIN_B_A2 = 5.0

#: length of :func:`cond_vector`'s output (the default ``cond_dim`` of the networks)
COND_DIM = 3


@dataclass(frozen=True)
class ConditioningRule:
    """Grid and target-resolution rules of one model (see the module docstring).

    Parameters
    ----------
    voxel_range_A
        Grid voxel sizes (Å) the model was trained on.
    d_target_min_A
        Floor of the target resolution (Å).
    d_per_voxel
        X-ray models: grid spacing ``d_input / d_per_voxel`` (capped at ``voxel_range_A[1]``); ``None`` for
        cryo-EM models (the grid voxel is the input's, clipped to ``voxel_range_A``).
    target_per_d
        Default target resolution as a fraction of the input resolution.
    target_voxel_factor
        The target is never finer than this many voxels.
    """

    voxel_range_A: tuple[float, float] = (0.9, 1.2)
    d_target_min_A: float = 2.0
    d_per_voxel: float | None = None
    target_per_d: float = 0.5
    target_voxel_factor: float = 2.2

    def __post_init__(self) -> None:
        lo, hi = (float(v) for v in self.voxel_range_A)
        object.__setattr__(self, "voxel_range_A", (lo, hi))
        if not 0 < lo <= hi:
            raise InputError(f"voxel_range_A must be 0 < lo <= hi Å, got {self.voxel_range_A}")
        if not self.d_target_min_A > 0 or not self.target_per_d > 0 or not self.target_voxel_factor >= 2.0:
            raise InputError(f"conditioning rule: d_target_min_A, target_per_d > 0, target_voxel_factor >= 2: {self}")
        if self.d_per_voxel is not None and not self.d_per_voxel >= 2.0:
            raise InputError(f"d_per_voxel must be >= 2 (Nyquist), got {self.d_per_voxel}")

    def grid_voxel_A(self, d_input_A: float, input_voxel_A: float | None = None) -> float:
        """Isotropic voxel (Å) the model runs on for an input at ``d_input_A`` with voxel ``input_voxel_A``."""
        lo, hi = self.voxel_range(d_input_A)
        if self.d_per_voxel is not None:
            return float(np.clip(d_input_A / self.d_per_voxel, lo, hi))
        if input_voxel_A is None:
            return 0.5 * (lo + hi)
        return float(np.clip(input_voxel_A, lo, hi))

    def voxel_range(self, d_input_A: float) -> tuple[float, float]:
        """Grid voxels (Å) trained for inputs at ``d_input_A``.

        The range, capped so ``d_input`` spans at least ``target_voxel_factor`` voxels (training never paired a
        coarser grid with that resolution).
        """
        lo, hi = self.voxel_range_A
        return lo, max(lo, min(hi, d_input_A / self.target_voxel_factor))

    def finest_target_A(self, voxel_A: float) -> float:
        """Finest target resolution (Å) on a grid of ``voxel_A``."""
        return max(self.d_target_min_A, self.target_voxel_factor * voxel_A)

    def default_target_A(self, d_input_A: float, voxel_A: float) -> float:
        """Target resolution (Å) used when none is asked for."""
        return max(self.target_per_d * d_input_A, self.finest_target_A(voxel_A))

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (stored in weights metadata)."""
        d = asdict(self)
        d["voxel_range_A"] = list(self.voxel_range_A)
        return d

    @classmethod
    def from_pair_config(cls, pair_config: Mapping[str, Any]) -> ConditioningRule:
        """The rule a model trained on pairs from ``pair_config`` (a recorded PairConfig or CrystalConfig) follows.

        A recorded ``"conditioning"`` entry wins; otherwise cryo-EM configs give their ``voxel_size_range_A`` and
        ``d_target_min_A``, crystal configs (``voxel_A``: grid spacing ``min(voxel_A, d / 2.5)`` over their
        ``d_input_range_A``) theirs.
        """
        if pair_config.get("conditioning"):
            return cls.from_dict(pair_config["conditioning"])
        d_min = float(pair_config.get("d_target_min_A", 2.0))
        if "voxel_A" in pair_config:  # crystal pairs
            hi = float(pair_config["voxel_A"])
            d_lo = float((pair_config.get("d_input_range_A") or (1.8, 4.0))[0])
            lo = XRAY_GRID_SLACK * min(hi, d_lo / XRAY_D_PER_VOXEL)
            return cls(voxel_range_A=(lo, hi), d_target_min_A=d_min, d_per_voxel=XRAY_D_PER_VOXEL)
        vr = pair_config.get("voxel_size_range_A") or (0.9, 1.2)
        return cls(voxel_range_A=(float(vr[0]), float(vr[1])), d_target_min_A=d_min)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ConditioningRule:
        """Inverse of :meth:`to_dict`; unknown keys are refused."""
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise InputError(f"conditioning rule: unknown keys {sorted(unknown)}")
        kw = dict(d)
        if "voxel_range_A" in kw:
            kw["voxel_range_A"] = tuple(kw["voxel_range_A"])
        return cls(**kw)


def target_b_shift_A2(b_atoms_A2: np.ndarray) -> float:
    """The B (Å²) a training target is sharpened by: ``max(0, min(median(B) - 20, B_1% - 5))``.

    One shift for the whole structure (the pair simulator applies it in Fourier space), bounded so that the atoms
    at the 1st percentile of B stay at :data:`TARGET_MIN_B_A2`; the real-map scoring lowers B the same way per atom.
    """
    b = np.asarray(b_atoms_A2, dtype=np.float64)
    if b.size == 0:
        return 0.0
    shift = min(float(np.median(b)) - TARGET_MEDIAN_B_A2, float(np.percentile(b, 1)) - TARGET_MIN_B_A2)
    return max(0.0, shift)


def cond_vector(d_input_A: float, d_target_A: float, voxel_size_A: float) -> np.ndarray:
    """Conditioning vector ``[1/d_input, 1/d_target, voxel_size]`` (1/Å, 1/Å, Å) as float32, shape (3,)."""
    if not min(d_input_A, d_target_A, voxel_size_A) > 0:
        raise InputError(
            f"resolutions and voxel size must be positive, got d_input_A={d_input_A}, d_target_A={d_target_A}, "
            f"voxel_size_A={voxel_size_A}"
        )
    return np.array([1.0 / d_input_A, 1.0 / d_target_A, voxel_size_A], dtype=np.float32)


#: width of the input filter's raised-cosine edge beyond 1/d_input, as a fraction of 1/d_input: the stated
#: resolution (FSC 0.143) is not where signal ends, and cutting hard at 1/d cost the U-Net 0.013-0.017 masked RSCC
#: on simulated 3.5-8 Å maps, a 0.25 edge 0.003
PREFILTER_EDGE = 0.25


def prefilter_input(m: DensityMap, d_input_A: float) -> DensityMap:
    """What a model sees of a map at ``d_input_A``: the map low-passed there, edge to ``1.25/d_input``.

    Training inputs go through the same filter, so noise a real map carries beyond its resolution (to Nyquist)
    never reaches the network.
    """
    return lowpass(m, d_input_A, PREFILTER_EDGE / d_input_A)
