"""Classical sharpening methods behind ``densharp sharpen --method autob|bfactor|fsc``.

Each method takes maps and numbers and returns a :class:`SharpenResult`; nothing here touches files.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from densharp.errors import DensharpError, InputError
from densharp.filters.bfactor import (
    MAX_GAIN,
    GuinierFit,
    check_bfactor,
    gain_cap_resolution_A,
    guinier_fit,
    sharpen_with_b,
)
from densharp.filters.fsc_weight import check_half_maps, estimate_resolution, fsc_weighted_average, half_map_fsc
from densharp.fourier import corner_frequency_invA, grid_angles_deg
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
    residual_b_A2: float | None = None
    rule: str | None = None
    #: the fitted B exceeded the cap (:func:`cap_bfactor`): the map's fall-off is not a B-factor's
    b_capped: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the map itself excluded)."""
        out: dict[str, Any] = {
            "method": self.method.value,
            "d_min_A": round(self.d_min_A, 4),
            "b_sharpen_A2": round(self.b_sharpen_A2, 3),
            "notes": self.notes,
        }
        if self.rule is not None:
            out["rule"] = self.rule
        if self.b_capped:
            out["b_capped"] = True
        if self.residual_b_A2 is not None:
            out["residual_b_A2"] = round(self.residual_b_A2, 3)
        if self.guinier is not None:
            out["guinier_fit"] = self.guinier.to_dict()
        if self.half_map_fsc is not None:
            out["half_map_fsc"] = self.half_map_fsc.to_dict()
            out["d_fsc0143_A"] = round(self.half_map_fsc.resolution_at(0.143), 4)
        return out


def check_map_content(m: DensityMap, name: str) -> None:
    """Refuse a map that is constant (e.g. all zero) or not finite: there is nothing to sharpen or correlate."""
    d = m.data_zyx
    lo, hi = float(d.min()), float(d.max())
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise InputError(f"{name}: the map holds NaN or infinite values; fix it or read it with --permissive")
    if hi == lo:
        raise InputError(f"{name}: every voxel has the value {lo:.4g} (constant map); give a map with density")


def check_finite_result(m: DensityMap, what: str) -> None:
    """Refuse to hand on a result with NaN/Inf voxels (a failure, never written)."""
    n_bad = int(np.count_nonzero(~np.isfinite(m.data_zyx)))
    if n_bad:
        raise DensharpError(f"{what} produced {n_bad} NaN/infinite voxels; nothing was written: report this bug")


def check_orthogonal(m: DensityMap, name: str) -> None:
    """Refuse a non-orthogonal cell on the map (cryo-EM) path: a cryo-EM box is orthogonal.

    The filters themselves handle sheared cell maps (``densharp.fourier`` uses the cell's angles); a crystal map
    should come as its MTZ map coefficients, which are gridded on the whole cell with its symmetry.
    """
    if not m.is_orthogonal:
        angles = ", ".join(f"{a:g}" for a in m.cell[3:])
        raise InputError(
            f"{name}: non-orthogonal cell (angles {angles}°) is a crystallographic map, and map input is for "
            "cryo-EM boxes, which are orthogonal; give the crystal's map coefficients as MTZ instead "
            "(densharp sharpen data.mtz --columns F,PHI -o out.ccp4), or resample the map onto an orthogonal box"
        )


def check_resolution(d_min_A: float, m: DensityMap, what: str = "--resolution") -> None:
    """Refuse a resolution that is non-positive or finer than the map's Nyquist limit."""
    where = f"{m.source.path}: " if m.source is not None else ""
    if not np.isfinite(d_min_A) or d_min_A <= 0:
        raise InputError(f"{where}{what} {d_min_A} Å must be a positive number of Å")
    if d_min_A < m.nyquist_A - 1e-6:
        raise InputError(
            f"{where}{what} {d_min_A:.3g} Å is finer than the map's Nyquist limit {m.nyquist_A:.3g} Å "
            f"(voxel {max(m.voxel_size_xyz_A):.3g} Å); give a resolution of at least {m.nyquist_A:.3g} Å"
        )


#: the largest boost auto-B may give at the resolution limit; B is capped at 4·ln(MAX_GAIN)·d² so a map without
#: signal (noise only, or FSC weights near zero) is never amplified without bound
MAX_GAIN_AT_DMIN = MAX_GAIN


def max_bfactor_A2(d_min_A: float) -> float:
    """Largest sharpening B (Å²) :func:`cap_bfactor` allows at ``d_min_A``: ``4·ln(MAX_GAIN_AT_DMIN)·d²``."""
    return 4.0 * float(np.log(MAX_GAIN_AT_DMIN)) * d_min_A * d_min_A


def cap_bfactor(b_A2: float, d_min_A: float, notes: list[str]) -> float:
    """Clamp a fitted B to [0, 4·ln(MAX_GAIN_AT_DMIN)·d²], recording why in ``notes``."""
    if b_A2 < 0:
        notes.append(f"fitted B {b_A2:.1f} Å² is negative: the map already looks sharpened; B not applied")
        return 0.0
    b_max = max_bfactor_A2(d_min_A)
    if b_A2 > b_max:
        notes.append(
            f"fitted B {b_A2:.1f} Å² would boost {d_min_A:.3g} Å detail more than {MAX_GAIN_AT_DMIN:g}×; "
            f"capped at {b_max:.1f} Å² (the map may hold little signal at this resolution)"
        )
        return b_max
    return b_A2


