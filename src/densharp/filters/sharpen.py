"""Classical sharpening methods behind ``densharp sharpen --method autob|bfactor|fsc``.

Each method takes maps and numbers and returns a :class:`SharpenResult`; nothing here touches files.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from densharp.errors import InputError
from densharp.filters.bfactor import GuinierFit, guinier_fit, sharpen_with_b
from densharp.filters.fsc_weight import check_half_maps, estimate_resolution, fsc_weighted_average, half_map_fsc
from densharp.metrics.fsc import FSCCurve
from densharp.volume import DensityMap


class SharpenMethod(str, enum.Enum):
    """Classical sharpening methods."""

    AUTOB = "autob"  # Guinier fit between 10 Å and d_min, then flatten (B_sharpen = B_fit) and low-pass
    BFACTOR = "bfactor"  # a B-factor the user gives, then low-pass
    FSC = "fsc"  # half maps: FSC weighting (C_ref), then auto-B and low-pass at the FSC-0.143 resolution


@dataclass
class SharpenResult:
    """A sharpened map and what was done to make it."""

    map: DensityMap
    method: SharpenMethod
    d_min_A: float
    b_sharpen_A2: float
    guinier: GuinierFit | None = None
    half_map_fsc: FSCCurve | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the map itself excluded)."""
        out: dict[str, Any] = {
            "method": self.method.value,
            "d_min_A": round(self.d_min_A, 4),
            "b_sharpen_A2": round(self.b_sharpen_A2, 3),
            "notes": self.notes,
        }
        if self.guinier is not None:
            out["guinier_fit"] = self.guinier.to_dict()
        if self.half_map_fsc is not None:
            out["half_map_fsc"] = self.half_map_fsc.to_dict()
            out["d_fsc0143_A"] = round(self.half_map_fsc.resolution_at(0.143), 4)
        return out


def check_map_content(m: DensityMap, name: str) -> None:
    """Refuse a map that is constant (e.g. all zero): there is nothing to sharpen or correlate."""
    d = m.data_zyx
    if float(d.max()) == float(d.min()):
        raise InputError(
            f"{name}: every voxel has the value {float(d.min()):.4g} (constant map); give a map with density"
        )


def check_orthogonal(m: DensityMap, name: str) -> None:
    """Refuse a non-orthogonal cell on the cryo-EM path (the filters assume an orthogonal box of voxels)."""
    if not m.is_orthogonal:
        angles = ", ".join(f"{a:g}" for a in m.cell[3:])
        raise InputError(
            f"{name}: non-orthogonal cell (angles {angles}°) is a crystallographic map; the cryo-EM path needs an "
            "orthogonal box: resample it onto an orthogonal grid first (crystallographic input via MTZ comes later)"
        )


def check_resolution(d_min_A: float, m: DensityMap, what: str = "--resolution") -> None:
    """Refuse a resolution that is non-positive or finer than the map's Nyquist limit."""
    if not np.isfinite(d_min_A) or d_min_A <= 0:
        raise InputError(f"{what} {d_min_A} Å must be a positive number of Å")
    if d_min_A < m.nyquist_A - 1e-6:
        raise InputError(
            f"{what} {d_min_A:.3g} Å is finer than the map's Nyquist limit {m.nyquist_A:.3g} Å "
            f"(voxel {max(m.voxel_size_xyz_A):.3g} Å); give a resolution of at least {m.nyquist_A:.3g} Å"
        )


#: the largest boost auto-B may give at the resolution limit; B is capped at 4·ln(MAX_GAIN)·d² so a map without
#: signal (noise only, or FSC weights near zero) is never amplified without bound
MAX_GAIN_AT_DMIN = 100.0


def cap_bfactor(b_A2: float, d_min_A: float, notes: list[str]) -> float:
    """Clamp a fitted B to [0, 4·ln(MAX_GAIN_AT_DMIN)·d²], recording why in ``notes``."""
    if b_A2 < 0:
        notes.append(f"fitted B {b_A2:.1f} Å² is negative: the map already looks sharpened; B not applied")
        return 0.0
    b_max = 4.0 * float(np.log(MAX_GAIN_AT_DMIN)) * d_min_A * d_min_A
    if b_A2 > b_max:
        notes.append(
            f"fitted B {b_A2:.1f} Å² would boost {d_min_A:.3g} Å detail more than {MAX_GAIN_AT_DMIN:g}×; "
            f"capped at {b_max:.1f} Å² (the map may hold little signal at this resolution)"
        )
        return b_max
    return b_A2


def sharpen_autob(
    m: DensityMap, d_min_A: float, mask: np.ndarray | None = None, fit_low_A: float = 10.0
) -> SharpenResult:
    """Auto-B: fit B by Guinier between ``fit_low_A`` and ``d_min_A``, flatten it, low-pass at ``d_min_A``."""
    check_resolution(d_min_A, m)
    fit = guinier_fit(m, d_min_A, mask=mask, fit_low_A=fit_low_A)
    notes: list[str] = []
    b = cap_bfactor(fit.b_A2, d_min_A, notes)
    return SharpenResult(sharpen_with_b(m, b, d_min_A), SharpenMethod.AUTOB, d_min_A, b, guinier=fit, notes=notes)


def sharpen_fixed_b(m: DensityMap, b_sharpen_A2: float, d_min_A: float | None) -> SharpenResult:
    """Sharpen by a given B (Å², positive sharpens) and low-pass at ``d_min_A`` when given."""
    if d_min_A is not None:
        check_resolution(d_min_A, m)
    return SharpenResult(
        sharpen_with_b(m, b_sharpen_A2, d_min_A),
        SharpenMethod.BFACTOR,
        d_min_A if d_min_A is not None else m.nyquist_A,
        b_sharpen_A2,
    )


def sharpen_half_maps(
    h1: DensityMap,
    h2: DensityMap,
    mask: np.ndarray | None = None,
    d_min_A: float | None = None,
    fit_low_A: float = 10.0,
) -> SharpenResult:
    """RELION-style post-processing of half maps: FSC weighting, auto-B, low-pass at the resolution.

    The resolution is the half-map FSC-0.143 crossing unless ``d_min_A`` is given.
    """
    check_half_maps(h1, h2)
    if d_min_A is None:
        d_min_A, curve = estimate_resolution(h1, h2, mask)
        d_min_A = max(d_min_A, h1.nyquist_A)
    else:
        check_resolution(d_min_A, h1)
        curve = half_map_fsc(h1, h2, mask)
    weighted = fsc_weighted_average(h1, h2, curve)
    fit = guinier_fit(weighted, d_min_A, mask=mask, fit_low_A=fit_low_A)
    notes: list[str] = []
    b = cap_bfactor(fit.b_A2, d_min_A, notes)
    return SharpenResult(
        sharpen_with_b(weighted, b, d_min_A),
        SharpenMethod.FSC,
        d_min_A,
        b,
        guinier=fit,
        half_map_fsc=curve,
        notes=notes,
    )
