"""B-factor sharpening: the Guinier auto-B fit (RELION style) and fixed-B sharpening, each low-passed at d_min."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from densharp.errors import InputError
from densharp.fourier import apply_radial_filter, lowpass_filter_values, resolution_shells, rfft_map
from densharp.volume import DensityMap


@dataclass(frozen=True)
class GuinierFit:
    """Straight-line fit of ln(amplitude) against s² between ``fit_low_A`` and ``fit_high_A``.

    Amplitudes fall as ``exp(-B s² / 4)``, so ``b_A2 = -4 × slope``.
    """

    b_A2: float
    slope: float
    intercept: float
    fit_low_A: float
    fit_high_A: float
    n_shells: int
    correlation: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def guinier_fit(m: DensityMap, d_min_A: float, mask: np.ndarray | None = None, fit_low_A: float = 10.0) -> GuinierFit:
    """Fit the map's overall B-factor from its radially averaged amplitudes between ``fit_low_A`` and ``d_min_A``.

    Parameters
    ----------
    m
        The map (unsharpened).
    d_min_A
        Resolution of the map (Å); the fit stops there, where signal gives way to noise.
    mask
        Optional soft mask (z, y, x) applied before the transform so solvent noise does not flatten the fall-off.
    fit_low_A
        Low-resolution end of the fit (Å); below ~10 Å, protein spectra are dominated by solvent contrast.
    """
    if d_min_A >= fit_low_A:
        raise InputError(
            f"resolution {d_min_A:.3g} Å is not finer than the Guinier fit start {fit_low_A:.3g} Å; "
            "auto-B needs a map better than ~8 Å (use --method bfactor with --b-factor instead)"
        )
    data = m.data_zyx if mask is None else m.data_zyx * mask
    shells = resolution_shells(m.shape_zyx, m.voxel_size_xyz_A)
    power = shells.sum(np.abs(rfft_map(data)) ** 2) / np.maximum(shells.count(), 1)
    s = shells.centres_invA
    sel = (s >= 1.0 / fit_low_A) & (s <= 1.0 / d_min_A) & (power > 0)
    if sel.sum() < 3:
        raise InputError(
            f"too few resolution shells between {fit_low_A:.3g} and {d_min_A:.3g} Å for a Guinier fit "
            f"(box {m.box_size_xyz_A} Å); use a larger box or --method bfactor"
        )
    x = s[sel] ** 2
    y = 0.5 * np.log(power[sel])  # ln of the rms amplitude
    slope, intercept = np.polyfit(x, y, 1)
    corr = float(np.corrcoef(x, y)[0, 1]) if sel.sum() > 2 else 0.0
    return GuinierFit(
        b_A2=float(-4.0 * slope),
        slope=float(slope),
        intercept=float(intercept),
        fit_low_A=float(fit_low_A),
        fit_high_A=float(d_min_A),
        n_shells=int(sel.sum()),
        correlation=corr,
    )


def sharpen_with_b(m: DensityMap, b_sharpen_A2: float, d_min_A: float | None) -> DensityMap:
    """Apply ``exp(+b_sharpen s² / 4)`` (``b_sharpen > 0`` sharpens) and a soft low-pass at ``d_min_A``.

    The low-pass keeps the boosted noise beyond the resolution out of the result; ``d_min_A=None`` skips it.
    """

    def transfer(s: np.ndarray) -> np.ndarray:
        g = np.exp(b_sharpen_A2 * s * s / 4.0)
        if d_min_A is not None:
            g = g * lowpass_filter_values(s, d_min_A)
        return g

    return apply_radial_filter(m, transfer)
