"""Per-map scores against a target: RSCC (box and mask), FSC and its resolutions, and the model-free check.

The model-free check is the FSC of processed half map 1 against the untouched half map 2.

The molecule mask comes from the target (:func:`densharp.filters.masks.auto_molecule_mask`) unless one is given;
its description travels with every score, since RSCC depends on the mask (field notes, section 5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from densharp.errors import InputError
from densharp.metrics.fsc import FSCCurve, fsc_curve
from densharp.metrics.rscc import rscc
from densharp.volume import DensityMap

TARGET_MASK_DESC = "molecule mask from the target (10 Å low-pass, mean + 1 sd, 3 Å dilation, 5 Å soft edge)"


def target_mask(target: DensityMap) -> tuple[np.ndarray | None, str]:
    """Soft molecule mask from the target and its description.

    :func:`~densharp.filters.masks.auto_molecule_mask` of the target; where the smooth map gives none (a patch too
    small for a 10 Å low-pass), the voxels at or above mean + 1 SD; ``(None, "none ...")`` if the target is flat.
    """
    from densharp.filters.masks import auto_molecule_mask

    try:
        mask = auto_molecule_mask(target)
        if float(mask.sum()) > 0:
            return mask, TARGET_MASK_DESC
    except InputError:
        pass
    d = target.data_zyx
    binary = (d >= float(d.mean() + d.std())).astype(np.float32)
    if binary.sum() > 0 and float(d.std()) > 0:
        return binary, "target voxels at or above mean + 1 sd (too small a box for the smooth molecule mask)"
    return None, "none (target gave no mask; box values reported)"


@dataclass
class MapScore:
    """Scores of one map against the target.

    ``half_fsc`` is the model-free check: FSC between the method applied to half map 1 and the untouched half map 2
    (``None`` without half maps or for methods that need both halves).
    """

    rscc_box: float
    rscc_mask: float
    fsc: FSCCurve
    half_fsc: FSCCurve | None = None

    @property
    def d_fsc05_A(self) -> float:
        """Map–target FSC = 0.5 resolution (Å)."""
        return self.fsc.resolution_at(0.5)

    @property
    def d_fsc0143_A(self) -> float:
        """Map–target FSC = 0.143 resolution (Å)."""
        return self.fsc.resolution_at(0.143)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (curves included; infinities as ``None``)."""
        out: dict[str, Any] = {
            "rscc_box": round(self.rscc_box, 6),
            "rscc_mask": round(self.rscc_mask, 6),
            "d_fsc05_A": _finite(self.d_fsc05_A),
            "d_fsc0143_A": _finite(self.d_fsc0143_A),
            "fsc": self.fsc.to_dict(),
        }
        if self.half_fsc is not None:
            out["half_fsc"] = self.half_fsc.to_dict()
            out["d_half_fsc0143_A"] = _finite(self.half_fsc.resolution_at(0.143))
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MapScore:
        """Inverse of :meth:`to_dict`."""
        half = FSCCurve.from_dict(d["half_fsc"]) if d.get("half_fsc") else None
        return cls(float(d["rscc_box"]), float(d["rscc_mask"]), FSCCurve.from_dict(d["fsc"]), half)


def _finite(v: float) -> float | None:
    return round(float(v), 4) if np.isfinite(v) else None


def score_map(
    m: DensityMap,
    target: DensityMap,
    mask: np.ndarray | None = None,
    half_processed: DensityMap | None = None,
    half_other: DensityMap | None = None,
) -> MapScore:
    """Score ``m`` against ``target`` (same grid) inside ``mask`` (box RSCC too).

    Pass ``half_processed`` (the method applied to half map 1) and ``half_other`` (half map 2, untouched) for the
    model-free FSC check.
    """
    m.check_same_grid(target, "the map and the target")
    half = None
    if half_processed is not None and half_other is not None:
        half = fsc_curve(half_processed, half_other)
    return MapScore(
        rscc_box=rscc(m, target),
        rscc_mask=rscc(m, target, mask) if mask is not None else rscc(m, target),
        fsc=fsc_curve(m, target),
        half_fsc=half,
    )
