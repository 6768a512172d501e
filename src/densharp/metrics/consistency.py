"""Model-free consistency of a sharpened map with its input: FSC in the shells the input measured well.

Every isotropic amplitude filter (a B-factor, FSC weighting, a low-pass beyond the band) leaves the FSC between
output and input at exactly 1 in every shell it does not zero, because FSC ignores a per-shell scale. A sharpener
that is only allowed to *reweight* the data therefore scores 1 here; what lowers the score is new or moved
density: changed phases, invented or removed features, sign flips, or a low-pass inside the band.

If the output is the input plus an unrelated change of power fraction ``r²`` (relative to the input's power in a
shell), the shell's FSC is about ``1/sqrt(1 + r²)``. The default threshold :data:`CONSISTENCY_MIN_FSC` = 0.95
therefore allows a change of at most ~10 % of the input's power (a third of its amplitude) in any shell of the
band, and the band is chosen where the data are reliable:

- cryo-EM: shells coarser than twice the stated resolution (``s < 1/(2d)``, :func:`em_band_A`); there the full-map
  FSC of a map at resolution ``d`` is usually above 0.9 (signal power ≥ 10× the noise), so a change larger than the
  threshold allows is larger than the noise the data carry;
- X-ray: the whole measured band (``s < 1/d``, :func:`xray_band_A`): the map coefficients are the data, and inside
  their resolution a sharpened map should agree with them (the project's target, FSC ≥ 0.95).

Only shells lying *wholly* inside the band count (upper edge ``≤ 1/d_band``), so the shell that straddles a
resolution cut, where a sharpener may legitimately add power the input lacks, is not judged. The origin term is
skipped, and so are shells where the input holds no power (an MTZ without its lowest-resolution reflections):
their FSC is the correlation of round-off. Pure numpy; no file I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from densharp.errors import InputError
from densharp.fourier import map_resolution_shells, rfft_map, shell_amplitudes
from densharp.metrics.fsc import FSCCurve, fsc_curve
from densharp.volume import DensityMap

#: smallest FSC (output vs input) allowed in any shell of the band; see the module docstring
CONSISTENCY_MIN_FSC = 0.95
#: a shell whose input power is below this fraction of the strongest shell's holds nothing (float round-off only)
EMPTY_SHELL_POWER = 1e-8


def em_band_A(d_A: float) -> float:
    """Consistency band edge for a cryo-EM map at resolution ``d_A``: ``2·d`` Å (shells with ``s < 1/(2d)``)."""
    return 2.0 * float(d_A)


def xray_band_A(d_A: float) -> float:
    """Consistency band edge for X-ray map coefficients to ``d_A``: ``d`` Å (the whole measured band)."""
    return float(d_A)


@dataclass(frozen=True)
class ConsistencyCheck:
    """FSC between an output and its input in the shells coarser than ``d_band_A``.

    Attributes
    ----------
    d_band_A
        Band edge (Å): only shells wholly below ``1/d_band_A`` are judged.
    threshold
        Minimum FSC required in every judged shell.
    fsc_min, fsc_mean
        Smallest and mean (unweighted, over shells) FSC in the band.
    n_shells
        Number of shells judged.
    n_empty_shells
        Shells of the band left out because the input holds no power there (:data:`EMPTY_SHELL_POWER`).
    worst_shell_A
        Resolution (Å) of the shell centre with the smallest FSC.
    curve
        The whole FSC curve (output vs input), for plots.
    """

    d_band_A: float
    threshold: float
    fsc_min: float
    fsc_mean: float
    n_shells: int
    n_empty_shells: int
    worst_shell_A: float
    curve: FSCCurve

    @property
    def is_consistent(self) -> bool:
        """True when every judged shell reaches the threshold."""
        return bool(self.fsc_min >= self.threshold)

    def to_dict(self, with_curve: bool = False) -> dict[str, Any]:
        """JSON-ready summary (the curve only when ``with_curve``)."""
        out: dict[str, Any] = {
            "d_band_A": round(self.d_band_A, 4),
            "threshold": self.threshold,
            "fsc_min": round(self.fsc_min, 6),
            "fsc_mean": round(self.fsc_mean, 6),
            "n_shells": self.n_shells,
            "n_empty_shells": self.n_empty_shells,
            "worst_shell_A": round(self.worst_shell_A, 3),
            "is_consistent": self.is_consistent,
        }
        if with_curve:
            out["curve"] = self.curve.to_dict()
        return out


def consistency_check(
    output: DensityMap,
    input_map: DensityMap,
    d_band_A: float,
    threshold: float = CONSISTENCY_MIN_FSC,
    mask: np.ndarray | None = None,
) -> ConsistencyCheck:
    """FSC of ``output`` against ``input_map`` (same grid) in the shells wholly coarser than ``d_band_A``.

    Parameters
    ----------
    output, input_map
        Maps on one grid (checked), orthogonal or a sheared cell (the shells use the cell's angles);
        ``data_zyx`` float32 (z, y, x).
    d_band_A
        Band edge in Å (:func:`em_band_A` or :func:`xray_band_A` of the input's resolution).
    threshold
        Minimum FSC for every judged shell (default :data:`CONSISTENCY_MIN_FSC`).
    mask
        Optional (z, y, x) weights in [0, 1] applied to both maps (default: the whole box, which is what a
        viewer shows).

    Raises
    ------
    InputError
        A non-positive band, or a box too small to hold one whole shell inside the band.
    """
    input_map.check_same_grid(output, "the output and its input")
    if not np.isfinite(d_band_A) or d_band_A <= 0:
        raise InputError(f"consistency band {d_band_A} Å must be a positive number of Å")
    shells = map_resolution_shells(input_map)
    curve = fsc_curve(output, input_map, mask=mask, shells=shells)
    upper = (np.arange(shells.n) + 0.5) * shells.width_invA
    in_band = (np.arange(shells.n) >= 1) & (upper <= 1.0 / d_band_A + 1e-12)
    x = input_map.data_zyx if mask is None else input_map.data_zyx * mask
    power = shells.sum(np.abs(rfft_map(x)) ** 2)
    # shells the input holds (numerically) nothing in, e.g. below an MTZ's low-resolution limit, cannot be judged
    empty = power <= EMPTY_SHELL_POWER * max(float(power[1:].max()) if shells.n > 1 else 0.0, 1e-300)
    sel = np.nonzero(in_band & ~empty)[0]
    if sel.size == 0:
        raise InputError(
            f"the box ({min(input_map.box_size_xyz_A):.1f} Å) is too small for a consistency band coarser than "
            f"{d_band_A:.3g} Å (shell width {1 / shells.width_invA:.1f} Å); use a larger box"
        )
    vals = curve.fsc[sel]
    k = int(sel[int(np.argmin(vals))])
    return ConsistencyCheck(
        d_band_A=float(d_band_A),
        threshold=float(threshold),
        fsc_min=float(vals.min()),
        fsc_mean=float(vals.mean()),
        n_shells=int(sel.size),
        n_empty_shells=int((in_band & empty).sum()),
        worst_shell_A=float(1.0 / shells.centres_invA[k]),
        curve=curve,
    )


@dataclass(frozen=True)
class AmplitudeRatio:
    """Per-shell mean Fourier amplitudes of an output and its input, and their ratio.

    Attributes
    ----------
    s_invA
        Shell centres in 1/Å (shell 0 is the origin term).
    amp_output, amp_input
        Mean |F| per shell of the output and of the input.
    n_coeffs
        Fourier coefficients per shell (full grid).
    """

    s_invA: np.ndarray
    amp_output: np.ndarray
    amp_input: np.ndarray
    n_coeffs: np.ndarray

    @property
    def has_input(self) -> np.ndarray:
        """Shells where the input has amplitude (above ``sqrt(EMPTY_SHELL_POWER)`` of its strongest shell's)."""
        top = float(self.amp_input[1:].max()) if self.amp_input.size > 1 else 0.0
        return self.amp_input > np.sqrt(EMPTY_SHELL_POWER) * top

    @property
    def ratio(self) -> np.ndarray:
        """Output/input mean amplitude per shell (``nan`` where the input has none)."""
        ok = self.has_input
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(ok, self.amp_output / np.where(ok, self.amp_input, 1), np.nan)

    def band(self, coarse_A: float, fine_A: float) -> float | None:
        """Ratio of summed amplitudes over the shells with ``1/coarse_A <= s < 1/fine_A`` (origin excluded).

        ``coarse_A`` may be ``inf``. Shells where the input has no amplitude are left out; ``None`` when none remains.
        """
        s_lo = 1.0 / coarse_A if np.isfinite(coarse_A) else 0.0
        sel = (self.s_invA > 0) & (self.s_invA >= s_lo) & (self.s_invA < 1.0 / fine_A) & self.has_input
        den = float((self.n_coeffs[sel] * self.amp_input[sel]).sum())
        if not sel.any() or den <= 0:
            return None
        return float((self.n_coeffs[sel] * self.amp_output[sel]).sum()) / den

    def fraction_beyond(self, d_A: float, of_output: bool = True) -> float:
        """Fraction of the summed amplitude (all shells but the origin) in shells centred finer than ``d_A``."""
        a = self.amp_output if of_output else self.amp_input
        w = self.n_coeffs * a
        tot = float(w[1:].sum())
        return float(w[self.s_invA > 1.0 / d_A].sum()) / tot if tot > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready per-shell curve."""
        r = self.ratio
        return {
            "s_invA": [round(float(v), 6) for v in self.s_invA],
            "ratio": [None if not np.isfinite(v) else round(float(v), 5) for v in r],
            "n_coeffs": [int(v) for v in self.n_coeffs],
        }


def amplitude_ratio(output: DensityMap, input_map: DensityMap) -> AmplitudeRatio:
    """Per-shell amplitudes of ``output`` and ``input_map`` (same grid) on the input's resolution shells."""
    input_map.check_same_grid(output, "the output and its input")
    shells = map_resolution_shells(input_map)
    s, a_in = shell_amplitudes(input_map, shells)
    _, a_out = shell_amplitudes(output, shells)
    return AmplitudeRatio(s_invA=s, amp_output=a_out, amp_input=a_in, n_coeffs=shells.count())
