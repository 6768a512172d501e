"""B-factor sharpening: the Guinier auto-B fit (RELION style) and fixed-B sharpening, each low-passed at d_min."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from densharp.errors import InputError
from densharp.fourier import apply_radial_filter, lowpass_filter_values, map_resolution_shells, rfft_map
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


#: |B| above this (Å²) is refused: real sharpening B-factors lie within a few hundred Å², and a larger negative B
#: blurs every detail away while a larger positive one only amplifies noise (the gain is capped anyway)
MAX_ABS_B_A2 = 10_000.0

#: the largest gain B-factor sharpening may give any frequency: 100× (auto-B caps its B so the gain at d_min is at
#: most this; fixed-B sharpening caps the transfer function itself)
MAX_GAIN = 100.0


def check_bfactor(b_A2: float, what: str = "B-factor (--b-factor)") -> float:
    """Return ``b_A2`` as a float, or raise :class:`InputError` naming ``what`` if it is non-finite or absurd."""
    try:
        b = float(b_A2)
    except (TypeError, ValueError):
        raise InputError(f"{what} {b_A2!r} is not a number; give a B in Å², e.g. 80") from None
    if not np.isfinite(b) or abs(b) > MAX_ABS_B_A2:
        raise InputError(
            f"{what} {b_A2!r} Å² is not a usable B-factor (it must be a finite number within ±{MAX_ABS_B_A2:g} Å²; "
            "sharpening B-factors are typically 20-300 Å²); give a B in Å², e.g. 80"
        )
    return b


def _map_name(m: DensityMap, name: str | None) -> str:
    if name:
        return name
    return m.source.path if m.source is not None else "the map"


def solvent_level(data_zyx: np.ndarray, mask: np.ndarray) -> float:
    """Mean density outside a soft mask (weights ``1 - mask``); the global mean if the mask covers everything.

    Masking ``data - solvent_level`` instead of ``data`` makes masked spectra independent of the map's offset.
    """
    w = 1.0 - np.asarray(mask, dtype=np.float64)
    sw = float(w.sum())
    if sw <= 1e-6 * w.size:
        return float(np.mean(data_zyx, dtype=np.float64))
    return float(np.sum(data_zyx * w) / sw)


def guinier_fit(
    m: DensityMap,
    d_min_A: float,
    mask: np.ndarray | None = None,
    fit_low_A: float = 10.0,
    name: str | None = None,
) -> GuinierFit:
    """Fit the map's overall B-factor from its radially averaged amplitudes between ``fit_low_A`` and ``d_min_A``.

    The shells respect the map's cell (:func:`~densharp.fourier.map_resolution_shells`), so a sheared cell map
    is fitted on its reflections' true d-spacings.

    Parameters
    ----------
    m
        The map (unsharpened).
    d_min_A
        Resolution of the map (Å); the fit stops there, where signal gives way to noise.
    mask
        Optional soft mask (z, y, x) applied before the transform so solvent noise does not flatten the fall-off
        (the solvent level, :func:`solvent_level`, is subtracted first, so the fit does not depend on the offset).
    fit_low_A
        Low-resolution end of the fit (Å); below ~10 Å, protein spectra are dominated by solvent contrast.
    name
        What to call the map in messages (default: its file, if read from one).
    """
    from densharp.fourier import centred_for_fft

    label = _map_name(m, name)
    if d_min_A >= fit_low_A:
        raise InputError(
            f"{label}: resolution {d_min_A:.3g} Å is not finer than the Guinier fit start {fit_low_A:.3g} Å; "
            "auto-B needs a map better than ~8 Å (use --method bfactor with --b-factor instead)"
        )
    if mask is None:
        data = m.data_zyx
    else:
        data = ((m.data_zyx - np.float32(solvent_level(m.data_zyx, mask))) * mask).astype(np.float32, copy=False)
    y, _, scale = centred_for_fft(data)
    shells = map_resolution_shells(m)
    power = shells.sum(np.abs(rfft_map(y)) ** 2) / np.maximum(shells.count(), 1)
    del y
    s = shells.centres_invA
    in_range = (s >= 1.0 / fit_low_A) & (s <= 1.0 / d_min_A)
    sel = in_range & (power > 0)
    if in_range.sum() >= 3 and not np.any(power[in_range] > 0):
        raise InputError(
            f"{label}: no density between {fit_low_A:.3g} and {d_min_A:.3g} Å (every Fourier amplitude there is zero: "
            "an empty map or empty map-coefficient columns); give a map with density"
        )
    if sel.sum() < 3:
        if m.cell_A_deg is not None and tuple(m.grid_sampling_xyz) == tuple(m.shape_xyz):
            # a crystal's cell map: the cell is what it is, only another method helps
            edges = ", ".join(f"{v:.1f}" for v in m.cell_A_deg[:3])
            why = (f"unit cell ({edges} Å) holds {int(in_range.sum())}: its shells are {shells.width_invA:.3f} Å⁻¹ "
                   "wide, one reciprocal spacing of its coarsest direction); use --method bfactor with --b-factor")  # fmt: skip
        else:
            why = (f"box {tuple(round(v, 1) for v in m.box_size_xyz_A)} Å holds {int(in_range.sum())}); "
                   "use a box of at least 3 × the fit start, a finer resolution, or --method bfactor")  # fmt: skip
        raise InputError(
            f"{label}: too few resolution shells between {fit_low_A:.3g} and {d_min_A:.3g} Å for a Guinier fit ({why}"
        )
    x = s[sel] ** 2
    yv = 0.5 * np.log(power[sel]) + np.log(scale)  # ln of the rms amplitude, in the map's own units
    slope, intercept = np.polyfit(x, yv, 1)
    corr = float(np.corrcoef(x, yv)[0, 1]) if sel.sum() > 2 else 0.0
    return GuinierFit(
        b_A2=float(-4.0 * slope),
        slope=float(slope),
        intercept=float(intercept),
        fit_low_A=float(fit_low_A),
        fit_high_A=float(d_min_A),
        n_shells=int(sel.sum()),
        correlation=corr if np.isfinite(corr) else 0.0,
    )


def bfactor_transfer(  # type: ignore[no-untyped-def]
    b_sharpen_A2: float, d_min_A: float | None, max_gain: float | None = MAX_GAIN, boost_only_lowpass: bool = False
):
    """The transfer function of :func:`sharpen_with_b`.

    ``s -> min(exp(B s²/4), max_gain) · lowpass(s)``, or with ``boost_only_lowpass``
    ``s -> 1 + (min(exp(B s²/4), max_gain) - 1) · lowpass(s)``: only the boost is low-passed, so frequencies past
    ``d_min`` keep the input's own amplitude instead of being removed.
    """

    def transfer(s: np.ndarray) -> np.ndarray:
        # exp of a clipped exponent: never overflows, whatever B and s
        arg = b_sharpen_A2 * s * s / 4.0
        if max_gain is not None:
            arg = np.minimum(arg, np.log(max_gain))
        g = np.exp(arg)
        if d_min_A is not None:
            lp = lowpass_filter_values(s, d_min_A)
            g = 1.0 + (g - 1.0) * lp if boost_only_lowpass else g * lp
        return g

    return transfer


def gain_cap_resolution_A(b_sharpen_A2: float, max_gain: float = MAX_GAIN) -> float | None:
    """Resolution (Å) finer than which ``exp(B s²/4)`` would exceed ``max_gain`` (``None`` for B ≤ 0)."""
    if b_sharpen_A2 <= 0:
        return None
    return float(np.sqrt(b_sharpen_A2 / (4.0 * np.log(max_gain))))


def sharpen_with_b(
    m: DensityMap,
    b_sharpen_A2: float,
    d_min_A: float | None,
    max_gain: float | None = MAX_GAIN,
    boost_only_lowpass: bool = False,
) -> DensityMap:
    """Apply ``exp(+b_sharpen s² / 4)`` (``b_sharpen > 0`` sharpens) and a soft low-pass at ``d_min_A``.

    The low-pass keeps the boosted noise beyond the resolution out of the result; ``d_min_A=None`` skips it.
    With ``boost_only_lowpass`` only the boost is low-passed (:func:`bfactor_transfer`): the result never has less
    of any frequency than the input. The gain is capped at ``max_gain`` (default :data:`MAX_GAIN`, 100×) at every
    frequency, so no B and no voxel size can amplify a map without bound (the output is always finite); ``None``
    removes the cap.
    """
    b = check_bfactor(b_sharpen_A2, "sharpening B-factor")
    return apply_radial_filter(m, bfactor_transfer(b, d_min_A, max_gain, boost_only_lowpass))