class ResidualB(str, enum.Enum):
    """What auto-B sharpens to."""

    IDEAL = "ideal"  # the Guinier B an ideal map has over the same range (densharp.filters.ideal_spectrum)
    ZERO = "zero"  # flatten the whole fitted B (RELION style); low-passes the whole map at d_min


def sharpen_autob(
    m: DensityMap,
    d_min_A: float,
    mask: np.ndarray | None = None,
    fit_low_A: float = 10.0,
    residual: ResidualB | str = ResidualB.IDEAL,
) -> SharpenResult:
    """Auto-B: fit B by Guinier between ``fit_low_A`` and ``d_min_A`` and sharpen to a residual B.

    Rule (``residual="ideal"``, the default): ``B_sharpen = clip(B_fit − B_ideal, 0, 4·ln(100)·d²)``, where
    ``B_ideal`` (:func:`~densharp.filters.ideal_spectrum.ideal_bfactor_A2`) is the Guinier B a noise-free map of a
    protein with its atoms' own B-factors has over the same range: only the fall-off an ideal map at this
    resolution would not have is removed (a well-resolved map whose B is mostly that intrinsic fall-off is left
    nearly alone). Only the *boost* is low-passed at ``d_min_A``, so the result has at least as much of every
    frequency as the input: auto-B changes a map only where it boosts it. ``residual="zero"`` is the former rule
    (flatten all of B_fit, low-pass the whole map at ``d_min_A``).
    """
    from densharp.filters.ideal_spectrum import ideal_bfactor_A2

    residual = ResidualB(residual)
    check_resolution(d_min_A, m)
    fit = guinier_fit(m, d_min_A, mask=mask, fit_low_A=fit_low_A)
    notes: list[str] = []
    if residual is ResidualB.IDEAL:
        b_ideal = ideal_bfactor_A2(d_min_A, fit_low_A)
        target = fit.b_A2 - b_ideal
        rule = (
            f"residual B: sharpen by B_fit − B_ideal = {fit.b_A2:.1f} − {b_ideal:.1f} Å² (B_ideal: the Guinier B of an "
            f"ideal map between {fit_low_A:g} and {d_min_A:.3g} Å), capped to [0, 4·ln(100)·d²]; only the boost is "
            "low-passed"
        )
        wanted = target
        if target < 0:
            notes.append(
                f"the map falls off no faster than an ideal map at {d_min_A:.3g} Å (B_fit {fit.b_A2:.1f} Å²): "
                "nothing to sharpen, map left as it is"
            )
            b = 0.0
        else:
            b = cap_bfactor(target, d_min_A, notes)
    else:
        rule = "flatten the fitted B (B_sharpen = B_fit, capped), low-pass the map at d_min"
        wanted = fit.b_A2
        b = cap_bfactor(wanted, d_min_A, notes)
    out = sharpen_with_b(m, b, d_min_A, boost_only_lowpass=residual is ResidualB.IDEAL)
    check_finite_result(out, "auto-B sharpening")
    res = SharpenResult(out, SharpenMethod.AUTOB, d_min_A, b, guinier=fit, notes=notes)
    res.b_capped = wanted > max_bfactor_A2(d_min_A)
    res.residual_b_A2 = fit.b_A2 - b if residual is ResidualB.IDEAL else 0.0
    res.rule = rule
    return res


def sharpen_fixed_b(m: DensityMap, b_sharpen_A2: float, d_min_A: float | None) -> SharpenResult:
    """Sharpen by a given B (Å², positive sharpens) and low-pass at ``d_min_A`` when given.

    The gain ``exp(B s²/4)`` is capped at :data:`~densharp.filters.bfactor.MAX_GAIN` (100×) wherever it would
    exceed it (finer than ``sqrt(B / (4 ln 100))`` Å); a note says so when that happens within the band kept.
    """
    b = check_bfactor(b_sharpen_A2, "B-factor (--b-factor)")
    if d_min_A is not None:
        check_resolution(d_min_A, m)
    notes: list[str] = []
    d_cap = gain_cap_resolution_A(b, MAX_GAIN)
    # finest frequency the output keeps: the low-pass edge end, or the corner of the box without a low-pass
    s_top = 1.1 / d_min_A if d_min_A is not None else corner_frequency_invA(m.shape_zyx, m.voxel_size_xyz_A,
                                                                           grid_angles_deg(m))  # fmt: skip
    if d_cap is not None and s_top > 1.0 / d_cap:
        notes.append(
            f"B {b:g} Å² would boost detail finer than {d_cap:.3g} Å by more than {MAX_GAIN:g}×; the gain is capped "
            f"at {MAX_GAIN:g}× there" + ("" if d_min_A is not None else " (no --resolution: nothing is low-passed)")
        )
    out = sharpen_with_b(m, b, d_min_A)
    check_finite_result(out, "B-factor sharpening")
    return SharpenResult(
        out,
        SharpenMethod.BFACTOR,
        d_min_A if d_min_A is not None else m.nyquist_A,
        b,
        notes=notes,
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
    names = [h.source.path for h in (h1, h2) if h.source is not None]
    label = f"half maps {' and '.join(names)}" if names else "the half maps"
    fit = guinier_fit(weighted, d_min_A, mask=mask, fit_low_A=fit_low_A, name=label)
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
